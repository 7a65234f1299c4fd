#!/usr/bin/env bash
# Sets up, builds and runs the main example: two specs are compiled for this
# CPU by the linattn JIT, run on random inputs, checked against the fp64
# reference (tolerances of MATH.md 9.7) and timed:
#   examples/lightning.mlir  Lightning/RetNet: constant per-head decay, bf16
#   examples/gla.mlir        GLA: per-key gates, fp32, FLA's bthd layout
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
scripts/setup.sh "$BUILD_DIR"
for spec in examples/lightning.mlir examples/gla.mlir; do
  echo "==> $spec: compile for this CPU, run on B=1 H=8 T=4096, check, time"
  "$BUILD_DIR/bin/linattn-run" "$spec" --random=1,8,4096 --check --bench \
    --reps=5
done
