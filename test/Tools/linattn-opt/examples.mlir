// RUN: linattn-opt %S/../../../examples/lightning.mlir | FileCheck %s
// The README's example spec stays valid.

// CHECK-LABEL: func.func @lightning
// CHECK: linattn.attention {{.*}}decay = #linattn.decay<constant, schedule = retnet>
