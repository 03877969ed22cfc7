#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian/Ubuntu machine with Node 20+ and npm:
# the locked npm dependencies, then builds the extension and its webviews.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run build
