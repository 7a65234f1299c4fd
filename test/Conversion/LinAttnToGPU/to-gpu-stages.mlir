// RUN: linattn-opt %s --convert-linattn-to-gpu='chip=sm_80 stages=3' -split-input-file | FileCheck %s
// RUN: linattn-opt %s --convert-linattn-to-gpu='chip=sm_90 stages=2' -split-input-file | FileCheck %s --check-prefix=WG
// RUN: linattn-opt %s --linattn-to-ptx='chip=sm_80 stages=2' -split-input-file | FileCheck %s --check-prefix=PTX
// RUN: linattn-opt %s --convert-linattn-to-gpu='chip=sm_80' -split-input-file | FileCheck %s --check-prefix=ONE

// Three stages: a prologue copies chunks 0 and 1 (Q, K and the raw V rows,
// 16 bytes per cp.async, zeros past the end) and commits each as a group;
// every chunk then prefetches chunk + 2 into the slot the previous chunk
// freed, waits until at most 2 groups are pending (its own has landed),
// applies the query scale in place and transposes V from its slot, and
// only then reaches the barrier. The scalar gates of the chunks in flight
// ride in the loop's iter_args (16 state values + 2 gates).
// CHECK-LABEL: gpu.func @linattn_fwd
// CHECK: nvgpu.device_async_copy %arg0{{.*}}, 8 {bypassL1} : memref<?xbf16> to memref<64x72xbf16, #gpu.address_space<workgroup>>
// CHECK: } else {
// CHECK-NEXT: arith.constant dense<0.000000e+00> : vector<8xbf16>
// CHECK-NEXT: vector.store {{.*}} : memref<64x72xbf16, #gpu.address_space<workgroup>>, vector<8xbf16>
// CHECK: nvgpu.device_async_copy %arg1{{.*}}, 8 {bypassL1} : memref<?xbf16> to memref<64x72xbf16, #gpu.address_space<workgroup>>
// CHECK: nvgpu.device_async_copy %arg2{{.*}}, 8 {bypassL1} : memref<?xbf16> to memref<64x32xbf16, #gpu.address_space<workgroup>>
// CHECK: nvvm.cp.async.commit.group
// CHECK-COUNT-3: nvgpu.device_async_copy
// CHECK: nvvm.cp.async.commit.group
// CHECK: scf.for {{.*}} iter_args({{.*}}) -> (f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32)
// CHECK: arith.remui {{.*}}, %c3
// CHECK-COUNT-3: nvgpu.device_async_copy
// CHECK: nvvm.cp.async.commit.group
// CHECK-NEXT: nvvm.cp.async.wait.group 2
// CHECK: arith.mulf {{.*}}, %cst{{.*}} : f32
// CHECK: gpu.barrier
// Two stages on sm_90: the wgmma descriptors of Q and K add this chunk's
// slot offset (slot * 24576 bytes >> 4) to the shared-memory base.
// WG-LABEL: gpu.func @linattn_fwd
// WG: nvvm.cp.async.wait.group 1
// WG: arith.muli %{{.*}}, %c24576
// WG: %[[D16:.*]] = arith.divui %{{.*}}, %c16
// WG: %[[DESC:.*]] = arith.index_cast %[[D16]] : index to i64
// WG: fence.proxy
// WG: %[[A:.*]] = arith.addi %{{.*}}, %[[DESC]] : i64
// WG: nvvm.wgmma.mma_async
// PTX: cp.async.cg.shared.global
// PTX-SAME: cp.async.commit_group
// PTX-SAME: cp.async.wait_group {{(\\09| )*}}1;
// PTX-SAME: mma.sync.aligned.m16n8k16
// One stage (the default) loads each chunk when it starts.
// ONE-NOT: nvgpu.device_async_copy
// ONE-NOT: cp.async
func.func @scalar(%q: tensor<1x8x?x64xbf16>, %k: tensor<1x8x?x64xbf16>,
                  %v: tensor<1x8x?x64xbf16>, %g: tensor<1x8x?xf32>)
    -> tensor<1x8x?x64xbf16> {
  %o, %s = linattn.attention %q, %k, %v gate(%g : tensor<1x8x?xf32>)
      {decay = #linattn.decay<scalar>}
      : tensor<1x8x?x64xbf16>, tensor<1x8x?x64xbf16>, tensor<1x8x?x64xbf16>
      -> tensor<1x8x?x64xbf16>, tensor<1x8x64x64xf32>
  return %o : tensor<1x8x?x64xbf16>
}

// -----

// Vector (GLA) gates: the raw per-key gates travel with the chunk (f32
// rows: two 4-element copies per 8-element item) and are clamped into the
// cumulative-gate tile when the chunk starts.
// CHECK-LABEL: gpu.func @linattn_fwd
// CHECK: nvgpu.device_async_copy %arg3{{.*}}, 4 {bypassL1} : memref<?xf32>
// CHECK: nvgpu.device_async_copy %arg3{{.*}}, 4 {bypassL1} : memref<?xf32>
// CHECK: nvvm.cp.async.wait.group 2
// CHECK: arith.maximumf {{.*}} : vector<8xf32>
// CHECK: vector.store {{.*}} : memref<64x64xf32, #gpu.address_space<workgroup>>, vector<8xf32>
// WG-LABEL: gpu.func @linattn_fwd
// WG-NOT: wgmma
// WG: nvvm.cp.async.wait.group 1
func.func @gla(%q: tensor<1x8x?x64xbf16>, %k: tensor<1x8x?x64xbf16>,
               %v: tensor<1x8x?x32xbf16>, %g: tensor<1x8x?x64xf32>)
    -> tensor<1x8x?x32xbf16> {
  %o, %s = linattn.attention %q, %k, %v gate(%g : tensor<1x8x?x64xf32>)
      {decay = #linattn.decay<vector>}
      : tensor<1x8x?x64xbf16>, tensor<1x8x?x64xbf16>, tensor<1x8x?x32xbf16>
      -> tensor<1x8x?x32xbf16>, tensor<1x8x64x32xf32>
  return %o : tensor<1x8x?x32xbf16>
}
