#!/usr/bin/env bash
# CPU benchmark of fp32 causal linear attention with decay (lightning / gla):
# recurrent and OpenBLAS-chunked baselines, ggml's ggml_gated_linear_attn, and (hook) linattn.
#
#   bash bench/run_cpu.sh [script options] [cpu_bench options]
#
# Script options (consumed here; everything else goes to cpu_bench, see --help):
#   --linattn-build=DIR  linattn build dir: compile bench/linattn_impl.cpp (the linattn hook,
#                        defines registerExtraImpls) into the driver. Same as LINATTN_BUILD_DIR=DIR.
#                        Extra libraries: LINATTN_BENCH_EXTRA_LIBS="lib1;lib2" (TODO: until
#                        linattn exports a CMake package).
#   --no-ggml            skip ggml (no download, no ggml_gla impl). Same as NO_GGML=1.
#   --build-only         build, do not run.
# Environment: BENCH_WORK (default bench/.work), JOBS (default 2), GGML_SRC (an existing ggml
# source tree; skips the download), LLAMA_CPP_PYTHON_VERSION (default 0.3.36; the PyPI sdist
# of llama-cpp-python vendors llama.cpp/ggml), CXX/CC.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WORK="${BENCH_WORK:-$HERE/.work}"
JOBS="${JOBS:-2}"
LINATTN_BUILD_DIR="${LINATTN_BUILD_DIR:-}"
NO_GGML="${NO_GGML:-0}"
BUILD_ONLY=0
LCP_VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"

PASS=()
for a in "$@"; do
  case "$a" in
    --linattn-build=*) LINATTN_BUILD_DIR="${a#*=}" ;;
    --no-ggml) NO_GGML=1 ;;
    --build-only) BUILD_ONLY=1 ;;
    *) PASS+=("$a") ;;
  esac
done
# By default benchmark the linattn JIT from the repository's build/ when it
# has been built (bash scripts/setup.sh); --linattn-build=DIR overrides.
if [ -z "$LINATTN_BUILD_DIR" ] && [ -f "$HERE/../build/lib/libLinAttnRuntime.a" ]; then
  LINATTN_BUILD_DIR="$(cd "$HERE/../build" && pwd)"
fi

log() { echo "[run_cpu] $*" >&2; }

# ---- 1. system packages --------------------------------------------------------------------
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v "${CXX:-g++}" >/dev/null 2>&1 || missing+=(g++)
# libopenblas-dev (-> libopenblas-pthread-dev) provides
# /usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h and libopenblas.so.
dpkg -s libopenblas-dev >/dev/null 2>&1 || missing+=(libopenblas-dev)
if [ "$NO_GGML" != 1 ] && [ -z "${GGML_SRC:-}" ]; then
  command -v pip3 >/dev/null 2>&1 || command -v pip >/dev/null 2>&1 || missing+=(python3-pip)
fi
if [ ${#missing[@]} -gt 0 ]; then
  log "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# ---- 2. ggml source (from PyPI's llama-cpp-python sdist; never vendored into the repo) -----
GGML_DIR=""
if [ "$NO_GGML" != 1 ]; then
  if [ -n "${GGML_SRC:-}" ]; then
    GGML_DIR="$GGML_SRC"
  else
    SRC="$WORK/src"
    GGML_DIR="$SRC/llama_cpp_python-$LCP_VERSION/vendor/llama.cpp/ggml"
    if [ ! -f "$GGML_DIR/include/ggml.h" ]; then
      mkdir -p "$SRC"
      TARBALL="$SRC/llama_cpp_python-$LCP_VERSION.tar.gz"
      if [ ! -f "$TARBALL" ]; then
        log "downloading llama-cpp-python==$LCP_VERSION sdist from PyPI (for ggml)"
        PIP=pip3; command -v pip3 >/dev/null 2>&1 || PIP=pip
        $PIP download "llama-cpp-python==$LCP_VERSION" --no-binary :all: --no-deps -d "$SRC" >&2
      fi
      log "extracting ggml from $(basename "$TARBALL")"
      tar xzf "$TARBALL" -C "$SRC" --wildcards "llama_cpp_python-$LCP_VERSION/vendor/llama.cpp/ggml/*"
    fi
    if [ ! -f "$GGML_DIR/include/ggml.h" ]; then
      log "ggml source not found after download; continuing without ggml (use GGML_SRC=...)"
      GGML_DIR=""
    fi
  fi
fi

# ---- 3. build ------------------------------------------------------------------------------
BUILD="$WORK/build"
mkdir -p "$WORK" # --no-ggml skips the download step that creates it
CMAKE_ARGS=(-S "$HERE" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release "-DGGML_SOURCE_DIR=$GGML_DIR"
            "-DLINATTN_BUILD_DIR=$LINATTN_BUILD_DIR")
if [ -n "${LINATTN_BENCH_EXTRA_LIBS:-}" ]; then
  CMAKE_ARGS+=("-DLINATTN_BENCH_EXTRA_LIBS=$LINATTN_BENCH_EXTRA_LIBS")
fi
if [ -n "$LINATTN_BUILD_DIR" ] && [ ! -f "$HERE/linattn_impl.cpp" ]; then
  # TODO(linattn): write bench/linattn_impl.cpp (defines registerExtraImpls; see impls.h).
  log "error: --linattn-build given but bench/linattn_impl.cpp does not exist yet"
  exit 2
fi
log "configuring ($BUILD)"
cmake "${CMAKE_ARGS[@]}" >"$WORK/cmake-configure.log" 2>&1 || { cat "$WORK/cmake-configure.log"; exit 1; }
log "building cpu_bench (-j$JOBS)"
cmake --build "$BUILD" -j "$JOBS" --target cpu_bench >"$WORK/cmake-build.log" 2>&1 || { tail -50 "$WORK/cmake-build.log"; exit 1; }
[ "$BUILD_ONLY" = 1 ] && { log "built $BUILD/cpu_bench"; exit 0; }

# ---- 4. run --------------------------------------------------------------------------------
export OPENBLAS_NUM_THREADS=1  # OpenBLAS single-threaded; the baselines thread over B*H
if grep -qw avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=SkylakeX; fi
log "running: $BUILD/cpu_bench ${PASS[*]:-}"
exec "$BUILD/cpu_bench" "${PASS[@]}"
