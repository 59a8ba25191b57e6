#!/usr/bin/env bash
# Quick start, part one: set up, build, and run waypoint's main job. Until the engine lands
# (issue 3) that is `waypoint bench` on SIFT10K: our HNSW against FAISS and hnswlib.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
exec build/waypoint bench --dataset ../shared/data/siftsmall --plot build/siftsmall.png "$@"
