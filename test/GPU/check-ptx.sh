#!/bin/sh
# Emits every generated GPU kernel for each chip and assembles it with ptxas
# for the architecture its PTX targets (sm_90a for wgmma kernels); fails if
# any kernel does not assemble or spills registers.
# Usage: check-ptx.sh OUT_DIR LINATTN_RUN PTXAS
set -eu
out=$1 run=$2 ptxas=$3
here=$(dirname "$0")
status=0 count=0 wgmma=0
# chip[:extra linattn-run flags]; sm_90 defaults to wgmma, sm_90:--mma=sync
# keeps the portable mma.sync kernel, --warps=8 makes two warpgroups,
# --stages=2/3 prefetch chunks with cp.async into a ring of buffers.
for config in sm_80 sm_86 sm_89 sm_90 sm_90:--mma=sync sm_90:--warps=8 \
  sm_80:--stages=2 sm_90:--stages=2 sm_90:--stages=3; do
  chip=${config%%:*}
  extra=
  [ "$config" = "$chip" ] || extra=${config#*:}
  dir="$out/$chip$(echo "$extra" | tr -c 'a-z0-9\n' '_')"
  # shellcheck disable=SC2086
  "$here/emit-kernels.sh" "$dir" "$chip" "$run" $extra
  for ptx in "$dir"/*.ptx; do
    count=$((count + 1))
    arch=$(sed -n 's/^\.target \(sm_[0-9a-z]*\).*/\1/p' "$ptx")
    name="$chip$extra $(basename "$ptx" .ptx)"
    if grep -q "wgmma.mma_async" "$ptx"; then wgmma=$((wgmma + 1)); fi
    if ! info=$("$ptxas" -arch="$arch" -v "$ptx" -o /dev/null 2>&1); then
      echo "FAIL $name: ptxas -arch=$arch failed"; echo "$info"
      status=1
    elif ! echo "$info" | grep -q "0 bytes spill stores, 0 bytes spill loads"; then
      echo "SPILL $name"; echo "$info"
      status=1
    else
      regs=$(echo "$info" | sed -n 's/.*Used \([0-9]*\) registers.*/\1/p')
      echo "ok $name ($arch, $regs registers)"
    fi
  done
done
echo "$count kernels assembled ($wgmma with wgmma)"
exit $status
