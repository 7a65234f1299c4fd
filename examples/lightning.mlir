// A Lightning / RetNet-style layer: identity feature map, constant per-head
// decay from the RetNet schedule (lambda_h = 1 - 2^(-5-h)), bf16 inputs,
// fp32 state, chunked with C = 64, carrying an initial state.
func.func @lightning(%q: tensor<1x8x?x64xbf16>, %k: tensor<1x8x?x64xbf16>,
                     %v: tensor<1x8x?x64xbf16>, %s0: tensor<1x8x64x64xf32>)
    -> (tensor<1x8x?x64xbf16>, tensor<1x8x64x64xf32>) {
  %o, %s = linattn.attention %q, %k, %v initial_state(%s0 : tensor<1x8x64x64xf32>)
      {decay = #linattn.decay<constant, schedule = retnet>,
       chunking = #linattn.chunking<size = 64>, scale = 0.125 : f64}
      : tensor<1x8x?x64xbf16>, tensor<1x8x?x64xbf16>, tensor<1x8x?x64xbf16>
      -> tensor<1x8x?x64xbf16>, tensor<1x8x64x64xf32>
  return %o, %s : tensor<1x8x?x64xbf16>, tensor<1x8x64x64xf32>
}
