#!/usr/bin/env bash
# Builds the thin AOT launcher `linattn-launch` with one compiler command and
# no MLIR/LLVM/CMake: for GPU machines that have only a C++17 compiler (the
# CUDA driver is loaded at run time, so not even the CUDA toolkit is needed).
#   scripts/build-launch.sh [OUTDIR]     (default: build-launch)
# Environment: CXX (default g++, else c++), CXXFLAGS (default -O2).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-build-launch}
mkdir -p "$OUT"
CXX=${CXX:-$(command -v g++ || command -v c++)}
set -x
"$CXX" ${CXXFLAGS:--O2} -std=c++17 -Wall -I"$ROOT/include" \
  "$ROOT/tools/linattn-launch/linattn-launch.cpp" \
  "$ROOT/lib/Runtime/CudaRuntime.cpp" \
  "$ROOT/lib/Runtime/CudaManifest.cpp" \
  "$ROOT/lib/Runtime/Json.cpp" \
  "$ROOT/lib/Runtime/TuningCache.cpp" \
  "$ROOT/lib/Runtime/GPUTuner.cpp" \
  "$ROOT/lib/Runtime/Npy.cpp" \
  "$ROOT"/lib/Reference/*.cpp \
  -o "$OUT/linattn-launch" -ldl -lpthread
