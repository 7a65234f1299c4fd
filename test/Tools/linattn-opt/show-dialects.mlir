// RUN: linattn-opt --show-dialects | FileCheck %s
// linattn-opt registers the linattn dialect and the upstream dialects its
// lowerings build on (GPU/NVVM included, for gpu-module-to-binary).

// CHECK: Available Dialects:
// CHECK-SAME: gpu
// CHECK-SAME: linattn
// CHECK-SAME: llvm
// CHECK-SAME: nvvm
// CHECK-SAME: vector
