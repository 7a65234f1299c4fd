#!/bin/sh
# Emits every generated GPU kernel for each chip and assembles it with ptxas
# for the architecture its PTX targets (sm_90a for wgmma kernels); fails if
# any kernel does not assemble or spills registers. Configurations run
# CHECK_PTX_JOBS (default 2) at a time; the report keeps their order.
# Usage: check-ptx.sh OUT_DIR LINATTN_RUN PTXAS
set -eu
out=$1 run=$2 ptxas=$3
here=$(dirname "$0")
jobs=${CHECK_PTX_JOBS:-2}
# chip[:extra linattn-run flags]; sm_90 defaults to wgmma, sm_90:--mma=sync
# keeps the portable mma.sync kernel, --warps=8 makes two warpgroups,
# --stages=2/3 prefetch chunks with cp.async into a ring of buffers.
configs="sm_80 sm_86 sm_89 sm_90 sm_90:--mma=sync sm_90:--warps=8
  sm_80:--stages=2 sm_90:--stages=2 sm_90:--stages=3"

# One configuration: emit its kernels and assemble each; one report line per
# kernel ("ok", "FAIL" or "SPILL") on stdout.
check() {
  config=$1
  chip=${config%%:*}
  extra=
  [ "$config" = "$chip" ] || extra=${config#*:}
  dir="$out/$chip$(echo "$extra" | tr -c 'a-z0-9\n' '_')"
  # shellcheck disable=SC2086
  if ! "$here/emit-kernels.sh" "$dir" "$chip" "$run" $extra; then
    echo "FAIL $chip$extra: emit-kernels.sh failed"
    return
  fi
  for ptx in "$dir"/*.ptx; do
    arch=$(sed -n 's/^\.target \(sm_[0-9a-z]*\).*/\1/p' "$ptx")
    name="$chip$extra $(basename "$ptx" .ptx)"
    if ! info=$("$ptxas" -arch="$arch" -v "$ptx" -o /dev/null 2>&1); then
      echo "FAIL $name: ptxas -arch=$arch failed"; echo "$info"
    elif echo "$info" | grep "spill stores" |
        grep -qv "0 bytes spill stores, 0 bytes spill loads"; then
      # A module may hold two entries (the feature-map prepass): every one
      # must be spill-free.
      echo "SPILL $name"; echo "$info"
    else
      regs=$(echo "$info" | sed -n 's/.*Used \([0-9]*\) registers.*/\1/p' |
        paste -sd/ -)
      echo "ok $name ($arch, $regs registers)"
    fi
  done
}

mkdir -p "$out"
n=0
for config in $configs; do
  n=$((n + 1))
  check "$config" > "$out/report.$n" 2>&1 &
  [ $((n % jobs)) -ne 0 ] || wait
done
wait
i=0
while [ $i -lt $n ]; do
  i=$((i + 1))
  cat "$out/report.$i"
done > "$out/report"
cat "$out/report"
count=$(grep -c '^\(ok\|SPILL\) ' "$out/report" || true)
wgmma=$(grep -l "wgmma.mma_async" "$out"/*/*.ptx 2>/dev/null | wc -l)
echo "$count kernels assembled ($wgmma with wgmma)"
if grep -q '^\(FAIL\|SPILL\) ' "$out/report"; then
  exit 1
fi
