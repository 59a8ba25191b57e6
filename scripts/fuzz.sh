#!/usr/bin/env bash
# Builds the libFuzzer targets and runs one or all. They are built in the ASan+UBSan build of
# `scripts/test.sh --sanitize address,undefined` (clang, libFuzzer's coverage in every library:
# build-sanitize-address-undefined/, BUILD below), so that CI compiles the code once for both.
#   bash scripts/fuzz.sh TARGET SECONDS   # one target (or a,b,c), e.g. fuzz_http_api 600
#   bash scripts/fuzz.sh all SECONDS      # every target, one per core at a time (CI: all 20)
#   bash scripts/fuzz.sh list             # the targets
# Each run starts from tests/fuzz/corpus/TARGET (the seeds, kept in git) and grows a working
# corpus in BUILD/corpus/TARGET; a crash leaves its input in BUILD/crashes/ and fails the
# script. Replay one with: BUILD/tests/fuzz/TARGET BUILD/crashes/crash-...
# Prints, per target: executions, executions per second, coverage, crashes.
# WAYPOINT_FUZZ_JOBS=N runs N targets at once (default: the number of cores).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${WAYPOINT_FUZZ_BUILD_DIR:-build-sanitize-address-undefined}
targets=(fuzz_http_api fuzz_filter fuzz_collection_config fuzz_index_request fuzz_index_file
         fuzz_vector_file fuzz_point_record fuzz_snapshot_archive fuzz_multipart fuzz_cluster_map
         fuzz_plain_search fuzz_plain_upsert fuzz_request_head)
what=${1:-}
seconds=${2:-30}
if [[ "$what" == list ]]; then printf '%s\n' "${targets[@]}"; exit 0; fi
[[ -n "$what" ]] || { sed -n '2,12p' "$0"; exit 2; }
if [[ "$what" != all ]]; then
  IFS=, read -r -a asked <<<"$what"  # one target, or several: a,b,c
  for t in "${asked[@]}"; do
    [[ " ${targets[*]} " == *" $t "* ]] || { echo "fuzz.sh: no target $t" >&2; exit 2; }
  done
  targets=("${asked[@]}")
fi
bash scripts/setup.sh --no-torch >/dev/null
WAYPOINT_BUILD_DIR="$build" WAYPOINT_BUILD_TARGETS="${targets[*]}" \
  bash scripts/build.sh --sanitize address,undefined >/dev/null
mkdir -p "$build/crashes"
# Targets run `WAYPOINT_FUZZ_JOBS` at a time (default: one per core), each for SECONDS. Counted
# before OMP_NUM_THREADS is set below: GNU nproc answers OMP_NUM_THREADS when it is set (so the
# targets ran one at a time, CI's 11 x 20 s taking 240 s instead of 120).
jobs=${WAYPOINT_FUZZ_JOBS:-$(nproc)}
export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1"
export LSAN_OPTIONS="suppressions=$PWD/scripts/sanitizer/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# One OpenMP thread a target: the targets already run one per core, an input is small (a team
# of threads per search only costs executions: fuzz_http_api made 26k in 20 s with two, 44k
# before with the pragmas compiled out), and a crash replays alike. The parallel paths are the
# ASan+UBSan suite's (scripts/test.sh), which runs two.
export OMP_NUM_THREADS=1
run_target() {
  local t=$1 corpus="$build/corpus/$1" log="$build/$1.log" status=0
  mkdir -p "$corpus"
  "$build/tests/fuzz/$t" "$corpus" "tests/fuzz/corpus/$t" -max_total_time="$seconds" \
    -max_len=65536 -rss_limit_mb=2048 -timeout=10 -artifact_prefix="$build/crashes/$t-" \
    -print_final_stats=1 >"$log" 2>&1 || status=$?
  echo "$status" >"$build/$t.status"
}
running=0
for t in "${targets[@]}"; do
  run_target "$t" &
  running=$((running + 1))
  if ((running >= jobs)); then
    wait -n || true
    running=$((running - 1))
  fi
done
wait || true
failed=()
printf '%-24s %12s %10s %8s %8s\n' target executions exec/s cov crashes
for t in "${targets[@]}"; do
  log="$build/$t.log"
  status=$(cat "$build/$t.status" 2>/dev/null || echo 1)
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo 0)
  crashes=0
  if ((status != 0)); then
    crashes=1
    failed+=("$t")
  fi
  printf '%-24s %12s %10s %8s %8s\n' "$t" "$execs" "$rate" "$cov" "$crashes"
  if ((status != 0)); then grep -A30 -E "ERROR|runtime error|deadly signal|answer 5" "$log" | head -60; fi
done
if ((${#failed[@]})); then
  echo "fuzz.sh: crashes in ${failed[*]} (inputs in $build/crashes/)" >&2
  exit 1
fi
