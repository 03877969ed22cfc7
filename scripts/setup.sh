#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian/Ubuntu machine with Node 20.19+ and npm:
# exactly the locked npm dependencies, then builds the extension and its webviews.
#
# `npm install` rather than `npm ci`: node-llama-cpp 3.22.1 lists optional binaries for every
# platform, and a registry that serves only some of them (as here) writes a lock without the
# others, which `npm ci` refuses ("Missing: @node-llama-cpp/mac-arm64-metal"). `npm install`
# with that lock installs exactly the locked versions; the check below fails the set-up if it
# ever rewrote the lock instead.
set -euo pipefail
cd "$(dirname "$0")/.."
# The one Node requirement is package.json's engines.node (the README and CI follow it).
node -e '
  const want = JSON.parse(require("fs").readFileSync("package.json", "utf8")).engines.node.replace(/^>=/, "").split(".").map(Number);
  const have = process.versions.node.split(".").map(Number);
  const i = want.findIndex((w, k) => have[k] !== w);
  if (i >= 0 && have[i] < want[i]) {
    console.error(`setup: Node ${process.versions.node} is too old; this project needs Node ${want.join(".")} or newer (package.json engines.node).`);
    process.exit(1);
  }
'
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
