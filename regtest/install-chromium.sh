#!/usr/bin/env bash
# Installs Debian's Chromium for the dashboard's browser tests (test/dashboard/*.int.test.ts).
# Playwright never downloads a browser here: the tests launch /usr/lib/chromium/chromium.
# Idempotent: returns at once when it is already installed.
set -euo pipefail

CHROMIUM=/usr/lib/chromium/chromium
if [ -x "$CHROMIUM" ]; then
  echo "chromium: $CHROMIUM"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium: not found and no apt-get; the dashboard browser tests will fail" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "chromium: installing Debian's chromium with apt-get"
$SUDO apt-get install -y chromium >/dev/null || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y chromium >/dev/null; }
echo "chromium: $CHROMIUM"
