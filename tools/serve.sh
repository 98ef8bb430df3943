#!/usr/bin/env bash
# The serve command: install Debian packages (idempotent), build lcio-server
# and serve the embedded default policy (gRPC on :50051, metrics on :9464).
# Extra arguments go to lcio-server, e.g. --listen=127.0.0.1:50051.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh
build=${LCIO_BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$build" -j "$(nproc)" --target lcio-server
exec "$build/server/lcio-server" --policy=policy/default_policy.pt "$@"
