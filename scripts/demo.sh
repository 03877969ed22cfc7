#!/usr/bin/env bash
# The main job: set-up, then the whole method in-process on the fixture model (no Ollama needed):
# record a planted user's choices, index them, show the profile, retrieve and generate.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run demo
