#!/bin/sh
# CMake compiler/linker launcher for the fuzz target only: drops the
# project's compiler (argument 1) and runs clang++ with the same arguments,
# so that this one target gets libFuzzer's coverage instrumentation while the
# libraries it links stay built by the project's compiler (same libstdc++ ABI).
shift
exec "$LCIO_FUZZ_CLANGXX" "$@"
