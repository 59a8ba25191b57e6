#!/usr/bin/env bash
# Quick start, part one: set up, build and start the server on the embedded default: data in
# ./waypoint-data, 127.0.0.1:6333, and a demo collection "demo" (the 8x8 digits, label payloads).
# Extra arguments go to `waypoint serve` (e.g. --port 6334, --api-key K).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
exec build/waypoint serve --data ./waypoint-data --demo tests/data/digits "$@"
