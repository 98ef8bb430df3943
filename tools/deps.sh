#!/usr/bin/env bash
# Installs lcio's build and test dependencies from Debian 12 packages.
# Idempotent: when everything is already installed it touches nothing.
set -euo pipefail
packages=(
  cmake ninja-build g++ pkg-config ccache git
  libabsl-dev nlohmann-json3-dev
  libtorch-dev
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  prometheus-cpp-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  gnuplot-nox openssl curl
  prometheus yamllint shellcheck jq iproute2 nodejs clang-14 libclang-rt-14-dev
  # The Python client (client/python): gRPC runtime, protobuf runtime; stubs come from
  # protoc + grpc_python_plugin (protobuf-compiler-grpc) at build time.
  python3 python3-grpcio python3-protobuf
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "deps: all ${#packages[@]} Debian packages present"
  exit 0
fi
echo "deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
