// A GLA layer (FLA's chunk_gla): per-key-channel data-dependent gates
// (log-gates [B, H, T, Dk] <= 0), identity feature map, FLA's [B, T, H, D]
// layout, query scale Dk^-1/2 (the default), fp32, chunk 64 with secondary
// chunks of 16 (MATH.md 6.3).
func.func @gla(%q: tensor<1x?x8x128xf32>, %k: tensor<1x?x8x128xf32>,
               %v: tensor<1x?x8x128xf32>, %g: tensor<1x?x8x128xf32>)
    -> (tensor<1x?x8x128xf32>, tensor<1x8x128x128xf32>) {
  %o, %s = linattn.attention %q, %k, %v gate(%g : tensor<1x?x8x128xf32>)
      {decay = #linattn.decay<vector>, layout = #linattn.layout<bthd>,
       chunking = #linattn.chunking<size = 64, sub_size = 16>}
      : tensor<1x?x8x128xf32>, tensor<1x?x8x128xf32>, tensor<1x?x8x128xf32>
      -> tensor<1x?x8x128xf32>, tensor<1x8x128x128xf32>
  return %o, %s : tensor<1x?x8x128xf32>, tensor<1x8x128x128xf32>
}
