// RUN: linattn-opt %s --convert-linattn-to-gpu='chip=sm_90' -split-input-file | FileCheck %s
// RUN: linattn-opt %s --convert-linattn-to-gpu='chip=sm_90 mma=sync' -split-input-file | FileCheck %s --check-prefix=SYNC
// RUN: not linattn-opt %s --convert-linattn-to-gpu='chip=sm_90 mma=wgmma' -split-input-file 2>&1 | FileCheck %s --check-prefix=WG

// Vector (GLA) gates on sm_90 get the wgmma kernel (target sm_90a): the
// scores of each warp's 16 rows on mma.sync (the per-key decays make A
// differ per 16-row block), written to shared memory with Q ⊙ exp(b_t);
// O = Q̃·S + P·V and the state update on wgmma.
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

// At key dim 256 the wgmma kernel's tiles (Q, K, Q̃, K̃, decayed Kᵀ and the
// f32 gates) exceed sm_90's shared memory: auto keeps to mma.sync, and
// asking for wgmma is an error.
// CHECK-LABEL: gpu.module @gla256 [#nvvm.target<O = 3, chip = "sm_90", features = "+ptx80">]
// CHECK-NOT: wgmma
// CHECK: nvvm.mma.sync
// WG: needs 278536 bytes of shared memory (chunk-size 64, key dim 256, block-v 64, stages 1), over the 232448 bytes sm_90 allows per block; lower block-v, or use mma=sync
func.func @gla256(%q: tensor<1x4x?x256xbf16>, %k: tensor<1x4x?x256xbf16>,
                  %v: tensor<1x4x?x64xbf16>, %g: tensor<1x4x?x256xf32>)
    -> tensor<1x4x?x64xbf16> {
  %o, %s = linattn.attention %q, %k, %v gate(%g : tensor<1x4x?x256xf32>)
      {decay = #linattn.decay<vector>}
      : tensor<1x4x?x256xbf16>, tensor<1x4x?x256xbf16>, tensor<1x4x?x64xbf16>
      -> tensor<1x4x?x64xbf16>, tensor<1x4x256x64xf32>
  return %o : tensor<1x4x?x64xbf16>
}
