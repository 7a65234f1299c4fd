// RUN: linattn-opt %s --mlir-print-op-generic | linattn-opt | FileCheck %s
// The generic form (properties, segment sizes) parses back to the same op.

// CHECK-LABEL: func.func @generic_round_trip
// CHECK: linattn.attention %{{.*}}, %{{.*}}, %{{.*}} gate(%{{.*}} : tensor<1x2x8xf32>) initial_state(%{{.*}} : tensor<1x2x4x4xf32>) {decay = #linattn.decay<scalar>}
func.func @generic_round_trip(%q: tensor<1x2x8x4xf32>, %g: tensor<1x2x8xf32>, %s0: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %o, %s = linattn.attention %q, %q, %q gate(%g : tensor<1x2x8xf32>) initial_state(%s0 : tensor<1x2x4x4xf32>) {decay = #linattn.decay<scalar>} : tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32> -> tensor<1x2x8x4xf32>, tensor<1x2x4x4xf32>
  return %s : tensor<1x2x4x4xf32>
}
