// RUN: linattn-opt %s --linattn-to-cpu='chunk-size=32 tile-m=6 tile-n=16' | FileCheck %s

// The whole CPU pipeline ends in the LLVM dialect with vector FMAs.
// CHECK-NOT: linattn.
// CHECK-NOT: linalg.
// CHECK: llvm.func @gla
// CHECK: llvm.intr.fmuladd({{.*}}) : (vector<8xf32>, vector<8xf32>, vector<8xf32>) -> vector<8xf32>
// CHECK-NOT: llvm.call @expf
func.func @gla(%q: tensor<1x2x?x32xbf16>, %k: tensor<1x2x?x32xbf16>, %v: tensor<1x2x?x32xbf16>, %g: tensor<1x2x?x32xf32>) -> (tensor<1x2x?x32xbf16>, tensor<1x2x32x32xf32>) {
  %o, %s = linattn.attention %q, %k, %v gate(%g : tensor<1x2x?x32xf32>) {decay = #linattn.decay<vector>}
      : tensor<1x2x?x32xbf16>, tensor<1x2x?x32xbf16>, tensor<1x2x?x32xbf16> -> tensor<1x2x?x32xbf16>, tensor<1x2x32x32xf32>
  return %o, %s : tensor<1x2x?x32xbf16>, tensor<1x2x32x32xf32>
}
