#!/usr/bin/env bash
# The browser tests drive Debian's Chromium through Playwright; install it when it is missing.
# They also check every page with axe-core, which is installed from npm into var/browser-tools
# (test environment only: it is served to the test browser by the tests, never to users).
set -euo pipefail
AXE_VERSION="4.14.1"
AXE_DIR="$(cd "$(dirname "$0")/.." && pwd)/var/browser-tools"
if [ ! -f "$AXE_DIR/node_modules/axe-core/axe.min.js" ]; then
  if command -v npm >/dev/null 2>&1; then
    mkdir -p "$AXE_DIR"
    npm install --prefix "$AXE_DIR" --no-audit --no-fund --silent "axe-core@$AXE_VERSION"
  else
    echo "npm is missing: the accessibility checks need axe-core (apt-get install npm)" >&2
  fi
fi
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "Chromium is missing and installing it needs root: sudo apt-get install chromium chromium-driver" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium chromium-driver fonts-dejavu-core >/dev/null
command -v chromium >/dev/null
if [ ! -f "$AXE_DIR/node_modules/axe-core/axe.min.js" ]; then
  mkdir -p "$AXE_DIR"
  npm install --prefix "$AXE_DIR" --no-audit --no-fund --silent "axe-core@$AXE_VERSION"
fi
