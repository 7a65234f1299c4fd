// RUN: linattn-opt %s --convert-linattn-to-gpu='chip=sm_80' -split-input-file | FileCheck %s
// RUN: linattn-opt %s --convert-linattn-to-gpu='chip=sm_90' -split-input-file | FileCheck %s --check-prefix=AUTO
// RUN: linattn-opt %s --convert-linattn-to-gpu='chip=sm_80 stages=2' -split-input-file | FileCheck %s --check-prefix=STAGES

// The delta rule (MATH.md 5.2, 6.5) on mma.sync: beta is parameter 17 (f32
// here); the fp32 [C][C + 1] matrix holds A below the diagonal and
// (I + A)^{-1} transposed above it. Per chunk: staging, K Kᵀ and K S with
// mma.sync (X = β (V − K S) written over V, and A), the blocked solve for
// T = (I + A)^{-1} (kept at [j][i] and copied to a bf16 tile), Ṽ = T X
// (mma.sync) into Vᵀ's tile,
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
// The solve, blocked by 16 rows, writing T to the bf16 tile as it goes:
// (a) each diagonal block by forward substitution, one column j per thread
// (rows up to the end of j's block), after zeros above the diagonal of
// column j and a 1 on it.
// The thread index as min(tid, c0 + 128) (= tid), so that nothing derived
// from it is hoisted out of the chunk loop:
// CHECK: %[[TID:.*]] = arith.minui %thread_id_x, %{{.*}} : index
// CHECK: %[[J:.*]] = arith.addi %{{.*}}, %[[TID]] : index
// CHECK: scf.if
// CHECK: scf.for %[[Z:.*]] = %{{.*}} to %[[J]] step
// CHECK: memref.store {{.*}}, %[[TB]][%[[Z]], %[[J]]]
// CHECK: memref.store {{.*}}, %[[TB]][%[[J]], %[[J]]]
// CHECK: %[[BLK:.*]] = arith.divui %[[J]], %c16
// CHECK: %[[BLK16:.*]] = arith.muli %[[BLK]], %c16
// CHECK: %[[END:.*]] = arith.addi %[[BLK16]], %c16
// CHECK: scf.for %[[I:.*]] = %{{.*}} to %[[END]] step
// CHECK: %[[A0:.*]] = memref.load %[[AM]][%[[I]], %[[J]]]
// CHECK: scf.for %[[M:.*]] = %{{.*}} to %[[I]] step %{{.*}} iter_args(%[[ACC:.*]] = %[[A0]]) -> (f32)
// CHECK: memref.load %[[AM]][%[[I]], %[[M]]]
// CHECK: memref.load %[[AM]][%[[J]], %[[M]]]
// CHECK: arith.mulf
// CHECK: arith.addf %[[ACC]]
// CHECK: %[[T:.*]] = arith.negf
// CHECK: memref.store %[[T]], %[[AM]][%[[J]], %[[I]]]
// CHECK: %[[TE:.*]] = arith.truncf %[[T]]
// CHECK: memref.store %[[TE]], %[[TB]][%[[I]], %[[J]]]
// CHECK: gpu.barrier
// (b) block row 16, two (i, j) pairs per thread: U = A[i][j] + Σ A[i][m]
// T[m][j] in two loops (T above the diagonal within j's block, below it
// past the block), stored above the diagonal at [j][i]; after a barrier
// T[i][j] = −U[i][j] − Σ_{16<=m<i} T[i][m] U[m][j] over A at [i][j].
// Block rows 32 and 48 follow (4 and 6 pairs per thread).
// CHECK: scf.for %{{.*}} = %c0{{.*}} to %c2{{.*}} step
// CHECK: %[[I1:.*]] = arith.addi %{{.*}}, %c16{{.*}} : index
// CHECK: %[[J1:.*]] = arith.remui %{{.*}}, %c16{{.*}} : index
// CHECK: %[[JEND:.*]] = arith.addi %{{.*}}, %c16{{.*}} : index
// CHECK: %[[U0:.*]] = memref.load %[[AM]][%[[I1]], %[[J1]]]
// CHECK: %[[UA:.*]] = scf.for %[[MA:.*]] = %{{.*}} to %[[JEND]] step %{{.*}} iter_args(%{{.*}} = %[[U0]]) -> (f32)
// CHECK-NEXT: memref.load %[[AM]][%[[I1]], %[[MA]]]
// CHECK-NEXT: memref.load %[[AM]][%[[J1]], %[[MA]]]
// CHECK: %[[UB:.*]] = scf.for %[[MB:.*]] = %[[JEND]] to %c16{{.*}} step %{{.*}} iter_args(%{{.*}} = %[[UA]]) -> (f32)
// CHECK-NEXT: memref.load %[[AM]][%[[I1]], %[[MB]]]
// CHECK-NEXT: memref.load %[[AM]][%[[MB]], %[[J1]]]
// CHECK: memref.store %[[UB]], %[[AM]][%[[J1]], %[[I1]]]
// CHECK: gpu.barrier
// CHECK: %[[I2:.*]] = arith.addi %{{.*}}, %c16{{.*}} : index
// CHECK: %[[J2:.*]] = arith.remui %{{.*}}, %c16{{.*}} : index
// CHECK: memref.load %[[AM]][%[[J2]], %[[I2]]]
// CHECK: scf.for %[[M2:.*]] = %c16{{.*}} to %[[I2]] step
// CHECK-NEXT: memref.load %[[AM]][%[[M2]], %[[I2]]]
// CHECK-NEXT: memref.load %[[AM]][%[[J2]], %[[M2]]]
// CHECK: %[[T2:.*]] = arith.negf
// CHECK: memref.store %[[T2]], %[[AM]][%[[I2]], %[[J2]]]
// CHECK: %[[T2E:.*]] = arith.truncf %[[T2]]
// CHECK: memref.store %[[T2E]], %[[TB]][%[[I2]], %[[J2]]]
// CHECK: gpu.barrier
// CHECK: scf.for %{{.*}} = %c0{{.*}} to %c4{{.*}} step
// CHECK: gpu.barrier
// CHECK: gpu.barrier
// CHECK: scf.for %{{.*}} = %c0{{.*}} to %c6{{.*}} step
// CHECK: gpu.barrier
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
