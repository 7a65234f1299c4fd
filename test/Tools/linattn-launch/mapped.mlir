// linattn-launch with manifests of width-changing feature maps (the
// linattn_map prepass, docs/gpu-kernel-abi.md) on a machine without a GPU:
// the manifest, the random inputs and weights it draws and the shapes it
// validates are all checked before the device is opened, so a consistent
// problem ends as "skipped" (exit 77; LINATTN_LIBCUDA names no library so
// this also holds on GPU machines) and an inconsistent one as an error that
// names the tensor.
// RUN: rm -rf %t && mkdir -p %t
// RUN: cp %S/Inputs/hedgehog.json %S/Inputs/hedgehog.ptx %t/

// A Hedgehog kernel (d = 16, f = 20, Dphi = 40) with GQA, shared weights.
// RUN: env LINATTN_LIBCUDA=/nonexistent/libcuda.so.1 not linattn-launch %t/hedgehog.json --random=2,4,2,2,33 --check 2>&1 | FileCheck %s --check-prefix=SKIP
// SKIP: linattn-launch: skipped: CUDA driver not found

// One map per head needs separate k weights when Hq != Hk ...
// RUN: env LINATTN_LIBCUDA=/nonexistent/libcuda.so.1 not linattn-launch %t/hedgehog.json --random=2,4,2,2,33 --map-per-head 2>&1 | FileCheck %s --check-prefix=PERHEAD
// PERHEAD: linattn-launch: error: map_weight: one map per q head (4) cannot be applied to the 2 k heads; pass key_map_weight
// RUN: env LINATTN_LIBCUDA=/nonexistent/libcuda.so.1 not linattn-launch %t/hedgehog.json --random=2,4,2,2,33 --map-per-head --key-map 2>&1 | FileCheck %s --check-prefix=SKIP

// Vector gates, states and (normalized) normalizers are drawn with width
// Dphi, also per packed sequence.
// RUN: sed -e 's/"scalar"/"vector"/' %t/hedgehog.json > %t/vector.json
// RUN: env LINATTN_LIBCUDA=/nonexistent/libcuda.so.1 not linattn-launch %t/vector.json --random=1,2,70 --key-map 2>&1 | FileCheck %s --check-prefix=SKIP
// RUN: sed -e 's/"normalized": false/"normalized": true/' %t/hedgehog.json > %t/norm.json
// RUN: env LINATTN_LIBCUDA=/nonexistent/libcuda.so.1 not linattn-launch %t/norm.json --random=1,2,70 --offsets 0,5,5,70 2>&1 | FileCheck %s --check-prefix=SKIP
// RUN: env LINATTN_LIBCUDA=/nonexistent/libcuda.so.1 not linattn-launch %t/norm.json --random=2,2,70 2>&1 | FileCheck %s --check-prefix=SKIP

// Taylor-2 (d = 16: Dphi = 273, Dp = 288) has no weights.
// RUN: sed -e 's/"hedgehog"/"taylor2"/' -e 's/"feature_count": 20/"feature_count": 0/' -e 's/"feature_dim": 40/"feature_dim": 273/' -e 's/"padded_dim": 48/"padded_dim": 288/' %t/hedgehog.json > %t/taylor.json
// RUN: env LINATTN_LIBCUDA=/nonexistent/libcuda.so.1 not linattn-launch %t/taylor.json --random=1,2,2,2,20 2>&1 | FileCheck %s --check-prefix=SKIP
// RUN: env LINATTN_LIBCUDA=/nonexistent/libcuda.so.1 not linattn-launch %t/taylor.json --random=1,2,20 --key-map 2>&1 | FileCheck %s --check-prefix=NOWEIGHTS
// NOWEIGHTS: linattn-launch: error: --key-map needs a feature map with weights, the manifest has 'taylor2'

// A width-changing map without the map object is an invalid manifest, and
// an elementwise map with one is too.
// RUN: sed -e '/"map"/d' %t/hedgehog.json > %t/nomap.json
// RUN: not linattn-launch %t/nomap.json --random=1,2,20 2>&1 | FileCheck %s --check-prefix=NOMAP
// NOMAP: nomap.json: manifest: missing field 'map'
// RUN: sed -e 's/"hedgehog"/"relu"/' -e '/feature_count/d' -e '/feature_dim/d' %t/hedgehog.json > %t/relu.json
// RUN: not linattn-launch %t/relu.json --random=1,2,20 2>&1 | FileCheck %s --check-prefix=RELU
// RELU: relu.json: manifest: field 'map' is only for the width-changing feature maps, got feature_map 'relu'
