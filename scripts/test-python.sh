#!/usr/bin/env bash
# Builds and installs the Python package (pip install ./python, which
# compiles the extension and the C++ libraries it links with
# scikit-build-core) into a virtualenv and runs its pytest suite.
#   Usage: scripts/test-python.sh [build-dir]   (default: build)
# The virtualenv is .venv (LINATTN_VENV overrides it) and is reused, as is
# the extension's CMake build in <build-dir>-python, so reruns are
# incremental. Exits non-zero if pytest fails or collects no test.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
VENV=${LINATTN_VENV:-.venv}
PY_BUILD_DIR="$(pwd)/${BUILD_DIR}-python"

if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating the virtualenv $VENV"
  python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
echo "==> installing the build and test requirements into $VENV"
"$PY" -m pip install -q --disable-pip-version-check \
  "nanobind>=2.0" "scikit-build-core>=0.10" "numpy>=1.22" pytest hypothesis \
  ml_dtypes
echo "==> pip install ./python (C++ build in $PY_BUILD_DIR; a few minutes" \
  "the first time)"
start=$(date +%s)
# No build isolation: the build requirements are already in the venv, and a
# fixed environment keeps the CMake build directory reusable.
# Two compile jobs, as everywhere in this repository (CI has 2 cores).
CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2} \
  "$PY" -m pip install -q --disable-pip-version-check --no-build-isolation \
  --config-settings=build-dir="$PY_BUILD_DIR" ./python
echo "==> installed in $(( $(date +%s) - start )) s"

# linattn.aot's tests (test/python/test_aot.py) load the CUDA runtime's
# shared library from the main CMake build.
if [ -f "$BUILD_DIR/build.ninja" ]; then
  ninja -C "$BUILD_DIR" -j2 LinAttnCudaRuntimeShared > /dev/null
  LINATTN_CUDA_RT="$(cd "$BUILD_DIR" && pwd)/lib/liblinattn_cuda_rt.so"
  export LINATTN_CUDA_RT
fi
echo "==> running the Python tests (test/python)"
rc=0
"$PY" -m pytest -q -p no:cacheprovider test/python || rc=$?
if [ "$rc" -eq 5 ]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
exit "$rc"
