#!/usr/bin/env bash
# Installs the pinned btcd and btcctl into <repo>/.tools/bin. Idempotent: does nothing
# when .tools/bin/btcd already reports the pinned version. Prints one line, or two when it builds.
set -euo pipefail

BTCD_VERSION="0.26.0"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN_DIR="$REPO_ROOT/.tools/bin"
BTCD="$BIN_DIR/btcd"

installed_version() {
  # btcd prints e.g. "btcd version 0.26.0-beta"; an unreadable binary counts as missing.
  [ -x "$BTCD" ] || return 1
  "$BTCD" --version 2>/dev/null | sed -n 's/^btcd version \([0-9][0-9.]*\).*/\1/p'
}

if [ "$(installed_version || true)" = "$BTCD_VERSION" ] && [ -x "$BIN_DIR/btcctl" ]; then
  echo "btcd v$BTCD_VERSION already installed in $BIN_DIR"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "install-btcd: go is not on PATH (need Go >= 1.25 to build btcd v$BTCD_VERSION)" >&2
  exit 1
fi

# Say what is happening before the silent part: the first build takes about a minute.
echo "install-btcd: building btcd v$BTCD_VERSION with go install into $BIN_DIR (first run only, about a minute)..."
mkdir -p "$BIN_DIR"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! GOBIN="$BIN_DIR" go install \
  "github.com/btcsuite/btcd@v$BTCD_VERSION" \
  "github.com/btcsuite/btcd/cmd/btcctl@v$BTCD_VERSION" >"$log" 2>&1; then
  cat "$log" >&2
  echo "install-btcd: go install failed" >&2
  exit 1
fi

got="$(installed_version || true)"
if [ "$got" != "$BTCD_VERSION" ]; then
  echo "install-btcd: installed btcd reports version '${got:-unknown}', expected $BTCD_VERSION" >&2
  exit 1
fi
echo "btcd v$BTCD_VERSION installed in $BIN_DIR"
