#!/usr/bin/env bash
# Tuned vs default configuration on this CPU (1 thread, fp32), how long
# tuning took, and the time to first result of a cold process (tune +
# compile) vs a second process (tuning cache + kernel cache hit).
#
#   bash bench/tune_cpu.sh                 # shapes 1 and 3 of issue 3
#   DECAYS="lightning gla" (default; either alone to save time) \
#   SHAPES="1,8,4096,128 4,16,4096,128 1,8,16384,64 4,16,16384,128" \
#     BUDGET=30 bash bench/tune_cpu.sh     # all four
#
# Each case gets a fresh LINATTN_CACHE_DIR. Tuned and default kernels are
# timed interleaved in one process (--compare-default), so load from other
# processes affects both alike; the ratio is default/tuned (>= 1: tuned is
# at least as fast).
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${RUN:-build/bin/linattn-run}
BUDGET=${BUDGET:-30}
REPS=${REPS:-7}
SHAPES=${SHAPES:-"1,8,4096,128 1,8,16384,64"}

now() { date +%s.%N; }
printf '| shape B,H,T,D | decay | tuned config | default ms | tuned ms | default/tuned | tuning s | cold first result s | warm first result s | warm: compiled / loaded |\n'
printf '|---|---|---|---|---|---|---|---|---|---|\n'
for shape in $SHAPES; do
  IFS=, read -r B H T D <<<"$shape"
  for decay in ${DECAYS:-lightning gla}; do
    if [ "$decay" = lightning ]; then
      flags=(--decay=constant --schedule=lightning)
    else
      flags=(--decay=vector)
    fi
    flags+=(--dk="$D" --dv="$D" --random="$B,$H,$T" --num-threads=1)
    dir=$(mktemp -d /tmp/linattn-tune-bench-XXXXXX)
    # Cold: empty caches, tune-if-missing tunes, compiles, runs once.
    t0=$(now)
    LINATTN_CACHE_DIR=$dir "$RUN" "${flags[@]}" --tune-mode=tune-if-missing \
      --tune-budget="$BUDGET" --quiet >"$dir/cold.txt"
    t1=$(now)
    # Warm: a second process with the same spec and shape.
    LINATTN_CACHE_DIR=$dir "$RUN" "${flags[@]}" --tune-mode=tune-if-missing \
      --quiet >"$dir/warm.txt"
    t2=$(now)
    # Tuned vs default, interleaved.
    LINATTN_CACHE_DIR=$dir "$RUN" "${flags[@]}" --tune-mode=use-only \
      --bench --compare-default --reps="$REPS" --warmup=1 >"$dir/compare.txt"
    tuneS=$(sed -n 's/.*tuned in \([0-9.]*\) s.*/\1/p' "$dir/cold.txt")
    warmC=$(sed -n 's/kernel cache: \([0-9]*\) compiled, \([0-9]*\) loaded.*/\1 \/ \2/p' "$dir/warm.txt")
    line=$(grep '^compare:' "$dir/compare.txt")
    cfg=$(sed -n 's/.*tuned (\([^)]*\)).*/\1/p' <<<"$line")
    tms=$(sed -n 's/.*tuned ([^)]*) median \([0-9.]*\) ms.*/\1/p' <<<"$line")
    dms=$(sed -n 's/.*default ([^)]*) median \([0-9.]*\) ms.*/\1/p' <<<"$line")
    ratio=$(sed -n 's/.*default\/tuned \([0-9.]*\).*/\1/p' <<<"$line")
    printf '| %s | %s | %s | %s | %s | %s | %s | %.2f | %.2f | %s |\n' \
      "$shape" "$decay" "$cfg" "$dms" "$tms" "$ratio" "$tuneS" \
      "$(echo "$t1 - $t0" | bc)" "$(echo "$t2 - $t1" | bc)" "$warmC"
    rm -rf "$dir"
  done
done
