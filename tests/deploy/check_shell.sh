#!/usr/bin/env bash
# Runs ShellCheck over the container entrypoints, the deploy and end-to-end checks and examples/.
#   check_shell.sh SOURCE_DIR
set -euo pipefail
src="${1:?usage: check_shell.sh SOURCE_DIR}"
if ! command -v shellcheck >/dev/null; then
  echo "SKIP: shellcheck not found (Debian package: shellcheck)"
  exit 77
fi
cd "$src"
shellcheck --version | head -2
shellcheck -x deploy/docker/*.sh tests/deploy/*.sh tests/e2e/*.sh tests/examples/*.sh tests/tools/*.sh \
  examples/*.sh
echo "check_shell: OK"
