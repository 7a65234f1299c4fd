#!/usr/bin/env bash
# The whole lent-GPU session in one command (bench/gpu/README.md): build the
# launcher and the runtime library, run the GPU tests on every emitted set
# (with linattn-launch, then from PyTorch), benchmark against FLA, tune.
# Logs go to $OUT (the device tool's output folder) or ./gpu-logs.
set -uo pipefail
cd "$(dirname "$0")/../.."
LOGS=${OUT:-gpu-logs}
mkdir -p "$LOGS"
K=.gpu-kernels
nvidia-smi > "$LOGS/nvidia-smi.txt" 2>&1
bash scripts/build-launch.sh build-launch > "$LOGS/build.txt" 2>&1 ||
  { cat "$LOGS/build.txt"; exit 1; }
L=build-launch/linattn-launch
status=0
for set in test-sm90 test-sm90-sync test-sm90-wg2 test-sm80 \
  test-sm90-stages2 test-sm80-stages2; do
  echo "== $set"
  GPU_TESTS_QUICK=${GPU_TESTS_QUICK:-0} test/GPU/run-gpu-tests.sh "$K/$set" "$L" \
    > "$LOGS/$set.txt" 2>&1 || status=1
  tail -3 "$LOGS/$set.txt"
done
# The same kernels from PyTorch: CUDA tensors through linattn.aot (ctypes,
# liblinattn_cuda_rt.so) against linattn.reference.
echo "== linattn.aot on torch tensors"
PYTHONPATH=python LINATTN_CUDA_RT=build-launch/liblinattn_cuda_rt.so \
  python3 bench/gpu/aot_torch_check.py test/GPU/kernels "$K/test-sm90" \
  > "$LOGS/aot-torch.txt" 2>&1 || status=1
tail -3 "$LOGS/aot-torch.txt"
if [ -d bench/gpu/wheels ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile \
    --target /tmp/site bench/gpu/wheels/*.whl && export PYTHONPATH=/tmp/site
fi
for set in bench bench-sync bench-stages2; do
  echo "== FLA vs $set"
  PYTHONUNBUFFERED=1 python3 bench/gpu/bench_fla.py --kernels "$K/$set" \
    --launch "$L" 2>&1 | tee "$LOGS/fla-$set.txt" | tail -12
done
for idx in "$K"/tune/*.variants.json; do
  echo "== tune $(basename "$idx")"
  LINATTN_CACHE_DIR=/tmp/linattn-cache "$L" "$idx" --random=4,16,4096 --tune \
    > "$LOGS/tune-$(basename "$idx" .variants.json).txt" 2>&1 || status=1
  LINATTN_CACHE_DIR=/tmp/linattn-cache "$L" "$idx" --random=4,16,4096 --bench \
    >> "$LOGS/tune-$(basename "$idx" .variants.json).txt" 2>&1 || status=1
  tail -4 "$LOGS/tune-$(basename "$idx" .variants.json).txt"
done
exit $status
