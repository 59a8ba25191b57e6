#!/usr/bin/env bash
# The RL comparison's protocol (docs/rl.md, "The comparison"): every graph family at its best
# parameters, all entered through HNSW's upper levels, the same beam search, k = 10, one query
# thread, evaluation queries never seen in training; figures at recall 0.90, 0.95 and 0.99 with a
# bootstrap interval of the mean distance computations (DCS).
#   bash bench/rl_protocol.sh --dataset DIR [--holdout N | --max-queries N] [--rl-graph FILE]...
#        [--out DIR] [--quick]
# SIFT10K: --holdout 1000 (1000 base rows drawn with seed 7 become the queries; train-pruner takes
# the same --holdout 1000). Fashion-MNIST: --max-queries 1000 (test images 0..999; train-pruner
# trains on 1000..8999).
# Families swept: hnsw over M 8..32; robust (HNSW level 0 + the 2M nearest, RobustPrune: our
# `graph` index) over alpha 1.0..1.4; Vamana over R 12..48 x alpha 1.0..1.4; each rl graph given.
# Writes DIR/*.jsonl (one waypoint bench run each) and DIR/summary.md (bench/rl_protocol.py: the
# best of each family at each target, with its degree and memory).
set -euo pipefail
cd "$(dirname "$0")/.."
waypoint=${WAYPOINT:-build/waypoint}
dataset="" out="" split=() rl=() quick=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dataset) dataset=$2; shift 2 ;;
    --holdout) split=(--holdout "$2"); shift 2 ;;
    --max-queries) split=(--max-queries "$2"); shift 2 ;;
    --rl-graph) rl+=("$2"); shift 2 ;;
    --out) out=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    *) sed -n '2,16p' "$0"; exit 2 ;;
  esac
done
[[ -n "$dataset" ]] || { sed -n '2,16p' "$0"; exit 2; }
out=${out:-build/rl-protocol/$(basename "$dataset")}
mkdir -p "$out"
efs=10,12,14,16,20,24,32,40,48,64,96,128,192,256
common=(--dataset "$dataset" "${split[@]}" --entry hnsw --ef "$efs" --targets 0.9,0.95,0.99
        --threads 1 --build-threads 2 --json --quiet)
Ms=(8 12 16 24 32) alphas=(1.0 1.1 1.2 1.3 1.4) Rs=(12 16 24 32 48)
if [[ $quick == 1 ]]; then Ms=(8 16) alphas=(1.0 1.2) Rs=(16 32); fi
run() {  # name, then bench arguments
  local name=$1; shift
  echo "rl_protocol: $name" >&2
  "$waypoint" bench "${common[@]}" "$@" > "$out/$name.jsonl"
}
for M in "${Ms[@]}"; do run "hnsw-M$M" --indexes hnsw --M "$M"; done
robust=() vamana=()
for a in "${alphas[@]}"; do robust+=("robust-$a"); vamana+=("vamana-$a"); done
run robust --indexes "$(IFS=,; echo "${robust[*]}")"
# A graph's lists live in its HNSW's level 0, of 2M slots: M = max(16, R / 2) for Vamana.
for R in "${Rs[@]}"; do
  M=$(( R > 32 ? (R + 1) / 2 : 16 ))
  run "vamana-R$R" --indexes "$(IFS=,; echo "${vamana[*]}")" --R "$R" --M "$M"
done
i=0
for f in "${rl[@]}"; do run "rl-$i" --indexes rl --rl-graph "$f"; i=$((i + 1)); done
python3 bench/rl_protocol.py "$out"/*.jsonl > "$out/summary.md"
cat "$out/summary.md"
