// REQUIRES: cc
// linattn-launch's whole host path on a stand-in libcuda that records
// launches instead of running them (test/GPU/fake-libcuda.c): the manifest,
// the random inputs, the uploads, the map workspace and the kernel
// parameters reach the driver as docs/gpu-kernel-abi.md says. The outputs
// are zeros, so nothing is checked against the reference here.
// RUN: rm -rf %t && mkdir -p %t
// RUN: %cc -shared -fPIC -o %t/libcuda.so %S/../../GPU/fake-libcuda.c
// RUN: cp %S/Inputs/hedgehog.json %S/Inputs/hedgehog.ptx %t/

// Hedgehog (d = 16, f = 20, Dphi = 40), B = 2, T = 33, Hq = 4, Hk = Hv = 2:
// map(q) over 2·33·4 = 264 rows (66 blocks of 4 rows), map(k) over 132 rows,
// both with a bias and shared weights, then the attention kernel on grid
// (Dv / block_v, H, N) = (1, 4, 2) with its 8 scalars (N, T, Hq, Hk, Hv,
// has_initial_state, has_final_state, has_offsets).
// RUN: env LINATTN_LIBCUDA=%t/libcuda.so FAKE_CUDA_TRACE=1 linattn-launch %t/hedgehog.json --random=2,4,2,2,33 2>&1 | FileCheck %s --check-prefix=MAPPED
// MAPPED: fake-cuda: launch linattn_map grid 66,1,1 block 128 shared 0 scalars 264 33 4 0 1
// MAPPED-NEXT: fake-cuda: launch linattn_map grid 33,1,1 block 128 shared 0 scalars 132 33 2 0 1
// MAPPED-NEXT: fake-cuda: launch linattn_fwd grid 1,4,2 block 128 shared 40000 scalars 2 33 4 2 2 1 1 0
// MAPPED-NOT: fake-cuda: launch

// One map per head (with separate k weights), packed sequences (B = 1,
// offsets 0,5,5,40: N = 3) and no initial state.
// RUN: env LINATTN_LIBCUDA=%t/libcuda.so FAKE_CUDA_TRACE=1 linattn-launch %t/hedgehog.json --random=1,2,40 --map-per-head --key-map --offsets 0,5,5,40 --no-initial-state 2>&1 | FileCheck %s --check-prefix=PACKED
// PACKED: fake-cuda: launch linattn_map grid 20,1,1 block 128 shared 0 scalars 80 40 2 1 1
// PACKED-NEXT: fake-cuda: launch linattn_map grid 20,1,1 block 128 shared 0 scalars 80 40 2 1 1
// PACKED-NEXT: fake-cuda: launch linattn_fwd grid 1,2,3 block 128 shared 40000 scalars 3 40 2 2 2 0 1 1

// An elementwise spec launches the attention kernel alone.
// RUN: sed -e 's/"hedgehog"/"relu"/' -e '/feature_count/d' -e '/feature_dim/d' -e '/"map"/d' %t/hedgehog.json > %t/relu.json
// RUN: env LINATTN_LIBCUDA=%t/libcuda.so FAKE_CUDA_TRACE=1 linattn-launch %t/relu.json --random=2,2,10 2>&1 | FileCheck %s --check-prefix=PLAIN
// PLAIN-NOT: linattn_map
// PLAIN: fake-cuda: launch linattn_fwd grid 1,2,2 block 128 shared 40000 scalars 2 10 2 2 2 1 1 0
// PLAIN-NOT: fake-cuda: launch
