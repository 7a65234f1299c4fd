#!/usr/bin/env bash
# Builds the thin AOT launcher `linattn-launch` and the C API's shared
# library `liblinattn_cuda_rt.so` (for ctypes, python/linattn/aot.py) with
# one compiler command each and no MLIR/LLVM/CMake: for GPU machines that
# have only a C++17 compiler (the CUDA driver is loaded at run time, so not
# even the CUDA toolkit is needed). The two commands run in parallel.
#   scripts/build-launch.sh [OUTDIR]     (default: build-launch)
# Environment: CXX (default g++, else c++), CXXFLAGS (default -O2).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-build-launch}
mkdir -p "$OUT"
CXX=${CXX:-$(command -v g++ || command -v c++)}
# The runtime proper: what LinAttnCudaRuntime and the libraries it links
# (LinAttnTuningCache, LinAttnReference) are built from.
RUNTIME=("$ROOT/lib/Runtime/CudaRuntime.cpp"
  "$ROOT/lib/Runtime/CudaManifest.cpp"
  "$ROOT/lib/Runtime/Json.cpp"
  "$ROOT/lib/Runtime/TuningCache.cpp"
  "$ROOT/lib/Runtime/GPUTuner.cpp"
  "$ROOT"/lib/Reference/*.cpp)
set -x
"$CXX" ${CXXFLAGS:--O2} -std=c++17 -Wall -I"$ROOT/include" \
  "$ROOT/tools/linattn-launch/linattn-launch.cpp" \
  "$ROOT/lib/Runtime/Npy.cpp" \
  "${RUNTIME[@]}" \
  -o "$OUT/linattn-launch" -ldl -lpthread &
launch=$!
# Only the C API is exported (the version script), as in CMake's
# LinAttnCudaRuntimeShared.
"$CXX" ${CXXFLAGS:--O2} -std=c++17 -Wall -I"$ROOT/include" \
  -shared -fPIC -fvisibility=hidden -fvisibility-inlines-hidden \
  "${RUNTIME[@]}" \
  -Wl,--version-script="$ROOT/lib/Runtime/CudaRuntimeExports.map" \
  -Wl,-z,defs -o "$OUT/liblinattn_cuda_rt.so" -ldl -lpthread &
shared=$!
status=0
wait "$launch" || status=1
wait "$shared" || status=1
exit "$status"
