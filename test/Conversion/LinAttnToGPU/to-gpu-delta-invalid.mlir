// RUN: linattn-opt %s --convert-linattn-to-gpu='chip=sm_86 chunk-size=128' -split-input-file -verify-diagnostics

// The delta rule's fp32 [C][C + 1] matrix (66 KB at C = 128), T (bf16) and beta come
// on top of the linear kernel's tiles: over sm_86's 99 KB here, where the
// same kernel without the delta rule (next case) fits.
func.func @delta_chunk128(%q: tensor<1x4x?x64xbf16>, %k: tensor<1x4x?x64xbf16>,
                          %v: tensor<1x4x?x64xbf16>, %b: tensor<1x4x?xf32>)
    -> tensor<1x4x?x64xbf16> {
  // expected-error @below {{needs 152576 bytes of shared memory (chunk-size 128, key dim 64, block-v 32, stages 1), over the 101376 bytes sm_86 allows per block; lower chunk-size or block-v}}
  %o, %s = linattn.attention %q, %k, %v beta(%b : tensor<1x4x?xf32>)
      {decay = #linattn.decay<delta>}
      : tensor<1x4x?x64xbf16>, tensor<1x4x?x64xbf16>, tensor<1x4x?x64xbf16>
      -> tensor<1x4x?x64xbf16>, tensor<1x4x64x64xf32>
  return %o : tensor<1x4x?x64xbf16>
}

// -----

func.func @scalar_chunk128(%q: tensor<1x4x?x64xbf16>, %k: tensor<1x4x?x64xbf16>,
                           %v: tensor<1x4x?x64xbf16>, %g: tensor<1x4x?xf32>)
    -> tensor<1x4x?x64xbf16> {
  %o, %s = linattn.attention %q, %k, %v gate(%g : tensor<1x4x?xf32>)
      {decay = #linattn.decay<scalar>}
      : tensor<1x4x?x64xbf16>, tensor<1x4x?x64xbf16>, tensor<1x4x?x64xbf16>
      -> tensor<1x4x?x64xbf16>, tensor<1x4x64x64xf32>
  return %o : tensor<1x4x?x64xbf16>
}
