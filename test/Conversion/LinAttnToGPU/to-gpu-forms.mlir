// RUN: linattn-opt %s --convert-linattn-to-gpu='chip=sm_80' -split-input-file | FileCheck %s

// The exclusive read keeps P[t][s] for s < t only: the mask compares with
// ult where the inclusive kernel uses ule; the inter-chunk part is the
// inclusive one.
// CHECK-LABEL: gpu.module @exclusive_scalar
// CHECK-NOT: arith.cmpi ule
// CHECK: nvvm.mma.sync
// CHECK: ex2.approx
// CHECK: [[LT:%.+]] = arith.cmpi ult, %{{.*}}, %{{.*}} : index
// CHECK-NEXT: arith.constant 0.000000e+00 : f32
// CHECK-NEXT: arith.select [[LT]], %{{.*}}, %{{.*}} : f32
// CHECK-NOT: arith.cmpi ule
// CHECK: gpu.return
func.func @exclusive_scalar(%q: tensor<1x4x?x32xbf16>, %k: tensor<1x4x?x32xbf16>,
                            %v: tensor<1x4x?x32xbf16>, %g: tensor<1x4x?xf32>)
    -> tensor<1x4x?x32xbf16> {
  %o, %s = linattn.attention %q, %k, %v gate(%g : tensor<1x4x?xf32>)
      {decay = #linattn.decay<scalar>, exclusive}
      : tensor<1x4x?x32xbf16>, tensor<1x4x?x32xbf16>, tensor<1x4x?x32xbf16>
      -> tensor<1x4x?x32xbf16>, tensor<1x4x32x32xf32>
  return %o : tensor<1x4x?x32xbf16>
}

// -----

// The inclusive kernel (the same op without `exclusive`) masks with ule.
// CHECK-LABEL: gpu.module @inclusive_scalar
// CHECK: [[LE:%.+]] = arith.cmpi ule, %{{.*}}, %{{.*}} : index
// CHECK-NEXT: arith.constant 0.000000e+00 : f32
// CHECK-NEXT: arith.select [[LE]], %{{.*}}, %{{.*}} : f32
func.func @inclusive_scalar(%q: tensor<1x4x?x32xbf16>, %k: tensor<1x4x?x32xbf16>,
                            %v: tensor<1x4x?x32xbf16>, %g: tensor<1x4x?xf32>)
    -> tensor<1x4x?x32xbf16> {
  %o, %s = linattn.attention %q, %k, %v gate(%g : tensor<1x4x?xf32>)
      {decay = #linattn.decay<scalar>}
      : tensor<1x4x?x32xbf16>, tensor<1x4x?x32xbf16>, tensor<1x4x?x32xbf16>
      -> tensor<1x4x?x32xbf16>, tensor<1x4x32x32xf32>
  return %o : tensor<1x4x?x32xbf16>
}

// -----

// Exclusive per-key gates: the mask after the exact diagonal block is
// strict too.
// CHECK-LABEL: gpu.module @exclusive_gla
// CHECK-NOT: arith.cmpi ule
// CHECK: scf.if {{.*}} -> (f32, f32, f32, f32)
// CHECK: [[LT:%.+]] = arith.cmpi ult, %{{.*}}, %{{.*}} : index
// CHECK-NEXT: arith.constant 0.000000e+00 : f32
// CHECK-NEXT: arith.select [[LT]], %{{.*}}, %{{.*}} : f32
// CHECK-NOT: arith.cmpi ule
// CHECK: gpu.return
func.func @exclusive_gla(%q: tensor<1x4x?x32xbf16>, %k: tensor<1x4x?x32xbf16>,
                         %v: tensor<1x4x?x32xbf16>, %g: tensor<1x4x?x32xf32>)
    -> tensor<1x4x?x32xbf16> {
  %o, %s = linattn.attention %q, %k, %v gate(%g : tensor<1x4x?x32xf32>)
      {decay = #linattn.decay<vector>, exclusive}
      : tensor<1x4x?x32xbf16>, tensor<1x4x?x32xbf16>, tensor<1x4x?x32xbf16>
      -> tensor<1x4x?x32xbf16>, tensor<1x4x32x32xf32>
  return %o : tensor<1x4x?x32xbf16>
}

// -----

// Non-causal: the chunk loop carrying the state writes no output; after it
// Sᵀ is staged once and a second loop over the chunks computes Q·S_T with
// no mask, no decay and no state update.
// CHECK-LABEL: gpu.module @noncausal
// CHECK: scf.for %{{.*}} = %{{.*}} to %{{.*}} step %c64{{.*}} iter_args
// CHECK-NOT: memref<?xbf16>, vector<2xbf16>
// CHECK: nvvm.mma.sync
// CHECK-NOT: memref<?xbf16>, vector<2xbf16>
// CHECK: gpu.barrier
// CHECK-NEXT: scf.yield %{{.*}} : f32, f32, f32, f32, f32, f32, f32, f32
// CHECK: gpu.barrier
// CHECK: memref.store {{.*}} : memref<32x40xbf16, #gpu.address_space<workgroup>>
// CHECK: scf.for %{{.*}} = %{{.*}} to %{{.*}} step %c64
// CHECK-NOT: iter_args
// CHECK: gpu.barrier
// CHECK-NOT: arith.cmpi ule
// CHECK: nvvm.mma.sync
// CHECK-NOT: arith.cmpi ule
// CHECK: vector.store %{{.*}}, %arg5[%{{.*}}] {alignment = 4 : i64} : memref<?xbf16>, vector<2xbf16>
// CHECK: gpu.barrier
// CHECK-NEXT: }
// CHECK: gpu.return
func.func @noncausal(%q: tensor<1x4x?x32xbf16>, %k: tensor<1x4x?x32xbf16>,
                     %v: tensor<1x4x?x32xbf16>) -> tensor<1x4x?x32xbf16> {
  %o, %s = linattn.attention %q, %k, %v {causal = false}
      : tensor<1x4x?x32xbf16>, tensor<1x4x?x32xbf16>, tensor<1x4x?x32xbf16>
      -> tensor<1x4x?x32xbf16>, tensor<1x4x32x32xf32>
  return %o : tensor<1x4x?x32xbf16>
}

// -----

// Normalized: four more kernel arguments (initial/final normalizer and
// their flags), the fp32 normalizer z in shared memory ([2][Dk]: the row a
// chunk reads and the row it writes), loaded from the initial normalizer.
// Per row: q·z from the A-fragment columns, the P row sums and a quad
// reduce (xor 1, xor 2), then the outputs are divided by den + eps after
// P·V; z is updated by one thread per feature over the chunk's rows, and
// value tile 0 writes the final normalizer.
// CHECK-LABEL: gpu.module @normalized
// CHECK: gpu.func @linattn_fwd(
// CHECK-SAME: %{{.*}}: memref<?xi64>, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64, %[[Z0:.*]]: memref<?xf32>, %[[Z1:.*]]: memref<?xf32>, %[[HASZ0:.*]]: i64, %[[HASZ1:.*]]: i64) kernel
// CHECK: [[ZS:%.+]] = memref.view {{.*}} to memref<2x32xf32, #gpu.address_space<workgroup>>
// CHECK: memref.load %[[Z0]]
// CHECK: memref.store %{{.*}}, [[ZS]][%c0{{.*}}, %{{.*}}]
// CHECK: scf.for {{.*}} step %c64{{.*}} iter_args
// CHECK: nvvm.mma.sync
// CHECK: vector.load [[ZS]][{{.*}}] {alignment = 8 : i64} : memref<2x32xf32, #gpu.address_space<workgroup>>, vector<2xf32>
// CHECK: %[[S1:.*]], %{{.*}} = gpu.shuffle xor [[X:%.+]], %c1_i32
// CHECK: [[Y:%.+]] = arith.addf [[X]], %[[S1]] : f32
// CHECK: gpu.shuffle xor [[Y]], %c2_i32
// CHECK: nvvm.mma.sync
// CHECK: arith.constant 9.99999997E-7 : f32
// CHECK: arith.divf
// CHECK: vector.store {{.*}} : memref<?xf16>, vector<2xf16>
// CHECK: scf.for {{.*}} -> (f32)
// CHECK: memref.store {{.*}}, [[ZS]]
// CHECK: gpu.barrier
// CHECK: scf.yield
// CHECK: memref.load [[ZS]]
// CHECK: memref.store %{{.*}}, %[[Z1]]
// CHECK: gpu.return
func.func @normalized(%q: tensor<1x4x?x32xf16>, %k: tensor<1x4x?x32xf16>,
                      %v: tensor<1x4x?x32xf16>, %z0: tensor<1x4x32xf32>)
    -> tensor<1x4x?x32xf16> {
  %o, %s, %z = linattn.attention %q, %k, %v
      initial_normalizer(%z0 : tensor<1x4x32xf32>)
      {normalization = #linattn.norm<katharopoulos>, eps = 1.0e-6 : f64,
       feature_map = #linattn.feature_map<elu_plus_one>}
      : tensor<1x4x?x32xf16>, tensor<1x4x?x32xf16>, tensor<1x4x?x32xf16>
      -> tensor<1x4x?x32xf16>, tensor<1x4x32x32xf32>, tensor<1x4x32xf32>
  return %o : tensor<1x4x?x32xf16>
}

// -----

// Normalized with a decay: z decays like S, by exp(b_C).
// CHECK-LABEL: gpu.module @normalized_scalar
// CHECK: gpu.shuffle xor
// CHECK: arith.divf
// CHECK: scf.for {{.*}} -> (f32)
// CHECK: ex2.approx
// CHECK: scf.yield
// CHECK: memref.load [[ZS:%.+]][
// CHECK: arith.mulf
// CHECK: memref.store {{.*}}, [[ZS]][
func.func @normalized_scalar(%q: tensor<1x4x?x32xbf16>, %k: tensor<1x4x?x32xbf16>,
                             %v: tensor<1x4x?x32xbf16>, %g: tensor<1x4x?xf32>)
    -> tensor<1x4x?x32xbf16> {
  %o, %s, %z = linattn.attention %q, %k, %v gate(%g : tensor<1x4x?xf32>)
      {decay = #linattn.decay<scalar>,
       normalization = #linattn.norm<katharopoulos>}
      : tensor<1x4x?x32xbf16>, tensor<1x4x?x32xbf16>, tensor<1x4x?x32xbf16>
      -> tensor<1x4x?x32xbf16>, tensor<1x4x32x32xf32>, tensor<1x4x32xf32>
  return %o : tensor<1x4x?x32xbf16>
}

// -----

// Normalized per-key gates: the same shuffle reduce and divide in the GLA
// kernel, and a per-feature decay of z.
// CHECK-LABEL: gpu.module @normalized_gla
// CHECK: scf.if {{.*}} -> (f32, f32, f32, f32)
// CHECK: gpu.shuffle xor
// CHECK: gpu.shuffle xor
// CHECK: arith.divf
// CHECK: scf.for {{.*}} -> (f32)
// CHECK: gpu.return
func.func @normalized_gla(%q: tensor<1x4x?x32xbf16>, %k: tensor<1x4x?x32xbf16>,
                          %v: tensor<1x4x?x32xbf16>, %g: tensor<1x4x?x32xf32>)
    -> tensor<1x4x?x32xbf16> {
  %o, %s, %z = linattn.attention %q, %k, %v gate(%g : tensor<1x4x?x32xf32>)
      {decay = #linattn.decay<vector>,
       normalization = #linattn.norm<katharopoulos>}
      : tensor<1x4x?x32xbf16>, tensor<1x4x?x32xbf16>, tensor<1x4x?x32xbf16>
      -> tensor<1x4x?x32xbf16>, tensor<1x4x32x32xf32>, tensor<1x4x32xf32>
  return %o : tensor<1x4x?x32xbf16>
}

// -----

// Non-causal and normalized: the second pass divides by q·z_T + eps.
// CHECK-LABEL: gpu.module @noncausal_normalized
// CHECK: scf.for {{.*}} step %c64{{.*}} iter_args
// CHECK-NOT: gpu.shuffle
// CHECK: scf.yield %{{.*}} : f32, f32, f32, f32, f32, f32, f32, f32
// CHECK: scf.for %{{.*}} = %{{.*}} to %{{.*}} step %c64
// CHECK: gpu.shuffle xor
// CHECK: arith.divf
// CHECK: vector.store {{.*}} : memref<?xbf16>, vector<2xbf16>
// CHECK: gpu.return
func.func @noncausal_normalized(%q: tensor<1x4x?x32xbf16>, %k: tensor<1x4x?x32xbf16>,
                                %v: tensor<1x4x?x32xbf16>) -> tensor<1x4x?x32xbf16> {
  %o, %s, %z = linattn.attention %q, %k, %v
      {causal = false, normalization = #linattn.norm<katharopoulos>}
      : tensor<1x4x?x32xbf16>, tensor<1x4x?x32xbf16>, tensor<1x4x?x32xbf16>
      -> tensor<1x4x?x32xbf16>, tensor<1x4x32x32xf32>, tensor<1x4x32xf32>
  return %o : tensor<1x4x?x32xbf16>
}
