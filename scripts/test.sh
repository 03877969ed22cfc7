#!/usr/bin/env bash
# The project's test command (what CI runs): set-up, type-checking, lint, the unit and
# integration suites (real llama.cpp on the fixture model, real vectra on disk, real HTTP), then
# the end-to-end scenario in a real VS Code (code-server) in a real browser (Debian chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run typecheck
npm run lint
npm test
bash test/e2e/setup-vscode-server.sh
node --import tsx --test --test-reporter=spec --test-concurrency=1 test/e2e/*.test.ts
