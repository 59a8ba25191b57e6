#!/usr/bin/env bash
# Configures and builds waypoint into build/ (or $WAYPOINT_BUILD_DIR).
#   bash scripts/build.sh [--no-torch] [--sanitize LIST] [extra cmake -D options...]
# --sanitize address,undefined | thread: a RelWithDebInfo build with those sanitizers and without
# LibTorch (its uninstrumented allocations make false reports), into build-sanitize-LIST/ unless
# $WAYPOINT_BUILD_DIR says otherwise. Otherwise a Release build. $WAYPOINT_BUILD_TARGETS (names,
# space-separated) builds those targets alone (scripts/fuzz.sh: the fuzz targets).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/options.sh
# A folder configured with another compiler than the one asked for: CMake would drop its cache
# and configure again without the options given here (a TSan folder came out a plain Release
# build), so the cache is dropped first.
for opt in ${extra[@]+"${extra[@]}"}; do
  if [[ $opt == -DCMAKE_CXX_COMPILER=* && -f "$build/CMakeCache.txt" ]]; then
    want=$(command -v "${opt#*=}" || echo "${opt#*=}")
    have=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt")
    have=$(command -v "$have" || echo "$have")
    [[ "$want" == "$have" ]] || rm -rf "$build/CMakeCache.txt" "$build/CMakeFiles"
  fi
done
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE="$build_type" -DWAYPOINT_WITH_TORCH="$torch" \
  -DWAYPOINT_SANITIZE="$sanitize" ${extra[@]+"${extra[@]}"}
targets=()
[[ -n "${WAYPOINT_BUILD_TARGETS:-}" ]] && read -r -a targets <<<"$WAYPOINT_BUILD_TARGETS"
cmake --build "$build" -j "$(nproc)" ${targets[@]+--target "${targets[@]}"}
