#!/bin/sh
# Writes the generated AOT kernels of every supported GPU forward variant
# (PTX + manifest, docs/gpu-kernel-abi.md) for one chip.
# Usage: emit-kernels.sh OUT_DIR CHIP LINATTN_RUN [extra linattn-run flags]
# With EMULATION=1, each kernel also gets NAME.emu.so, its host build for
# the CUDA driver emulator (docs/gpu-emulator.md).
# With extra flags (e.g. --mma=sync), only the variants those flags allow
# are meant to be emitted: a variant the flags make illegal fails the script.
set -eu
out=$1 chip=$2 run=$3
shift 3
mkdir -p "$out"
emit() {
  name=$1
  shift
  "$run" --emit-aot="$out" --name="$name" --chip="$chip" \
    ${EMULATION:+--emulation} "$@" >/dev/null
}
emit none_bf16_bthd_128    "$@" --decay=none --dtype=bf16 --layout=bthd --dk=128 --dv=128
emit retnet_bf16_bthd_128  "$@" --decay=constant --schedule=retnet --dtype=bf16 --layout=bthd --dk=128 --dv=128
emit scalar_bf16_bthd_128  "$@" --decay=scalar --dtype=bf16 --layout=bthd --dk=128 --dv=128
emit scalar_f16_bhtd_128x64 "$@" --decay=scalar --dtype=f16 --layout=bhtd --dk=128 --dv=64
# GLA at Dk = 128 with two pipeline stages needs sm_90's shared memory at
# the default chunk, and with more stages a smaller one everywhere.
gla128=
case "$*" in
  *--stages=2*) [ "$chip" = sm_90 ] || gla128="--chunk-size=32 --warps=2 --block-v=16" ;;
  *--stages=*) gla128="--chunk-size=32 --warps=2 --block-v=16" ;;
esac
# Exclusive (strictly causal) read: both kernels (mask s < t).
emit exclusive_scalar_bf16_bthd_128 "$@" --exclusive --decay=scalar --dtype=bf16 --layout=bthd --dk=128 --dv=128
if [ "$*" != "--warps=8" ]; then
  # Key dims a two-warpgroup wgmma kernel cannot split.
  emit scalar_bf16_bthd_64   "$@" --decay=scalar --dtype=bf16 --layout=bthd --dk=64 --dv=64
  emit constant_f16_bhtd_64  "$@" --decay=constant --dtype=f16 --layout=bhtd --dk=64 --dv=64
  emit scalar_f16_bhtd_64x32 "$@" --decay=scalar --dtype=f16 --layout=bhtd --dk=64 --dv=32
  emit elu_bf16_bhtd_64x128  "$@" --decay=none --feature-map=elu_plus_one --dtype=bf16 --layout=bhtd --dk=64 --dv=128
  emit relu_scalar_bf16_bthd_32x64 "$@" --decay=scalar --feature-map=relu --dtype=bf16 --layout=bthd --dk=32 --dv=64
  # Per-key (GLA) gates: exact diagonal sub-block; on sm_90 the wgmma kernel
  # (scores on mma.sync, O and the state on wgmma) where it fits.
  emit gla_bf16_bthd_128     "$@" $gla128 --decay=vector --dtype=bf16 --layout=bthd --dk=128 --dv=128
  emit gla_f16_bhtd_64x32    "$@" --decay=vector --dtype=f16 --layout=bhtd --dk=64 --dv=32
  emit gla_exclusive_bf16_bhtd_64 "$@" --exclusive --decay=vector --dtype=bf16 --layout=bhtd --dk=64 --dv=64
  # Non-causal and normalized forms: wgmma on sm_90 at key dims of 64 and
  # 128 (GLA included); with --warps=8 the mma.sync kernel's default chunk
  # of 64 is too small for 8 warps.
  emit noncausal_bf16_bhtd_128 "$@" --non-causal --decay=none --dtype=bf16 --layout=bhtd --dk=128 --dv=128
  emit noncausal_norm_elu_f16_bthd_64 "$@" --non-causal --normalized --feature-map=elu_plus_one --dtype=f16 --layout=bthd --dk=64 --dv=64
  emit norm_elu_bf16_bthd_128 "$@" --normalized --decay=none --feature-map=elu_plus_one --dtype=bf16 --layout=bthd --dk=128 --dv=128
  emit norm_scalar_f16_bhtd_64 "$@" --normalized --decay=scalar --dtype=f16 --layout=bhtd --dk=64 --dv=64
  emit norm_exclusive_retnet_bf16_bthd_64 "$@" --normalized --exclusive --decay=constant --schedule=retnet --dtype=bf16 --layout=bthd --dk=64 --dv=64
  emit norm_gla_elu_bf16_bthd_128 "$@" $gla128 --normalized --decay=vector --feature-map=elu_plus_one --dtype=bf16 --layout=bthd --dk=128 --dv=128
  # The (gated) delta rule (wgmma on sm_90 at key dims of 64 and 128), beta
  # read directly with every stage count.
  for d in delta gated_delta; do
    emit ${d}_bf16_bthd_64  "$@" --decay=$d --dtype=bf16 --layout=bthd --dk=64 --dv=64
    emit ${d}_bf16_bhtd_64  "$@" --decay=$d --dtype=bf16 --layout=bhtd --dk=64 --dv=64
    emit ${d}_bf16_bthd_128 "$@" --decay=$d --dtype=bf16 --layout=bthd --dk=128 --dv=128
    emit ${d}_bf16_bhtd_128 "$@" --decay=$d --dtype=bf16 --layout=bhtd --dk=128 --dv=128
  done
  emit gated_delta_exclusive_f16_bthd_64 "$@" --exclusive --decay=gated_delta --dtype=f16 --layout=bthd --dk=64 --dv=64
  # Width-changing feature maps: a linattn_map prepass kernel writes phi(q)
  # and phi(k), padded to a multiple of 16 features. Based (symmetric Taylor,
  # d = 16: 153 features, padded to 160; full Taylor, d = 8: 73 -> 80),
  # Hedgehog with the normalized form, the joint Hedgehog with a scalar gate
  # (64 features: wgmma on sm_90), FAVOR+ normalized, and hyperbolic random
  # features with GLA gates over the 64 features.
  emit based_bf16_bthd_16x64 "$@" --decay=none --feature-map=taylor2_symmetric --dtype=bf16 --layout=bthd --dk=16 --dv=64
  emit taylor2_f16_bhtd_8x64 "$@" --decay=none --feature-map=taylor2 --dtype=f16 --layout=bhtd --dk=8 --dv=64
  # Normalized Based (padded normalizer rows), with a scalar gate.
  emit based_norm_scalar_bf16_bhtd_16x64 "$@" --normalized --decay=scalar --feature-map=taylor2_symmetric --dtype=bf16 --layout=bhtd --dk=16 --dv=64
  emit hedgehog_norm_bf16_bthd_64 "$@" --normalized --feature-map=hedgehog --features=64 --dtype=bf16 --layout=bthd --dk=64 --dv=64
  emit hedgehog_joint_scalar_bf16_bhtd_32x64 "$@" --decay=scalar --feature-map=hedgehog_joint --dtype=bf16 --layout=bhtd --dk=32 --dv=64
  emit performer_norm_f16_bthd_64 "$@" --normalized --feature-map=performer --features=128 --dtype=f16 --layout=bthd --dk=64 --dv=64
  emit performer_hyp_gla_bf16_bthd_32x64 "$@" --decay=vector --feature-map=performer_hyperbolic --features=32 --dtype=bf16 --layout=bthd --dk=32 --dv=64
fi
