// RUN: linattn-opt %s --convert-linattn-to-gpu='chip=sm_90' -split-input-file | FileCheck %s
// RUN: linattn-opt %s --convert-linattn-to-gpu='chip=sm_90 warps=8' -split-input-file | FileCheck %s --check-prefix=WG2
// RUN: linattn-opt %s --convert-linattn-to-gpu='chip=sm_90 mma=sync' -split-input-file | FileCheck %s --check-prefix=SYNC

// On sm_90 a key dim that is a multiple of 64 gets the warpgroup kernel:
// target sm_90a; staging fenced for the async proxy; P = Q·Kᵀ (N = C = 64)
// and Q·S (N = block-v = 64) for Dk / 16 = 8 k-steps, the first of each
// without accumulation; one commit and wait; then P·V and the two 64-row
// state tiles (C / 16 = 4 k-steps each), accumulating.
// CHECK-LABEL: gpu.module @scalar_bf16 [#nvvm.target<O = 3, chip = "sm_90a", features = "+ptx80">]
// CHECK: known_block_size = array<i32: 128, 1, 1>
// CHECK: memref.extract_aligned_pointer_as_index
// CHECK: scf.for
// CHECK: nvvm.fence.proxy {kind = #nvvm.proxy_kind<async.shared>, space = #nvvm.shared_space<cta>}
// CHECK: gpu.barrier
// CHECK: nvvm.wgmma.fence.aligned
// CHECK: nvvm.wgmma.mma_async {{.*}}, <m = 64, n = 64, k = 16>, D[<f32>, <zero>], A[<bf16>, <one>, <row>], B[<bf16>, <one>, <col>]
// CHECK-COUNT-15: nvvm.wgmma.mma_async
// CHECK: nvvm.wgmma.commit.group.sync.aligned
// CHECK: nvvm.wgmma.wait.group.sync.aligned 0
// CHECK: gpu.barrier
// CHECK: nvvm.wgmma.fence.aligned
// CHECK: nvvm.wgmma.mma_async {{.*}}, D[<f32>, <one>]
// CHECK-COUNT-11: nvvm.wgmma.mma_async {{.*}}, D[<f32>, <one>]
// CHECK-NOT: nvvm.wgmma.mma_async
// CHECK: nvvm.wgmma.commit.group.sync.aligned
// CHECK: nvvm.wgmma.wait.group.sync.aligned 0
// CHECK-NOT: nvvm.mma.sync
// CHECK: gpu.return

// Two warpgroups: C = 128 (P has N = 128), a switch on the warpgroup index
// picks constant descriptors, one state tile each.
// WG2-LABEL: gpu.module @scalar_bf16
// WG2: known_block_size = array<i32: 256, 1, 1>
// WG2: scf.index_switch
// WG2: nvvm.wgmma.mma_async {{.*}}<m = 64, n = 128, k = 16>

// SYNC: gpu.module @scalar_bf16 [#nvvm.target<O = 3, chip = "sm_90", features = "+ptx80">]
// SYNC-NOT: wgmma
// SYNC: nvvm.mma.sync
func.func @scalar_bf16(%q: tensor<2x8x?x128xbf16>, %k: tensor<2x8x?x128xbf16>,
                       %v: tensor<2x8x?x128xbf16>, %g: tensor<2x8x?xf32>)
    -> tensor<2x8x?x128xbf16> {
  %o, %s = linattn.attention %q, %k, %v gate(%g : tensor<2x8x?xf32>)
      {decay = #linattn.decay<scalar>}
      : tensor<2x8x?x128xbf16>, tensor<2x8x?x128xbf16>, tensor<2x8x?x128xbf16>
      -> tensor<2x8x?x128xbf16>, tensor<2x8x128x128xf32>
  return %o : tensor<2x8x?x128xbf16>
}
