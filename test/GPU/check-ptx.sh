#!/bin/sh
# Emits every generated GPU kernel for each chip and assembles it with ptxas;
# fails if any kernel does not assemble or spills registers.
# Usage: check-ptx.sh OUT_DIR LINATTN_RUN PTXAS
set -eu
out=$1 run=$2 ptxas=$3
here=$(dirname "$0")
status=0 count=0
for chip in sm_80 sm_86 sm_89 sm_90; do
  "$here/emit-kernels.sh" "$out/$chip" "$chip" "$run"
  for ptx in "$out/$chip"/*.ptx; do
    count=$((count + 1))
    if ! info=$("$ptxas" -arch="$chip" -v "$ptx" -o /dev/null 2>&1); then
      echo "FAIL $chip $(basename "$ptx"): ptxas failed"; echo "$info"
      status=1
    elif ! echo "$info" | grep -q "0 bytes spill stores, 0 bytes spill loads"; then
      echo "SPILL $chip $(basename "$ptx")"; echo "$info"
      status=1
    else
      regs=$(echo "$info" | sed -n 's/.*Used \([0-9]*\) registers.*/\1/p')
      echo "ok $chip $(basename "$ptx" .ptx) ($regs registers)"
    fi
  done
done
echo "$count kernels assembled"
exit $status
