#!/usr/bin/env bash
# Installs the pinned Python packages the tests use besides ElectrumX into the same project-local
# venv (<repo>/.tools/electrumx, made by regtest/install-electrumx.sh, which must run first).
# Today: PyPI `cryptography`, for test/interop/sphinx_check.py (the independent second
# implementation of mixnet packet processing). Idempotent: does nothing when the venv already
# holds exactly these pins. Prints one line.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO_ROOT/.tools/electrumx"
STAMP="$VENV/.deaddrop-pytools-pins"

# cryptography's wheel is abi3 and bundles OpenSSL; cffi and pycparser are its dependency closure.
PINS=(
  "cryptography==46.0.3"
  "cffi==2.0.0"
  "pycparser==2.23"
)
WANT="${PINS[*]}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "install-pytools: $VENV is missing; run regtest/install-electrumx.sh first" >&2
  exit 1
fi
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && "$VENV/bin/python" -c 'import cryptography' >/dev/null 2>&1; then
  echo "python test tools already installed in $VENV"
  exit 0
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! { "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q \
    --only-binary=cryptography,cffi "${PINS[@]}" &&
  "$VENV/bin/python" -c 'import cryptography; assert cryptography.__version__ == "46.0.3"'; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "install-pytools: installing the python test tools failed" >&2
  exit 1
fi
printf '%s' "$WANT" >"$STAMP"
echo "python test tools installed in $VENV"
