#!/usr/bin/env bash
# Makes sure the regtest tools exist before `npm test` / `npm start`.
# btcd is always installed (the integration tests run against it even when a bitcoind is
# available); ElectrumX is installed by regtest/install-electrumx.sh when that script exists.
# Both installers are idempotent and return at once when their tool is already in place.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

bash "$HERE/install-btcd.sh"

if [ -n "${BITCOIND:-}" ]; then
  echo "bitcoind: using BITCOIND=$BITCOIND"
elif command -v bitcoind >/dev/null 2>&1; then
  echo "bitcoind: found on PATH ($(command -v bitcoind))"
fi

if [ -f "$HERE/install-electrumx.sh" ]; then
  bash "$HERE/install-electrumx.sh"
fi

# Tor for the onion tests (test/node/tor-*.int.test.ts) and `deaddrop start --tor`.
bash "$HERE/install-tor.sh"

# iproute2 and nftables for the multi-host mixnet test (test/node/mixnet/netns.int.test.ts).
bash "$HERE/install-netns.sh"

# Python packages for the interop tests (e.g. PyPI `cryptography`), into the same venv.
if [ -f "$HERE/install-pytools.sh" ]; then
  bash "$HERE/install-pytools.sh"
fi

# Debian's Chromium for the dashboard's browser tests.
bash "$HERE/install-chromium.sh"

if [ -f "$HERE/install-zfec.sh" ] && [ -x "$HERE/../.tools/electrumx/bin/python" ]; then
  bash "$HERE/install-zfec.sh"
fi

# Tahoe-LAFS 1.20.0 for the Tahoe storage backend's tests (test/node/storage/tahoe.int.test.ts),
# into the same venv, after zfec (which it shares).
if [ -f "$HERE/install-tahoe.sh" ] && [ -x "$HERE/../.tools/electrumx/bin/python" ]; then
  bash "$HERE/install-tahoe.sh"
fi
