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

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-tor: tor is missing and apt-get is not available; install tor (with tor-gencert) by hand" >&2
  exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "install-tor: tor is missing and installing it needs root (apt-get install tor)" >&2
    exit 1
  fi
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
# Update the package lists only when tor is not known yet (a fresh image has none).
if ! apt-cache show tor >/dev/null 2>&1; then
  $SUDO apt-get -o DPkg::Lock::Timeout=300 update -qq >"$log" 2>&1 || { cat "$log" >&2; echo "install-tor: apt-get update failed" >&2; exit 1; }
fi
if ! $SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends tor >>"$log" 2>&1; then
  cat "$log" >&2
  echo "install-tor: apt-get install tor failed" >&2
  exit 1
fi
# Debian enables a system tor service; the tests never use it, and on a machine with systemd
# it would hold port 9050. Stop it quietly when it runs (containers have no systemd).
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet tor 2>/dev/null; then
  $SUDO systemctl stop tor >/dev/null 2>&1 || true
fi
have_tor || { echo "install-tor: tor still missing after apt-get install" >&2; exit 1; }
echo "tor: installed $(tor --version 2>/dev/null | head -n1 | sed 's/\.$//') with apt-get"
