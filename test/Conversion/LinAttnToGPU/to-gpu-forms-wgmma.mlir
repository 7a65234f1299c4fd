// RUN: linattn-opt %s --convert-linattn-to-gpu='chip=sm_90' -split-input-file | FileCheck %s

// The wgmma kernel's exclusive read (a strict mask), non-causal form (a
// second pass over the chunks) and normalized form (denominators through
// shared memory).

// CHECK-LABEL: gpu.module @exclusive [#nvvm.target<O = 3, chip = "sm_90a", features = "+ptx80">]
// CHECK: nvvm.wgmma.mma_async
// CHECK: [[LT:%.+]] = arith.cmpi ult, %{{.*}}, %{{.*}} : index
// CHECK-NEXT: arith.constant 0.000000e+00 : f32
// CHECK-NEXT: arith.select [[LT]], %{{.*}}, %{{.*}} : f32
func.func @exclusive(%q: tensor<1x4x?x64xbf16>, %k: tensor<1x4x?x64xbf16>,
                     %v: tensor<1x4x?x64xbf16>, %g: tensor<1x4x?xf32>)
    -> tensor<1x4x?x64xbf16> {
  %o, %s = linattn.attention %q, %k, %v gate(%g : tensor<1x4x?xf32>)
      {decay = #linattn.decay<scalar>, exclusive}
      : tensor<1x4x?x64xbf16>, tensor<1x4x?x64xbf16>, tensor<1x4x?x64xbf16>
      -> tensor<1x4x?x64xbf16>, tensor<1x4x64x64xf32>
  return %o : tensor<1x4x?x64xbf16>
}

// -----

// Non-causal on wgmma: pass 1 is the chunk loop with only the state update
// (the decayed-K̃ᵀ·V product, no P and no outputs); pass 2, a second loop,
// stages Q and computes O = Q·S_T per chunk.
// CHECK-LABEL: gpu.module @noncausal [#nvvm.target<O = 3, chip = "sm_90a", features = "+ptx80">]
// CHECK-NOT: nvvm.mma.sync
// CHECK: scf.for
// CHECK-COUNT-4: nvvm.wgmma.mma_async
// CHECK-NOT: nvvm.wgmma.mma_async
// CHECK: scf.yield
// CHECK: scf.for
// CHECK-COUNT-4: nvvm.wgmma.mma_async
// CHECK-NOT: nvvm.wgmma.mma_async
// CHECK: vector.store
// CHECK-NOT: nvvm.mma.sync
func.func @noncausal(%q: tensor<1x4x?x64xbf16>, %k: tensor<1x4x?x64xbf16>,
                     %v: tensor<1x4x?x64xbf16>) -> tensor<1x4x?x64xbf16> {
  %o, %s = linattn.attention %q, %k, %v {causal = false}
      : tensor<1x4x?x64xbf16>, tensor<1x4x?x64xbf16>, tensor<1x4x?x64xbf16>
      -> tensor<1x4x?x64xbf16>, tensor<1x4x64x64xf32>
  return %o : tensor<1x4x?x64xbf16>
}

// -----

// The normalized form runs on wgmma: each row's denominator (the lane's P̃
// sums plus its share of q·z, added up over the quad with two xor shuffles)
// goes through shared memory to the output stores, which divide by it.
// CHECK-LABEL: gpu.module @normalized [#nvvm.target<O = 3, chip = "sm_90a", features = "+ptx80">]
// CHECK-NOT: nvvm.mma.sync
// CHECK: nvvm.wgmma.mma_async
// CHECK: gpu.shuffle xor
// CHECK: gpu.shuffle xor
// CHECK: memref.store {{.*}} : memref<64xf32, #gpu.address_space<workgroup>>
// CHECK: nvvm.wgmma.mma_async
// CHECK: memref.load {{.*}} : memref<64xf32, #gpu.address_space<workgroup>>
// CHECK: arith.divf
// CHECK-NOT: nvvm.mma.sync
func.func @normalized(%q: tensor<1x4x?x64xbf16>, %k: tensor<1x4x?x64xbf16>,
                      %v: tensor<1x4x?x64xbf16>, %g: tensor<1x4x?xf32>)
    -> tensor<1x4x?x64xbf16> {
  %o, %s, %z = linattn.attention %q, %k, %v gate(%g : tensor<1x4x?xf32>)
      {decay = #linattn.decay<scalar>,
       normalization = #linattn.norm<katharopoulos>}
      : tensor<1x4x?x64xbf16>, tensor<1x4x?x64xbf16>, tensor<1x4x?x64xbf16>
      -> tensor<1x4x?x64xbf16>, tensor<1x4x64x64xf32>, tensor<1x4x64xf32>
  return %o : tensor<1x4x?x64xbf16>
}
