#!/usr/bin/env bash
# Installs PyPI `tahoe-lafs` 1.20.0 into the project-local venv at <repo>/.tools/electrumx, for
# the Tahoe-LAFS storage backend's tests (test/support/tahoe-grid.ts builds a private grid on
# loopback from it). Idempotent: returns at once when the venv already holds exactly these pins.
# Prints one line. Needs the venv (regtest/install-electrumx.sh creates it).
#
# Why the shared venv: with ElectrumX's, the python tools' and zfec's pins held fixed, tahoe-lafs
# resolves without changing any of them (checked with `pip install --dry-run`); only pyOpenSSL
# must stay below 26, whose 26.x wants a newer `cryptography` than install-pytools.sh pins.
# The packages both sides use are listed with the versions the other installers pin, so a
# change there fails here loudly instead of silently upgrading them.
# netifaces 0.11.0 has no wheel for current Pythons and builds from its sdist (needs a C compiler).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The physical path: pip writes it into the console scripts' #! lines, and .tools may be a
# symlink from a worktree that is gone later.
VENV="$(cd "$REPO_ROOT/.tools" 2>/dev/null && pwd -P || echo "$REPO_ROOT/.tools")/electrumx"
STAMP="$VENV/.deaddrop-tahoe-pins"
PY="$VENV/bin/python"

# The dependency closure, pinned to the versions verified to run the loopback grid.
PINS=(
  "tahoe-lafs==1.20.0"
  # shared with the other installers (same versions as theirs)
  "attrs==26.1.0" "cryptography==46.0.3" "cffi==2.0.0" "pycparser==2.23" "idna==3.20"
  "typing_extensions==4.16.0" "zfec==1.6.0.0"
  # tahoe-lafs's own
  "appdirs==1.4.4" "autobahn==26.7.1" "Automat==25.4.16" "bcrypt==5.0.0" "boltons==26.2.0"
  "cbor2==6.3.0" "click==8.5.1" "collections-extended==2.0.2" "constantly==23.10.4"
  "distro==1.9.0" "eliot==1.18.0" "filelock==4.3.2" "foolscap==24.9.0" "future==1.0.0"
  "humanize==4.17.0" "hyperlink==21.0.0" "Incremental==24.11.0" "iterable-io==1.0.4"
  "klein==24.8.0" "magic-wormhole==0.24.0" "MarkupSafe==3.0.4" "msgpack==1.2.4"
  "multipart==2.0.1" "netifaces==0.11.0" "orjson==3.13.0" "packaging==26.4" "psutil==7.2.2"
  "pyasn1==0.6.5" "pyasn1_modules==0.4.2" "pycddl==0.6.4" "PyNaCl==1.6.2" "pyOpenSSL==25.3.0"
  "pyrsistent==0.20.0" "pyutil==3.4.1" "PyYAML==6.0.4" "qrcode==8.2" "service-identity==24.2.0"
  "simplejson==4.3.0" "six==1.17.0" "spake2==0.9" "tqdm==4.70.1" "treq==26.7.0" "Tubes==0.2.1"
  "Twisted==26.10.0" "txaio==26.6.1" "txtorcon==26.6.0" "ujson==6.1.0" "Werkzeug==3.1.9"
  "zipstream-ng==1.9.3" "zope.interface==8.7"
)
WANT="${PINS[*]}"

if [ ! -x "$PY" ]; then
  echo "install-tahoe: no venv at $VENV (run regtest/install-electrumx.sh first)" >&2
  exit 1
fi
shebang_ok() {
  [ -x "$VENV/bin/tahoe" ] && [ "$(head -1 "$VENV/bin/tahoe")" = "#!$VENV/bin/python" ]
}
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && shebang_ok; then
  echo "tahoe-lafs 1.20.0 already installed in $VENV"
  exit 0
fi
# Scripts written through another path to the venv get rewritten.
EXTRA=()
if [ -x "$VENV/bin/tahoe" ] && ! shebang_ok; then EXTRA=(--force-reinstall --no-deps); fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! { "$PY" -m pip install --disable-pip-version-check --no-input -q "${EXTRA[@]}" "${PINS[@]}" &&
  "$VENV/bin/tahoe" --version | grep -q '^tahoe-lafs/1.20.0' &&
  "$PY" -c 'import electrumx, zfec, cryptography; assert cryptography.__version__ == "46.0.3"'; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "install-tahoe: installing tahoe-lafs 1.20.0 failed" >&2
  exit 1
fi
printf '%s' "$WANT" >"$STAMP"
echo "tahoe-lafs 1.20.0 installed in $VENV"
