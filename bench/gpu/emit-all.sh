#!/usr/bin/env bash
# Emits every AOT kernel a lent GPU run needs into .gpu-kernels/ (see
# bench/gpu/README.md): the test sets, the benchmark kernels and the tuning
# variant sets. Run here, where linattn-run is built.
#   bench/gpu/emit-all.sh [LINATTN_RUN]
set -euo pipefail
cd "$(dirname "$0")/../.."
RUN=${1:-build/bin/linattn-run}
OUT=.gpu-kernels
EXCLUDE=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$EXCLUDE")"
grep -qx "/$OUT/" "$EXCLUDE" 2>/dev/null || echo "/$OUT/" >> "$EXCLUDE"
rm -rf "$OUT"
test/GPU/emit-kernels.sh "$OUT/test-sm90" sm_90 "$RUN"
test/GPU/emit-kernels.sh "$OUT/test-sm90-sync" sm_90 "$RUN" --mma=sync
test/GPU/emit-kernels.sh "$OUT/test-sm90-wg2" sm_90 "$RUN" --warps=8
test/GPU/emit-kernels.sh "$OUT/test-sm80" sm_80 "$RUN"
test/GPU/emit-kernels.sh "$OUT/test-sm90-stages2" sm_90 "$RUN" --stages=2
test/GPU/emit-kernels.sh "$OUT/test-sm80-stages2" sm_80 "$RUN" --stages=2
for d in 64 128; do
  for decay in none scalar vector; do
    "$RUN" --emit-aot="$OUT/bench" --name="${decay}_d$d" --chip=sm_90 \
      --dtype=bf16 --layout=bthd --decay=$decay --dk=$d --dv=$d >/dev/null
    "$RUN" --emit-aot="$OUT/bench-sync" --name="${decay}_d$d" --chip=sm_90 \
      --mma=sync --dtype=bf16 --layout=bthd --decay=$decay --dk=$d --dv=$d \
      >/dev/null
    "$RUN" --emit-aot="$OUT/bench-stages2" --name="${decay}_d$d" --chip=sm_90 \
      --stages=2 --dtype=bf16 --layout=bthd --decay=$decay --dk=$d --dv=$d \
      >/dev/null
  done
  # Delta rules (mma.sync on every chip) for the extra FLA rows.
  for decay in delta gated_delta; do
    "$RUN" --emit-aot="$OUT/bench" --name="${decay}_d$d" --chip=sm_90 \
      --dtype=bf16 --layout=bthd --decay=$decay --dk=$d --dv=$d >/dev/null
  done
  "$RUN" --emit-aot="$OUT/tune" --aot-variants=tune --name="scalar_d$d" \
    --chip=sm_90 --dtype=bf16 --layout=bthd --decay=scalar --dk=$d --dv=$d \
    >/dev/null
done
# GLA at D = 128: the family decides between the wgmma kernel (one 147 KB
# block per SM) and the mma.sync kernel (two 98 KB blocks).
"$RUN" --emit-aot="$OUT/tune" --aot-variants=tune --name=vector_d128 \
  --chip=sm_90 --dtype=bf16 --layout=bthd --decay=vector --dk=128 --dv=128 \
  >/dev/null
du -sh "$OUT"
