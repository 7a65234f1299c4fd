// RUN: linattn-opt %s --linattn-to-ptx='chip=sm_90' | FileCheck %s
// RUN: linattn-opt %s --linattn-to-ptx='chip=sm_90 mma=sync' | FileCheck %s --check-prefix=SYNC
// RUN: linattn-opt %s --linattn-to-ptx='chip=sm_80' | FileCheck %s --check-prefix=SM80

// The whole GPU pipeline ends in a gpu.binary holding PTX text: the entry,
// tensor-core matrix products, the SFU exp2 for the decay factors, and
// dynamic shared memory declared extern (not demoted to a static variable).
// On sm_90 the default is the warpgroup kernel: arch-specific sm_90a
// target, shared-memory writes fenced for the async proxy, and wgmma
// products of 64 rows (P = Q·Kᵀ and Q·S, then P·V and the state update)
// committed and waited for as groups.
// CHECK: gpu.binary @retention
// CHECK-SAME: .target sm_90a
// CHECK-SAME: .extern .shared .align 16 .b8 __dynamic_shmem__0[];
// CHECK-SAME: .visible .entry linattn_fwd(
// CHECK-SAME: fence.proxy.async.shared::cta
// CHECK-SAME: bar.sync
// CHECK-SAME: wgmma.fence.sync.aligned
// CHECK-SAME: wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16
// CHECK-SAME: wgmma.commit_group.sync.aligned
// CHECK-SAME: wgmma.wait_group.sync.aligned {{(\\09| )*}}0;
// CHECK-SAME: ex2.approx.ftz.f32
// CHECK-NOT: mma.sync.aligned
// SYNC: .target sm_90
// SYNC-NOT: .target sm_90a
// SYNC-SAME: mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
// SYNC-NOT: wgmma
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
