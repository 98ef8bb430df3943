#!/usr/bin/env bash
# Installs lcio's dependencies from Debian 12 packages.
#   deps.sh [build|test]   (default: test)
#   deps.sh --list [build|test]   prints the profile's packages, installs nothing
# build: what compiling every binary needs (tools/serve.sh); test: that plus
# what the test suite and the deploy checks run (tools/test.sh).
# Idempotent: when everything is already installed it touches nothing.
set -euo pipefail
list=0
if [ "${1:-}" = "--list" ]; then
  list=1
  shift
fi
profile=${1:-test}
build_packages=(
  cmake ninja-build g++ pkg-config ccache git
  libabsl-dev nlohmann-json3-dev
  libtorch-dev
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  prometheus-cpp-dev
  libtcmalloc-minimal4
)
test_packages=(
  libgtest-dev libgmock-dev libbenchmark-dev
  gnuplot-nox openssl curl
  prometheus yamllint shellcheck jq iproute2 nodejs clang-14 libclang-rt-14-dev
  # The Python client (client/python): gRPC runtime, protobuf runtime; stubs come from
  # protoc + grpc_python_plugin (protobuf-compiler-grpc) at build time.
  python3 python3-grpcio python3-protobuf
)
case "$profile" in
  build) packages=("${build_packages[@]}") ;;
  test) packages=("${build_packages[@]}" "${test_packages[@]}") ;;
  *)
    echo "deps: profile = \"$profile\": must be build or test" >&2
    exit 2
    ;;
esac
if ((list)); then
  printf '%s\n' "${packages[@]}"
  exit 0
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "deps: all ${#packages[@]} Debian packages of the $profile profile present"
  exit 0
fi
echo "deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
