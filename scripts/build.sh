#!/usr/bin/env bash
# Configures and builds waypoint (Release) into build/ (or $WAYPOINT_BUILD_DIR).
#   bash scripts/build.sh [--no-torch] [extra cmake -D options...]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${WAYPOINT_BUILD_DIR:-build}
torch=ON
if [[ "${1:-}" == "--no-torch" ]]; then
  torch=OFF
  shift
fi
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DWAYPOINT_WITH_TORCH=$torch "$@"
cmake --build "$build" -j "$(nproc)"
