#!/usr/bin/env bash
# Search through a cluster of 1, 2 and 3 nodes on this machine (issue 17's measurement): for each
# size, scripts/cluster.sh starts etcd and the nodes, waypoint_load creates a collection with one
# shard per node (replication 1), uploads the dataset through node 1, measures recall@10 through
# the server and QPS / p50 / p99 at the given connection counts; then a single node without
# --cluster for reference. All nodes share this machine's cores: the figures show the cost of
# fan-out and merging, not scaling.
#   bash bench/cluster_load.sh DATASET_DIR [--connections 1,32] [--seconds 5] [--ef 64]
#                              [--build-dir build]
set -euo pipefail
cd "$(dirname "$0")/.."
dataset=$1; shift
connections=1,32 seconds=5 ef=64 build=${WAYPOINT_BUILD_DIR:-build}
while (($#)); do
  case "$1" in
    --connections) connections=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --ef) ef=$2; shift 2 ;;
    --build-dir) build=$2; shift 2 ;;
    *) echo "cluster_load.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for nodes in 1 2 3; do
  echo "== $nodes node(s), $nodes shard(s)"
  WAYPOINT_BUILD_DIR=$build bash scripts/cluster.sh --no-build --nodes "$nodes" --base-port 7333 \
    --etcd-port 24791 --data "$tmp/c$nodes" >/dev/null 2>&1 &
  cluster=$!
  sleep 3
  "$build/bench/waypoint_load" --port 7333 --dataset "$dataset" --connections "$connections" \
    --seconds "$seconds" --ef "$ef" --shards "$nodes" --replication 1
  kill "$cluster"; wait "$cluster" 2>/dev/null || true
done
echo "== one node without --cluster"
"$build/waypoint" serve --port 7333 --data "$tmp/single" >/dev/null 2>&1 &
single=$!
sleep 1
"$build/bench/waypoint_load" --port 7333 --dataset "$dataset" --connections "$connections" \
  --seconds "$seconds" --ef "$ef"
kill "$single"; wait "$single" 2>/dev/null || true
