#!/usr/bin/env bash
# Installs waypoint's Debian 12 build and test dependencies, idempotently: packages already
# present are not fetched again, and apt-get runs only when something is missing.
#   bash scripts/setup.sh            # everything (LibTorch included)
#   bash scripts/setup.sh --no-torch # without LibTorch (-DWAYPOINT_WITH_TORCH=OFF builds)
#   bash scripts/setup.sh --sanitize LIST # as --no-torch
set -euo pipefail

cd "$(dirname "$0")"
source options.sh  # --no-torch, or --sanitize (which builds without LibTorch)
mapfile -t packages < <(sed 's/#.*//; s/[[:space:]]*$//; /^$/d' debian-packages.txt)
if [[ "$torch" == OFF ]]; then
  packages=("${packages[@]/libtorch-dev}")
fi
# Node.js runs the stock Qdrant JavaScript client against our server (tests/js). A machine that
# already has node and npm (e.g. from NodeSource) keeps them.
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  [[ -n "$p" ]] || continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all packages present"
fi

# The Qdrant JS client for the end-to-end test, pinned by tests/js/package-lock.json. Without the
# npm registry QdrantJsClient.EndToEnd fails (it is always registered); the rest still runs.
cd ../tests/js
# Installed again when the pinned version changed (the installed one differs from package.json's).
pinned=$(grep -o '"@qdrant/js-client-rest": *"[^"]*"' package.json | grep -o '[0-9][0-9.]*' || true)
installed=$(grep -o '"version": *"[^"]*"' node_modules/@qdrant/js-client-rest/package.json 2>/dev/null |
            grep -o '[0-9][0-9.]*' || true)
if [[ -z "$installed" || "$installed" != "$pinned" ]]; then
  npm ci --no-audit --no-fund --loglevel=error || echo "setup: npm ci failed; QdrantJsClient.EndToEnd will fail without its client"
fi
