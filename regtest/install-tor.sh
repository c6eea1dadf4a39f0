#!/usr/bin/env bash
# Installs Debian's `tor` (tor and tor-gencert) with apt-get when it is missing; the Tor tests
# and `deaddrop start --tor` without --tor-control need it. Idempotent: returns at once when tor
# and tor-gencert are on PATH. Prints one line. The package's system service is not used (the
# tests and the daemon start their own tor processes with their own data directories).
set -euo pipefail

have_tor() { command -v tor >/dev/null 2>&1 && command -v tor-gencert >/dev/null 2>&1; }

if have_tor; then
  echo "tor: $(tor --version 2>/dev/null | head -n1 | sed 's/\.$//') already installed"
  exit 0
fi

bash "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh" tor tor
# Debian enables a system tor service; the tests never use it, and on a machine with systemd
# it would hold port 9050. Stop it quietly when it runs (containers have no systemd).
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet tor 2>/dev/null; then
  systemctl stop tor >/dev/null 2>&1 || true
fi
have_tor || { echo "install-tor: tor still missing after apt-get install" >&2; exit 1; }
echo "tor: installed $(tor --version 2>/dev/null | head -n1 | sed 's/\.$//') with apt-get"
