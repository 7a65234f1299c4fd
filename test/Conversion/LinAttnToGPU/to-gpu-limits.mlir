// RUN: linattn-opt %s --convert-linattn-to-gpu='chip=sm_86 chunk-size=128 block-v=128' -split-input-file -verify-diagnostics
// RUN: not linattn-opt %s --convert-linattn-to-gpu='chip=sm_75' 2>&1 | FileCheck %s --check-prefix=CHIP

// Options that need more shared memory than the chip gives one block:
// 2*128*(128+8) + 128*(128+8) + 128*(128+8) bf16 plus 1 KiB of gates is
// 140288 bytes, over sm_86's 99 KiB.
// CHIP: unsupported chip 'sm_75'
func.func @negative_shared_memory(%q: tensor<1x1x?x128xbf16>, %k: tensor<1x1x?x128xbf16>,
                                  %v: tensor<1x1x?x128xbf16>) -> tensor<1x1x?x128xbf16> {
  // expected-error @below {{needs 140288 bytes of shared memory (chunk-size 128, key dim 128, block-v 128, stages 1), over the 101376 bytes sm_86 allows per block; lower chunk-size or block-v}}
  %o, %s = linattn.attention %q, %k, %v
      : tensor<1x1x?x128xbf16>, tensor<1x1x?x128xbf16>, tensor<1x1x?x128xbf16>
      -> tensor<1x1x?x128xbf16>, tensor<1x1x128x128xf32>
  return %o : tensor<1x1x?x128xbf16>
}
