#!/usr/bin/env bash
# The serve command: install the build packages (idempotent), build the
# server and the programs the README uses next (lcio-client, lcio-loadgen,
# lcio-report-export), then serve the embedded default policy (gRPC on
# :50051, metrics on :9464). Extra arguments go to lcio-server, e.g.
# --listen=127.0.0.1:50051. Build output goes to $build/serve-build.log and
# is shown only when the build fails; LCIO_VERBOSE=1 shows it always.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh build
build=${LCIO_BUILD_DIR:-build}
targets=(lcio-server lcio-client lcio-loadgen lcio-report-export)
mkdir -p "$build"
log="$build/serve-build.log"
if [ "${LCIO_VERBOSE:-0}" = 1 ]; then log=/dev/stdout; fi
echo "serve: building ${targets[*]} in $build (log: $log)"
if ! {
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
    cmake --build "$build" -j "$(nproc)" --target "${targets[@]}"
} >"$log" 2>&1; then
  [ "$log" = /dev/stdout ] || tail -n 40 "$log" >&2
  echo "serve: build failed (full log: $log)" >&2
  exit 1
fi
echo "serve: built; client: $build/client/lcio-client, load: $build/client/lcio-loadgen"
exec "$build/server/lcio-server" --policy=policy/default_policy.pt "$@"
