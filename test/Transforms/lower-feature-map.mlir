// RUN: linattn-opt %s --linattn-lower-feature-map | FileCheck %s
// RUN: linattn-opt %s --linattn-to-cpu | FileCheck %s --check-prefix=CPU

// Every map lowers all the way to the LLVM dialect.
// CPU-NOT: linattn.
// CPU-NOT: linalg.
// CPU-LABEL: llvm.func @taylor2
// CPU-LABEL: llvm.func @based_attention

// Weight and bias maps: the head dim of per-head parameters is input dim 1.
// CHECK-DAG: #[[BIAS:.*]] = affine_map<(d0, d1, d2, d3) -> (d1, d3)>
// CHECK-DAG: #[[WH:.*]] = affine_map<(d0, d1, d2, d3, d4) -> (d1, d3, d4)>
// CHECK-DAG: #[[WP:.*]] = affine_map<(d0, d1, d2, d3, d4) -> (d4, d3)>
// CHECK-DAG: #[[WPH:.*]] = affine_map<(d0, d1, d2, d3, d4) -> (d1, d4, d3)>

// Taylor-2 (Based): a = [1, x] in f32, then a gather a[i]·a[j]·c with
// constant tables; d = 2 gives the scales 2^-1/4 (linear) and 1/(√2·√2).
// CHECK-LABEL: func.func @taylor2
// CHECK-DAG: %[[C:.*]] = arith.constant dense<[1.000000e+00, 0.840896427, 0.840896427, 5.000000e-01, 5.000000e-01, 5.000000e-01, 5.000000e-01]> : tensor<7xf32>
// CHECK:     %[[X:.*]] = linalg.generic {{.*}} ins(%arg0 : tensor<2x4x?x2xbf16>) outs(%{{.*}} : tensor<2x4x?x2xf32>)
// CHECK:       arith.extf %{{.*}} : bf16 to f32
// CHECK:     %[[ONES:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%{{.*}} : tensor<2x4x?x3xf32>)
// CHECK:     %[[A:.*]] = tensor.insert_slice %[[X]] into %[[ONES]][0, 0, 0, 1]
// CHECK-DAG: %[[I:.*]] = arith.constant dense<[0, 0, 0, 1, 1, 2, 2]> : tensor<7xi32>
// CHECK-DAG: %[[J:.*]] = arith.constant dense<[0, 1, 2, 1, 2, 1, 2]> : tensor<7xi32>
// CHECK:     linalg.generic {{.*}} ins(%[[I]], %[[J]], %[[C]] : tensor<7xi32>, tensor<7xi32>, tensor<7xf32>) outs(%{{.*}} : tensor<2x4x?x7xbf16>)
// CHECK:       tensor.extract %[[A]]
// CHECK:       tensor.extract %[[A]]
// CHECK:       arith.mulf
// CHECK:       arith.mulf
// CHECK:       arith.truncf %{{.*}} : f32 to bf16
// CHECK-NOT: linattn.feature_map
func.func @taylor2(%x: tensor<2x4x?x2xbf16>) -> tensor<2x4x?x7xbf16> {
  %r = linattn.feature_map %x {kind = #linattn.feature_map<taylor2>} : tensor<2x4x?x2xbf16> -> tensor<2x4x?x7xbf16>
  return %r : tensor<2x4x?x7xbf16>
}

// Symmetric storage: squares with 1/(√2·√d), then pairs i < j with 1/√d;
// f32 input needs no conversion.
// CHECK-LABEL: func.func @taylor2_symmetric
// CHECK:     arith.constant dense<[1.000000e+00, 0.75983566, 0.75983566, 0.75983566, 0.408248305, 0.408248305, 0.408248305, 0.577350259, 0.577350259, 0.577350259]> : tensor<10xf32>
// CHECK:     tensor.insert_slice %arg0 into
// CHECK-DAG: arith.constant dense<[0, 0, 0, 0, 1, 2, 3, 1, 1, 2]> : tensor<10xi32>
// CHECK-DAG: arith.constant dense<[0, 1, 2, 3, 1, 2, 3, 2, 3, 3]> : tensor<10xi32>
// CHECK:     linalg.generic {{.*}} outs(%{{.*}} : tensor<5x10xf32>)
func.func @taylor2_symmetric(%x: tensor<5x3xf32>) -> tensor<5x10xf32> {
  %r = linattn.feature_map %x {kind = #linattn.feature_map<taylor2_symmetric>} : tensor<5x3xf32> -> tensor<5x10xf32>
  return %r : tensor<5x10xf32>
}

// Hedgehog with per-head weights [H, d, f] and bias [H, f] (read at input
// dim 1): y = b + x·W (features innermost), row max and min, the two sums
// of exponentials with the max subtracted, then both halves normalized and
// concatenated.
// CHECK-LABEL: func.func @hedgehog
// CHECK:     %[[Y0:.*]] = linalg.generic {indexing_maps = [#[[BIAS]], {{.*}}]{{.*}} ins(%arg2 : tensor<4x32xf32>)
// CHECK:     %[[Y:.*]] = linalg.generic {indexing_maps = [{{.*}}, #[[WH]], {{.*}}], iterator_types = ["parallel", "parallel", "parallel", "reduction", "parallel"]} ins(%arg0, %arg1 : tensor<2x4x?x16xbf16>, tensor<4x16x32xf32>) outs(%[[Y0]] : tensor<2x4x?x32xf32>)
// CHECK:     arith.constant 0xFF800000 : f32
// CHECK:     arith.constant 0x7F800000 : f32
// CHECK:     %[[MM:.*]]:2 = linalg.generic {{.*}} ins(%[[Y]] : tensor<2x4x?x32xf32>) outs({{.*}} : tensor<2x4x?xf32>, tensor<2x4x?xf32>)
// CHECK:       arith.maximumf
// CHECK:       arith.minimumf
// CHECK:     %[[S:.*]]:2 = linalg.generic {{.*}} ins(%[[Y]], %[[MM]]#0, %[[MM]]#1 :
// CHECK:       %[[E1:.*]] = arith.subf %[[YV:.*]], %[[MX:.*]] : f32
// CHECK:       %[[E2:.*]] = arith.subf %[[MN:.*]], %[[YV]] : f32
// CHECK:       math.exp %[[E1]]
// CHECK:       math.exp %[[E2]]
// CHECK:     %[[H:.*]]:2 = linalg.generic {{.*}} ins(%[[Y]], %[[MM]]#0, %[[MM]]#1, %[[S]]#0, %[[S]]#1 : {{.*}}) outs({{.*}} : tensor<2x4x?x32xbf16>, tensor<2x4x?x32xbf16>)
// CHECK:       arith.divf
// CHECK:       arith.divf
// CHECK:       arith.truncf
// CHECK:     %[[LO:.*]] = tensor.insert_slice %[[H]]#0 into %{{.*}}[0, 0, 0, 0] [2, 4, %{{.*}}, 32]
// CHECK:     %[[HI:.*]] = tensor.insert_slice %[[H]]#1 into %[[LO]][0, 0, 0, 32] [2, 4, %{{.*}}, 32]
// CHECK:     return %[[HI]] : tensor<2x4x?x64xbf16>
func.func @hedgehog(%x: tensor<2x4x?x16xbf16>, %w: tensor<4x16x32xf32>, %b: tensor<4x32xf32>) -> tensor<2x4x?x64xbf16> {
  %r = linattn.feature_map %x weight(%w : tensor<4x16x32xf32>) bias(%b : tensor<4x32xf32>) {kind = #linattn.feature_map<hedgehog>} : tensor<2x4x?x16xbf16> -> tensor<2x4x?x64xbf16>
  return %r : tensor<2x4x?x64xbf16>
}

// The joint softmax over [2y, -2y] shifts both halves by
// M = max(2 max y, -2 min y) and divides by the one joint sum.
// CHECK-LABEL: func.func @hedgehog_joint
// CHECK:     linalg.generic {{.*}} iterator_types = ["parallel", "reduction", "parallel"]} ins(%arg0, %arg1 : tensor<?x8xf32>, tensor<8x8xf32>)
// CHECK:     linalg.generic {{.*}} iterator_types = ["parallel", "parallel"]}
// CHECK:       %[[TWO:.*]] = arith.constant 2.000000e+00 : f32
// CHECK:       %[[Y2:.*]] = arith.mulf %{{.*}}, %[[TWO]]
// CHECK:       %[[M:.*]] = arith.maximumf
// CHECK:       arith.subf %[[Y2]], %[[M]]
// CHECK:       %[[SUM:.*]] = arith.addf
// CHECK:       arith.divf %{{.*}}, %[[SUM]]
// CHECK:       arith.divf %{{.*}}, %[[SUM]]
// CHECK:     tensor.insert_slice {{.*}}[0, 8] [%{{.*}}, 8] [1, 1] : tensor<?x8xf32> into tensor<?x16xf32>
func.func @hedgehog_joint(%x: tensor<?x8xf32>, %w: tensor<8x8xf32>) -> tensor<?x16xf32> {
  %r = linattn.feature_map %x weight(%w : tensor<8x8xf32>) {kind = #linattn.feature_map<hedgehog_joint>} : tensor<?x8xf32> -> tensor<?x16xf32>
  return %r : tensor<?x16xf32>
}

// Performer in f64: |x̂|² and x·Wᵀ (W is [m, d]) as reductions, then
// exp(d^-1/4·(x·w) - |x̂|²/2) / √m.
// CHECK-LABEL: func.func @performer
// CHECK:     %[[SQ:.*]] = linalg.generic {{.*}} ins(%arg0 : tensor<1x2x?x8xf64>) outs(%{{.*}} : tensor<1x2x?xf64>)
// CHECK:       arith.constant 0.59460355750136051 : f64
// CHECK:     %[[P:.*]] = linalg.generic {indexing_maps = [{{.*}}, #[[WP]], {{.*}}]{{.*}} ins(%arg0, %arg1 : tensor<1x2x?x8xf64>, tensor<20x8xf64>)
// CHECK:     linalg.generic {{.*}} ins(%[[P]], %[[SQ]] : tensor<1x2x?x20xf64>, tensor<1x2x?xf64>) outs(%{{.*}} : tensor<1x2x?x20xf64>)
// CHECK:       arith.constant 5.000000e-01 : f64
// CHECK:       arith.constant 0.22360679774997896 : f64
// CHECK:       math.exp
func.func @performer(%x: tensor<1x2x?x8xf64>, %w: tensor<20x8xf64>) -> tensor<1x2x?x20xf64> {
  %r = linattn.feature_map %x weight(%w : tensor<20x8xf64>) {kind = #linattn.feature_map<performer>} : tensor<1x2x?x8xf64> -> tensor<1x2x?x20xf64>
  return %r : tensor<1x2x?x20xf64>
}

// Hyperbolic, f16 input, per-head f32 weights: both signs, 1/√(2m).
// CHECK-LABEL: func.func @performer_hyperbolic
// CHECK:     linalg.generic {indexing_maps = [{{.*}}, #[[WPH]], {{.*}}]{{.*}} ins(%arg0, %arg1 : tensor<1x2x?x8xf16>, tensor<2x6x8xf32>)
// CHECK:     %[[PH:.*]]:2 = linalg.generic {{.*}} outs(%{{.*}}, %{{.*}} : tensor<1x2x?x6xf16>, tensor<1x2x?x6xf16>)
// CHECK:       arith.constant 0.288675129 : f32
// CHECK:       arith.negf
// CHECK:     tensor.insert_slice %[[PH]]#1 into {{.*}}[0, 0, 0, 6]
func.func @performer_hyperbolic(%x: tensor<1x2x?x8xf16>, %w: tensor<2x6x8xf32>) -> tensor<1x2x?x12xf16> {
  %r = linattn.feature_map %x weight(%w : tensor<2x6x8xf32>) {kind = #linattn.feature_map<performer_hyperbolic>} : tensor<1x2x?x8xf16> -> tensor<1x2x?x12xf16>
  return %r : tensor<1x2x?x12xf16>
}

// identity folds away; elu+1 and relu are one elementwise op each.
// CHECK-LABEL: func.func @elementwise
// CHECK:     %[[ELU:.*]] = linalg.generic
// CHECK:       arith.cmpf ogt
// CHECK:       math.exp
// CHECK:       arith.select
// CHECK:     %[[RELU:.*]] = linalg.generic
// CHECK:       arith.maximumf
// CHECK:     return %arg0, %[[ELU]], %[[RELU]]
func.func @elementwise(%x: tensor<3x4xbf16>) -> (tensor<3x4xbf16>, tensor<3x4xbf16>, tensor<3x4xbf16>) {
  %a = linattn.feature_map %x {kind = #linattn.feature_map<identity>} : tensor<3x4xbf16> -> tensor<3x4xbf16>
  %b = linattn.feature_map %x {kind = #linattn.feature_map<elu_plus_one>} : tensor<3x4xbf16> -> tensor<3x4xbf16>
  %c = linattn.feature_map %x {kind = #linattn.feature_map<relu>} : tensor<3x4xbf16> -> tensor<3x4xbf16>
  return %a, %b, %c : tensor<3x4xbf16>, tensor<3x4xbf16>, tensor<3x4xbf16>
}

// Based end to end: the mapped q and k (Dphi = 1 + 4 + 16 = 21) feed the
// chunked attention.
// CHECK-LABEL: func.func @based_attention
// CHECK:     linalg.generic {{.*}} outs(%{{.*}} : tensor<1x2x?x21xbf16>)
// CHECK:     linalg.generic {{.*}} outs(%{{.*}} : tensor<1x2x?x21xbf16>)
// CHECK:     linattn.attention
func.func @based_attention(%q: tensor<1x2x?x4xbf16>, %k: tensor<1x2x?x4xbf16>, %v: tensor<1x2x?x8xbf16>) -> (tensor<1x2x?x8xbf16>, tensor<1x2x21x8xf32>) {
  %pq = linattn.feature_map %q {kind = #linattn.feature_map<taylor2>} : tensor<1x2x?x4xbf16> -> tensor<1x2x?x21xbf16>
  %pk = linattn.feature_map %k {kind = #linattn.feature_map<taylor2>} : tensor<1x2x?x4xbf16> -> tensor<1x2x?x21xbf16>
  %o, %s = linattn.attention %pq, %pk, %v {scale = 1.0 : f64}
      : tensor<1x2x?x21xbf16>, tensor<1x2x?x21xbf16>, tensor<1x2x?x8xbf16> -> tensor<1x2x?x8xbf16>, tensor<1x2x21x8xf32>
  return %o, %s : tensor<1x2x?x8xbf16>, tensor<1x2x21x8xf32>
}
