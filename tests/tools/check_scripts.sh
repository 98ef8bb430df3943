#!/usr/bin/env bash
# tools/serve.sh and tools/deps.sh against README.md:
# - the build profile (serve.sh's) holds only what compiling needs;
# - serve.sh builds every binary the README's "Calling the service" commands run.
#   check_scripts.sh SOURCE_DIR
set -euo pipefail
src="${1:?usage: check_scripts.sh SOURCE_DIR}"
cd "$src"
fail=0
build=$(bash tools/deps.sh --list build)
all=$(bash tools/deps.sh --list test)
for p in cmake libtorch-dev libgrpc++-dev prometheus-cpp-dev; do
  grep -qx "$p" <<<"$build" || { echo "FAIL: build profile lacks $p"; fail=1; }
done
for p in prometheus nodejs shellcheck clang-14 yamllint libgtest-dev; do
  grep -qx "$p" <<<"$build" && { echo "FAIL: build profile installs test-only $p"; fail=1; }
  grep -qx "$p" <<<"$all" || { echo "FAIL: test profile lacks $p"; fail=1; }
done
grep -q 'deps.sh build' tools/serve.sh || { echo "FAIL: serve.sh does not use the build profile"; fail=1; }
grep -q 'deps.sh test' tools/test.sh || { echo "FAIL: test.sh does not use the test profile"; fail=1; }
# The binaries README's serving section runs, against serve.sh's targets.
section=$(sed -n '/^## Calling the service/,/^## /p' README.md)
targets=$(sed -n 's/^targets=(\(.*\))$/\1/p' tools/serve.sh)
used=$(grep -o 'build/[a-z]*/lcio-[a-z-]*' <<<"$section" | sed 's|.*/||' | sort -u)
[ -n "$used" ] || { echo "FAIL: no build/*/lcio-* command in README's serving section"; fail=1; }
for b in $used; do
  grep -qw -- "$b" <<<"$targets" || { echo "FAIL: README runs $b, which serve.sh does not build"; fail=1; }
done
((fail == 0)) && echo "check_scripts: OK"
exit "$fail"
