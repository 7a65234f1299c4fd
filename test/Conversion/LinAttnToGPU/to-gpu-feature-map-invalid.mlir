// RUN: linattn-opt %s --convert-linattn-to-gpu -split-input-file -verify-diagnostics

// One prepass kernel maps q and k, so both must be mapped, by the same map
// and from the same input width.
func.func @only_q(%q: tensor<1x4x?x16xbf16>, %kp: tensor<1x4x?x153xbf16>,
                  %v: tensor<1x4x?x64xbf16>) -> tensor<1x4x?x64xbf16> {
  %qp = linattn.feature_map %q {kind = #linattn.feature_map<taylor2_symmetric>}
      : tensor<1x4x?x16xbf16> -> tensor<1x4x?x153xbf16>
  // expected-error @below {{on the GPU, q and k must both come from linattn.feature_map ops of the same kind and input width (one prepass kernel maps both)}}
  %o, %s = linattn.attention %qp, %kp, %v {decay = #linattn.decay<none>}
      : tensor<1x4x?x153xbf16>, tensor<1x4x?x153xbf16>, tensor<1x4x?x64xbf16>
      -> tensor<1x4x?x64xbf16>, tensor<1x4x153x64xf32>
  return %o : tensor<1x4x?x64xbf16>
}

// -----

func.func @different_kinds(%q: tensor<1x4x?x32xbf16>, %k: tensor<1x4x?x32xbf16>,
                           %v: tensor<1x4x?x64xbf16>, %wh: tensor<32x32xf32>,
                           %wp: tensor<64x32xf32>) -> tensor<1x4x?x64xbf16> {
  %qp = linattn.feature_map %q weight(%wh : tensor<32x32xf32>)
      {kind = #linattn.feature_map<hedgehog>} : tensor<1x4x?x32xbf16> -> tensor<1x4x?x64xbf16>
  %kp = linattn.feature_map %k weight(%wp : tensor<64x32xf32>)
      {kind = #linattn.feature_map<performer>} : tensor<1x4x?x32xbf16> -> tensor<1x4x?x64xbf16>
  // expected-error @below {{q and k must both come from linattn.feature_map ops of the same kind}}
  %o, %s = linattn.attention %qp, %kp, %v {decay = #linattn.decay<none>}
      : tensor<1x4x?x64xbf16>, tensor<1x4x?x64xbf16>, tensor<1x4x?x64xbf16>
      -> tensor<1x4x?x64xbf16>, tensor<1x4x64x64xf32>
  return %o : tensor<1x4x?x64xbf16>
}

// -----

// The full Taylor map at d = 16 has 273 features: 288 after padding, over
// the 256 key rows a kernel can hold (the symmetric form's 153 fit).
func.func @taylor_too_wide(%q: tensor<1x4x?x16xbf16>, %k: tensor<1x4x?x16xbf16>,
                           %v: tensor<1x4x?x64xbf16>) -> tensor<1x4x?x64xbf16> {
  %qp = linattn.feature_map %q {kind = #linattn.feature_map<taylor2>}
      : tensor<1x4x?x16xbf16> -> tensor<1x4x?x273xbf16>
  %kp = linattn.feature_map %k {kind = #linattn.feature_map<taylor2>}
      : tensor<1x4x?x16xbf16> -> tensor<1x4x?x273xbf16>
  // expected-error @below {{feature map 'taylor2' gives 273 features (padded to 288), over the GPU kernel's key width limit of 256}}
  %o, %s = linattn.attention %qp, %kp, %v {decay = #linattn.decay<none>}
      : tensor<1x4x?x273xbf16>, tensor<1x4x?x273xbf16>, tensor<1x4x?x64xbf16>
      -> tensor<1x4x?x64xbf16>, tensor<1x4x273x64xf32>
  return %o : tensor<1x4x?x64xbf16>
}

// -----

// Vector gates are staged in 16-byte pieces of whole key rows: no padding.
func.func @gla_padded(%q: tensor<1x4x?x16xbf16>, %k: tensor<1x4x?x16xbf16>,
                      %v: tensor<1x4x?x64xbf16>, %g: tensor<1x4x?x153xf32>)
    -> tensor<1x4x?x64xbf16> {
  %qp = linattn.feature_map %q {kind = #linattn.feature_map<taylor2_symmetric>}
      : tensor<1x4x?x16xbf16> -> tensor<1x4x?x153xbf16>
  %kp = linattn.feature_map %k {kind = #linattn.feature_map<taylor2_symmetric>}
      : tensor<1x4x?x16xbf16> -> tensor<1x4x?x153xbf16>
  // expected-error @below {{vector gates on the GPU need the feature width to be a multiple of 16; feature map 'taylor2_symmetric' gives 153}}
  %o, %s = linattn.attention %qp, %kp, %v gate(%g : tensor<1x4x?x153xf32>)
      {decay = #linattn.decay<vector>}
      : tensor<1x4x?x153xbf16>, tensor<1x4x?x153xbf16>, tensor<1x4x?x64xbf16>
      -> tensor<1x4x?x64xbf16>, tensor<1x4x153x64xf32>
  return %o : tensor<1x4x?x64xbf16>
}

// -----

func.func @second_map(%q: tensor<1x4x?x16xbf16>, %k: tensor<1x4x?x16xbf16>,
                      %v: tensor<1x4x?x64xbf16>) -> tensor<1x4x?x64xbf16> {
  %qp = linattn.feature_map %q {kind = #linattn.feature_map<taylor2_symmetric>}
      : tensor<1x4x?x16xbf16> -> tensor<1x4x?x153xbf16>
  %kp = linattn.feature_map %k {kind = #linattn.feature_map<taylor2_symmetric>}
      : tensor<1x4x?x16xbf16> -> tensor<1x4x?x153xbf16>
  // expected-error @below {{on the GPU, q and k mapped by linattn.feature_map take no second feature map (got 'relu')}}
  %o, %s = linattn.attention %qp, %kp, %v
      {decay = #linattn.decay<none>, feature_map = #linattn.feature_map<relu>}
      : tensor<1x4x?x153xbf16>, tensor<1x4x?x153xbf16>, tensor<1x4x?x64xbf16>
      -> tensor<1x4x?x64xbf16>, tensor<1x4x153x64xf32>
  return %o : tensor<1x4x?x64xbf16>
}
