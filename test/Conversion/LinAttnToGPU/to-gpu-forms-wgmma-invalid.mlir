// RUN: linattn-opt %s --convert-linattn-to-gpu='chip=sm_90 mma=wgmma' -split-input-file -verify-diagnostics

// Forms the wgmma kernel lacks are errors when it is asked for by name
// (to-gpu-forms-wgmma.mlir: mma=auto falls back to mma.sync).

// Normalized per-key gates: the vector-gate message comes first.
func.func @normalized_gla(%q: tensor<1x4x?x64xbf16>, %k: tensor<1x4x?x64xbf16>,
                          %v: tensor<1x4x?x64xbf16>, %g: tensor<1x4x?x64xf32>)
    -> tensor<1x4x?x64xbf16> {
  // expected-error @below {{mma=wgmma does not support vector gates yet; use mma=sync}}
  %o, %s, %z = linattn.attention %q, %k, %v gate(%g : tensor<1x4x?x64xf32>)
      {decay = #linattn.decay<vector>,
       normalization = #linattn.norm<katharopoulos>}
      : tensor<1x4x?x64xbf16>, tensor<1x4x?x64xbf16>, tensor<1x4x?x64xbf16>
      -> tensor<1x4x?x64xbf16>, tensor<1x4x64x64xf32>, tensor<1x4x64xf32>
  return %o : tensor<1x4x?x64xbf16>
}

// -----

// The delta rules are mma.sync only.
func.func @delta(%q: tensor<1x4x?x64xbf16>, %k: tensor<1x4x?x64xbf16>,
                 %v: tensor<1x4x?x64xbf16>, %b: tensor<1x4x?xf32>)
    -> tensor<1x4x?x64xbf16> {
  // expected-error @below {{mma=wgmma does not support the delta rule yet; use mma=sync}}
  %o, %s = linattn.attention %q, %k, %v beta(%b : tensor<1x4x?xf32>)
      {decay = #linattn.decay<delta>}
      : tensor<1x4x?x64xbf16>, tensor<1x4x?x64xbf16>, tensor<1x4x?x64xbf16>
      -> tensor<1x4x?x64xbf16>, tensor<1x4x64x64xf32>
  return %o : tensor<1x4x?x64xbf16>
}
