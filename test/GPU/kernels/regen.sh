#!/usr/bin/env bash
# Regenerates naive.ptx from naive.cu (needs nvcc; no GPU).
set -euo pipefail
cd "$(dirname "$0")"
NVCC=${NVCC:-/usr/local/cuda/bin/nvcc}
"$NVCC" -ptx -arch=compute_80 -O3 naive.cu -o naive.ptx
# PTX ISA 7.0 (CUDA 11.0) covers everything this code uses and sm_80; the
# lower version lets older drivers JIT it.
sed -i 's/^\.version .*/.version 7.0/' naive.ptx
