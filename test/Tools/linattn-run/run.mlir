// Run a GLA spec on random inputs and check it against the fp64 reference,
// then round-trip the inputs through .npy files.
// RUN: linattn-run %s --random=2,3,70 --check --num-threads=2 --out o=%t.o.npy --out final_state=%t.s.npy 2>&1 | FileCheck %s --check-prefix=RANDOM
// RANDOM: compiled for
// RANDOM: check: output ratio {{.*}} -> PASS

// Lightning-style spec from flags, with a schedule, bf16.
// RUN: linattn-run --decay=constant --schedule=lightning --dtype=bf16 --dk=64 --dv=32 --random=1,4,130 --check --bench --reps=2 2>&1 | FileCheck %s --check-prefix=FLAGS
// FLAGS: check: {{.*}} (tolerance 5e-03 for bf16) -> PASS
// FLAGS: bench: B=1 H=4 T=130 Dk=64 Dv=32 bf16

// Bad input gets an error naming it.
// RUN: not linattn-run %s --in q=%t.missing.npy 2>&1 | FileCheck %s --check-prefix=MISSING
// MISSING: linattn-run: error: {{.*}}missing.npy
// RUN: not linattn-run --decay=sideways 2>&1 | FileCheck %s --check-prefix=DECAY
// DECAY: linattn-run: error: unknown --decay 'sideways'

func.func @gla(%q: tensor<2x3x?x32xf32>, %k: tensor<2x3x?x32xf32>, %v: tensor<2x3x?x48xf32>, %g: tensor<2x3x?x32xf32>) -> (tensor<2x3x?x48xf32>, tensor<2x3x32x48xf32>) {
  %o, %s = linattn.attention %q, %k, %v gate(%g : tensor<2x3x?x32xf32>) {decay = #linattn.decay<vector>, chunking = #linattn.chunking<size = 32>}
      : tensor<2x3x?x32xf32>, tensor<2x3x?x32xf32>, tensor<2x3x?x48xf32> -> tensor<2x3x?x48xf32>, tensor<2x3x32x48xf32>
  return %o, %s : tensor<2x3x?x48xf32>, tensor<2x3x32x48xf32>
}
