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

// --emulation goes with --emit-aot.
// RUN: not linattn-run --emulation --decay=none --dtype=bf16 --dk=64 --dv=64 2>&1 | FileCheck %s --check-prefix=NOAOT
// NOAOT: --emulation writes next to --emit-aot's kernel

// A variant set: every variant gets its .emu.so, and LINATTN_EMU_KERNELS
// may name the directory (the emulator loads the .emu.so next to the .ptx
// whose text it is given). The tuner checks every variant against the
// default (checked against fp64) before timing it: none may differ.
// RUN: linattn-run --emit-aot=%t/v --aot-variants=tune --emulation --name=sg --chip=sm_80 --decay=scalar --dtype=bf16 --layout=bthd --dk=64 --dv=64 | FileCheck %s --check-prefix=VARIANTS
// VARIANTS: wrote {{[0-9]+}} variants
// RUN: env LINATTN_LIBCUDA=%emulib LINATTN_EMU_KERNELS=%t/v LINATTN_EMU_CC=8.0 linattn-launch %t/v/sg.variants.json --random=1,2,70 --tune --tune-budget 300 --reps 1 --warmup 0 --tuning-cache %t/tuning.json --verbose 2>&1 | FileCheck %s --check-prefix=TUNE
// TUNE-NOT: dropped,
// TUNE: [linattn tune] done in {{.*}} tried, 0 dropped
