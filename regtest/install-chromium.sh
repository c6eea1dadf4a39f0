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
echo "chromium: installing Debian's chromium with apt-get"
bash "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh" chromium chromium
[ -x "$CHROMIUM" ] || { echo "install-chromium: $CHROMIUM still missing after apt-get install" >&2; exit 1; }
echo "chromium: $CHROMIUM"
