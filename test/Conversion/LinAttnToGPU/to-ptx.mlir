// RUN: linattn-opt %s --linattn-to-ptx='chip=sm_90' | FileCheck %s
// RUN: linattn-opt %s --linattn-to-ptx='chip=sm_80' | FileCheck %s --check-prefix=SM80

// The whole GPU pipeline ends in a gpu.binary holding PTX text: the entry,
// bf16 tensor-core mma, the SFU exp2 for the decay factors, and dynamic
// shared memory declared extern (not demoted to a static variable).
// CHECK: gpu.binary @retention
// CHECK-SAME: .target sm_90
// CHECK-SAME: .extern .shared .align 16 .b8 __dynamic_shmem__0[];
// CHECK-SAME: .visible .entry linattn_fwd(
// CHECK-SAME: mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
// CHECK-SAME: ex2.approx.ftz.f32
// CHECK-SAME: bar.sync
// SM80: .target sm_80
// SM80-SAME: .maxnreg 255
// SM80-SAME: mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
func.func @retention(%q: tensor<1x?x8x64xbf16>, %k: tensor<1x?x8x64xbf16>,
                     %v: tensor<1x?x8x64xbf16>) -> tensor<1x?x8x64xbf16> {
  %o, %s = linattn.attention %q, %k, %v
      {decay = #linattn.decay<constant, schedule = retnet>,
       layout = #linattn.layout<bthd>}
      : tensor<1x?x8x64xbf16>, tensor<1x?x8x64xbf16>, tensor<1x?x8x64xbf16>
      -> tensor<1x?x8x64xbf16>, tensor<1x8x64x64xf32>
  return %o : tensor<1x?x8x64xbf16>
}
