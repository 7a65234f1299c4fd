// RUN: not linattn-opt %s --convert-linattn-to-gpu='chip=sm_90 mma=wgmma' 2>&1 | FileCheck %s
// RUN: linattn-opt %s --convert-linattn-to-gpu='chip=sm_90' | FileCheck %s --check-prefix=AUTO

// Vector gates have no wgmma kernel yet: asking for one is an error, and
// the default on sm_90 falls back to the mma.sync kernel (target sm_90).
// CHECK: mma=wgmma does not support vector gates yet; use mma=sync
// AUTO: gpu.module @gla [#nvvm.target<O = 3, chip = "sm_90", features = "+ptx80">]
// AUTO-NOT: wgmma
// AUTO: nvvm.mma.sync
func.func @gla(%q: tensor<1x4x?x128xbf16>, %k: tensor<1x4x?x128xbf16>,
               %v: tensor<1x4x?x128xbf16>, %g: tensor<1x4x?x128xf32>)
    -> tensor<1x4x?x128xbf16> {
  %o, %s = linattn.attention %q, %k, %v gate(%g : tensor<1x4x?x128xf32>)
      {decay = #linattn.decay<vector>}
      : tensor<1x4x?x128xbf16>, tensor<1x4x?x128xbf16>, tensor<1x4x?x128xbf16>
      -> tensor<1x4x?x128xbf16>, tensor<1x4x128x128xf32>
  return %o : tensor<1x4x?x128xbf16>
}
