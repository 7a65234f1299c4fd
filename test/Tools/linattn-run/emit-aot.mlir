// REQUIRES: ptxas
// Every generated GPU kernel variant, for every supported chip (sm_90 with
// the wgmma kernel, one and two warpgroups, and with mma.sync; sm_80 and
// sm_90 also with 2 and 3 cp.async pipeline stages), assembles with the
// CUDA toolkit's ptxas without register spills.
// RUN: rm -rf %t && %S/../../GPU/check-ptx.sh %t linattn-run %ptxas | FileCheck %s
// CHECK-NOT: FAIL
// CHECK-NOT: SPILL
// CHECK: 285 kernels assembled (96 with wgmma)

// The manifest describes the kernel for the launchers (docs/gpu-kernel-abi.md).
// RUN: linattn-run --emit-aot=%t/m --name=k --chip=sm_90 --decay=scalar --dtype=bf16 --layout=bthd --dk=128 --dv=128 | FileCheck %s --check-prefix=EMIT
// RUN: FileCheck %s --check-prefix=JSON < %t/m/k.json
// EMIT: wrote {{.*}}/k.ptx and .json (sm_90a, wgmma, 128 threads, block-v 64, 82696 bytes of shared memory)
// JSON-DAG: "format": "linattn-aot"
// JSON-DAG: "entry": "linattn_fwd"
// JSON-DAG: "ptx": "k.ptx"
// JSON-DAG: "decay": "scalar"
// JSON-DAG: "shared_bytes": 82696
// JSON-DAG: "chip": "sm_90a"
// JSON-DAG: "mma": "wgmma"
// JSON-DAG: "stages": 1
// JSON-DAG: "block_v": 64
// JSON-DAG: "feature_count": 0
// JSON-DAG: "feature_dim": 128

// mma=sync keeps the portable kernel on sm_90.
// RUN: linattn-run --emit-aot=%t/s --name=k --chip=sm_90 --mma=sync --decay=scalar --dtype=bf16 --layout=bthd --dk=128 --dv=128 | FileCheck %s --check-prefix=SYNC
// SYNC: wrote {{.*}}/k.ptx and .json (sm_90, mma.sync, 128 threads, block-v 32, 48640 bytes of shared memory)

// The normalized and non-causal forms run on wgmma on sm_90 (and on
// mma.sync with --mma=sync); the manifest records eps, and the shared memory
// includes z and the rows' denominators.
// RUN: linattn-run --emit-aot=%t/n --name=k --chip=sm_90 --normalized --non-causal --dtype=f16 --dk=64 --dv=64 | FileCheck %s --check-prefix=NORM
// RUN: FileCheck %s --check-prefix=NORMJSON < %t/n/k.json
// NORM: wrote {{.*}}/k.ptx and .json (sm_90a, wgmma, 128 threads, block-v 64, 50696 bytes of shared memory)
// NORMJSON-DAG: "normalized": true
// NORMJSON-DAG: "causal": false
// NORMJSON-DAG: "eps": 9.9999999999999995e-07
// NORMJSON-DAG: "mma": "wgmma"
// Elementwise maps have no prepass object.
// RUN: FileCheck %s --check-prefix=NOMAP < %t/n/k.json
// NOMAP-NOT: "map"
// RUN: linattn-run --emit-aot=%t/ns --name=k --chip=sm_90 --mma=sync --normalized --non-causal --dtype=f16 --dk=64 --dv=64 | FileCheck %s --check-prefix=NORMSYNC
// NORMSYNC: wrote {{.*}}/k.ptx and .json (sm_90, mma.sync, 128 threads, block-v 32, 28672 bytes of shared memory)
// Vector gates and the delta rule get the wgmma kernel too (the delta rule
// with block-v 32); key dims it cannot split are an error with mma=wgmma.
// RUN: linattn-run --emit-aot=%t/gla --name=k --chip=sm_90 --decay=vector --dk=64 --dv=64 --dtype=bf16 | FileCheck %s --check-prefix=GLAWG
// GLAWG: wrote {{.*}}/k.ptx and .json (sm_90a, wgmma, 128 threads, block-v 64, 65544 bytes of shared memory)
// RUN: linattn-run --emit-aot=%t/delta --name=k --chip=sm_90 --decay=delta --dk=64 --dv=64 --dtype=bf16 | FileCheck %s --check-prefix=DELTAWG
// DELTAWG: wrote {{.*}}/k.ptx and .json (sm_90a, wgmma, 128 threads, block-v 32, 67848 bytes of shared memory)
// RUN: not linattn-run --emit-aot=%t/bad --chip=sm_90 --mma=wgmma --decay=delta --dk=32 --dv=64 --dtype=bf16 2>&1 | FileCheck %s --check-prefix=DELTA32
// DELTA32: linattn-run: error: GPU kernel options: mma=wgmma needs warps a multiple of 4, chunk-size 64 per warpgroup and a key dim that is a multiple of 64 per warpgroup (warps 4, chunk-size 64, key dim 32)

// Invalid specs get the same error as on the CPU, before any compilation.
// RUN: not linattn-run --emit-aot=%t/bad --non-causal --decay=scalar --dtype=bf16 --dk=64 --dv=64 2>&1 | FileCheck %s --check-prefix=SPEC
// SPEC: linattn-run: error: non-causal attention needs decay 'none'

// Scalar gates and beta are staged one chunk row per thread on mma.sync.
// RUN: not linattn-run --emit-aot=%t/bad --chip=sm_80 --chunk-size=128 --warps=2 --decay=scalar --dtype=bf16 --dk=64 --dv=64 2>&1 | FileCheck %s --check-prefix=ROWS
// ROWS: chunk-size 128 needs at least 128 threads (warps >= 4) with scalar gates or beta, which are staged one chunk row per thread (warps 2)

// f32 specs are rejected with a clear error.
// RUN: not linattn-run --emit-aot=%t/bad --dtype=f32 2>&1 | FileCheck %s --check-prefix=BAD
// BAD: linattn-run: error: spec.dtype: GPU kernels take bf16 or f16 inputs, got f32
