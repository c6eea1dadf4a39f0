#!/usr/bin/env bash
# apt-install.sh <tool> <debian package>...: installs Debian packages for the test set-up, the
# one way every installer here does it: root or passwordless sudo, the package lists updated
# only when the first package is not known yet (a fresh image has none), up to 300 s of waiting
# for another apt/dpkg to finish, and apt's output shown only when it fails.
set -euo pipefail

tool="$1"
shift

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-$tool: $* missing and apt-get is not available; install it by hand" >&2
  exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "install-$tool: installing $* needs root (apt-get install $*)" >&2
    exit 1
  fi
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! apt-cache show "$1" >/dev/null 2>&1; then
  $SUDO apt-get -o DPkg::Lock::Timeout=300 update -qq >"$log" 2>&1 || { cat "$log" >&2; echo "install-$tool: apt-get update failed" >&2; exit 1; }
fi
if ! $SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "$@" >>"$log" 2>&1; then
  cat "$log" >&2
  echo "install-$tool: apt-get install $* failed" >&2
  exit 1
fi
