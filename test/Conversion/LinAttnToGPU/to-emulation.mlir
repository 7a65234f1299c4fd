// RUN: linattn-opt %s --linattn-to-emulation='chip=sm_80' | FileCheck %s --check-prefix=SYNC
// RUN: linattn-opt %s --linattn-to-emulation='chip=sm_90' | FileCheck %s --check-prefix=WGMMA
// RUN: linattn-opt %s --linattn-to-emulation='chip=sm_80 stages=2' | FileCheck %s --check-prefix=STAGES

// The emulation pipeline ends in host LLVM-dialect code
// (docs/gpu-emulator.md): no NVVM operation and no gpu.module is left; the
// kernel is internal, called by the entry that takes cuLaunchKernel's
// parameter array; each NVVM operation is a call into the emulator; shared
// memory is the emulator's buffer; loads and stores are checked first.
// SYNC-NOT: gpu.module
// SYNC-NOT: nvvm.
// SYNC: llvm.func internal @linattn_fwd(
// SYNC: llvm.call @__emu_shared()
// SYNC: llvm.call @__emu_sreg(
// SYNC: llvm.call @__emu_check(
// SYNC: llvm.call @__emu_barrier()
// SYNC: llvm.call @__emu_mma_m16n8k16(
// SYNC: llvm.call @__emu_ex2_approx_ftz(
// SYNC: llvm.func @__emu_entry_linattn_fwd(%arg0: !llvm.ptr)
// SYNC: llvm.call @linattn_fwd(
// SYNC-NOT: nvvm.

// sm_90 (wgmma): the warpgroup products; fences, commits and waits are gone.
// WGMMA-NOT: nvvm.
// WGMMA: llvm.call @__emu_wgmma(
// WGMMA-NOT: nvvm.

// Pipeline stages: cp.async copies (commit and wait dropped).
// STAGES-NOT: nvvm.
// STAGES: llvm.call @__emu_cp_async(
// STAGES-NOT: nvvm.
func.func @retention(%q: tensor<1x?x8x64xbf16>, %k: tensor<1x?x8x64xbf16>,
                     %v: tensor<1x?x8x64xbf16>) -> tensor<1x?x8x64xbf16> {
  %o, %s = linattn.attention %q, %k, %v
      {decay = #linattn.decay<constant, schedule = retnet>,
       layout = #linattn.layout<bthd>}
      : tensor<1x?x8x64xbf16>, tensor<1x?x8x64xbf16>, tensor<1x?x8x64xbf16>
      -> tensor<1x?x8x64xbf16>, tensor<1x8x64x64xf32>
  return %o : tensor<1x?x8x64xbf16>
}
