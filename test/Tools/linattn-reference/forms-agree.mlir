// RUN: linattn-reference --decay=gated_delta --T=70 --dk=8 --dv=6 --chunk=16 | FileCheck %s
// RUN: linattn-reference --decay=vector --T=33 --dk=8 --dv=8 --chunk=16 | FileCheck %s
// RUN: not linattn-reference --decay=softmax 2>&1 | FileCheck %s --check-prefix=ERR
// The reference tool cross-checks its three forms and rejects unknown specs.

// CHECK: chunked {{.*}} ok
// CHECK: all forms agree
// ERR: error: unknown --decay 'softmax'
