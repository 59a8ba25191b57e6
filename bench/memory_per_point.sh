#!/usr/bin/env bash
# Memory per point against the number of points (issue 19; docs/server.md "Memory per point"):
# bench_filtered at each size (uniform points, HNSW M 16, five small payload keys with a payload
# index each, in one collection of the engine, in process), the collection's own estimate of each
# part and the process's RSS, per point: a Markdown table on stdout and, with --plot, a PNG.
#   bash bench/memory_per_point.sh [--sizes 100000,300000,1000000] [--dim 32] [--plot FILE]
#                                  [--build-dir build]
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=100000,300000,1000000 dim=32 plot="" build=${WAYPOINT_BUILD_DIR:-build}
while (($#)); do
  case "$1" in
    --sizes) sizes=$2; shift 2 ;;
    --dim) dim=$2; shift 2 ;;
    --plot) plot=$2; shift 2 ;;
    --build-dir) build=$2; shift 2 ;;
    *) echo "memory_per_point.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
out=$(mktemp)
trap 'rm -f "$out"' EXIT

echo "| points | index (vector $((4 * dim)) B + links) | payloads | payload indexes | point tables | total (estimate) | process RSS |"
echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for n in ${sizes//,/ }; do
  line=$("$build/bench/bench_filtered" --points "$n" --dim "$dim" --queries 100 --unindexed 0 |
    grep '^memory per point:')
  # "memory per point: index (vectors V B + graph) I B, payloads (packed) P B, payload indexes
  # X B, point tables T B; total S B; process RSS R B per point"
  read -r index payloads pindexes tables total rss < <(echo "$line" |
    sed -E 's/.*graph\) ([0-9]+) B, payloads \(packed\) ([0-9]+) B, payload indexes ([0-9]+) B, point tables ([0-9]+) B; total ([0-9]+) B; process RSS ([0-9]+) B.*/\1 \2 \3 \4 \5 \6/')
  printf '| %s | %s B | %s B | %s B | %s B | %s B | %s B |\n' \
    "$n" "$index" "$payloads" "$pindexes" "$tables" "$total" "$rss"
  echo "$n $index $payloads $pindexes $tables $total $rss" >>"$out"
done

if [[ -n $plot ]]; then
  gnuplot <<GP
set terminal pngcairo size 900,500 noenhanced
set output "$plot"
set title "memory per point, dimension $dim, HNSW M 16, 5 payload keys (bench_filtered)"
set logscale x 10
set xlabel "points"
set ylabel "bytes per point"
set yrange [0:*]
set key outside right top
set grid
plot "$out" using 1:7 with linespoints lw 2 title "process RSS", \
     "$out" using 1:6 with linespoints lw 2 title "total (estimate)", \
     "$out" using 1:2 with linespoints lw 2 title "index", \
     "$out" using 1:5 with linespoints lw 2 title "point tables", \
     "$out" using 1:(\$3 + \$4) with linespoints lw 2 title "payloads + indexes", \
     $((4 * dim)) with lines dt 2 title "the vector"
GP
  echo "plot: $plot"
fi
