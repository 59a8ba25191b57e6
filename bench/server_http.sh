#!/usr/bin/env bash
# The HTTP path (issue 19; docs/server.md "The HTTP path"): waypoint_load against `waypoint serve`
# on one dataset (SIFT10K by default), search load at 1, 8, 32 and 64 connections next to the
# in-process QPS and latency of the same index, and the transport's floor (GET /healthz). Two
# placements, each with the search route and the query route:
#   unpinned: the server on 2 threads, it and the load generator sharing both cores;
#   pinned:   the server on 1 thread on core 0, the load generator on core 1.
# Traffic goes to 127.0.0.1 only; every server is stopped at the end.
#   bash bench/server_http.sh [--dataset tests/data/siftsmall] [--seconds 4] [--ef 64]
#                             [--port 7490] [--build-dir build] [--rounds 1]
set -euo pipefail
cd "$(dirname "$0")/.."
dataset=tests/data/siftsmall seconds=4 ef=64 port=7490 build=${WAYPOINT_BUILD_DIR:-build} rounds=1
while (($#)); do
  case "$1" in
    --dataset) dataset=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --ef) ef=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --build-dir) build=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    *) echo "server_http.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
(($(nproc) >= 2)) || { echo "server_http.sh: the pinned placement needs 2 cores" >&2; exit 2; }
data=$(mktemp -d)
server=""
trap '[[ -n $server ]] && kill -9 $server 2>/dev/null; rm -rf "$data"' EXIT

run() {  # run PLACEMENT ROUTE
  local placement=$1 route=$2 serve_pin="" load_pin="" threads=2
  if [[ $placement == pinned ]]; then
    serve_pin="taskset -c 0" load_pin="taskset -c 1" threads=1
  fi
  rm -rf "$data/db"
  $serve_pin "$build/waypoint" serve --port "$port" --data "$data/db" --threads "$threads" \
    >"$data/serve.log" 2>&1 &
  server=$!
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  echo "== $placement, server --threads $threads, route $route"
  $load_pin "$build/bench/waypoint_load" --port "$port" --dataset "$dataset" \
    --connections 1,8,32,64 --seconds "$seconds" --ef "$ef" --route "$route" | sed 1d
  kill "$server"
  wait "$server" 2>/dev/null || true
  server=""
}

for ((r = 1; r <= rounds; r++)); do
  for placement in unpinned pinned; do
    for route in search query; do run "$placement" "$route"; done
  done
done
