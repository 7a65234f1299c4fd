// RUN: linattn-opt %s --convert-linattn-to-gpu='chip=sm_90' -split-input-file | FileCheck %s
// RUN: linattn-opt %s --convert-linattn-to-gpu='chip=sm_90 mma=sync' -split-input-file | FileCheck %s --check-prefix=SYNC

// The (gated) delta rule on sm_90 gets the wgmma kernel (target sm_90a):
// the new values Ṽ = T X come from the mma.sync kernel's code (K S and
// K Kᵀ on mma.sync over the core-matrix tiles, the blocked fp32 solve, T X
// on mma.sync) written over Vᵀ, then the outputs and the state update run
// on wgmma. Block-v defaults to 32 (the state and the solve's operands
// share the register budget).
// CHECK-LABEL: gpu.module @gated_delta [#nvvm.target<O = 3, chip = "sm_90a"
// CHECK: %[[AM:.*]] = memref.view {{.*}} to memref<64x65xf32, #gpu.address_space<workgroup>>
// CHECK: %[[BETAS:.*]] = memref.view {{.*}} to memref<64xf32, #gpu.address_space<workgroup>>
// CHECK: %[[TB:.*]] = memref.view {{.*}} to memref<64x72xbf16, #gpu.address_space<workgroup>>
// CHECK: scf.for
// CHECK: memref.store {{.*}}, %[[BETAS]]
// K S and K Kᵀ, then A into am:
// CHECK: nvvm.mma.sync
// CHECK: memref.store {{.*}}, %[[AM]]
// The solve writes T to tb; T X on mma.sync:
// CHECK: memref.store {{.*}}, %[[TB]]
// CHECK: nvvm.mma.sync
// Then P = Q Kᵀ and Q S, P V and the state update on wgmma (n = block-v 32):
// CHECK: nvvm.wgmma.mma_async {{.*}} <m = 64, n = 64, k = 16>
// CHECK: nvvm.wgmma.mma_async {{.*}} <m = 64, n = 32, k = 16>
// CHECK: gpu.return
// SYNC-LABEL: gpu.module @gated_delta [#nvvm.target<O = 3, chip = "sm_90", features = "+ptx80">]
// SYNC-NOT: wgmma
// SYNC: gpu.return
func.func @gated_delta(%q: tensor<1x4x?x64xbf16>, %k: tensor<1x4x?x64xbf16>,
                       %v: tensor<1x4x?x64xbf16>, %g: tensor<1x4x?xf32>,
                       %b: tensor<1x4x?xf32>)
    -> tensor<1x4x?x64xbf16> {
  %o, %s = linattn.attention %q, %k, %v gate(%g : tensor<1x4x?xf32>)
      beta(%b : tensor<1x4x?xf32>) {decay = #linattn.decay<gated_delta>}
      : tensor<1x4x?x64xbf16>, tensor<1x4x?x64xbf16>, tensor<1x4x?x64xbf16>
      -> tensor<1x4x?x64xbf16>, tensor<1x4x64x64xf32>
  return %o : tensor<1x4x?x64xbf16>
}
