#!/usr/bin/env bash
# A waypoint cluster on this machine for a try-out (docs/cluster.md): one etcd and N nodes on
# loopback, node i on port BASE+i-1, data in DIR/node<i>, etcd's in DIR/etcd. Ctrl-C (or
# SIGTERM) stops them all. Builds waypoint first, as scripts/run.sh does.
#   bash scripts/cluster.sh [--nodes 3] [--base-port 6333] [--etcd-port 2379] [--data DIR]
#                           [--lease-ttl 10] [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."
nodes=3 base=6333 etcd_port=2379 data=./waypoint-cluster ttl=10 build=1
while (($#)); do
  case "$1" in
    --nodes) nodes=$2; shift 2 ;;
    --base-port) base=$2; shift 2 ;;
    --etcd-port) etcd_port=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    --lease-ttl) ttl=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    *) echo "cluster.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ "$nodes" =~ ^[1-9][0-9]?$ ]] || { echo "cluster.sh: --nodes must be 1..99" >&2; exit 2; }
if ((build)); then
  bash scripts/setup.sh
  bash scripts/build.sh
fi
bin=${WAYPOINT_BUILD_DIR:-build}/waypoint
command -v etcd >/dev/null || { echo "cluster.sh: etcd not found (apt-get install etcd-server)" >&2; exit 1; }

mkdir -p "$data"
pids=()
stop() {
  trap - INT TERM EXIT
  echo "cluster.sh: stopping"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

etcd_url=http://127.0.0.1:$etcd_port
etcd --name waypoint --data-dir "$data/etcd" \
  --listen-client-urls "$etcd_url" --advertise-client-urls "$etcd_url" \
  --listen-peer-urls http://127.0.0.1:$((etcd_port + 1)) \
  --initial-advertise-peer-urls http://127.0.0.1:$((etcd_port + 1)) \
  --initial-cluster waypoint=http://127.0.0.1:$((etcd_port + 1)) >"$data/etcd.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  python3 -c "import urllib.request as u; u.urlopen(u.Request('$etcd_url/v3/kv/range', b'{\"key\":\"AA==\"}'), timeout=1)" 2>/dev/null && break
  sleep 0.1
done

for i in $(seq "$nodes"); do
  "$bin" serve --data "$data/node$i" --port $((base + i - 1)) \
    --cluster --etcd "$etcd_url" --node-id "$i" --lease-ttl "$ttl" >"$data/node$i.log" 2>&1 &
  pids+=($!)
done
sleep 1
echo "cluster.sh: etcd at $etcd_url; nodes:"
for i in $(seq "$nodes"); do echo "  node $i: http://127.0.0.1:$((base + i - 1))  (log: $data/node$i.log)"; done
echo "try: curl -X PUT localhost:$base/collections/c -H 'content-type: application/json' \\"
echo "       -d '{\"vectors\": {\"size\": 4, \"distance\": \"Cosine\"}, \"shard_number\": $nodes, \"replication_factor\": $((nodes > 1 ? 2 : 1))}'"
echo "     curl localhost:$base/collections/c/cluster"
wait -n "${pids[@]}" || true
