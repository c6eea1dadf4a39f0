#!/usr/bin/env bash
# Installs the pinned ElectrumX (PyPI `e-x`) into a project-local venv at <repo>/.tools/electrumx.
# Idempotent: does nothing when the venv already holds exactly these pins. Prints one line.
#
# Why 1.20.0: 2.0 requires Bitcoin Core >= 31 RPCs; 1.20.0 runs against btcd through
# src/regtest/btcd-rpc-proxy.ts. e-x itself is pure Python (sdist); every dependency
# installs from a wheel (plyvel's wheel bundles LevelDB and snappy, so no system libs).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO_ROOT/.tools/electrumx"
STAMP="$VENV/.deaddrop-pins"
PYTHON="${PYTHON:-python3}"

# The full dependency closure, pinned to the versions verified to work together.
PINS=(
  "e-x==1.20.0"
  "aiorpcX[ws]==0.25.0"
  "websockets==17.4"
  "aiohttp==3.14.5"
  "aiohappyeyeballs==2.7.1"
  "aiosignal==1.4.0"
  "attrs==26.1.0"
  "frozenlist==1.8.0"
  "idna==3.20"
  "multidict==7.2.1"
  "propcache==0.5.4"
  "typing_extensions==4.16.0"
  "yarl==1.25.1"
  "plyvel==1.5.1"
)
WANT="${PINS[*]}"

if [ -x "$VENV/bin/electrumx_server" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  echo "electrumx 1.20.0 already installed in $VENV"
  exit 0
fi

if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "install-electrumx: $PYTHON is not on PATH (need Python >= 3.10)" >&2
  exit 1
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
rm -rf "$VENV"
mkdir -p "$(dirname "$VENV")"
if ! { "$PYTHON" -m venv "$VENV" &&
  "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q \
    --only-binary=plyvel,aiohttp,frozenlist,multidict,propcache,yarl "${PINS[@]}" &&
  "$VENV/bin/python" -c 'import plyvel, electrumx; assert electrumx.version_short == "1.20.0"'; } >"$log" 2>&1; then
  cat "$log" >&2
  rm -rf "$VENV"
  echo "install-electrumx: installing ElectrumX 1.20.0 failed" >&2
  exit 1
fi
printf '%s' "$WANT" >"$STAMP"
echo "electrumx 1.20.0 installed in $VENV"
