// Run a GLA spec on random inputs and check it against the fp64 reference,
// then round-trip the inputs through .npy files.
// RUN: linattn-run %s --random=2,3,70 --check --num-threads=2 --out o=%t.o.npy --out final_state=%t.s.npy 2>&1 | FileCheck %s --check-prefix=RANDOM
// RANDOM: compiled for
// RANDOM: check: output ratio {{.*}} -> PASS

// Lightning-style spec from flags, with a schedule, bf16.
// RUN: linattn-run --decay=constant --schedule=lightning --dtype=bf16 --dk=64 --dv=32 --random=1,4,130 --check --bench --reps=2 2>&1 | FileCheck %s --check-prefix=FLAGS
// FLAGS: check: {{.*}} (tolerance 5e-03 for bf16) -> PASS
// FLAGS: bench: B=1 H=4 T=130 Dk=64 Dv=32 bf16

// Delta rules: --random draws beta in (0, 1) and L2-normalized q, k; bf16
// uses the delta-rule tolerance of MATH.md 9.7.
// RUN: linattn-run --decay=gated_delta --dtype=bf16 --dk=32 --dv=24 --random=2,3,70 --chunk-size=16 --check 2>&1 | FileCheck %s --check-prefix=GDELTA
// GDELTA: check: {{.*}} (tolerance 8e-03 for bf16) -> PASS

// beta from an .npy file (written here with the standard library only): a
// valid one, then one with 3 at the last position, outside [0, 2].
// RUN: python3 -c "import struct,sys; h=\"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 20), }\"; h+=' '*(63-(10+len(h))%%64)+'\n'; x=[0.5]*39+[float(sys.argv[1])]; sys.stdout.buffer.write(b'\x93NUMPY\x01\x00'+struct.pack('<H',len(h))+h.encode()+struct.pack('<40f',*x))" 0.25 > %t.beta.npy
// RUN: linattn-run --decay=delta --dk=16 --dv=8 --random=1,2,20 --in beta=%t.beta.npy --check 2>&1 | FileCheck %s --check-prefix=BETA
// BETA: check: {{.*}} -> PASS
// RUN: python3 -c "import struct,sys; h=\"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 20), }\"; h+=' '*(63-(10+len(h))%%64)+'\n'; x=[0.5]*39+[float(sys.argv[1])]; sys.stdout.buffer.write(b'\x93NUMPY\x01\x00'+struct.pack('<H',len(h))+h.encode()+struct.pack('<40f',*x))" 3 > %t.badbeta.npy
// RUN: not linattn-run --decay=delta --dk=16 --dv=8 --random=1,2,20 --in beta=%t.badbeta.npy 2>&1 | FileCheck %s --check-prefix=BADBETA
// BADBETA: linattn-run: error: beta: value 3 at [0, 1, 19] (logical [B, H, T]) is outside [0, 2]

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
