#!/usr/bin/env bash
# Assembles dataset folders for `waypoint bench` under build/data (never inside ../shared):
#   build/data/fashion-mnist: base.fvecs + query_all.fvecs rebuilt bit for bit by the shared
#   prepare.sh from the Debian package dataset-fashion-mnist, plus links to the shared queries,
#   ground truth and labels.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=$(cd ../shared/data && pwd)
out=${WAYPOINT_BUILD_DIR:-build}/data
mkdir -p "$out/fashion-mnist"
fm="$out/fashion-mnist"
if [[ ! -s "$fm/base.fvecs" ]]; then
  sh "$shared/fashion-mnist/prepare.sh" "$fm"
fi
for f in query.fvecs groundtruth.ivecs groundtruth_dist.fvecs base_labels.ivecs query_labels.ivecs; do
  ln -sf "$shared/fashion-mnist/$f" "$fm/$f"
done
echo "prepare_data: $fm ready"
