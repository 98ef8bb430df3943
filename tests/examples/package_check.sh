#!/usr/bin/env bash
# The installed C++ client package: `cmake --install --component client` into
# a fresh prefix, then examples/cpp (a multi-turn conversation) built against
# it twice, with find_package(lcio) and with pkg-config, and run against a
# real lcio-server.
# Usage: package_check.sh BUILD_DIR REPO_ROOT
set -euo pipefail
bin=$1 repo=$2
tmp=$(mktemp -d)
# shellcheck source=tests/e2e/serve_lib.sh
source "$repo/tests/e2e/serve_lib.sh"
trap 'lcio_stop_server; rm -rf "$tmp"' EXIT
fail() { echo "package_check: $*" >&2; exit 1; }
prefix=$tmp/prefix

cmake --install "$bin" --component client --prefix "$prefix" >"$tmp/install.log"
for f in include/lcio/client/client.h include/lcio/v1/offloader.grpc.pb.h \
  share/lcio/proto/lcio/v1/offloader.proto lib/cmake/lcio/lcioConfig.cmake \
  lib/pkgconfig/lcio-client.pc; do
  [[ -f "$prefix/$f" ]] || fail "not installed: $f"
done
[[ -z "$(find "$prefix/include" -name '*.h' -path '*torch*')" ]] || fail "LibTorch headers installed"

# find_package(lcio): a consumer project that knows nothing of the source tree.
cp -r "$repo/examples/cpp" "$tmp/consumer"
cmake -S "$tmp/consumer" -B "$tmp/consumer/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" >"$tmp/configure.log" 2>&1 || { cat "$tmp/configure.log"; fail "configure"; }
cmake --build "$tmp/consumer/build" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; fail "build"; }

# pkg-config: the same program with a plain compiler line.
PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --exists lcio-client || fail "pkg-config lcio-client"
# shellcheck disable=SC2046
g++ -std=c++17 -o "$tmp/conversation-pc" "$repo/examples/cpp/conversation.cc" \
  $(PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --cflags --libs lcio-client) \
  >"$tmp/pc.log" 2>&1 || { cat "$tmp/pc.log"; fail "pkg-config build"; }

lcio_start_server "$bin/server/lcio-server" "$tmp/server.log" \
  --report_log="$tmp/reports.log" --report_min_free_mb=0
"$tmp/consumer/build/conversation" "127.0.0.1:$LCIO_PORT" cpp-cmake >"$tmp/run1.txt" ||
  { cat "$tmp/run1.txt"; fail "run (find_package build)"; }
"$tmp/conversation-pc" "127.0.0.1:$LCIO_PORT" cpp-pkgconfig >"$tmp/run2.txt" ||
  { cat "$tmp/run2.txt"; fail "run (pkg-config build)"; }
[[ $(grep -c ", reported$" "$tmp/run1.txt") == 3 && $(grep -c ", reported$" "$tmp/run2.txt") == 3 ]] ||
  { cat "$tmp/run1.txt" "$tmp/run2.txt"; fail "3 reported turns each"; }
echo "package_check: the installed client builds (CMake, pkg-config) and converses"
