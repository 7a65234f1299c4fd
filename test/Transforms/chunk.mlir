// RUN: linattn-opt %s --linattn-chunk=chunk-size=32 --split-input-file | FileCheck %s
// RUN: linattn-opt %s --linattn-chunk --split-input-file | FileCheck %s --check-prefix=HINT

// No decay: chunk loop, Q·Kᵀ with the triangular-result hint, the causal
// mask, P·V with the triangular-lhs hint, Q·S and the state update Kᵀ·V.
// CHECK-LABEL: func.func @none
// CHECK: memref.alloc() {alignment = 64 : i64} : memref<32x64xf32>
// CHECK: scf.for %[[B:.*]] =
// CHECK:   scf.for %[[H:.*]] =
// CHECK:     %[[C32:.*]] = arith.constant 32 : index
// CHECK:     scf.for %{{.*}} = %{{.*}} to %{{.*}} step %[[C32]]
// CHECK:       arith.minsi
// CHECK:       linalg.matmul {linattn.lower_triangular_result} ins(%{{.*}}, %{{.*}} : memref<32x64xf32>, memref<64x32xf32>) outs(%{{.*}} : memref<32x32xf32>)
// CHECK:       linalg.matmul {linattn.lower_triangular_lhs} ins(%{{.*}}, %{{.*}} : memref<32x32xf32>, memref<32x64xf32>)
// CHECK-NOT:   math.exp
// CHECK:       linalg.matmul ins(%{{.*}}, %{{.*}} : memref<32x64xf32>, memref<64x64xf32>)
// CHECK:       memref.transpose
// CHECK:       linalg.matmul ins(%{{.*}}, %{{.*}} : memref<64x32xf32, strided<[1, 64]>>, memref<32x64xf32>) outs(%{{.*}} : memref<64x64xf32>)
// CHECK: memref.dealloc
// CHECK-NOT: linattn.attention
func.func @none(%q: tensor<2x4x?x64xf32>, %k: tensor<2x4x?x64xf32>, %v: tensor<2x4x?x64xf32>) -> (tensor<2x4x?x64xf32>, tensor<2x4x64x64xf32>) {
  %o, %s = linattn.attention %q, %k, %v
      : tensor<2x4x?x64xf32>, tensor<2x4x?x64xf32>, tensor<2x4x?x64xf32> -> tensor<2x4x?x64xf32>, tensor<2x4x64x64xf32>
  return %o, %s : tensor<2x4x?x64xf32>, tensor<2x4x64x64xf32>
}

// -----

// Constant decay from a schedule: the per-head ln(lambda) become a global;
// the chunk-local cumulative decay is a loop-carried sum, the mask and the
// state factors are exps of differences (all <= 0).
// CHECK: memref.global "private" constant @__linattn_log_decay : memref<4xf32> = dense<[-0.0317486972, -0.0157483574, -0.00784317776, -0.00391389942]>
// CHECK-LABEL: func.func @constant
// CHECK: memref.get_global @__linattn_log_decay
// CHECK: scf.for {{.*}} iter_args
// CHECK:   arith.select
// CHECK:   arith.addf
// CHECK: linalg.matmul {linattn.lower_triangular_result}
// CHECK: math.exp
// CHECK: linalg.matmul {linattn.lower_triangular_lhs}
func.func @constant(%q: tensor<1x4x100x32xbf16>, %k: tensor<1x4x100x32xbf16>, %v: tensor<1x4x100x32xbf16>) -> (tensor<1x4x100x32xbf16>, tensor<1x4x32x32xf32>) {
  %o, %s = linattn.attention %q, %k, %v {decay = #linattn.decay<constant, schedule = retnet>}
      : tensor<1x4x100x32xbf16>, tensor<1x4x100x32xbf16>, tensor<1x4x100x32xbf16> -> tensor<1x4x100x32xbf16>, tensor<1x4x32x32xf32>
  return %o, %s : tensor<1x4x100x32xbf16>, tensor<1x4x32x32xf32>
}

// -----

// Scalar gate: loaded per step, clamped at -1000 (MATH.md 9.3), bf16 inputs
// extended to f32 in the load and the output truncated back.
// CHECK-LABEL: func.func @scalar
// CHECK: arith.extf %{{.*}} : bf16 to f32
// CHECK: arith.constant -1.000000e+03 : f32
// CHECK: arith.maximumf
// CHECK: arith.truncf %{{.*}} : f32 to bf16
func.func @scalar(%q: tensor<1x2x?x16xbf16>, %k: tensor<1x2x?x16xbf16>, %v: tensor<1x2x?x16xbf16>, %g: tensor<1x2x?xf32>) -> (tensor<1x2x?x16xbf16>, tensor<1x2x16x16xf32>) {
  %o, %s = linattn.attention %q, %k, %v gate(%g : tensor<1x2x?xf32>) {decay = #linattn.decay<scalar>}
      : tensor<1x2x?x16xbf16>, tensor<1x2x?x16xbf16>, tensor<1x2x?x16xbf16> -> tensor<1x2x?x16xbf16>, tensor<1x2x16x16xf32>
  return %o, %s : tensor<1x2x?x16xbf16>, tensor<1x2x16x16xf32>
}

// -----

// Vector gate (GLA) with secondary chunking c = 16: no Q·Kᵀ over the whole
// chunk; each query sub-chunk is one matmul against the keys up to its end
// (factors relative to its first row, clamped at e^30), with an exact
// log-space recomputation of the diagonal block when a channel decays by more
// than e^-30 inside the sub-chunk.
// CHECK-LABEL: func.func @vector
// CHECK-NOT: linattn.lower_triangular_result
// CHECK: arith.minimumf
// CHECK: linalg.matmul ins(%{{.*}}, %{{.*}} : memref<16x32xf32>, memref<32x16xf32, strided<[32, 1]>>) outs(%{{.*}} : memref<16x16xf32, strided<[32, 1]>>)
// CHECK: arith.cmpf ugt
// CHECK: scf.if
// CHECK:   scf.for {{.*}} iter_args
// CHECK:     math.exp
// CHECK:     arith.addf {{.*}} fastmath<reassoc>
// CHECK: linalg.matmul ins(%{{.*}}, %{{.*}} : memref<16x32xf32>, memref<32x32xf32, strided<[32, 1]>>) outs(%{{.*}} : memref<16x32xf32, strided<[32, 1], offset: 512>>)
// CHECK: linalg.matmul {linattn.lower_triangular_lhs}
func.func @vector(%q: tensor<1x2x?x32xf32>, %k: tensor<1x2x?x32xf32>, %v: tensor<1x2x?x32xf32>, %g: tensor<1x2x?x32xf32>) -> (tensor<1x2x?x32xf32>, tensor<1x2x32x32xf32>) {
  %o, %s = linattn.attention %q, %k, %v gate(%g : tensor<1x2x?x32xf32>) {decay = #linattn.decay<vector>, chunking = #linattn.chunking<size = 32, sub_size = 16>}
      : tensor<1x2x?x32xf32>, tensor<1x2x?x32xf32>, tensor<1x2x?x32xf32> -> tensor<1x2x?x32xf32>, tensor<1x2x32x32xf32>
  return %o, %s : tensor<1x2x?x32xf32>, tensor<1x2x32x32xf32>
}

// -----

// Normalized form: V gets a ones column (Dv + 1 = 17 padded to 32 columns),
// the output is divided by that column + eps; bthd inputs become transposed
// views.
// CHECK-LABEL: func.func @normalized_bthd
// CHECK: memref.transpose %{{.*}} (d0, d1, d2, d3) -> (d0, d2, d1, d3)
// CHECK: memref.alloc() {alignment = 64 : i64} : memref<32x32xf32>
// CHECK: arith.divf
func.func @normalized_bthd(%q: tensor<1x?x2x16xf32>, %k: tensor<1x?x2x16xf32>, %v: tensor<1x?x2x16xf32>) -> (tensor<1x?x2x16xf32>, tensor<1x2x16x16xf32>, tensor<1x2x16xf32>) {
  %o, %s, %z = linattn.attention %q, %k, %v {feature_map = #linattn.feature_map<elu_plus_one>, normalization = #linattn.norm<katharopoulos>, layout = #linattn.layout<bthd>}
      : tensor<1x?x2x16xf32>, tensor<1x?x2x16xf32>, tensor<1x?x2x16xf32> -> tensor<1x?x2x16xf32>, tensor<1x2x16x16xf32>, tensor<1x2x16xf32>
  return %o, %s, %z : tensor<1x?x2x16xf32>, tensor<1x2x16x16xf32>, tensor<1x2x16xf32>
}

// -----

// Delta rule (WY/UT form, MATH.md 5.2): K·Kᵀ, then T = (I + A)⁻¹ by forward
// substitution (rows i < len; T[i, j] -= A[i, m]·T[m, j] for m < i, j <= m,
// with A[i, m] = β_i·(K·Kᵀ)[i, m]), then −W = T·(−diag(β)·K) and
// U = T·diag(β)·V with the triangular-lhs hint, Ṽ = U − W·S accumulated onto
// U, and the output and state update read Ṽ. No gate: no exps.
// CHECK-LABEL: func.func @delta
// CHECK-NOT: math.exp
// CHECK: scf.for %{{.*}} = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK:   %[[LEN:.*]] = arith.minsi
// CHECK:   memref.load %{{.*}} : memref<1x2x?xf32, strided<[?, ?, ?], offset: ?>>
// CHECK:   linalg.matmul {linattn.lower_triangular_result} ins(%{{.*}}, %[[KT:.*]] : memref<32x32xf32>, memref<32x32xf32>) outs(%[[P:.*]] : memref<32x32xf32>)
// CHECK:   linalg.fill ins(%{{.*}} : f32) outs(%[[T:.*]] : memref<32x32xf32>)
// CHECK:   scf.for %[[I:.*]] = %{{.*}} to %[[LEN]] step
// CHECK:     memref.load %[[BETA:.*]][%[[I]]] : memref<32xf32>
// CHECK:     scf.for %[[M:.*]] = %{{.*}} to %[[I]] step
// CHECK:       memref.load %[[P]][%[[I]], %[[M]]]
// CHECK:       scf.for %[[J:.*]] = %{{.*}} to %{{.*}} step
// CHECK:         %[[TIJ:.*]] = memref.load %[[T]][%[[I]], %[[J]]]
// CHECK:         %[[TMJ:.*]] = memref.load %[[T]][%[[M]], %[[J]]]
// CHECK:         %[[AT:.*]] = arith.mulf %{{.*}}, %[[TMJ]]
// CHECK:         %[[NEW:.*]] = arith.subf %[[TIJ]], %[[AT]]
// CHECK:         memref.store %[[NEW]], %[[T]][%[[I]], %[[J]]]
// CHECK:   arith.negf
// CHECK:   linalg.matmul {linattn.lower_triangular_lhs} ins(%[[T]], %{{.*}} : memref<32x32xf32>, memref<32x32xf32>) outs(%[[WN:.*]] : memref<32x32xf32>)
// CHECK:   linalg.matmul {linattn.lower_triangular_lhs} ins(%[[T]], %{{.*}} : memref<32x32xf32>, memref<32x48xf32>) outs(%[[U:.*]] : memref<32x48xf32>)
// CHECK:   linalg.matmul ins(%[[WN]], %[[S:.*]] : memref<32x32xf32>, memref<32x48xf32>) outs(%[[U]] : memref<32x48xf32>)
// CHECK:   linalg.matmul {linattn.lower_triangular_result} ins(%{{.*}}, %[[KT]] : memref<32x32xf32>, memref<32x32xf32>) outs(%[[P]] : memref<32x32xf32>)
// CHECK:   linalg.matmul {linattn.lower_triangular_lhs} ins(%[[P]], %[[U]] : memref<32x32xf32>, memref<32x48xf32>) outs(%[[O:.*]] : memref<32x48xf32>)
// CHECK:   linalg.matmul ins(%{{.*}}, %[[S]] : memref<32x32xf32>, memref<32x48xf32>) outs(%[[O]] : memref<32x48xf32>)
// CHECK:   memref.transpose
// CHECK:   linalg.matmul ins(%{{.*}}, %[[U]] : memref<32x32xf32, strided<[1, 32]>>, memref<32x48xf32>) outs(%[[S]] : memref<32x48xf32>)
// CHECK-NOT: linattn.attention
func.func @delta(%q: tensor<1x2x?x32xf32>, %k: tensor<1x2x?x32xf32>, %v: tensor<1x2x?x48xf32>, %b: tensor<1x2x?xf32>) -> (tensor<1x2x?x48xf32>, tensor<1x2x32x48xf32>) {
  %o, %s = linattn.attention %q, %k, %v beta(%b : tensor<1x2x?xf32>) {decay = #linattn.decay<delta>}
      : tensor<1x2x?x32xf32>, tensor<1x2x?x32xf32>, tensor<1x2x?x48xf32> -> tensor<1x2x?x48xf32>, tensor<1x2x32x48xf32>
  return %o, %s : tensor<1x2x?x48xf32>, tensor<1x2x32x48xf32>
}

// -----

// Gated delta rule (second RUN line: the op's chunking hint, C = 24, scratch
// columns padded to 32), bthd, bf16: beta [B, T, H] becomes a transposed
// view read per row and extended to f32; the solve multiplies A by the decay
// ratio exp(b_i − b_m); −W's right-hand side carries β·exp(b); the
// triangular operands are 24x24 views of the padded T and P; the output
// decays Q and the state update decays S and K.
// HINT-LABEL: func.func @gated_delta_bthd
// HINT: %[[BT:.*]] = memref.transpose %{{.*}} (d0, d1, d2) -> (d0, d2, d1) : memref<1x?x2xbf16, strided<[?, ?, ?], offset: ?>> to memref<1x2x?xbf16, strided<[?, ?, ?], offset: ?>>
// HINT: scf.for {{.*}} iter_args
// HINT: memref.load %[[BT]]
// HINT-NEXT: arith.extf %{{.*}} : bf16 to f32
// HINT: linalg.matmul {linattn.lower_triangular_result} ins(%{{.*}}, %{{.*}} : memref<24x32xf32>, memref<32x32xf32>) outs(%{{.*}} : memref<24x32xf32>)
// HINT: scf.for
// HINT:   scf.for
// HINT:     arith.subf
// HINT:     math.exp
// HINT:     scf.for
// HINT:       arith.subf
// HINT: math.exp
// HINT: arith.negf
// HINT: %[[T:.*]] = memref.subview %{{.*}}[0, 0] [24, 24] [1, 1] : memref<24x32xf32> to memref<24x24xf32, strided<[32, 1]>>
// HINT: linalg.matmul {linattn.lower_triangular_lhs} ins(%[[T]], %{{.*}} : memref<24x24xf32, strided<[32, 1]>>, memref<24x32xf32>)
// HINT: linalg.matmul {linattn.lower_triangular_lhs} ins(%{{.*}}, %{{.*}} : memref<24x24xf32, strided<[32, 1]>>, memref<24x16xf32>)
// HINT: linalg.matmul ins(%{{.*}}, %{{.*}} : memref<24x32xf32>, memref<32x16xf32>) outs(%{{.*}} : memref<24x16xf32>)
// HINT: linalg.matmul {linattn.lower_triangular_result}
// HINT: math.exp
// HINT: linalg.matmul {linattn.lower_triangular_lhs} ins(%{{.*}}, %{{.*}} : memref<24x24xf32, strided<[32, 1]>>, memref<24x16xf32>)
// HINT: math.exp
// HINT: linalg.matmul ins
// HINT: arith.truncf %{{.*}} : f32 to bf16
// HINT: math.exp
// HINT: math.exp
// HINT: linalg.matmul ins(%{{.*}}, %{{.*}} : memref<32x24xf32, strided<[1, 32]>>, memref<24x16xf32>) outs(%{{.*}} : memref<32x16xf32>)
func.func @gated_delta_bthd(%q: tensor<1x?x2x32xbf16>, %k: tensor<1x?x2x32xbf16>, %v: tensor<1x?x2x16xbf16>, %g: tensor<1x?x2xf32>, %b: tensor<1x?x2xbf16>, %s0: tensor<1x2x32x16xf32>) -> (tensor<1x?x2x16xbf16>, tensor<1x2x32x16xf32>) {
  %o, %s = linattn.attention %q, %k, %v gate(%g : tensor<1x?x2xf32>) beta(%b : tensor<1x?x2xbf16>) initial_state(%s0 : tensor<1x2x32x16xf32>) {decay = #linattn.decay<gated_delta>, layout = #linattn.layout<bthd>, chunking = #linattn.chunking<size = 24, sub_size = 8>}
      : tensor<1x?x2x32xbf16>, tensor<1x?x2x32xbf16>, tensor<1x?x2x16xbf16> -> tensor<1x?x2x16xbf16>, tensor<1x2x32x16xf32>
  return %o, %s : tensor<1x?x2x16xbf16>, tensor<1x2x32x16xf32>
}
