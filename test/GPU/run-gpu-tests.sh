#!/usr/bin/env bash
# Runs every AOT kernel (KERNEL_DIR/*.json + its PTX) on the GPU over several
# shapes with `linattn-launch --check` against the fp64 reference, and prints
# a pass/fail table.
#   test/GPU/run-gpu-tests.sh KERNEL_DIR [LINATTN_LAUNCH]
# LINATTN_LAUNCH defaults to linattn-launch next to this repo's build
# (build/bin) or on PATH. Exit status: 0 all passed, 1 a case failed or
# errored, 77 no GPU/driver (ctest SKIP_RETURN_CODE). Set GPU_TESTS_QUICK=1
# to skip the T = 4096 cases. A kernel's NAME.emu.so, when present, is handed
# to the driver emulator as LINATTN_EMU_KERNELS (docs/gpu-emulator.md: point
# LINATTN_LIBCUDA at liblinattn_cuda_emu.so to run the kernels on the CPU).
set -uo pipefail
DIR=${1:?usage: run-gpu-tests.sh KERNEL_DIR [linattn-launch]}
LAUNCH=${2:-}
if [ -z "$LAUNCH" ]; then
  ROOT=$(cd "$(dirname "$0")/../.." && pwd)
  for c in "$ROOT/build/bin/linattn-launch" "$ROOT/build-launch/linattn-launch" \
           "$(command -v linattn-launch || true)"; do
    [ -n "$c" ] && [ -x "$c" ] && LAUNCH=$c && break
  done
fi
[ -x "$LAUNCH" ] || { echo "run-gpu-tests: no linattn-launch (give its path)"; exit 1; }
shopt -s nullglob
manifests=("$DIR"/*.json)
[ ${#manifests[@]} -gt 0 ] || { echo "run-gpu-tests: no *.json in $DIR"; exit 1; }

# Cases: "label|args". B/H small; T covers 1 token, partial chunks, several
# chunks and a long sequence; GQA; initial state on/off; packed sequences
# (cu_seqlens with an empty sequence and lengths that straddle chunks).
CASES=(
  "T=1|--random=2,2,1"
  "T=63|--random=2,2,63"
  "T=63 no-s0|--random=2,2,63 --no-initial-state"
  "T=130|--random=2,3,130"
  "T=130 gqa|--random=2,4,2,1,130"
  "T=500|--random=1,2,500"
  "T=500 no-s0|--random=1,2,500 --no-initial-state"
  "varlen|--random=1,2,500 --offsets 0,1,64,64,200,500"
  "varlen no-s0|--random=1,2,130 --offsets 0,63,130 --no-initial-state"
)
[ "${GPU_TESTS_QUICK:-0}" = 1 ] || CASES+=("T=4096|--random=1,2,4096")

pass=0; fail=0; rows=()
for m in "${manifests[@]}"; do
  name=$(basename "$m" .json)
  for c in "${CASES[@]}"; do
    label=${c%%|*}; args=${c#*|}
    # shellcheck disable=SC2086
    emu="$DIR/$name.emu.so"
    [ -f "$emu" ] || emu=
    out=$(LINATTN_EMU_KERNELS=$emu "$LAUNCH" "$m" $args --check 2>&1); rc=$?
    if [ $rc -eq 77 ]; then
      echo "run-gpu-tests: skipped (no GPU): $(echo "$out" | tail -1)"
      exit 77
    fi
    # Normalized kernels also report the final normalizer (z).
    ratios=$(echo "$out" | sed -n \
      -e 's/^check: output ratio \([^,]*\), final state ratio \([^ ,]*\), final normalizer ratio \([^ ]*\).*/o=\1 state=\2 z=\3/p' -e t \
      -e 's/^check: output ratio \([^,]*\), final state ratio \([^ ,]*\).*/o=\1 state=\2/p')
    case $rc in
      0) status=PASS; pass=$((pass + 1)) ;;
      2) status=FAIL; fail=$((fail + 1)) ;;
      *) status=ERROR; fail=$((fail + 1))
         ratios=$(echo "$out" | grep -m1 error: | cut -c1-100) ;;
    esac
    rows+=("$(printf '%-32s %-14s %-6s %s' "$name" "$label" "$status" "$ratios")")
  done
done
printf '%-32s %-14s %-6s %s\n' kernel case result "ratios (or error)"
printf '%s\n' "${rows[@]}"
echo "run-gpu-tests: $pass passed, $fail failed"
[ $fail -eq 0 ]
