#!/usr/bin/env bash
# The main job: set-up, then package the extension.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run package
