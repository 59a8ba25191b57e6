#!/usr/bin/env bash
# Quick start, part two: set up, build and run the whole test suite (CTest).
#   bash scripts/test.sh            # everything, LibTorch included
#   bash scripts/test.sh --no-torch # all but learn/
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh "$@"
bash scripts/build.sh "$@"
cd "${WAYPOINT_BUILD_DIR:-build}"
ctest --output-on-failure -j "$(nproc)"
