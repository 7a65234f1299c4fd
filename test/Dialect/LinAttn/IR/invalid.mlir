// RUN: linattn-opt %s -split-input-file -verify-diagnostics
// Every verifier diagnostic of the linattn dialect, one case each.
// Unknown decay kind.
// expected-error @below {{unknown decay kind 'expo'}}
func.func @negative_attr_1() attributes {a = #linattn.decay<expo>} {
  return
}

// -----

// Unknown schedule name.
// expected-error @below {{unknown decay schedule 'alibi'}}
func.func @negative_attr_2() attributes {a = #linattn.decay<constant, schedule = alibi>} {
  return
}

// -----

// Unknown decay parameter.
// expected-error @below {{unknown decay parameter 'rate'}}
func.func @negative_attr_3() attributes {a = #linattn.decay<constant, rate = 1>} {
  return
}

// -----

// Schedules only make sense for constant decays.
// expected-error @below {{'schedule' and 'log_decay' are only valid for a 'constant' decay, not 'scalar'}}
func.func @negative_attr_4() attributes {a = #linattn.decay<scalar, schedule = retnet>} {
  return
}

// -----

// Two sources for the same per-head decay.
// expected-error @below {{give either 'schedule' or 'log_decay', not both}}
func.func @negative_attr_5() attributes {a = #linattn.decay<constant, schedule = retnet, log_decay = [-1.0]>} {
  return
}

// -----

// layer is meaningless for RetNet.
// expected-error @below {{'layer' and 'num_layers' are only valid with the 'transnormer' and 'lightning' schedules}}
func.func @negative_attr_6() attributes {a = #linattn.decay<constant, schedule = retnet, layer = 1>} {
  return
}

// -----

// Lightning divides by L - 1.
// expected-error @below {{schedule 'lightning' needs 'num_layers' >= 2, got 1}}
func.func @negative_attr_7() attributes {a = #linattn.decay<constant, schedule = lightning, num_layers = 1>} {
  return
}

// -----

// Layer index out of range.
// expected-error @below {{'layer' must be in [0, 4), got 4}}
func.func @negative_attr_8() attributes {a = #linattn.decay<constant, schedule = transnormer, layer = 4, num_layers = 4>} {
  return
}

// -----

// Positive log-decay is growth (MATH 9.2).
// expected-error @below {{entry 1 is 5.000000e-01}}
func.func @negative_attr_9() attributes {a = #linattn.decay<constant, log_decay = [-1.0, 0.5]>} {
  return
}

// -----

// clamp_min needs a data-dependent gate.
// expected-error @below {{'clamp_min' is only valid for data-dependent gates}}
func.func @negative_attr_10() attributes {a = #linattn.decay<constant, clamp_min = -5.0>} {
  return
}

// -----

// clamp_min must be negative.
// expected-error @below {{'clamp_min' must be a finite negative log-gate, got 1.000000e+00}}
func.func @negative_attr_11() attributes {a = #linattn.decay<vector, clamp_min = 1.0>} {
  return
}

// -----

// Chunk size must be positive.
// expected-error @below {{chunk 'size' must be >= 1, got 0}}
func.func @negative_attr_12() attributes {a = #linattn.chunking<size = 0>} {
  return
}

// -----

// Sub-chunks must tile the chunk.
// expected-error @below {{'sub_size' must divide the chunk size 64, got 24}}
func.func @negative_attr_13() attributes {a = #linattn.chunking<size = 64, sub_size = 24>} {
  return
}

// -----

// q must be rank 4.
func.func @negative_attention_14(%q: tensor<2x8x4xf32>, %k: tensor<1x2x8x4xf32>, %v: tensor<1x2x8x4xf32>) {
  // expected-error @below {{'q' must have rank 4 (bhtd layout), got rank 3}}
  %o, %s = linattn.attention %q, %k, %v : tensor<2x8x4xf32>, tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32> -> tensor<1x2x8x4xf32>, tensor<1x2x4x4xf32>
  return
}

// -----

// Mixed input precisions.
func.func @negative_attention_15(%q: tensor<1x2x8x4xf32>, %k: tensor<1x2x8x4xf32>, %v: tensor<1x2x8x4xbf16>) {
  // expected-error @below {{'q', 'k' and 'v' must share one element type; 'q' is 'f32' but 'v' is 'bf16'}}
  %o, %s = linattn.attention %q, %k, %v : tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32>, tensor<1x2x8x4xbf16> -> tensor<1x2x8x4xf32>, tensor<1x2x4x4xf32>
  return
}

// -----

// Heads and feature dims select the kernel and must be static.
func.func @negative_attention_16(%q: tensor<1x2x8x4xf32>, %k: tensor<1x2x8x?xf32>, %v: tensor<1x2x8x4xf32>) {
  // expected-error @below {{'k' must have static head and feature dims, got [1, 2, 8, ?]}}
  %o, %s = linattn.attention %q, %k, %v : tensor<1x2x8x4xf32>, tensor<1x2x8x?xf32>, tensor<1x2x8x4xf32> -> tensor<1x2x8x4xf32>, tensor<1x2x4x4xf32>
  return
}

// -----

// Batch sizes disagree.
func.func @negative_attention_17(%q: tensor<1x2x8x4xf32>, %k: tensor<2x2x8x4xf32>, %v: tensor<1x2x8x4xf32>) {
  // expected-error @below {{'q', 'k' and 'v' must have the same batch size, got 1, 2, 1}}
  %o, %s = linattn.attention %q, %k, %v : tensor<1x2x8x4xf32>, tensor<2x2x8x4xf32>, tensor<1x2x8x4xf32> -> tensor<1x2x8x4xf32>, tensor<1x2x4x4xf32>
  return
}

// -----

// Lengths disagree.
func.func @negative_attention_18(%q: tensor<1x2x8x4xf32>, %k: tensor<1x2x8x4xf32>, %v: tensor<1x2x9x4xf32>) {
  // expected-error @below {{'q', 'k' and 'v' must have the same sequence length, got 8, 8, 9}}
  %o, %s = linattn.attention %q, %k, %v : tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32>, tensor<1x2x9x4xf32> -> tensor<1x2x8x4xf32>, tensor<1x2x4x4xf32>
  return
}

// -----

// Query and key widths disagree.
func.func @negative_attention_19(%q: tensor<1x2x8x4xf32>, %k: tensor<1x2x8x5xf32>, %v: tensor<1x2x8x4xf32>) {
  // expected-error @below {{'q' and 'k' must have the same key dim, got 4 and 5}}
  %o, %s = linattn.attention %q, %k, %v : tensor<1x2x8x4xf32>, tensor<1x2x8x5xf32>, tensor<1x2x8x4xf32> -> tensor<1x2x8x4xf32>, tensor<1x2x4x4xf32>
  return
}

// -----

// 3 key heads cannot be shared evenly by 4 query heads.
func.func @negative_attention_20(%q: tensor<1x4x8x4xf32>, %k: tensor<1x3x8x4xf32>, %v: tensor<1x2x8x4xf32>) {
  // expected-error @below {{the head count of 'k' (3) must divide the number of heads H = 4}}
  %o, %s = linattn.attention %q, %k, %v : tensor<1x4x8x4xf32>, tensor<1x3x8x4xf32>, tensor<1x2x8x4xf32> -> tensor<1x4x8x4xf32>, tensor<1x4x4x4xf32>
  return
}

// -----

// Output must follow v with H heads.
func.func @negative_attention_21(%q: tensor<1x2x8x4xf32>, %k: tensor<1x2x8x4xf32>, %v: tensor<1x2x8x4xf32>) {
  // expected-error @below {{'output' must have shape [1, 2, 8, 4] (output has the layout of 'v' with H heads), got [1, 2, 8, 3]}}
  %o, %s = linattn.attention %q, %k, %v : tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32> -> tensor<1x2x8x3xf32>, tensor<1x2x4x4xf32>
  return
}

// -----

// Output keeps the input precision.
func.func @negative_attention_22(%q: tensor<1x2x8x4xf32>, %k: tensor<1x2x8x4xf32>, %v: tensor<1x2x8x4xf32>) {
  // expected-error @below {{'output' must have element type 'f32', got 'f16'}}
  %o, %s = linattn.attention %q, %k, %v : tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32> -> tensor<1x2x8x4xf16>, tensor<1x2x4x4xf32>
  return
}

// -----

// The state is Dk x Dv.
func.func @negative_attention_23(%q: tensor<1x2x8x4xf32>, %k: tensor<1x2x8x4xf32>, %v: tensor<1x2x8x3xf32>) {
  // expected-error @below {{'final_state' must have shape [1, 2, 4, 3] ([N, H, Dk, Dv] key_major state), got [1, 2, 3, 4]}}
  %o, %s = linattn.attention %q, %k, %v : tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32>, tensor<1x2x8x3xf32> -> tensor<1x2x8x3xf32>, tensor<1x2x3x4xf32>
  return
}

// -----

// States are fp32 for low-precision inputs.
func.func @negative_attention_24(%q: tensor<1x2x8x4xbf16>, %k: tensor<1x2x8x4xbf16>, %v: tensor<1x2x8x4xbf16>) {
  // expected-error @below {{'final_state' must have element type 'f32', got 'bf16'}}
  %o, %s = linattn.attention %q, %k, %v : tensor<1x2x8x4xbf16>, tensor<1x2x8x4xbf16>, tensor<1x2x8x4xbf16> -> tensor<1x2x8x4xbf16>, tensor<1x2x4x4xbf16>
  return
}

// -----

// Initial state in the value-major layout has the transposed shape.
func.func @negative_attention_25(%q: tensor<1x2x8x4xf32>, %k: tensor<1x2x8x4xf32>, %v: tensor<1x2x8x3xf32>, %s0: tensor<1x2x4x3xf32>) {
  // expected-error @below {{'initial_state' must have shape [1, 2, 3, 4] ([N, H, Dv, Dk] value_major state), got [1, 2, 4, 3]}}
  %o, %s = linattn.attention %q, %k, %v initial_state(%s0 : tensor<1x2x4x3xf32>) {state_layout = #linattn.state_layout<value_major>} : tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32>, tensor<1x2x8x3xf32> -> tensor<1x2x8x3xf32>, tensor<1x2x3x4xf32>
  return
}

// -----

// offsets must be 1-D.
func.func @negative_attention_26(%q: tensor<1x2x8x4xf32>, %k: tensor<1x2x8x4xf32>, %v: tensor<1x2x8x4xf32>, %off: tensor<2x2xi32>) {
  // expected-error @below {{'offsets' must be a 1-D tensor of sequence boundaries (cu_seqlens), got rank 2}}
  %o, %s = linattn.attention %q, %k, %v offsets(%off : tensor<2x2xi32>) : tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32> -> tensor<1x2x8x4xf32>, tensor<1x2x4x4xf32>
  return
}

// -----

// Packed sequences live in one batch row.
func.func @negative_attention_27(%q: tensor<2x2x8x4xf32>, %k: tensor<2x2x8x4xf32>, %v: tensor<2x2x8x4xf32>, %off: tensor<3xi32>) {
  // expected-error @below {{with 'offsets' (packed variable-length sequences) the batch size must be 1, got 2}}
  %o, %s = linattn.attention %q, %k, %v offsets(%off : tensor<3xi32>) : tensor<2x2x8x4xf32>, tensor<2x2x8x4xf32>, tensor<2x2x8x4xf32> -> tensor<2x2x8x4xf32>, tensor<2x2x4x4xf32>
  return
}

// -----

// offsets needs N + 1 >= 2 boundaries.
func.func @negative_attention_28(%q: tensor<1x2x8x4xf32>, %k: tensor<1x2x8x4xf32>, %v: tensor<1x2x8x4xf32>, %off: tensor<1xi64>) {
  // expected-error @below {{'offsets' must hold at least 2 entries (N + 1 boundaries), got 1}}
  %o, %s = linattn.attention %q, %k, %v offsets(%off : tensor<1xi64>) : tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32> -> tensor<1x2x8x4xf32>, tensor<1x2x4x4xf32>
  return
}

// -----

// One state per packed sequence.
func.func @negative_attention_29(%q: tensor<1x2x8x4xf32>, %k: tensor<1x2x8x4xf32>, %v: tensor<1x2x8x4xf32>, %off: tensor<4xi32>) {
  // expected-error @below {{'final_state' must have shape [3, 2, 4, 4]}}
  %o, %s = linattn.attention %q, %k, %v offsets(%off : tensor<4xi32>) : tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32> -> tensor<1x2x8x4xf32>, tensor<1x2x4x4xf32>
  return
}

// -----

// The normalized form returns z.
func.func @negative_attention_30(%q: tensor<1x2x8x4xf32>, %k: tensor<1x2x8x4xf32>, %v: tensor<1x2x8x4xf32>) {
  // expected-error @below {{a normalized op must return the final normalizer as a third result}}
  %o, %s = linattn.attention %q, %k, %v {normalization = #linattn.norm<katharopoulos>, feature_map = #linattn.feature_map<elu_plus_one>} : tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32> -> tensor<1x2x8x4xf32>, tensor<1x2x4x4xf32>
  return
}

// -----

// z without normalization.
func.func @negative_attention_31(%q: tensor<1x2x8x4xf32>, %k: tensor<1x2x8x4xf32>, %v: tensor<1x2x8x4xf32>) {
  // expected-error @below {{'final_normalizer' result requires normalization = katharopoulos}}
  %o, %s, %z = linattn.attention %q, %k, %v : tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32> -> tensor<1x2x8x4xf32>, tensor<1x2x4x4xf32>, tensor<1x2x4xf32>
  return
}

// -----

// z0 without normalization.
func.func @negative_attention_32(%q: tensor<1x2x8x4xf32>, %k: tensor<1x2x8x4xf32>, %v: tensor<1x2x8x4xf32>, %z0: tensor<1x2x4xf32>) {
  // expected-error @below {{'initial_normalizer' requires normalization = katharopoulos}}
  %o, %s = linattn.attention %q, %k, %v initial_normalizer(%z0 : tensor<1x2x4xf32>) : tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32> -> tensor<1x2x8x4xf32>, tensor<1x2x4x4xf32>
  return
}

// -----

// z is [N, H, Dk].
func.func @negative_attention_33(%q: tensor<1x2x8x4xf32>, %k: tensor<1x2x8x4xf32>, %v: tensor<1x2x8x4xf32>) {
  // expected-error @below {{'final_normalizer' must have shape [1, 2, 4] ([N, H, Dk] normalizer state), got [1, 2, 5]}}
  %o, %s, %z = linattn.attention %q, %k, %v {normalization = #linattn.norm<katharopoulos>, feature_map = #linattn.feature_map<relu>} : tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32> -> tensor<1x2x8x4xf32>, tensor<1x2x4x4xf32>, tensor<1x2x5xf32>
  return
}

// -----

// No gate for the plain form.
func.func @negative_attention_34(%q: tensor<1x2x8x4xf32>, %k: tensor<1x2x8x4xf32>, %v: tensor<1x2x8x4xf32>, %g: tensor<1x2x8xf32>) {
  // expected-error @below {{decay 'none' takes no 'gate' operand}}
  %o, %s = linattn.attention %q, %k, %v gate(%g : tensor<1x2x8xf32>) : tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32> -> tensor<1x2x8x4xf32>, tensor<1x2x4x4xf32>
  return
}

// -----

// A scheduled constant decay takes no gate.
func.func @negative_attention_35(%q: tensor<1x2x8x4xf32>, %k: tensor<1x2x8x4xf32>, %v: tensor<1x2x8x4xf32>, %g: tensor<2xf32>) {
  // expected-error @below {{decay 'constant' takes no 'gate' operand (its schedule or log_decay gives the per-head decay)}}
  %o, %s = linattn.attention %q, %k, %v gate(%g : tensor<2xf32>) {decay = #linattn.decay<constant, schedule = retnet>} : tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32> -> tensor<1x2x8x4xf32>, tensor<1x2x4x4xf32>
  return
}

// -----

// Data-dependent gates need their operand.
func.func @negative_attention_36(%q: tensor<1x2x8x4xf32>, %k: tensor<1x2x8x4xf32>, %v: tensor<1x2x8x4xf32>) {
  // expected-error @below {{decay 'scalar' requires a 'gate' operand}}
  %o, %s = linattn.attention %q, %k, %v {decay = #linattn.decay<scalar>} : tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32> -> tensor<1x2x8x4xf32>, tensor<1x2x4x4xf32>
  return
}

// -----

// Vector gates carry one log-gate per key channel.
func.func @negative_attention_37(%q: tensor<1x2x8x4xf32>, %k: tensor<1x2x8x4xf32>, %v: tensor<1x2x8x4xf32>, %g: tensor<1x2x8xf32>) {
  // expected-error @below {{'gate' must have shape [1, 2, 8, 4] (log-gates for decay 'vector'), got [1, 2, 8]}}
  %o, %s = linattn.attention %q, %k, %v gate(%g : tensor<1x2x8xf32>) {decay = #linattn.decay<vector>} : tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32> -> tensor<1x2x8x4xf32>, tensor<1x2x4x4xf32>
  return
}

// -----

// Gates in bthd layout are [B, T, H].
func.func @negative_attention_38(%q: tensor<1x8x2x4xf32>, %k: tensor<1x8x2x4xf32>, %v: tensor<1x8x2x4xf32>, %g: tensor<1x2x8xf32>) {
  // expected-error @below {{'gate' must have shape [1, 8, 2] (log-gates for decay 'scalar'), got [1, 2, 8]}}
  %o, %s = linattn.attention %q, %k, %v gate(%g : tensor<1x2x8xf32>) {decay = #linattn.decay<scalar>, layout = #linattn.layout<bthd>} : tensor<1x8x2x4xf32>, tensor<1x8x2x4xf32>, tensor<1x8x2x4xf32> -> tensor<1x8x2x4xf32>, tensor<1x2x4x4xf32>
  return
}

// -----

// Gates are f32 or the input type.
func.func @negative_attention_39(%q: tensor<1x2x8x4xbf16>, %k: tensor<1x2x8x4xbf16>, %v: tensor<1x2x8x4xbf16>, %g: tensor<1x2x8xf16>) {
  // expected-error @below {{'gate' must have element type f32 or 'bf16' (the input type), got 'f16'}}
  %o, %s = linattn.attention %q, %k, %v gate(%g : tensor<1x2x8xf16>) {decay = #linattn.decay<scalar>} : tensor<1x2x8x4xbf16>, tensor<1x2x8x4xbf16>, tensor<1x2x8x4xbf16> -> tensor<1x2x8x4xbf16>, tensor<1x2x4x4xf32>
  return
}

// -----

// One explicit log-decay per head.
func.func @negative_attention_40(%q: tensor<1x2x8x4xf32>, %k: tensor<1x2x8x4xf32>, %v: tensor<1x2x8x4xf32>) {
  // expected-error @below {{'log_decay' must have one entry per head (2), got 3}}
  %o, %s = linattn.attention %q, %k, %v {decay = #linattn.decay<constant, log_decay = [-1.0, -2.0, -3.0]>} : tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32> -> tensor<1x2x8x4xf32>, tensor<1x2x4x4xf32>
  return
}

// -----

// beta only for delta rules.
func.func @negative_attention_41(%q: tensor<1x2x8x4xf32>, %k: tensor<1x2x8x4xf32>, %v: tensor<1x2x8x4xf32>, %g: tensor<1x2x8xf32>) {
  // expected-error @below {{a 'beta' operand is only valid for the delta rules, not scalar}}
  %o, %s = linattn.attention %q, %k, %v gate(%g : tensor<1x2x8xf32>) beta(%g : tensor<1x2x8xf32>) {decay = #linattn.decay<scalar>} : tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32> -> tensor<1x2x8x4xf32>, tensor<1x2x4x4xf32>
  return
}

// -----

// Delta rules need beta.
func.func @negative_attention_42(%q: tensor<1x2x8x4xf32>, %k: tensor<1x2x8x4xf32>, %v: tensor<1x2x8x4xf32>) {
  // expected-error @below {{decay 'delta' requires a 'beta' operand}}
  %o, %s = linattn.attention %q, %k, %v {decay = #linattn.decay<delta>} : tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32> -> tensor<1x2x8x4xf32>, tensor<1x2x4x4xf32>
  return
}

// -----

// beta is per token and head.
func.func @negative_attention_43(%q: tensor<1x2x8x4xf32>, %k: tensor<1x2x8x4xf32>, %v: tensor<1x2x8x4xf32>, %b: tensor<1x2x7xf32>) {
  // expected-error @below {{'beta' must have shape [1, 2, 8] (write strength per token), got [1, 2, 7]}}
  %o, %s = linattn.attention %q, %k, %v beta(%b : tensor<1x2x7xf32>) {decay = #linattn.decay<delta>} : tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32> -> tensor<1x2x8x4xf32>, tensor<1x2x4x4xf32>
  return
}

// -----

// beta element type.
func.func @negative_attention_44(%q: tensor<1x2x8x4xf64>, %k: tensor<1x2x8x4xf64>, %v: tensor<1x2x8x4xf64>, %b: tensor<1x2x8xf16>) {
  // expected-error @below {{'beta' must have element type f32 or 'f64' (the input type), got 'f16'}}
  %o, %s = linattn.attention %q, %k, %v beta(%b : tensor<1x2x8xf16>) {decay = #linattn.decay<delta>} : tensor<1x2x8x4xf64>, tensor<1x2x8x4xf64>, tensor<1x2x8x4xf64> -> tensor<1x2x8x4xf64>, tensor<1x2x4x4xf64>
  return
}

// -----

// Width-changing maps need the feature_map op.
func.func @negative_attention_45(%q: tensor<1x2x8x4xf32>, %k: tensor<1x2x8x4xf32>, %v: tensor<1x2x8x4xf32>) {
  // expected-error @below {{'feature_map' on the attention op must be an elementwise map (identity, elu_plus_one, relu); apply 'taylor2' with linattn.feature_map}}
  %o, %s = linattn.attention %q, %k, %v {feature_map = #linattn.feature_map<taylor2>} : tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32> -> tensor<1x2x8x4xf32>, tensor<1x2x4x4xf32>
  return
}

// -----

// The delta rules have no Katharopoulos normalizer.
func.func @negative_attention_46(%q: tensor<1x2x8x4xf32>, %k: tensor<1x2x8x4xf32>, %v: tensor<1x2x8x4xf32>, %b: tensor<1x2x8xf32>) {
  // expected-error @below {{normalization 'katharopoulos' is not defined for the delta rules}}
  %o, %s, %z = linattn.attention %q, %k, %v beta(%b : tensor<1x2x8xf32>) {decay = #linattn.decay<delta>, normalization = #linattn.norm<katharopoulos>} : tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32> -> tensor<1x2x8x4xf32>, tensor<1x2x4x4xf32>, tensor<1x2x4xf32>
  return
}

// -----

// eps must be positive.
func.func @negative_attention_47(%q: tensor<1x2x8x4xf32>, %k: tensor<1x2x8x4xf32>, %v: tensor<1x2x8x4xf32>) {
  // expected-error @below {{'eps' must be a finite positive number, got 0.000000e+00}}
  %o, %s, %z = linattn.attention %q, %k, %v {normalization = #linattn.norm<katharopoulos>, feature_map = #linattn.feature_map<relu>, eps = 0.0 : f64} : tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32> -> tensor<1x2x8x4xf32>, tensor<1x2x4x4xf32>, tensor<1x2x4xf32>
  return
}

// -----

// Bidirectional attention has no decay order.
func.func @negative_attention_48(%q: tensor<1x2x8x4xf32>, %k: tensor<1x2x8x4xf32>, %v: tensor<1x2x8x4xf32>) {
  // expected-error @below {{non-causal attention ('causal = false') is only defined without decay, got decay 'constant'}}
  %o, %s = linattn.attention %q, %k, %v {causal = false, decay = #linattn.decay<constant, log_decay = [-1.0, -1.0]>} : tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32> -> tensor<1x2x8x4xf32>, tensor<1x2x4x4xf32>
  return
}

// -----

// exclusive is a causal notion.
func.func @negative_attention_49(%q: tensor<1x2x8x4xf32>, %k: tensor<1x2x8x4xf32>, %v: tensor<1x2x8x4xf32>) {
  // expected-error @below {{'exclusive' requires causal attention}}
  %o, %s = linattn.attention %q, %k, %v {causal = false, exclusive} : tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32> -> tensor<1x2x8x4xf32>, tensor<1x2x4x4xf32>
  return
}

// -----

// Scale must be positive.
func.func @negative_attention_50(%q: tensor<1x2x8x4xf32>, %k: tensor<1x2x8x4xf32>, %v: tensor<1x2x8x4xf32>) {
  // expected-error @below {{'scale' must be a finite positive number, got -1.000000e+00}}
  %o, %s = linattn.attention %q, %k, %v {scale = -1.0 : f64} : tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32> -> tensor<1x2x8x4xf32>, tensor<1x2x4x4xf32>
  return
}

// -----

// The feature dim must be static.
func.func @negative_feature_map_51(%x: tensor<2x?xf32>) {
  // expected-error @below {{input must have a static last (feature) dim, got [2, ?]}}
  %r = linattn.feature_map %x {kind = #linattn.feature_map<relu>} : tensor<2x?xf32> -> tensor<2x?xf32>
  return
}

// -----

// Hedgehog is learned.
func.func @negative_feature_map_52(%x: tensor<2x4x8x16xf32>) {
  // expected-error @below {{feature map 'hedgehog' requires a 'weight' operand}}
  %r = linattn.feature_map %x {kind = #linattn.feature_map<hedgehog>} : tensor<2x4x8x16xf32> -> tensor<2x4x8x64xf32>
  return
}

// -----

// Weights are [d, f] or [H, d, f].
func.func @negative_feature_map_53(%x: tensor<2x4x8x16xf32>, %w: tensor<16xf32>) {
  // expected-error @below {{'weight' of 'hedgehog' must have rank 2, or rank 3 with a leading head dim for a [B, H, T, d] input; got rank 1}}
  %r = linattn.feature_map %x weight(%w : tensor<16xf32>) {kind = #linattn.feature_map<hedgehog>} : tensor<2x4x8x16xf32> -> tensor<2x4x8x64xf32>
  return
}

// -----

// Per-head weights must match the heads.
func.func @negative_feature_map_54(%x: tensor<2x4x8x16xf32>, %w: tensor<3x16x32xf32>) {
  // expected-error @below {{'weight' has 3 heads but the input has 4}}
  %r = linattn.feature_map %x weight(%w : tensor<3x16x32xf32>) {kind = #linattn.feature_map<hedgehog>} : tensor<2x4x8x16xf32> -> tensor<2x4x8x64xf32>
  return
}

// -----

// Performer projections are [m, d].
func.func @negative_feature_map_55(%x: tensor<2x4x8x16xf32>, %w: tensor<16x64xf32>) {
  // expected-error @below {{'weight' of 'performer' must be [m, d] with d = 16 and a static feature count, got [16, 64]}}
  %r = linattn.feature_map %x weight(%w : tensor<16x64xf32>) {kind = #linattn.feature_map<performer>} : tensor<2x4x8x16xf32> -> tensor<2x4x8x16xf32>
  return
}

// -----

// FLA's joint Hedgehog uses a square map.
func.func @negative_feature_map_56(%x: tensor<2x4x8x16xf32>, %w: tensor<16x8xf32>) {
  // expected-error @below {{'weight' of 'hedgehog_joint' must be square [d, d], got [16, 8]}}
  %r = linattn.feature_map %x weight(%w : tensor<16x8xf32>) {kind = #linattn.feature_map<hedgehog_joint>} : tensor<2x4x8x16xf32> -> tensor<2x4x8x32xf32>
  return
}

// -----

// Performer has no bias.
func.func @negative_feature_map_57(%x: tensor<2x4x8x16xf32>, %w: tensor<8x16xf32>, %b: tensor<8xf32>) {
  // expected-error @below {{'performer' takes no 'bias'}}
  %r = linattn.feature_map %x weight(%w : tensor<8x16xf32>) bias(%b : tensor<8xf32>) {kind = #linattn.feature_map<performer>} : tensor<2x4x8x16xf32> -> tensor<2x4x8x8xf32>
  return
}

// -----

// Bias has one entry per feature.
func.func @negative_feature_map_58(%x: tensor<2x4x8x16xf32>, %w: tensor<16x32xf32>, %b: tensor<16xf32>) {
  // expected-error @below {{'bias' must have shape [32] (one entry per feature), got [16]}}
  %r = linattn.feature_map %x weight(%w : tensor<16x32xf32>) bias(%b : tensor<16xf32>) {kind = #linattn.feature_map<hedgehog>} : tensor<2x4x8x16xf32> -> tensor<2x4x8x64xf32>
  return
}

// -----

// Fixed maps take no parameters.
func.func @negative_feature_map_59(%x: tensor<2x4x8x16xf32>, %w: tensor<16x16xf32>) {
  // expected-error @below {{feature map 'elu_plus_one' takes no 'weight' or 'bias'}}
  %r = linattn.feature_map %x weight(%w : tensor<16x16xf32>) {kind = #linattn.feature_map<elu_plus_one>} : tensor<2x4x8x16xf32> -> tensor<2x4x8x16xf32>
  return
}

// -----

// Taylor-2 widens d = 16 to 273.
func.func @negative_feature_map_60(%x: tensor<2x4x8x16xf32>) {
  // expected-error @below {{'result' must have shape [2, 4, 8, 273] (feature map 'taylor2' of width d = 16), got [2, 4, 8, 256]}}
  %r = linattn.feature_map %x {kind = #linattn.feature_map<taylor2>} : tensor<2x4x8x16xf32> -> tensor<2x4x8x256xf32>
  return
}

// -----

// The map keeps the element type.
func.func @negative_feature_map_61(%x: tensor<2x4x8x16xf32>) {
  // expected-error @below {{'result' must have element type 'f32', got 'bf16'}}
  %r = linattn.feature_map %x {kind = #linattn.feature_map<relu>} : tensor<2x4x8x16xf32> -> tensor<2x4x8x16xbf16>
  return
}

// -----

// A head dim of zero is not a problem size.
func.func @negative_attention_zero_heads(%q: tensor<1x0x8x4xf32>) {
  // expected-error @below {{'q' must have at least one head, got 0}}
  %o, %s = linattn.attention %q, %q, %q : tensor<1x0x8x4xf32>, tensor<1x0x8x4xf32>, tensor<1x0x8x4xf32> -> tensor<1x0x8x4xf32>, tensor<1x0x4x4xf32>
  return
}

// -----

// Element types outside f16/bf16/f32/f64 are rejected by the type constraint.
func.func @negative_attention_integer_inputs(%q: tensor<1x2x8x4xi32>) {
  // expected-error @below {{operand #0 must be ranked tensor of 16-bit float or bfloat16 type or 32-bit float or 64-bit float values}}
  %o, %s = linattn.attention %q, %q, %q : tensor<1x2x8x4xi32>, tensor<1x2x8x4xi32>, tensor<1x2x8x4xi32> -> tensor<1x2x8x4xi32>, tensor<1x2x4x4xf32>
  return
}
