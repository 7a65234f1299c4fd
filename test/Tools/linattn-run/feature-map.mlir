// Width-changing feature maps from flags: the kernel applies
// linattn.feature_map to q and k; --random draws the map's weights and
// --check compares with the fp64 reference.

// Based: d = 16 gives Dphi = 273 (states [N, H, 273, Dv]); query scale 1.
// RUN: linattn-run --feature-map=taylor2 --dk=16 --dv=24 --random=1,2,70 --check --num-threads=2 --out final_state=%t.s.npy 2>&1 | FileCheck %s --check-prefix=TAYLOR
// TAYLOR: check: {{.*}} -> PASS
// RUN: python3 -c "import sys; d=open(sys.argv[1],'rb').read(); print(d[10:10+d[8]].decode())" %t.s.npy | FileCheck %s --check-prefix=TSHAPE
// TSHAPE: 'shape': (1, 2, 273, 24)

// Hedgehog (normalized, bf16) and Performer (normalized, GQA) with random
// weights.
// RUN: linattn-run --feature-map=hedgehog --features=12 --dk=8 --dv=8 --normalized --dtype=bf16 --random=1,2,70 --check --num-threads=2 2>&1 | FileCheck %s --check-prefix=HEDGEHOG
// HEDGEHOG: check: {{.*}} (tolerance 5e-03 for bf16) -> PASS
// RUN: linattn-run --feature-map=performer_hyperbolic --features=16 --dk=8 --dv=4 --normalized --random=1,4,2,4,40 --check --num-threads=2 --print-ir 2>&1 | FileCheck %s --check-prefix=PERFORMER
// PERFORMER: linattn.feature_map %q weight(%wq : tensor<16x8xf32>) {kind = #linattn.feature_map<performer_hyperbolic>} : tensor<1x1x?x8xf32> -> tensor<1x1x?x32xf32>
// PERFORMER: check: {{.*}} -> PASS

// Errors name the bad value.
// RUN: not linattn-run --feature-map=hedgehog --dk=8 --dv=8 --random=1,1,8 2>&1 | FileCheck %s --check-prefix=NOF
// NOF: linattn-run: error: feature map 'hedgehog' needs featureCount (f or m) >= 1, got 0
// RUN: not linattn-run --feature-map=cosine --random=1,1,8 2>&1 | FileCheck %s --check-prefix=BADMAP
// BADMAP: linattn-run: error: unknown --feature-map 'cosine'
// A weight of the wrong shape ([8, 8] for m = 16), written with the
// standard library only.
// RUN: python3 -c "import struct; h=\"{'descr': '<f4', 'fortran_order': False, 'shape': (8, 8), }\"; h+=' '*(63-(10+len(h))%%64)+'\n'; open('%t.w.npy','wb').write(b'\x93NUMPY\x01\x00'+struct.pack('<H',len(h))+h.encode()+struct.pack('<64f',*([0.1]*64)))"
// RUN: not linattn-run --feature-map=performer --features=16 --dk=8 --dv=4 --normalized --random=1,1,8 --in map_weight=%t.w.npy 2>&1 | FileCheck %s --check-prefix=BADW
// BADW: linattn-run: error: mapWeight: expected shape [16, 8] (shared) or [1, 16, 8] (one per q head) for feature map 'performer', got [8, 8]
// On the GPU a prepass kernel applies the map, padded to 16 features, and
// the attention kernel holds at most 256 key rows: Based's full Taylor map
// at d = 16 (273 features) is rejected, its symmetric form (153) compiles,
// and the manifest describes the prepass. GLA gates need no padding.
// RUN: not linattn-run --emit-aot=%t.aot --feature-map=taylor2 --dtype=bf16 --dk=16 --dv=16 2>&1 | FileCheck %s --check-prefix=GPU
// GPU: linattn-run: error: GPU kernel options: feature map 'taylor2' gives 273 features (padded to 288), over the GPU kernel's key width limit of 256
// RUN: not linattn-run --emit-aot=%t.aot --feature-map=taylor2_symmetric --decay=vector --dtype=bf16 --dk=16 --dv=16 2>&1 | FileCheck %s --check-prefix=GPUGLA
// GPUGLA: linattn-run: error: GPU kernel options: vector gates on the GPU need the feature width to be a multiple of 16; feature map 'taylor2_symmetric' gives 153
// RUN: linattn-run --emit-aot=%t.aot --name=based --feature-map=taylor2_symmetric --dtype=bf16 --dk=16 --dv=64 | FileCheck %s --check-prefix=BASED
// RUN: FileCheck %s --check-prefix=BASEDJSON < %t.aot/based.json
// RUN: FileCheck %s --check-prefix=BASEDPTX < %t.aot/based.ptx
// BASED: wrote {{.*}}based.ptx and .json (sm_80, mma.sync, 128 threads
// BASEDJSON-DAG: "feature_map": "taylor2_symmetric"
// BASEDJSON-DAG: "feature_dim": 153
// BASEDJSON-DAG: "key_dim": 16
// BASEDJSON-DAG: "padded_dim": 160
// BASEDJSON-DAG: "entry": "linattn_map"
// BASEDJSON-DAG: "rows_per_block": 4
// BASEDPTX: .entry linattn_fwd(
// BASEDPTX: .entry linattn_map(
