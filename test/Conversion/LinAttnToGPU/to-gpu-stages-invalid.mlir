// RUN: not linattn-opt %s --convert-linattn-to-gpu='chip=sm_80 stages=5' 2>&1 | FileCheck %s --check-prefix=RANGE
// RUN: not linattn-opt %s --convert-linattn-to-gpu='chip=sm_80 stages=-1' 2>&1 | FileCheck %s --check-prefix=NEG
// RUN: not linattn-opt %s --convert-linattn-to-gpu='chip=sm_86 stages=3' 2>&1 | FileCheck %s --check-prefix=SMEM
// RUN: linattn-opt %s --convert-linattn-to-gpu='chip=sm_86 stages=2' | FileCheck %s --check-prefix=FITS

// Stage counts outside [1, 4] and rings that do not fit the chip's shared
// memory are errors. At Dk = 128, C = 64, block-v = 32 a slot is Q and K
// (2 * 64 * 136 bf16) plus raw V (64 * 32 bf16), 38912 bytes; three slots
// plus Vᵀ, Sᵀ and the gates are 130560 bytes, over sm_86's 99 KiB; two fit.
// RANGE: stages must be in [1, 4], got 5
// NEG: stages must be in [1, 4], got -1
// SMEM: needs 130560 bytes of shared memory (chunk-size 64, key dim 128, block-v 32, stages 3), over the 101376 bytes sm_86 allows per block; lower stages, chunk-size or block-v
// FITS: nvvm.cp.async.wait.group 1
func.func @scalar_bf16(%q: tensor<1x8x?x128xbf16>, %k: tensor<1x8x?x128xbf16>,
                       %v: tensor<1x8x?x128xbf16>, %g: tensor<1x8x?xf32>)
    -> tensor<1x8x?x128xbf16> {
  %o, %s = linattn.attention %q, %k, %v gate(%g : tensor<1x8x?xf32>)
      {decay = #linattn.decay<scalar>}
      : tensor<1x8x?x128xbf16>, tensor<1x8x?x128xbf16>, tensor<1x8x?x128xbf16>
      -> tensor<1x8x?x128xbf16>, tensor<1x8x128x128xf32>
  return %o : tensor<1x8x?x128xbf16>
}
