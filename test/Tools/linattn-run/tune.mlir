// Tuning and the caches, across processes (a GLA spec from flags). The runs
// use their own cache directory (%t); the kernel disk cache is on where a
// test needs it.
// RUN: rm -rf %t && mkdir -p %t

// A tuning run tunes (tiny budget), stores the result and the winner's
// object file.
// RUN: env LINATTN_CACHE_DIR=%t LINATTN_KERNEL_CACHE=disk linattn-run --decay=vector --dk=16 --dv=16 --random=1,2,48 --tune --tune-budget=2 --quiet --check 2>&1 | FileCheck %s --check-prefix=TUNE
// TUNE: tuning (force, T64.BH2.t1): tuned in {{.*}} candidates
// TUNE: check: {{.*}} -> PASS
// RUN: FileCheck %s --check-prefix=JSON < %t/tuning.json
// JSON: "compiler": "linattn
// JSON: "backend": "cpu"
// JSON: "chunk":

// A second process neither tunes nor compiles (nearby T, same shape class).
// RUN: env LINATTN_CACHE_DIR=%t LINATTN_KERNEL_CACHE=disk linattn-run --decay=vector --dk=16 --dv=16 --random=2,1,60 --tune-mode=tune-if-missing --check 2>&1 | FileCheck %s --check-prefix=HIT
// HIT: tuning (tune-if-missing, T64.BH2.t1): cached result
// HIT: kernel cache: 0 compiled, 1 loaded from disk
// HIT: loaded for
// HIT: check: {{.*}} -> PASS

// Export, then import into an empty cache: used without tuning.
// RUN: env LINATTN_CACHE_DIR=%t linattn-run --export-tuning=%t/ship.json | FileCheck %s --check-prefix=EXPORT
// EXPORT: exported 1 tuning result(s)
// RUN: env LINATTN_CACHE_DIR=%t/app linattn-run --import-tuning=%t/ship.json | FileCheck %s --check-prefix=IMPORT
// IMPORT: imported 1 tuning result(s)
// RUN: env LINATTN_CACHE_DIR=%t/app LINATTN_TUNE=use-only linattn-run --decay=vector --dk=16 --dv=16 --random=1,2,64 2>&1 | FileCheck %s --check-prefix=SHIPPED
// SHIPPED: tuning (use-only, T64.BH2.t1): cached result

// A corrupt cache file is ignored (defaults), then rewritten by tuning.
// RUN: printf '{"format": 1, "entr' > %t/tuning.json
// RUN: env LINATTN_CACHE_DIR=%t linattn-run --decay=vector --dk=16 --dv=16 --random=1,2,64 --tune-mode=use-only 2>&1 | FileCheck %s --check-prefix=CORRUPT
// CORRUPT: tuning (use-only, T64.BH2.t1): defaults (no cached result)
// RUN: env LINATTN_CACHE_DIR=%t linattn-run --decay=vector --dk=16 --dv=16 --random=1,2,64 --tune-mode=tune-if-missing --tune-budget=1 --quiet 2>&1 | FileCheck %s --check-prefix=RETUNE
// RETUNE: tuning (tune-if-missing, T64.BH2.t1): tuned in
// RUN: FileCheck %s --check-prefix=JSON < %t/tuning.json

// Bad flags.
// RUN: not linattn-run --decay=vector --dk=16 --dv=16 --random=1,2,64 --tune-mode=sometimes 2>&1 | FileCheck %s --check-prefix=BADMODE
// BADMODE: error: unknown --tune-mode 'sometimes'
// RUN: not linattn-run --decay=vector --dk=16 --dv=16 --random=1,2,64 --tune --chunk-size=32 2>&1 | FileCheck %s --check-prefix=CONFLICT
// CONFLICT: error: --tune-mode=force picks the chunk and tile sizes
// RUN: not linattn-run --decay=vector --dk=16 --dv=16 --random=1,2,64 --tune --tune-budget=0 2>&1 | FileCheck %s --check-prefix=BUDGET
// BUDGET: error: --tune-budget must be positive
// RUN: env LINATTN_CACHE_DIR=%t not linattn-run --import-tuning=%t/missing.json 2>&1 | FileCheck %s --check-prefix=NOFILE
// NOFILE: error: cannot import: cannot read '{{.*}}missing.json'
