#!/usr/bin/env bash
# Stand-in for linattn-launch that lets the harness's own logic be tested on
# machines without a GPU: passes every case except T=63 ones (check failure)
# (check failure) and "T=500 no-s0" (an error exit).
case "$*" in
  *--random=2,2,63*) echo "check: output ratio 0.5, final state ratio 0.25 (tolerance 1e-05 for f32) -> FAIL"; exit 2 ;;
  *--random=1,2,500\ --no-initial-state*) echo "linattn-launch: error: something broke" >&2; exit 1 ;;
  *) echo "check: output ratio 1e-07, final state ratio 2e-07 (tolerance 1e-05 for f32) -> PASS"; exit 0 ;;
esac
