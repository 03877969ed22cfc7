#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian/Ubuntu machine with Node 20+ and npm:
# exactly the locked npm dependencies, then builds the extension and its webviews.
#
# `npm install` rather than `npm ci`: node-llama-cpp 3.22.1 lists optional binaries for every
# platform, and a registry that serves only some of them (as here) writes a lock without the
# others, which `npm ci` refuses ("Missing: @node-llama-cpp/mac-arm64-metal"). `npm install`
# with that lock installs exactly the locked versions; the check below fails the set-up if it
# ever rewrote the lock instead.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  locked="$(mktemp)"
  cp package-lock.json "$locked"
  npm install --no-audit --no-fund
  if ! cmp -s package-lock.json "$locked"; then
    cp "$locked" package-lock.json
    rm -f "$locked"
    echo "setup: npm install wanted to change package-lock.json, so the installed versions are not the locked ones." >&2
    echo "setup: the lock was restored; refresh it on purpose with 'npm install' and commit it (see README, Maintaining the lock)." >&2
    exit 1
  fi
  rm -f "$locked"
fi
npm run build
