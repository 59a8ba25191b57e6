#!/usr/bin/env bash
# Quick start, part two: set up, build and run the whole test suite (CTest).
#   bash scripts/test.sh                              # everything, LibTorch included
#   bash scripts/test.sh --no-torch                   # all but learn/
#   bash scripts/test.sh --sanitize address,undefined # ASan+UBSan build, without LibTorch
#   bash scripts/test.sh --sanitize thread            # TSan build, without LibTorch
# Under a sanitizer every process (the tests and the servers they start) writes its reports to
# BUILD/sanitizer-logs/; any report fails the run. WAYPOINT_TESTS=REGEX runs only the tests whose
# names match (ctest -R), e.g. to rerun the failures of a long sanitizer run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh "$@"
# The microbench executables of bench/ are left to build.sh (no test runs them; ~40 s of
# compiling). `waypoint bench` is part of the waypoint binary and is built.
bash scripts/build.sh -DWAYPOINT_BUILD_BENCH=OFF "$@"
source scripts/options.sh
root=$PWD
cd "$build"
only=()
[[ -n "${WAYPOINT_TESTS:-}" ]] && only=(-R "$WAYPOINT_TESTS")
if [[ -z "$sanitize" ]]; then
  ctest --output-on-failure -j "$(nproc)" "${only[@]}"
  exit
fi
logs="$PWD/sanitizer-logs"
rm -rf "$logs" && mkdir -p "$logs"
supp="$root/scripts/sanitizer"
export ASAN_OPTIONS="log_path=$logs/asan:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="log_path=$logs/ubsan:print_stacktrace=1:halt_on_error=1"
export TSAN_OPTIONS="log_path=$logs/tsan:suppressions=$supp/tsan.supp:second_deadlock_stack=1:halt_on_error=1"
# Under TSan, libomp loads LLVM's Archer tool, which tells TSan of the runtime's barriers and
# handoffs (without it every parallel region reads as a race).
if [[ "$sanitize" == *thread* ]]; then
  archer="$(llvm-config-14 --libdir 2>/dev/null || echo /usr/lib/llvm-14/lib)/libarcher.so"
  [[ -f "$archer" ]] || { echo "test.sh: $archer is missing (libomp-dev)" >&2; exit 2; }
  export OMP_TOOL_LIBRARIES="$archer"
  # As Archer asks (it prints a warning into every program's output otherwise): no reports from
  # interceptors called by uninstrumented libraries (libomp's own memory and locks among them).
  TSAN_OPTIONS="$TSAN_OPTIONS:ignore_noninstrumented_modules=1"
fi
status=0
ctest --output-on-failure -j "$(nproc)" "${only[@]}" || status=$?
if compgen -G "$logs/*" >/dev/null; then
  echo "sanitizer reports ($sanitize):"
  for f in "$logs"/*; do echo "== $f"; head -80 "$f"; done
  status=1
fi
exit $status
