#!/usr/bin/env bash
# The server at scale (issue 19; docs/server.md "A million points"): an empty server's resident
# memory; the dataset ingested over HTTP by waypoint_load in batches (half without wait, half with
# wait=true) with a 3-key payload a point; resident memory per point once every point is indexed;
# a clean restart (SIGTERM saves the index file; the restart loads it) and a restart after kill -9,
# each timed to the first search answered. Traffic goes to 127.0.0.1 only; the server is stopped
# at the end.
#   bash bench/server_scale.sh DATASET_DIR [--batch 500] [--port 7390] [--build-dir build]
set -euo pipefail
cd "$(dirname "$0")/.."
dataset=$1; shift
batch=500 port=7390 build=${WAYPOINT_BUILD_DIR:-build}
while (($#)); do
  case "$1" in
    --batch) batch=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --build-dir) build=$2; shift 2 ;;
    *) echo "server_scale.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
data=$(mktemp -d)
server=""
trap '[[ -n $server ]] && kill -9 $server 2>/dev/null; rm -rf "$data" "$data.log"' EXIT
url=http://127.0.0.1:$port

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
now() { date +%s.%N; }
start() {  # starts the server (its pid in $server); $elapsed: seconds until it listens
  local t0; t0=$(now)
  "$build/waypoint" serve --port "$port" --data "$data" --threads 2 >>"$data.log" 2>&1 &
  server=$!
  until curl -sf "$url/healthz" >/dev/null 2>&1; do sleep 0.05; done
  elapsed=$(echo "$(now) - $t0" | bc)
}
query=$(python3 -c "import struct
b = open('$dataset/query.fvecs', 'rb').read(); d = struct.unpack_from('<i', b)[0]
print('{\"vector\":[%s],\"limit\":10}' % ','.join(map(str, struct.unpack_from('<%df' % d, b, 4))))")
first_search() {  # seconds until a search of the collection answers with results
  local t0; t0=$(now)
  until curl -sf -X POST -H 'content-type: application/json' -d "$query" \
    "$url/collections/load/points/search" | grep -q '"id"'; do sleep 0.02; done
  echo "$(now) - $t0" | bc
}
indexed() {
  curl -sf "$url/collections/load" | python3 -c "import json,sys
r=json.load(sys.stdin)['result']; print(r['points_count'], r['indexed_vectors_count'])"
}

start
echo "listening after $elapsed s (empty data folder)"
sleep 1
empty=$(rss_kib "$server")
echo "empty server: $((empty / 1024)) MiB resident"
"$build/bench/waypoint_load" --port "$port" --dataset "$dataset" --batch "$batch" --payload \
  --ingest-only --connections 1
n=$(python3 -c "import os; print(os.path.getsize('$dataset/base.fvecs') // (4 + 4 * $(
  python3 -c "import struct; print(struct.unpack('<i', open('$dataset/base.fvecs','rb').read(4))[0])")))")
t0=$(now)
until [[ "$(indexed)" == "$n $n" ]]; do sleep 0.5; done
echo "every point indexed $(echo "$(now) - $t0" | bc) s after the upload returned"
first_search >/dev/null
sleep 2  # the server hands what the writes freed back a second after the last one
full=$(rss_kib "$server")
echo "resident: $((full / 1024)) MiB for $n points: $(((full - empty) * 1024 / n)) B a point above the empty server"
curl -sf "$url/metrics" | grep '^waypoint_memory_bytes' || true

t0=$(now)
kill -TERM "$server"; wait "$server" || true
echo "SIGTERM to exit (index files saved): $(echo "$(now) - $t0" | bc) s"
start
echo "restart: listening after $elapsed s, first search after $(first_search) s more"
echo "resident after the restart: $(($(rss_kib "$server") / 1024)) MiB"
kill -9 "$server"; wait "$server" 2>/dev/null || true
start
echo "after kill -9: listening after $elapsed s, first search after $(first_search) s more"
echo "points after kill -9: $(indexed)"
kill -TERM "$server"; wait "$server" || true
server=""
