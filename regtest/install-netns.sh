#!/usr/bin/env bash
# Installs what the multi-host tests (test/support/netns.ts) need: `ip` with `ip netns` (Debian's
# iproute2) and `nft` (Debian's nftables, for the NAT router). Idempotent: returns at once when
# both are on PATH. Prints one line. Without root the namespace tests skip themselves, so a
# missing tool is only reported here, never an error.
set -euo pipefail

have_tools() { command -v ip >/dev/null 2>&1 && command -v nft >/dev/null 2>&1; }

if have_tools; then
  echo "netns: $(ip -V 2>/dev/null | head -n1) and nft $(nft --version 2>/dev/null | awk '{print $2}') already installed"
  exit 0
fi

if [ "$(id -u)" -ne 0 ] && ! sudo -n true >/dev/null 2>&1; then
  echo "netns: ip/nft missing and no root: the network-namespace tests will be skipped"
  exit 0
fi

bash "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh" netns iproute2 nftables
have_tools || { echo "install-netns: ip or nft still missing after apt-get install" >&2; exit 1; }
echo "netns: installed $(ip -V 2>/dev/null | head -n1) and nft $(nft --version 2>/dev/null | awk '{print $2}') with apt-get"
