#!/usr/bin/env bash
# Installs the pinned npm tools of package-lock.json into DEST/node_modules (a build directory,
# never the source tree), and only when DEST does not already hold exactly this lockfile's install.
#   npm_install.sh DEST
# Exit 77 (ctest SKIP) when node/npm are missing or the npm registry cannot be reached.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dest="${1:?usage: npm_install.sh DEST}"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "SKIP: node and npm are needed (Debian: nodejs npm)"
  exit 77
fi
mkdir -p "$dest"
if [[ -f "$dest/node_modules/.package-lock.json" ]] && cmp -s "$here/package-lock.json" "$dest/package-lock.json"; then
  echo "npm tools already installed in $dest"
  exit 0
fi
cp "$here/package.json" "$here/package-lock.json" "$dest/"
# --ignore-scripts: these packages need no install scripts, and none should run.
if ! (cd "$dest" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error); then
  rm -f "$dest/package-lock.json"
  echo "SKIP: npm ci failed (is the npm registry reachable?)"
  exit 77
fi
echo "npm tools installed in $dest"
