#!/usr/bin/env bash
# Installs (once) the npm packages tests run, pinned by
# tests/asyncapi/package-lock.json (the official AsyncAPI parser), into a
# cache outside the repo; prints their node_modules directory (for NODE_PATH).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
packages="$here/../tests/asyncapi"
cache_root="${PROTOBUS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/protobus}"
dir="$cache_root/node-$(cat "$packages/package.json" "$packages/package-lock.json" | sha256sum | cut -c1-12)"

command -v npm >/dev/null 2>&1 || { echo "node-env.sh: Node.js with npm is needed (Debian: apt-get install nodejs npm)" >&2; exit 1; }
if [ ! -f "$dir/.complete" ]; then
  echo "node-env.sh: installing the AsyncAPI parser into $dir" >&2
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$packages/package.json" "$packages/package-lock.json" "$dir/"
  (cd "$dir" && npm ci --no-audit --no-fund --ignore-scripts >&2)
  touch "$dir/.complete"
fi
echo "$dir/node_modules"
