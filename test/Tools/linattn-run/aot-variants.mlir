// --aot-variants=tune writes every legal GPU variant plus an index for
// linattn-launch --tune, and compileGPU results go to the kernel cache: a
// second process loads every kernel instead of compiling it, and a corrupt
// cache file is ignored and rewritten.
// RUN: rm -rf %t && mkdir -p %t
// RUN: env LINATTN_CACHE_DIR=%t/c LINATTN_KERNEL_CACHE=disk linattn-run --emit-aot=%t/a --aot-variants=tune --name=k --chip=sm_80 --decay=scalar --dtype=bf16 --dk=32 --dv=32 | FileCheck %s --check-prefix=COLD
// COLD: wrote [[N:[0-9]+]] variants ({{[0-9]+}} illegal for sm_80, skipped) and {{.*}}/k.variants.json
// COLD: kernel cache: [[N]] compiled, 0 loaded from disk
// RUN: FileCheck %s --check-prefix=INDEX < %t/a/k.variants.json
// INDEX: "format": "linattn-aot-variants"
// INDEX: "chip": "sm_80"
// INDEX: "spec_key": "scalar fm=identity bhtd bf16 gate=f32 dk=32 dv=32"
// INDEX: "default": 0
// INDEX: {"manifest": "k.json", "params": {"block_v": 32, "chunk": 64, "stages": 1, "warps": 4}}
// INDEX: {"manifest": "k.block_v16.chunk32.stages1.warps2.json", "params": {"block_v": 16, "chunk": 32, "stages": 1, "warps": 2}}
// INDEX: {"manifest": "k.block_v16.chunk32.stages2.warps2.json", "params": {"block_v": 16, "chunk": 32, "stages": 2, "warps": 2}}
// RUN: FileCheck %s --check-prefix=VARIANT < %t/a/k.block_v16.chunk32.stages1.warps2.json
// VARIANT-DAG: "ptx": "k.block_v16.chunk32.stages1.warps2.ptx"
// VARIANT-DAG: "chunk_size": 32
// VARIANT-DAG: "threads": 64
// VARIANT-DAG: "stages": 1
// A two-stage variant prefetches with cp.async.
// RUN: FileCheck %s --check-prefix=STAGES < %t/a/k.block_v16.chunk32.stages2.warps2.json
// STAGES: "stages": 2
// RUN: FileCheck %s --check-prefix=STAGES-PTX < %t/a/k.block_v16.chunk32.stages2.warps2.ptx
// STAGES-PTX: cp.async.cg.shared.global
// STAGES-PTX: cp.async.commit_group
// STAGES-PTX: cp.async.wait_group 1

// A second process: nothing compiled, identical files.
// RUN: env LINATTN_CACHE_DIR=%t/c LINATTN_KERNEL_CACHE=disk linattn-run --emit-aot=%t/b --aot-variants=tune --name=k --chip=sm_80 --decay=scalar --dtype=bf16 --dk=32 --dv=32 | FileCheck %s --check-prefix=WARM
// WARM: kernel cache: 0 compiled, {{[1-9][0-9]*}} loaded from disk
// RUN: diff -r %t/a %t/b

// A corrupt cache entry is a miss: compiled again, rewritten, then loaded.
// RUN: for f in %t/c/kernels/gpu-*.ptxc; do echo garbage > $f; done
// RUN: env LINATTN_CACHE_DIR=%t/c LINATTN_KERNEL_CACHE=disk linattn-run --emit-aot=%t/d --name=k --chip=sm_80 --decay=scalar --dtype=bf16 --dk=32 --dv=32 | FileCheck %s --check-prefix=REDO
// REDO: kernel cache: 1 compiled, 0 loaded from disk
// RUN: env LINATTN_CACHE_DIR=%t/c LINATTN_KERNEL_CACHE=disk linattn-run --emit-aot=%t/e --name=k --chip=sm_80 --decay=scalar --dtype=bf16 --dk=32 --dv=32 | FileCheck %s --check-prefix=AGAIN
// AGAIN: kernel cache: 0 compiled, 1 loaded from disk
// RUN: cmp %t/a/k.ptx %t/e/k.ptx

// Bad values are named.
// RUN: not linattn-run --emit-aot=%t/x --aot-variants=all --dtype=bf16 2>&1 | FileCheck %s --check-prefix=BAD
// BAD: error: --aot-variants expects 'default' or 'tune', got 'all'
