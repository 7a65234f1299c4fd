#!/usr/bin/env bash
# Sets up, builds and runs the main example: a Lightning-style spec
# (constant per-head decay, identity map) is verified by linattn-opt, then
# evaluated by the fp64 reference in its recurrent, parallel and chunked
# forms, which are checked against each other and timed.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
scripts/setup.sh "$BUILD_DIR"
echo "==> linattn-opt: verify and print examples/lightning.mlir"
"$BUILD_DIR/bin/linattn-opt" examples/lightning.mlir
echo "==> fp64 reference on the same variant (RetNet decay schedule)"
"$BUILD_DIR/bin/linattn-reference" --decay=constant --B=1 --H=8 --T=1000 \
  --dk=64 --dv=64 --chunk=64
