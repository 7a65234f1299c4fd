// RUN: linattn-opt %s --convert-linattn-to-gpu='chip=sm_80' -split-input-file | FileCheck %s

// A scalar-gate (simple GLA) bf16 spec becomes one gpu.module holding the
// kernel of docs/gpu-kernel-abi.md: 8 tensors (memref<?xT>) and 8 i64s, the
// chunk loop carrying the fp32 state, tensor-core mma, barriers between the
// staging and compute phases, and dynamic shared memory.
// CHECK: module attributes {gpu.container_module}
// CHECK-LABEL: gpu.module @scalar_bf16 [#nvvm.target<O = 3, chip = "sm_80", features = "+ptx80">]
// CHECK: gpu.func @linattn_fwd(%{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xf32>, %{{.*}}: memref<?xf32>, %{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xf32>, %{{.*}}: memref<?xi64>, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64) kernel
// CHECK-SAME: known_block_size = array<i32: 128, 1, 1>
// CHECK: gpu.dynamic_shared_memory
// CHECK: scf.for
// CHECK: gpu.barrier
// CHECK: nvvm.mma.sync {{.*}}multiplicandAPtxType = #nvvm.mma_type<bf16>
// CHECK: gpu.barrier
// CHECK: gpu.return
// CHECK-NOT: func.func @scalar_bf16
func.func @scalar_bf16(%q: tensor<2x8x?x64xbf16>, %k: tensor<2x8x?x64xbf16>,
                       %v: tensor<2x8x?x64xbf16>, %g: tensor<2x8x?xf32>)
    -> tensor<2x8x?x64xbf16> {
  %o, %s = linattn.attention %q, %k, %v gate(%g : tensor<2x8x?xf32>)
      {decay = #linattn.decay<scalar>}
      : tensor<2x8x?x64xbf16>, tensor<2x8x?x64xbf16>, tensor<2x8x?x64xbf16>
      -> tensor<2x8x?x64xbf16>, tensor<2x8x64x64xf32>
  return %o : tensor<2x8x?x64xbf16>
}

// -----

// f16 inputs select the f16 mma; no decay means no gate staging (a single
// barrier per phase pair) and no ex2.
// CHECK-LABEL: gpu.module @none_f16
// CHECK: nvvm.mma.sync {{.*}} : (vector<2xf16>, vector<2xf16>, f32) -> !llvm.struct<(f32, f32, f32, f32)>
// CHECK-NOT: ex2.approx
// CHECK: gpu.return
func.func @none_f16(%q: tensor<1x4x?x32xf16>, %k: tensor<1x4x?x32xf16>,
                    %v: tensor<1x4x?x32xf16>) -> tensor<1x4x?x32xf16> {
  %o, %s = linattn.attention %q, %k, %v
      : tensor<1x4x?x32xf16>, tensor<1x4x?x32xf16>, tensor<1x4x?x32xf16>
      -> tensor<1x4x?x32xf16>, tensor<1x4x32x32xf32>
  return %o : tensor<1x4x?x32xf16>
}

// -----

// Per-key (GLA) gates: the per-feature gates are staged and summed down the
// chunk by one thread per feature, the off-diagonal 16-row blocks go through
// mma.sync with both factors bounded by 1, and the diagonal block is an
// exact loop over the key dim (one per 8-column block, taken by one warp).
// CHECK-LABEL: gpu.module @gla_bf16
// CHECK: scf.for
// CHECK: gpu.barrier
// CHECK: scf.for {{.*}} -> (f32)
// CHECK: gpu.barrier
// CHECK: nvvm.mma.sync
// CHECK: scf.if {{.*}} -> (f32, f32, f32, f32)
// CHECK: scf.for {{.*}} -> (f32, f32, f32, f32)
// CHECK: ex2.approx
// CHECK: gpu.return
func.func @gla_bf16(%q: tensor<1x4x?x64xbf16>, %k: tensor<1x4x?x64xbf16>,
                    %v: tensor<1x4x?x64xbf16>, %g: tensor<1x4x?x64xf32>)
    -> tensor<1x4x?x64xbf16> {
  %o, %s = linattn.attention %q, %k, %v gate(%g : tensor<1x4x?x64xf32>)
      {decay = #linattn.decay<vector>}
      : tensor<1x4x?x64xbf16>, tensor<1x4x?x64xbf16>, tensor<1x4x?x64xbf16>
      -> tensor<1x4x?x64xbf16>, tensor<1x4x64x64xf32>
  return %o : tensor<1x4x?x64xbf16>
}
