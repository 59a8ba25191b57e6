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
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE="$build_type" -DWAYPOINT_WITH_TORCH="$torch" \
  -DWAYPOINT_SANITIZE="$sanitize" ${extra[@]+"${extra[@]}"}
targets=()
[[ -n "${WAYPOINT_BUILD_TARGETS:-}" ]] && read -r -a targets <<<"$WAYPOINT_BUILD_TARGETS"
cmake --build "$build" -j "$(nproc)" ${targets[@]+--target "${targets[@]}"}
