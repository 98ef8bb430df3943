#!/usr/bin/env bash
# The test command: install Debian packages (idempotent), configure, build
# with every core, run the whole ctest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh test
build=${LCIO_BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$build" -j "$(nproc)"
ctest --test-dir "$build" --output-on-failure -j "$(nproc)" ${LCIO_CTEST_ARGS:-}
