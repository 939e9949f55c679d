#!/usr/bin/env bash
# Creates (once) the Python environment the interop tests use, with Confluent's
# client from PyPI, in a cache outside the repo; prints its python executable.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
requirements="$here/../tests/interop/requirements.txt"
cache_root="${PROTOBUS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/protobus}"
venv="$cache_root/python-$(sha256sum "$requirements" | cut -c1-12)"

command -v python3 >/dev/null 2>&1 || { echo "python-env.sh: python3 is needed (Debian: apt-get install python3 python3-venv)" >&2; exit 1; }
if [ ! -f "$venv/.complete" ]; then
  echo "python-env.sh: installing $(grep -v '^#' "$requirements" | tr '\n' ' ')into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv" >&2 || { echo "python-env.sh: python3 -m venv failed (Debian: apt-get install python3-venv)" >&2; exit 1; }
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements" >&2
  touch "$venv/.complete"
fi
echo "$venv/bin/python"
