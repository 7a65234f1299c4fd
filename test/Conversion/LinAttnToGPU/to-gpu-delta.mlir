// RUN: linattn-opt %s --convert-linattn-to-gpu='chip=sm_80' -split-input-file | FileCheck %s
// RUN: linattn-opt %s --convert-linattn-to-gpu='chip=sm_90' -split-input-file | FileCheck %s --check-prefix=AUTO
// RUN: linattn-opt %s --convert-linattn-to-gpu='chip=sm_80 stages=2' -split-input-file | FileCheck %s --check-prefix=STAGES

// The delta rule (MATH.md 5.2, 6.5) on mma.sync: beta is parameter 17 (f32
// here); the fp32 [C][C + 1] matrix holds A below the diagonal and
// (I + A)^{-1} transposed above it. Per chunk: staging, K Kᵀ and K S with
// mma.sync (X = β (V − K S) written over V, and A), the forward substitution
// (one column per thread: T[i][j] = −(A[i][j] + Σ_m A[i][m] T[m][j]), kept
// at [j][i] and copied to a bf16 tile), Ṽ = T X (mma.sync) into Vᵀ's tile,
// then the outputs and the state update of the linear kernel with Ṽ.
// CHECK-LABEL: gpu.module @delta
// CHECK: gpu.func @linattn_fwd(%{{.*}}: memref<?xbf16>, {{.*}}, %[[A15:.*]]: i64, %[[BETA:.*]]: memref<?xf32>) kernel
// CHECK: %[[VT:.*]] = memref.view {{.*}} to memref<32x72xbf16, #gpu.address_space<workgroup>>
// CHECK: %[[AM:.*]] = memref.view {{.*}} to memref<64x65xf32, #gpu.address_space<workgroup>>
// CHECK: %[[BETAS:.*]] = memref.view {{.*}} to memref<64xf32, #gpu.address_space<workgroup>>
// CHECK: %[[TB:.*]] = memref.view {{.*}} to memref<64x72xbf16, #gpu.address_space<workgroup>>
// CHECK: scf.for
// CHECK: memref.load %[[BETA]]
// CHECK: memref.store {{.*}}, %[[BETAS]]
// CHECK: gpu.barrier
// K Kᵀ and K S, A and X:
// CHECK: memref.load %[[BETAS]]
// CHECK: nvvm.mma.sync
// CHECK: memref.load %[[VT]]
// CHECK: arith.subf
// CHECK: memref.store {{.*}}, %[[VT]]
// CHECK: nvvm.mma.sync
// CHECK: memref.store {{.*}}, %[[AM]]
// CHECK: gpu.barrier
// The solve:
// CHECK: scf.if
// CHECK: scf.for %[[Z:.*]] = %{{.*}} to %thread_id_x step
// CHECK: memref.store {{.*}}, %[[TB]][%[[Z]], %thread_id_x]
// CHECK: memref.store {{.*}}, %[[TB]][%thread_id_x, %thread_id_x]
// CHECK: scf.for %[[I:.*]] = %{{.*}} to %c64{{.*}} step
// CHECK: %[[A0:.*]] = memref.load %[[AM]][%[[I]], %thread_id_x]
// CHECK: scf.for %[[M:.*]] = %{{.*}} to %[[I]] step %{{.*}} iter_args(%[[ACC:.*]] = %[[A0]]) -> (f32)
// CHECK: memref.load %[[AM]][%[[I]], %[[M]]]
// CHECK: memref.load %[[AM]][%thread_id_x, %[[M]]]
// CHECK: arith.mulf
// CHECK: arith.addf %[[ACC]]
// CHECK: %[[T:.*]] = arith.negf
// CHECK: memref.store %[[T]], %[[AM]][%thread_id_x, %[[I]]]
// CHECK: %[[TE:.*]] = arith.truncf %[[T]]
// CHECK: memref.store %[[TE]], %[[TB]][%[[I]], %thread_id_x]
// CHECK: gpu.barrier
// Ṽ = T X, then Ṽᵀ over X after a barrier:
// CHECK: vector.load %[[TB]]
// CHECK: nvvm.mma.sync
// CHECK: gpu.barrier
// CHECK: memref.store {{.*}}, %[[VT]]
// CHECK: gpu.barrier
// Outputs (inclusive mask) and the state update:
// CHECK: nvvm.mma.sync
// CHECK: arith.cmpi ule
// CHECK: nvvm.mma.sync
// CHECK: gpu.barrier
// CHECK: scf.yield
// CHECK: gpu.return
// AUTO-LABEL: gpu.module @delta
// AUTO-SAME: chip = "sm_90"
// AUTO-NOT: wgmma
// AUTO: nvvm.mma.sync
// AUTO-NOT: wgmma
// AUTO: gpu.return
// The cp.async ring carries Q, K and V; beta is loaded directly.
// STAGES-LABEL: gpu.module @delta
// STAGES: nvgpu.device_async_copy
// STAGES: nvvm.cp.async.wait.group 1
// STAGES: memref.load %arg16
// STAGES: gpu.return
func.func @delta(%q: tensor<1x4x?x32xbf16>, %k: tensor<1x4x?x32xbf16>,
                 %v: tensor<1x4x?x32xbf16>, %b: tensor<1x4x?xf32>)
    -> tensor<1x4x?x32xbf16> {
  %o, %s = linattn.attention %q, %k, %v beta(%b : tensor<1x4x?xf32>)
      {decay = #linattn.decay<delta>}
      : tensor<1x4x?x32xbf16>, tensor<1x4x?x32xbf16>, tensor<1x4x?x32xbf16>
      -> tensor<1x4x?x32xbf16>, tensor<1x4x32x32xf32>
  return %o : tensor<1x4x?x32xbf16>
}

// -----

// The gated delta rule: chunk-local cumulative gates scale A by
// exp(b_t − b_s) and K S by exp(b_t) before the solve; the exclusive read
// masks the outputs with s < t. A bf16 beta is widened to f32.
// CHECK-LABEL: gpu.module @gated_delta_exclusive
// CHECK: gpu.func @linattn_fwd(%{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xf32>, {{.*}}, %[[BETA:.*]]: memref<?xbf16>) kernel
// CHECK: memref.load %[[BETA]]
// CHECK: arith.extf
// CHECK: gpu.barrier
// CHECK: nvvm.mma.sync
// CHECK: ex2.approx
// CHECK: arith.negf
// CHECK: nvvm.mma.sync
// CHECK: arith.cmpi ult
// CHECK: nvvm.mma.sync
// CHECK-NOT: arith.cmpi ule
// CHECK: gpu.return
func.func @gated_delta_exclusive(%q: tensor<1x?x4x64xbf16>, %k: tensor<1x?x4x64xbf16>,
                                 %v: tensor<1x?x4x64xbf16>, %g: tensor<1x?x4xf32>,
                                 %b: tensor<1x?x4xbf16>) -> tensor<1x?x4x64xbf16> {
  %o, %s = linattn.attention %q, %k, %v gate(%g : tensor<1x?x4xf32>)
      beta(%b : tensor<1x?x4xbf16>)
      {decay = #linattn.decay<gated_delta>, exclusive, layout = #linattn.layout<bthd>}
      : tensor<1x?x4x64xbf16>, tensor<1x?x4x64xbf16>, tensor<1x?x4x64xbf16>
      -> tensor<1x?x4x64xbf16>, tensor<1x4x64x64xf32>
  return %o : tensor<1x?x4x64xbf16>
}
