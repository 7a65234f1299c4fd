// RUN: linattn-opt %s --linattn-chunk='chunk-size=64 sub-chunk-size=24' --split-input-file --verify-diagnostics

func.func @bad_sub_chunk(%q: tensor<1x2x8x16xf32>, %k: tensor<1x2x8x16xf32>, %v: tensor<1x2x8x16xf32>, %g: tensor<1x2x8x16xf32>) -> (tensor<1x2x8x16xf32>, tensor<1x2x16x16xf32>) {
  // expected-error @+1 {{sub-chunk size 24 must divide the chunk size 64}}
  %o, %s = linattn.attention %q, %k, %v gate(%g : tensor<1x2x8x16xf32>) {decay = #linattn.decay<vector>}
      : tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32> -> tensor<1x2x8x16xf32>, tensor<1x2x16x16xf32>
  return %o, %s : tensor<1x2x8x16xf32>, tensor<1x2x16x16xf32>
}
