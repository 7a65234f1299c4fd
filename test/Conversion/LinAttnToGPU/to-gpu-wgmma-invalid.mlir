// RUN: not linattn-opt %s --convert-linattn-to-gpu='chip=sm_80 mma=wgmma' 2>&1 | FileCheck %s --check-prefix=ARCH
// RUN: not linattn-opt %s --convert-linattn-to-gpu='chip=sm_90 mma=wgmma warps=2' 2>&1 | FileCheck %s --check-prefix=WARPS
// RUN: not linattn-opt %s --convert-linattn-to-gpu='chip=sm_90 mma=wgmma chunk-size=128' 2>&1 | FileCheck %s --check-prefix=CHUNK
// RUN: not linattn-opt %s --convert-linattn-to-gpu='chip=sm_90 mma=tcgen05' 2>&1 | FileCheck %s --check-prefix=KIND
// RUN: not linattn-opt %s --convert-linattn-to-gpu='chip=sm_90 block-v=256' 2>&1 | FileCheck %s --check-prefix=REGS
// RUN: not linattn-opt %s --convert-linattn-to-gpu='chip=sm_90 block-v=20' 2>&1 | FileCheck %s --check-prefix=BV

// Tile combinations the warpgroup kernel cannot run are errors that say
// what is needed.
// ARCH: mma=wgmma needs sm_90 or sm_90a, not sm_80
// WARPS: mma=wgmma needs warps a multiple of 4, chunk-size 64 per warpgroup and a key dim that is a multiple of 64 per warpgroup (warps 2, chunk-size 64, key dim 128)
// CHUNK: (warps 4, chunk-size 128, key dim 128)
// KIND: mma must be auto, sync or wgmma, got 'tcgen05'
// REGS: block-v 256 needs 416 accumulator registers per thread (at most 192); lower block-v
// BV: block-v 20 must be a multiple of 8, at most 256, and divide the value dim 256
func.func @scalar_bf16(%q: tensor<1x8x?x128xbf16>, %k: tensor<1x8x?x128xbf16>,
                       %v: tensor<1x8x?x256xbf16>, %g: tensor<1x8x?xf32>)
    -> tensor<1x8x?x256xbf16> {
  %o, %s = linattn.attention %q, %k, %v gate(%g : tensor<1x8x?xf32>)
      {decay = #linattn.decay<scalar>}
      : tensor<1x8x?x128xbf16>, tensor<1x8x?x128xbf16>, tensor<1x8x?x256xbf16>
      -> tensor<1x8x?x256xbf16>, tensor<1x8x128x256xf32>
  return %o : tensor<1x8x?x256xbf16>
}
