#!/usr/bin/env bash
# Restart time of the server on a data folder (issue 19; docs/server.md "A million points"):
# each binary in turn starts `serve --data DATA --threads 2`, is timed until /healthz answers and
# its resident memory read, then killed with kill -9 (so nothing is written and every start reads
# the same folder), for ROUNDS rounds. Comparing binaries this way, alternated in one run, is what
# the machine's noise allows. Traffic goes to 127.0.0.1 only.
#   bash bench/server_restart.sh DATA ROUNDS BINARY [BINARY...] [--port 7392]
# A data folder of 1M points: serve on an empty folder, `build/bench/waypoint_load --dataset
# build/data/synth-1m --batch 500 --payload --ingest-only`, wait until every point is indexed
# (bench/server_scale.sh does these steps), then SIGTERM the server (it writes the index files).
set -euo pipefail
data=$1 rounds=$2
shift 2
port=7392 bins=()
while (($#)); do
  case "$1" in
    --port) port=$2; shift 2 ;;
    *) bins+=("$1"); shift ;;
  esac
done
((${#bins[@]})) || { echo "server_restart.sh: no binary given" >&2; exit 2; }
server=""
trap '[[ -n $server ]] && kill -9 $server 2>/dev/null' EXIT
for round in $(seq "$rounds"); do
  for bin in "${bins[@]}"; do
    t0=$(date +%s.%N)
    "$bin" serve --port "$port" --data "$data" --threads 2 >/dev/null 2>&1 &
    server=$!
    until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do
      kill -0 "$server" 2>/dev/null || { echo "$bin exited" >&2; exit 1; }
      sleep 0.02
    done
    t=$(echo "$(date +%s.%N) - $t0" | bc)
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$server/status")
    echo "round $round $bin: listening after $t s, $((rss / 1024)) MiB resident"
    kill -9 "$server"
    wait "$server" 2>/dev/null || true
    server=""
    sleep 1
  done
done
