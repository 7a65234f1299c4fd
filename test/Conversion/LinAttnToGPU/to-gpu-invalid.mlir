// RUN: linattn-opt %s --convert-linattn-to-gpu -split-input-file -verify-diagnostics

// Tensor cores take 16-bit inputs; f32 specs run on the CPU.
func.func @negative_f32(%q: tensor<1x1x?x64xf32>, %k: tensor<1x1x?x64xf32>,
                        %v: tensor<1x1x?x64xf32>) -> tensor<1x1x?x64xf32> {
  // expected-error @below {{GPU kernels take bf16 or f16 inputs, got 'f32'}}
  %o, %s = linattn.attention %q, %k, %v
      : tensor<1x1x?x64xf32>, tensor<1x1x?x64xf32>, tensor<1x1x?x64xf32>
      -> tensor<1x1x?x64xf32>, tensor<1x1x64x64xf32>
  return %o : tensor<1x1x?x64xf32>
}

// -----

// mma.sync tiles are 16 wide in the key dim.
func.func @negative_key_dim(%q: tensor<1x1x?x60xbf16>, %k: tensor<1x1x?x60xbf16>,
                            %v: tensor<1x1x?x64xbf16>) -> tensor<1x1x?x64xbf16> {
  // expected-error @below {{key dim 60 must be a multiple of 16 and at most 256}}
  %o, %s = linattn.attention %q, %k, %v
      : tensor<1x1x?x60xbf16>, tensor<1x1x?x60xbf16>, tensor<1x1x?x64xbf16>
      -> tensor<1x1x?x64xbf16>, tensor<1x1x60x64xf32>
  return %o : tensor<1x1x?x64xbf16>
}
