// RUN: linattn-opt %s --convert-linattn-to-gpu='chip=sm_90' -split-input-file | FileCheck %s
// RUN: linattn-opt %s --convert-linattn-to-gpu='chip=sm_90 mma=sync' -split-input-file | FileCheck %s --check-prefix=SYNC
// RUN: not linattn-opt %s --convert-linattn-to-gpu='chip=sm_90 mma=wgmma stages=2' -split-input-file 2>&1 | FileCheck %s --check-prefix=WG

// Vector (GLA) gates on sm_90 get the wgmma kernel (target sm_90a): the
// scores of each warp's 16 rows on mma.sync (the per-key decays make A
// differ per 16-row block), written to shared memory, Q ⊙ exp(b_t) over Q;
// O = Q̃·S + P·V and the state update on wgmma. With 2 stages it still
// fits sm_90's shared memory at key dim 128 (no WG error for @gla).
// CHECK-LABEL: gpu.module @gla [#nvvm.target<O = 3, chip = "sm_90a"
// CHECK: nvvm.mma.sync
// CHECK: nvvm.wgmma.mma_async
// CHECK-SAME: <m = 64, n = 64, k = 16>
// SYNC-LABEL: gpu.module @gla [#nvvm.target<O = 3, chip = "sm_90", features = "+ptx80">]
// SYNC-NOT: wgmma
// SYNC: nvvm.mma.sync
func.func @gla(%q: tensor<1x4x?x128xbf16>, %k: tensor<1x4x?x128xbf16>,
               %v: tensor<1x4x?x128xbf16>, %g: tensor<1x4x?x128xf32>)
    -> tensor<1x4x?x128xbf16> {
  %o, %s = linattn.attention %q, %k, %v gate(%g : tensor<1x4x?x128xf32>)
      {decay = #linattn.decay<vector>}
      : tensor<1x4x?x128xbf16>, tensor<1x4x?x128xbf16>, tensor<1x4x?x128xbf16>
      -> tensor<1x4x?x128xbf16>, tensor<1x4x128x128xf32>
  return %o : tensor<1x4x?x128xbf16>
}

// -----

// At key dim 256 the wgmma kernel would spill (state and score operands
// over 255 registers): auto keeps to mma.sync. With 2 stages its tiles
// also exceed sm_90's shared memory, an error when wgmma is asked for.
// CHECK-LABEL: gpu.module @gla256 [#nvvm.target<O = 3, chip = "sm_90", features = "+ptx80">]
// CHECK-NOT: wgmma
// CHECK: nvvm.mma.sync
// WG-NOT: error
// WG: error: 'linattn.attention' op needs 425992 bytes of shared memory (chunk-size 64, key dim 256, block-v 64, stages 2), over the 232448 bytes sm_90 allows per block; lower stages, block-v, or use mma=sync
// WG-NOT: error
func.func @gla256(%q: tensor<1x4x?x256xbf16>, %k: tensor<1x4x?x256xbf16>,
                  %v: tensor<1x4x?x64xbf16>, %g: tensor<1x4x?x256xf32>)
    -> tensor<1x4x?x64xbf16> {
  %o, %s = linattn.attention %q, %k, %v gate(%g : tensor<1x4x?x256xf32>)
      {decay = #linattn.decay<vector>}
      : tensor<1x4x?x256xbf16>, tensor<1x4x?x256xbf16>, tensor<1x4x?x64xbf16>
      -> tensor<1x4x?x64xbf16>, tensor<1x4x256x64xf32>
  return %o : tensor<1x4x?x64xbf16>
}
