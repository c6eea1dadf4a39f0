#!/usr/bin/env bash
# Installs PyPI `zfec` 1.6.0.0 (Tahoe-LAFS's erasure codec) into the project-local venv at
# <repo>/.tools/electrumx, which the storage codec tests use to check that our shares are
# byte-identical to zfec's. Idempotent: returns at once when that exact version is importable.
# Prints one line. Needs the venv (regtest/install-electrumx.sh creates it).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO_ROOT/.tools/electrumx"
PIN="zfec==1.6.0.0"
PY="$VENV/bin/python"

if [ ! -x "$PY" ]; then
  echo "install-zfec: no venv at $VENV (run regtest/install-electrumx.sh first)" >&2
  exit 1
fi

have() {
  "$PY" -c 'import importlib.metadata as m, sys; sys.exit(0 if m.version("zfec") == "1.6.0.0" else 1)' 2>/dev/null
}

if have; then
  echo "zfec 1.6.0.0 already installed in $VENV"
  exit 0
fi

"$PY" -m pip install --quiet --disable-pip-version-check "$PIN" >&2
have || { echo "install-zfec: $PIN did not install" >&2; exit 1; }
echo "zfec 1.6.0.0 installed in $VENV"
