// RUN: linattn-opt %s --convert-linattn-to-gpu='chip=sm_80' -split-input-file | FileCheck %s
// RUN: linattn-opt %s --linattn-to-ptx='chip=sm_80' -split-input-file | FileCheck %s --check-prefix=PTX
// The final normalizer's stores, with the lines before them:
// RUN: linattn-opt %s --convert-linattn-to-gpu='chip=sm_80' -split-input-file | grep -B4 'memref.store .*, %arg17\[' | FileCheck %s --check-prefix=ZSTORE

// Width-changing feature maps run as a prepass: the gpu.module holds the
// attention kernel and `linattn_map`, one warp per row (4 rows per block).
// Based's symmetric Taylor map gives 153 features, padded with zeros to 160
// for the tensor cores: the attention kernel reads 160-wide q/k rows, but
// its states stay 153 rows tall, so state rows >= 153 are never loaded
// (zero) nor stored.
// CHECK-LABEL: gpu.module @based
// CHECK: gpu.func @linattn_fwd
// CHECK: %[[C153:.*]] = arith.constant 153 : index
// CHECK: %[[IN:.*]] = arith.cmpi ult, %{{.*}}, %[[C153]] : index
// CHECK-NEXT: scf.if %[[IN]] -> (f32) {
// CHECK-NEXT: memref.load %arg4
// CHECK: gpu.func @linattn_map(%arg0: memref<?xbf16>, %arg1: memref<?xf32>, %arg2: memref<?xf32>, %arg3: memref<?xbf16>, %arg4: i64, %arg5: i64, %arg6: i64, %arg7: i64, %arg8: i64) kernel attributes {known_block_size = array<i32: 128, 1, 1>}
// CHECK: %[[ROW:.*]] = arith.addi %{{.*}}, %{{.*}} : index
// CHECK: arith.cmpi ult, %[[ROW]], %{{.*}} : index
// Input rows of 16, output rows of 160, five lane-strided steps.
// CHECK: arith.muli %[[ROW]], %c16
// CHECK: arith.muli %[[ROW]], %c160
// CHECK: scf.for %{{.*}} = %c0 to %c5 step %c1
// The pair row of a symmetric feature sums d - 1 = 15 comparisons against
// rowStart(i) = 15, 29, ..., 120.
// CHECK: arith.cmpi ule, %c15
// CHECK: arith.cmpi ule, %c120
// CHECK-NOT: arith.cmpi ule, %c121
// CHECK: arith.truncf %{{.*}} : f32 to bf16
// CHECK: memref.store %{{.*}}, %arg3
// PTX: .visible .entry linattn_fwd(
// PTX: .visible .entry linattn_map(
func.func @based(%q: tensor<1x4x?x16xbf16>, %k: tensor<1x4x?x16xbf16>,
                 %v: tensor<1x4x?x64xbf16>) -> tensor<1x4x?x64xbf16> {
  %qp = linattn.feature_map %q {kind = #linattn.feature_map<taylor2_symmetric>}
      : tensor<1x4x?x16xbf16> -> tensor<1x4x?x153xbf16>
  %kp = linattn.feature_map %k {kind = #linattn.feature_map<taylor2_symmetric>}
      : tensor<1x4x?x16xbf16> -> tensor<1x4x?x153xbf16>
  %o, %s = linattn.attention %qp, %kp, %v {decay = #linattn.decay<none>}
      : tensor<1x4x?x153xbf16>, tensor<1x4x?x153xbf16>, tensor<1x4x?x64xbf16>
      -> tensor<1x4x?x64xbf16>, tensor<1x4x153x64xf32>
  return %o : tensor<1x4x?x64xbf16>
}

// -----

// Hedgehog (f = 32, per-head weights and biases) with the normalized form:
// y = x W + b accumulates in an scf.for over the 64 inputs, then two
// softmaxes, each with a warp max and a warp sum (five xor shuffles each).
// 64 features need no padding.
// CHECK-LABEL: gpu.module @hedgehog
// CHECK: gpu.func @linattn_fwd
// CHECK: gpu.func @linattn_map
// Per-head weight offset: head * d * f.
// CHECK: arith.muli %{{.*}}, %c2048 : index
// CHECK: scf.if %{{.*}} -> (f32) {
// CHECK-NEXT: arith.addi
// CHECK-NEXT: memref.load %arg2
// CHECK: scf.for %{{.*}} = %c0{{.*}} to %c64{{.*}} step %c1 iter_args
// CHECK: memref.load %arg0
// CHECK: memref.load %arg1
// CHECK-COUNT-10: gpu.shuffle xor
// CHECK: ex2.approx.ftz.f32
// CHECK-COUNT-10: gpu.shuffle xor
// CHECK: arith.divf
// CHECK: memref.store %{{.*}}, %arg3
// CHECK: memref.store %{{.*}}, %arg3
// CHECK-NOT: memref.store
// CHECK: gpu.return
func.func @hedgehog(%q: tensor<1x4x?x64xbf16>, %k: tensor<1x4x?x64xbf16>,
                    %v: tensor<1x4x?x64xbf16>, %w: tensor<4x64x32xf32>,
                    %b: tensor<4x32xf32>) -> tensor<1x4x?x64xbf16> {
  %qp = linattn.feature_map %q weight(%w : tensor<4x64x32xf32>) bias(%b : tensor<4x32xf32>)
      {kind = #linattn.feature_map<hedgehog>} : tensor<1x4x?x64xbf16> -> tensor<1x4x?x64xbf16>
  %kp = linattn.feature_map %k weight(%w : tensor<4x64x32xf32>) bias(%b : tensor<4x32xf32>)
      {kind = #linattn.feature_map<hedgehog>} : tensor<1x4x?x64xbf16> -> tensor<1x4x?x64xbf16>
  %o, %s, %z = linattn.attention %qp, %kp, %v
      {decay = #linattn.decay<none>, normalization = #linattn.norm<katharopoulos>, eps = 1.0e-6 : f64}
      : tensor<1x4x?x64xbf16>, tensor<1x4x?x64xbf16>, tensor<1x4x?x64xbf16>
      -> tensor<1x4x?x64xbf16>, tensor<1x4x64x64xf32>, tensor<1x4x64xf32>
  return %o : tensor<1x4x?x64xbf16>
}

// -----

// Hyperbolic Performer (m = 24, W [m, d] shared by all heads) with a scalar
// gate: one loop accumulates ‖x‖² and the 24 projections (row r of W at
// r·d), then exp(±w·x̂ − ‖x̂‖²/2)/√(2m); 48 features are padded to 48 (no
// padding), rows are [B, T, H] (bthd: the head is row % H).
// CHECK-LABEL: gpu.module @performer
// CHECK: gpu.func @linattn_map
// CHECK: scf.if
// CHECK-NEXT: arith.remui %{{.*}}, %{{.*}} : index
// CHECK: scf.for %{{.*}} iter_args(%{{.*}} = %cst{{.*}}, %{{.*}} = %cst{{.*}}) -> (f32, f32)
// CHECK: ex2.approx.ftz.f32
// CHECK: memref.store
// CHECK: ex2.approx.ftz.f32
// CHECK: memref.store
// CHECK-NOT: gpu.shuffle
// CHECK: gpu.return
func.func @performer(%q: tensor<2x?x4x32xf16>, %k: tensor<2x?x4x32xf16>,
                     %v: tensor<2x?x4x32xf16>, %g: tensor<2x?x4xf32>,
                     %w: tensor<24x32xf32>) -> tensor<2x?x4x32xf16> {
  %qp = linattn.feature_map %q weight(%w : tensor<24x32xf32>)
      {kind = #linattn.feature_map<performer_hyperbolic>} : tensor<2x?x4x32xf16> -> tensor<2x?x4x48xf16>
  %kp = linattn.feature_map %k weight(%w : tensor<24x32xf32>)
      {kind = #linattn.feature_map<performer_hyperbolic>} : tensor<2x?x4x32xf16> -> tensor<2x?x4x48xf16>
  %o, %s = linattn.attention %qp, %kp, %v gate(%g : tensor<2x?x4xf32>)
      {decay = #linattn.decay<scalar>, layout = #linattn.layout<bthd>}
      : tensor<2x?x4x48xf16>, tensor<2x?x4x48xf16>, tensor<2x?x4x32xf16>
      -> tensor<2x?x4x32xf16>, tensor<2x4x48x32xf32>
  return %o : tensor<2x?x4x32xf16>
}

// -----

// Normalized Based: the normalizer z keeps 153 rows in memory (stride 153
// per head), while the kernel's shared z has the 160 padded features; the
// initial normalizer is read only below 153 (zero above), the final one is
// written only below 153.
// CHECK-LABEL: gpu.module @based_norm
// CHECK: gpu.func @linattn_fwd({{.*}}, %arg16: memref<?xf32>, %arg17: memref<?xf32>, %arg18: i64, %arg19: i64)
// CHECK: arith.muli %{{.*}}, %c153 : index
// CHECK: %[[D:.*]] = arith.addi %{{.*}}, %thread_id_x : index
// CHECK: arith.cmpi ult, %[[D]], %c160 : index
// CHECK: %[[IN:.*]] = arith.cmpi ult, %[[D]], %c153{{.*}} : index
// CHECK: %[[FROM:.*]] = arith.andi %{{.*}}, %[[IN]] : i1
// CHECK: scf.if %[[FROM]] -> (f32)
// CHECK: memref.load %arg16
// ZSTORE: %[[IN1:.*]] = arith.cmpi ult, %{{.*}}, %c153{{.*}} : index
// ZSTORE-NEXT: scf.if %[[IN1]] {
// ZSTORE-NEXT: memref.load %{{.*}} : memref<2x160xf32, #gpu.address_space<workgroup>>
// ZSTORE-NEXT: arith.addi
// ZSTORE-NEXT: memref.store %{{.*}}, %arg17
func.func @based_norm(%q: tensor<1x4x?x16xbf16>, %k: tensor<1x4x?x16xbf16>,
                      %v: tensor<1x4x?x64xbf16>) -> tensor<1x4x?x64xbf16> {
  %qp = linattn.feature_map %q {kind = #linattn.feature_map<taylor2_symmetric>}
      : tensor<1x4x?x16xbf16> -> tensor<1x4x?x153xbf16>
  %kp = linattn.feature_map %k {kind = #linattn.feature_map<taylor2_symmetric>}
      : tensor<1x4x?x16xbf16> -> tensor<1x4x?x153xbf16>
  %o, %s, %z = linattn.attention %qp, %kp, %v
      {decay = #linattn.decay<none>, normalization = #linattn.norm<katharopoulos>, eps = 1.0e-6 : f64}
      : tensor<1x4x?x153xbf16>, tensor<1x4x?x153xbf16>, tensor<1x4x?x64xbf16>
      -> tensor<1x4x?x64xbf16>, tensor<1x4x153x64xf32>, tensor<1x4x153xf32>
  return %o : tensor<1x4x?x64xbf16>
}
