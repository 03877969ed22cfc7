#!/usr/bin/env bash
# The project's test command: set-up, type-checking, lint, then every test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run typecheck
npm run lint
npm test
