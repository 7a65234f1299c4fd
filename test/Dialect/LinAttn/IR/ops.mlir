// RUN: linattn-opt %s -split-input-file --verify-roundtrip | FileCheck %s
// Round trip of every op, attribute and enum of the linattn dialect.

// CHECK-LABEL: func.func @attention_no_decay
// CHECK: %[[O:.*]], %[[S:.*]] = linattn.attention %{{.*}}, %{{.*}}, %{{.*}} :
// CHECK-SAME: -> tensor<2x4x16x8xf32>, tensor<2x4x8x8xf32>
func.func @attention_no_decay(%q: tensor<2x4x16x8xf32>) -> (tensor<2x4x16x8xf32>, tensor<2x4x8x8xf32>) {
  %o, %s = linattn.attention %q, %q, %q : tensor<2x4x16x8xf32>, tensor<2x4x16x8xf32>, tensor<2x4x16x8xf32> -> tensor<2x4x16x8xf32>, tensor<2x4x8x8xf32>
  return %o, %s : tensor<2x4x16x8xf32>, tensor<2x4x8x8xf32>
}

// -----

// Explicit defaults are elided when printed.
// CHECK-LABEL: func.func @attention_explicit_defaults
// CHECK: linattn.attention
// CHECK-NOT: decay
// CHECK-NOT: feature_map
// CHECK-SAME: :
func.func @attention_explicit_defaults(%q: tensor<1x2x16x8xf32>) -> (tensor<1x2x16x8xf32>, tensor<1x2x8x8xf32>) {
  %o, %s = linattn.attention %q, %q, %q {decay = #linattn.decay<none>, feature_map = #linattn.feature_map<identity>, normalization = #linattn.norm<none>, layout = #linattn.layout<bhtd>, state_layout = #linattn.state_layout<key_major>, causal = true} : tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32> -> tensor<1x2x16x8xf32>, tensor<1x2x8x8xf32>
  return %o, %s : tensor<1x2x16x8xf32>, tensor<1x2x8x8xf32>
}

// -----

// Constant decay given by a named schedule (RetNet), bf16 inputs, Dk != Dv.
// CHECK-LABEL: func.func @attention_constant_retnet
// CHECK: decay = #linattn.decay<constant, schedule = retnet>
// CHECK-SAME: scale = 1.250000e-01 : f64
func.func @attention_constant_retnet(%q: tensor<2x8x64x64xbf16>, %v: tensor<2x8x64x32xbf16>) -> (tensor<2x8x64x32xbf16>, tensor<2x8x64x32xf32>) {
  %o, %s = linattn.attention %q, %q, %v {decay = #linattn.decay<constant, schedule = retnet>, scale = 0.125 : f64} : tensor<2x8x64x64xbf16>, tensor<2x8x64x64xbf16>, tensor<2x8x64x32xbf16> -> tensor<2x8x64x32xbf16>, tensor<2x8x64x32xf32>
  return %o, %s : tensor<2x8x64x32xbf16>, tensor<2x8x64x32xf32>
}

// -----

// The layered schedules carry the layer index and count.
// CHECK-LABEL: func.func @attention_constant_layered
// CHECK: #linattn.decay<constant, schedule = transnormer, layer = 3, num_layers = 24>
// CHECK: #linattn.decay<constant, schedule = lightning, num_layers = 12>
// CHECK: #linattn.decay<constant, schedule = retnet_linspace>
func.func @attention_constant_layered(%q: tensor<1x8x16x16xf16>) -> (tensor<1x8x16x16xf16>, tensor<1x8x16x16xf16>, tensor<1x8x16x16xf16>) {
  %o0, %s0 = linattn.attention %q, %q, %q {decay = #linattn.decay<constant, schedule = transnormer, layer = 3, num_layers = 24>} : tensor<1x8x16x16xf16>, tensor<1x8x16x16xf16>, tensor<1x8x16x16xf16> -> tensor<1x8x16x16xf16>, tensor<1x8x16x16xf32>
  %o1, %s1 = linattn.attention %q, %q, %q {decay = #linattn.decay<constant, schedule = lightning, num_layers = 12>} : tensor<1x8x16x16xf16>, tensor<1x8x16x16xf16>, tensor<1x8x16x16xf16> -> tensor<1x8x16x16xf16>, tensor<1x8x16x16xf32>
  %o2, %s2 = linattn.attention %q, %q, %q {decay = #linattn.decay<constant, schedule = retnet_linspace>} : tensor<1x8x16x16xf16>, tensor<1x8x16x16xf16>, tensor<1x8x16x16xf16> -> tensor<1x8x16x16xf16>, tensor<1x8x16x16xf32>
  return %o0, %o1, %o2 : tensor<1x8x16x16xf16>, tensor<1x8x16x16xf16>, tensor<1x8x16x16xf16>
}

// -----

// Constant decay from an explicit list, and from a per-head gate operand.
// CHECK-LABEL: func.func @attention_constant_explicit
// CHECK: #linattn.decay<constant, log_decay = [-5.000000e-01, -2.500000e-01]>
// CHECK: gate(%{{.*}} : tensor<2xf32>) {decay = #linattn.decay<constant>}
func.func @attention_constant_explicit(%q: tensor<1x2x16x8xf32>, %g: tensor<2xf32>) -> (tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>) {
  %o0, %s0 = linattn.attention %q, %q, %q {decay = #linattn.decay<constant, log_decay = [-0.5, -0.25]>} : tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32> -> tensor<1x2x16x8xf32>, tensor<1x2x8x8xf32>
  %o1, %s1 = linattn.attention %q, %q, %q gate(%g : tensor<2xf32>) {decay = #linattn.decay<constant>} : tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32> -> tensor<1x2x16x8xf32>, tensor<1x2x8x8xf32>
  return %o0, %o1 : tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>
}

// -----

// Data-dependent scalar gate (Mamba2 / simple GLA) with a dynamic batch and
// length, an initial state and a chunking hint.
// CHECK-LABEL: func.func @attention_scalar_gate
// CHECK: linattn.attention %{{.*}}, %{{.*}}, %{{.*}} gate(%{{.*}} : tensor<?x4x?xf32>) initial_state(%{{.*}} : tensor<?x4x16x16xf32>)
// CHECK-SAME: chunking = #linattn.chunking<size = 64>
// CHECK-SAME: decay = #linattn.decay<scalar, clamp_min = -5.000000e+00>
func.func @attention_scalar_gate(%q: tensor<?x4x?x16xbf16>, %g: tensor<?x4x?xf32>, %s0: tensor<?x4x16x16xf32>) -> (tensor<?x4x?x16xbf16>, tensor<?x4x16x16xf32>) {
  %o, %s = linattn.attention %q, %q, %q gate(%g : tensor<?x4x?xf32>) initial_state(%s0 : tensor<?x4x16x16xf32>) {decay = #linattn.decay<scalar, clamp_min = -5.0>, chunking = #linattn.chunking<size = 64>} : tensor<?x4x?x16xbf16>, tensor<?x4x?x16xbf16>, tensor<?x4x?x16xbf16> -> tensor<?x4x?x16xbf16>, tensor<?x4x16x16xf32>
  return %o, %s : tensor<?x4x?x16xbf16>, tensor<?x4x16x16xf32>
}

// -----

// Vector gate (GLA) with secondary chunking, FLA's [B, T, H, D] layout.
// CHECK-LABEL: func.func @attention_vector_gate_bthd
// CHECK: linattn.attention
// CHECK-SAME: chunking = #linattn.chunking<size = 64, sub_size = 16>
// CHECK-SAME: decay = #linattn.decay<vector>
// CHECK-SAME: layout = #linattn.layout<bthd>
func.func @attention_vector_gate_bthd(%q: tensor<2x128x4x32xbf16>, %g: tensor<2x128x4x32xf32>) -> (tensor<2x128x4x32xbf16>, tensor<2x4x32x32xf32>) {
  %o, %s = linattn.attention %q, %q, %q gate(%g : tensor<2x128x4x32xf32>) {decay = #linattn.decay<vector>, layout = #linattn.layout<bthd>, chunking = #linattn.chunking<size = 64, sub_size = 16>} : tensor<2x128x4x32xbf16>, tensor<2x128x4x32xbf16>, tensor<2x128x4x32xbf16> -> tensor<2x128x4x32xbf16>, tensor<2x4x32x32xf32>
  return %o, %s : tensor<2x128x4x32xbf16>, tensor<2x4x32x32xf32>
}

// -----

// Delta rule and gated delta rule (beta operand, value-major state).
// CHECK-LABEL: func.func @attention_delta_rules
// CHECK: beta(%{{.*}} : tensor<1x2x16xf32>) {decay = #linattn.decay<delta>}
// CHECK: gate(%{{.*}} : tensor<1x2x16xf32>) beta(%{{.*}} : tensor<1x2x16xbf16>) {decay = #linattn.decay<gated_delta>, state_layout = #linattn.state_layout<value_major>}
func.func @attention_delta_rules(%q: tensor<1x2x16x8xbf16>, %v: tensor<1x2x16x4xbf16>, %g: tensor<1x2x16xf32>, %b: tensor<1x2x16xbf16>) -> (tensor<1x2x8x4xf32>, tensor<1x2x4x8xf32>) {
  %o0, %s0 = linattn.attention %q, %q, %v beta(%g : tensor<1x2x16xf32>) {decay = #linattn.decay<delta>} : tensor<1x2x16x8xbf16>, tensor<1x2x16x8xbf16>, tensor<1x2x16x4xbf16> -> tensor<1x2x16x4xbf16>, tensor<1x2x8x4xf32>
  %o1, %s1 = linattn.attention %q, %q, %v gate(%g : tensor<1x2x16xf32>) beta(%b : tensor<1x2x16xbf16>) {decay = #linattn.decay<gated_delta>, state_layout = #linattn.state_layout<value_major>} : tensor<1x2x16x8xbf16>, tensor<1x2x16x8xbf16>, tensor<1x2x16x4xbf16> -> tensor<1x2x16x4xbf16>, tensor<1x2x4x8xf32>
  return %s0, %s1 : tensor<1x2x8x4xf32>, tensor<1x2x4x8xf32>
}

// -----

// Katharopoulos normalization carries the normalizer state z.
// CHECK-LABEL: func.func @attention_normalized
// CHECK: initial_normalizer(%{{.*}} : tensor<2x4x8xf32>)
// CHECK-SAME: eps = 9.9999999999999995E-7 : f64, feature_map = #linattn.feature_map<elu_plus_one>, normalization = #linattn.norm<katharopoulos>
// CHECK-SAME: -> tensor<2x4x16x8xf32>, tensor<2x4x8x8xf32>, tensor<2x4x8xf32>
func.func @attention_normalized(%q: tensor<2x4x16x8xf32>, %z0: tensor<2x4x8xf32>) -> tensor<2x4x8xf32> {
  %o, %s, %z = linattn.attention %q, %q, %q initial_normalizer(%z0 : tensor<2x4x8xf32>) {normalization = #linattn.norm<katharopoulos>, feature_map = #linattn.feature_map<elu_plus_one>, eps = 1.0e-6 : f64} : tensor<2x4x16x8xf32>, tensor<2x4x16x8xf32>, tensor<2x4x16x8xf32> -> tensor<2x4x16x8xf32>, tensor<2x4x8x8xf32>, tensor<2x4x8xf32>
  return %z : tensor<2x4x8xf32>
}

// -----

// Non-causal attention and the strictly causal (exclusive) read.
// CHECK-LABEL: func.func @attention_causality
// CHECK: {causal = false, feature_map = #linattn.feature_map<relu>}
// CHECK: {exclusive}
func.func @attention_causality(%q: tensor<1x2x16x8xf32>) -> (tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>) {
  %o0, %s0 = linattn.attention %q, %q, %q {causal = false, feature_map = #linattn.feature_map<relu>} : tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32> -> tensor<1x2x16x8xf32>, tensor<1x2x8x8xf32>
  %o1, %s1 = linattn.attention %q, %q, %q {exclusive} : tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32> -> tensor<1x2x16x8xf32>, tensor<1x2x8x8xf32>
  return %o0, %o1 : tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>
}

// -----

// Grouped-query (q has more heads) and grouped-value (v has more heads).
// CHECK-LABEL: func.func @attention_grouped_heads
// CHECK: -> tensor<1x8x16x8xf32>, tensor<1x8x8x8xf32>
// CHECK: -> tensor<1x4x16x8xf32>, tensor<1x4x8x8xf32>
func.func @attention_grouped_heads(%q8: tensor<1x8x16x8xf32>, %k2: tensor<1x2x16x8xf32>, %q1: tensor<1x1x16x8xf32>, %v4: tensor<1x4x16x8xf32>) -> (tensor<1x8x16x8xf32>, tensor<1x4x16x8xf32>) {
  %o0, %s0 = linattn.attention %q8, %k2, %k2 : tensor<1x8x16x8xf32>, tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32> -> tensor<1x8x16x8xf32>, tensor<1x8x8x8xf32>
  %o1, %s1 = linattn.attention %q1, %q1, %v4 : tensor<1x1x16x8xf32>, tensor<1x1x16x8xf32>, tensor<1x4x16x8xf32> -> tensor<1x4x16x8xf32>, tensor<1x4x8x8xf32>
  return %o0, %o1 : tensor<1x8x16x8xf32>, tensor<1x4x16x8xf32>
}

// -----

// Packed variable-length sequences: B = 1, one state per sequence.
// CHECK-LABEL: func.func @attention_varlen
// CHECK: offsets(%{{.*}} : tensor<4xi32>)
// CHECK-SAME: -> tensor<1x2x100x8xf32>, tensor<3x2x8x8xf32>
func.func @attention_varlen(%q: tensor<1x2x100x8xf32>, %off: tensor<4xi32>, %s0: tensor<3x2x8x8xf32>) -> tensor<3x2x8x8xf32> {
  %o, %s = linattn.attention %q, %q, %q initial_state(%s0 : tensor<3x2x8x8xf32>) offsets(%off : tensor<4xi32>) : tensor<1x2x100x8xf32>, tensor<1x2x100x8xf32>, tensor<1x2x100x8xf32> -> tensor<1x2x100x8xf32>, tensor<3x2x8x8xf32>
  return %s : tensor<3x2x8x8xf32>
}

// -----

// f64 inputs keep f64 states (the reference precision).
// CHECK-LABEL: func.func @attention_f64
// CHECK: -> tensor<1x1x4x2xf64>, tensor<1x1x2x2xf64>
func.func @attention_f64(%q: tensor<1x1x4x2xf64>) -> tensor<1x1x2x2xf64> {
  %o, %s = linattn.attention %q, %q, %q : tensor<1x1x4x2xf64>, tensor<1x1x4x2xf64>, tensor<1x1x4x2xf64> -> tensor<1x1x4x2xf64>, tensor<1x1x2x2xf64>
  return %s : tensor<1x1x2x2xf64>
}

// -----

// Every feature map kind, with its output width.
// CHECK-LABEL: func.func @feature_maps
// CHECK: linattn.feature_map %{{.*}} {kind = #linattn.feature_map<identity>} : tensor<2x4x8x16xf32> -> tensor<2x4x8x16xf32>
// CHECK: {kind = #linattn.feature_map<elu_plus_one>} : tensor<2x4x8x16xf32> -> tensor<2x4x8x16xf32>
// CHECK: {kind = #linattn.feature_map<relu>} : tensor<2x4x8x16xf32> -> tensor<2x4x8x16xf32>
// CHECK: {kind = #linattn.feature_map<taylor2>} : tensor<2x4x8x16xf32> -> tensor<2x4x8x273xf32>
// CHECK: {kind = #linattn.feature_map<taylor2_symmetric>} : tensor<2x4x8x16xf32> -> tensor<2x4x8x153xf32>
// CHECK: weight(%{{.*}} : tensor<4x16x32xf32>) bias(%{{.*}} : tensor<4x32xf32>) {kind = #linattn.feature_map<hedgehog>} : tensor<2x4x8x16xf32> -> tensor<2x4x8x64xf32>
// CHECK: weight(%{{.*}} : tensor<16x16xf32>) {kind = #linattn.feature_map<hedgehog_joint>} : tensor<2x4x8x16xf32> -> tensor<2x4x8x32xf32>
// CHECK: weight(%{{.*}} : tensor<64x16xf32>) {kind = #linattn.feature_map<performer>} : tensor<2x4x8x16xf32> -> tensor<2x4x8x64xf32>
// CHECK: weight(%{{.*}} : tensor<64x16xf32>) {kind = #linattn.feature_map<performer_hyperbolic>} : tensor<2x4x8x16xf32> -> tensor<2x4x8x128xf32>
func.func @feature_maps(%x: tensor<2x4x8x16xf32>, %wh: tensor<4x16x32xf32>, %bh: tensor<4x32xf32>, %wj: tensor<16x16xf32>, %wp: tensor<64x16xf32>) {
  %0 = linattn.feature_map %x {kind = #linattn.feature_map<identity>} : tensor<2x4x8x16xf32> -> tensor<2x4x8x16xf32>
  %1 = linattn.feature_map %x {kind = #linattn.feature_map<elu_plus_one>} : tensor<2x4x8x16xf32> -> tensor<2x4x8x16xf32>
  %2 = linattn.feature_map %x {kind = #linattn.feature_map<relu>} : tensor<2x4x8x16xf32> -> tensor<2x4x8x16xf32>
  %3 = linattn.feature_map %x {kind = #linattn.feature_map<taylor2>} : tensor<2x4x8x16xf32> -> tensor<2x4x8x273xf32>
  %4 = linattn.feature_map %x {kind = #linattn.feature_map<taylor2_symmetric>} : tensor<2x4x8x16xf32> -> tensor<2x4x8x153xf32>
  %5 = linattn.feature_map %x weight(%wh : tensor<4x16x32xf32>) bias(%bh : tensor<4x32xf32>) {kind = #linattn.feature_map<hedgehog>} : tensor<2x4x8x16xf32> -> tensor<2x4x8x64xf32>
  %6 = linattn.feature_map %x weight(%wj : tensor<16x16xf32>) {kind = #linattn.feature_map<hedgehog_joint>} : tensor<2x4x8x16xf32> -> tensor<2x4x8x32xf32>
  %7 = linattn.feature_map %x weight(%wp : tensor<64x16xf32>) {kind = #linattn.feature_map<performer>} : tensor<2x4x8x16xf32> -> tensor<2x4x8x64xf32>
  %8 = linattn.feature_map %x weight(%wp : tensor<64x16xf32>) {kind = #linattn.feature_map<performer_hyperbolic>} : tensor<2x4x8x16xf32> -> tensor<2x4x8x128xf32>
  return
}

// -----

// A Based-style pipeline: Taylor feature map feeding the attention op.
// CHECK-LABEL: func.func @feature_map_into_attention
// CHECK: %[[PHI:.*]] = linattn.feature_map
// CHECK: linattn.attention %[[PHI]], %[[PHI]], %{{.*}} {normalization = #linattn.norm<katharopoulos>}
func.func @feature_map_into_attention(%x: tensor<1x2x8x4xf32>, %v: tensor<1x2x8x4xf32>) -> tensor<1x2x8x4xf32> {
  %phi = linattn.feature_map %x {kind = #linattn.feature_map<taylor2>} : tensor<1x2x8x4xf32> -> tensor<1x2x8x21xf32>
  %o, %s, %z = linattn.attention %phi, %phi, %v {feature_map = #linattn.feature_map<identity>, normalization = #linattn.norm<katharopoulos>} : tensor<1x2x8x21xf32>, tensor<1x2x8x21xf32>, tensor<1x2x8x4xf32> -> tensor<1x2x8x4xf32>, tensor<1x2x21x4xf32>, tensor<1x2x21xf32>
  return %o : tensor<1x2x8x4xf32>
}
