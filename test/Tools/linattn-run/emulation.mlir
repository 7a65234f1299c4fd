// --emulation builds the kernel for the CUDA driver emulator next to its
// PTX (docs/gpu-emulator.md); linattn-launch runs it on the CPU through
// liblinattn_cuda_emu.so and checks it against the fp64 reference.
// RUN: rm -rf %t
// RUN: linattn-run --emit-aot=%t --name=k --chip=sm_90 --emulation --decay=scalar --dtype=bf16 --layout=bthd --dk=64 --dv=64 | FileCheck %s --check-prefix=EMIT
// EMIT: wrote {{.*}}/k.ptx, .emu.so and .json (sm_90a, wgmma, 128 threads
// RUN: env LINATTN_LIBCUDA=%emulib LINATTN_EMU_KERNELS=%t/k.emu.so linattn-launch %t/k.json --random=2,3,70 --check | FileCheck %s --check-prefix=LAUNCH
// LAUNCH: linattn_fwd on linattn CPU emulator (sm_90)
// LAUNCH: check: output ratio {{.*}} -> PASS

// Without the kernel object the emulator cannot load the module.
// RUN: env LINATTN_LIBCUDA=%emulib LINATTN_EMU_KERNELS= not linattn-launch %t/k.json --random=1,1,8 2>&1 | FileCheck %s --check-prefix=NOKERNELS
// NOKERNELS: LINATTN_EMU_KERNELS is not set

// --emulation goes with --emit-aot and the default kernel only.
// RUN: not linattn-run --emulation --decay=none --dtype=bf16 --dk=64 --dv=64 2>&1 | FileCheck %s --check-prefix=NOAOT
// NOAOT: --emulation writes next to --emit-aot's kernel
// RUN: not linattn-run --emit-aot=%t --aot-variants=tune --emulation --decay=none --dtype=bf16 --dk=64 --dv=64 2>&1 | FileCheck %s --check-prefix=TUNE
// TUNE: --emulation builds the default kernel only
