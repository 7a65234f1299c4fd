// REQUIRES: cc
// RUN: linattn-opt %s --linattn-gpu-to-emulation -o %t.mlir
// RUN: mlir-translate --mlir-to-llvmir %t.mlir -o %t.ll
// RUN: clang -O1 -shared -fPIC -Wno-override-module %t.ll -o %t.so
// RUN: %cc -o %t.selftest %S/selftest.c -ldl -lm
// RUN: env LINATTN_EMU_KERNELS=%t.so %t.selftest %emulib 2>&1 | FileCheck %s
// CHECK-NOT: FAIL
// CHECK: ok: shfl.sync bfly/up/down/idx with clamps
// CHECK: ok: bar.sync orders shared-memory writes before reads
// CHECK: ok: shared memory starts as NaN
// CHECK: ok: mma.sync m16n8k16 fragments (A row, B col, C/D)
// CHECK: ok: shared-memory race is caught
// CHECK: ok: divergent barrier is caught
// CHECK: ok: out-of-bounds store is caught

// Kernels of the emulator's self-test (emu-selftest.c), written at the NVVM
// level that linattn-gpu-to-emulation takes: one per modelled behaviour.
module attributes {gpu.container_module} {
  gpu.module @selftest {
    llvm.mlir.global internal @__dynamic_shmem__0() {addr_space = 3 : i32, alignment = 16 : i64} : !llvm.array<0 x i8>

    // out[tid] for each shuffle mode: [0,n) bfly ^5, [n,2n) up 3, [2n,3n)
    // down 7, [3n,4n) idx (lane 9 of its warp); the value is 1000*warp+lane.
    llvm.func @shuffles(%out: !llvm.ptr) attributes {gpu.kernel} {
      %tid = nvvm.read.ptx.sreg.tid.x : i32
      %ntid = nvvm.read.ptx.sreg.ntid.x : i32
      %c32 = llvm.mlir.constant(32 : i32) : i32
      %c1000 = llvm.mlir.constant(1000 : i32) : i32
      %all = llvm.mlir.constant(-1 : i32) : i32
      %lane = llvm.urem %tid, %c32 : i32
      %warp = llvm.udiv %tid, %c32 : i32
      %w = llvm.mul %warp, %c1000 : i32
      %val = llvm.add %w, %lane : i32
      %c5 = llvm.mlir.constant(5 : i32) : i32
      %c3 = llvm.mlir.constant(3 : i32) : i32
      %c7 = llvm.mlir.constant(7 : i32) : i32
      %c9 = llvm.mlir.constant(9 : i32) : i32
      %c31 = llvm.mlir.constant(31 : i32) : i32
      %c0 = llvm.mlir.constant(0 : i32) : i32
      %a = nvvm.shfl.sync bfly %all, %val, %c5, %c31 : i32 -> i32
      %b = nvvm.shfl.sync up %all, %val, %c3, %c0 : i32 -> i32
      %c = nvvm.shfl.sync down %all, %val, %c7, %c31 : i32 -> i32
      %d = nvvm.shfl.sync idx %all, %val, %c9, %c31 : i32 -> i32
      %p0 = llvm.getelementptr %out[%tid] : (!llvm.ptr, i32) -> !llvm.ptr, i32
      llvm.store %a, %p0 : i32, !llvm.ptr
      %i1 = llvm.add %tid, %ntid : i32
      %p1 = llvm.getelementptr %out[%i1] : (!llvm.ptr, i32) -> !llvm.ptr, i32
      llvm.store %b, %p1 : i32, !llvm.ptr
      %i2 = llvm.add %i1, %ntid : i32
      %p2 = llvm.getelementptr %out[%i2] : (!llvm.ptr, i32) -> !llvm.ptr, i32
      llvm.store %c, %p2 : i32, !llvm.ptr
      %i3 = llvm.add %i2, %ntid : i32
      %p3 = llvm.getelementptr %out[%i3] : (!llvm.ptr, i32) -> !llvm.ptr, i32
      llvm.store %d, %p3 : i32, !llvm.ptr
      llvm.return
    }

    // Shared memory through a barrier: thread t writes tid + 1 to slot t,
    // then reads slot (t + 1) % n, written by another thread. out[tid] gets
    // it, plus the f32 bits of never-written slot n (NaN fill) at out[n].
    llvm.func @barrier_exchange(%out: !llvm.ptr) attributes {gpu.kernel} {
      %tid = nvvm.read.ptx.sreg.tid.x : i32
      %ntid = nvvm.read.ptx.sreg.ntid.x : i32
      %one = llvm.mlir.constant(1 : i32) : i32
      %base3 = llvm.mlir.addressof @__dynamic_shmem__0 : !llvm.ptr<3>
      %v = llvm.add %tid, %one : i32
      %s = llvm.getelementptr %base3[%tid] : (!llvm.ptr<3>, i32) -> !llvm.ptr<3>, i32
      llvm.store %v, %s : i32, !llvm.ptr<3>
      nvvm.barrier0
      %nx = llvm.urem %v, %ntid : i32
      %s2 = llvm.getelementptr %base3[%nx] : (!llvm.ptr<3>, i32) -> !llvm.ptr<3>, i32
      %r = llvm.load %s2 : !llvm.ptr<3> -> i32
      %p = llvm.getelementptr %out[%tid] : (!llvm.ptr, i32) -> !llvm.ptr, i32
      llvm.store %r, %p : i32, !llvm.ptr
      %zero = llvm.mlir.constant(0 : i32) : i32
      %first = llvm.icmp "eq" %tid, %zero : i32
      llvm.cond_br %first, ^fill, ^done
    ^fill:
      %s3 = llvm.getelementptr %base3[%ntid] : (!llvm.ptr<3>, i32) -> !llvm.ptr<3>, f32
      %f = llvm.load %s3 : !llvm.ptr<3> -> f32
      %fb = llvm.bitcast %f : f32 to i32
      %p3 = llvm.getelementptr %out[%ntid] : (!llvm.ptr, i32) -> !llvm.ptr, i32
      llvm.store %fb, %p3 : i32, !llvm.ptr
      llvm.br ^done
    ^done:
      llvm.return
    }

    // mma.sync m16n8k16 with A[m][k] = m + k/16 and B[k][n] = (k == n)
    // (bf16): D[m][n] = C + A[m][n]; lane l passes its fragments and stores
    // its four results at out[4 l + r].
    llvm.func @mma(%a: !llvm.ptr, %b: !llvm.ptr, %out: !llvm.ptr) attributes {gpu.kernel} {
      %tid = nvvm.read.ptx.sreg.tid.x : i32
      %c4 = llvm.mlir.constant(4 : i32) : i32
      %c2 = llvm.mlir.constant(2 : i32) : i32
      %i4 = llvm.mul %tid, %c4 : i32
      %pa = llvm.getelementptr %a[%i4] : (!llvm.ptr, i32) -> !llvm.ptr, i32
      %a0 = llvm.load %pa : !llvm.ptr -> vector<4xi32>
      %i2 = llvm.mul %tid, %c2 : i32
      %pb = llvm.getelementptr %b[%i2] : (!llvm.ptr, i32) -> !llvm.ptr, i32
      %b0 = llvm.load %pb : !llvm.ptr -> vector<2xi32>
      %k0 = llvm.mlir.constant(0 : i32) : i32
      %k1 = llvm.mlir.constant(1 : i32) : i32
      %k3 = llvm.mlir.constant(3 : i32) : i32
      %x0 = llvm.extractelement %a0[%k0 : i32] : vector<4xi32>
      %x1 = llvm.extractelement %a0[%k1 : i32] : vector<4xi32>
      %x2 = llvm.extractelement %a0[%c2 : i32] : vector<4xi32>
      %x3 = llvm.extractelement %a0[%k3 : i32] : vector<4xi32>
      %y0 = llvm.extractelement %b0[%k0 : i32] : vector<2xi32>
      %y1 = llvm.extractelement %b0[%k1 : i32] : vector<2xi32>
      %half = llvm.mlir.constant(0.5 : f32) : f32
      %d = nvvm.mma.sync A[%x0, %x1, %x2, %x3] B[%y0, %y1] C[%half, %half, %half, %half]
        {layoutA = #nvvm.mma_layout<row>, layoutB = #nvvm.mma_layout<col>,
         multiplicandAPtxType = #nvvm.mma_type<bf16>, multiplicandBPtxType = #nvvm.mma_type<bf16>,
         shape = #nvvm.shape<m = 16, n = 8, k = 16>} : (i32, i32, f32) -> !llvm.struct<(f32, f32, f32, f32)>
      %po = llvm.getelementptr %out[%i4] : (!llvm.ptr, i32) -> !llvm.ptr, f32
      %d0 = llvm.extractvalue %d[0] : !llvm.struct<(f32, f32, f32, f32)>
      %d1 = llvm.extractvalue %d[1] : !llvm.struct<(f32, f32, f32, f32)>
      %d2 = llvm.extractvalue %d[2] : !llvm.struct<(f32, f32, f32, f32)>
      %d3 = llvm.extractvalue %d[3] : !llvm.struct<(f32, f32, f32, f32)>
      %u = llvm.mlir.poison : vector<4xf32>
      %u0 = llvm.insertelement %d0, %u[%k0 : i32] : vector<4xf32>
      %u1 = llvm.insertelement %d1, %u0[%k1 : i32] : vector<4xf32>
      %u2 = llvm.insertelement %d2, %u1[%c2 : i32] : vector<4xf32>
      %u3 = llvm.insertelement %d3, %u2[%k3 : i32] : vector<4xf32>
      llvm.store %u3, %po : vector<4xf32>, !llvm.ptr
      llvm.return
    }

    // The exchange without its barrier: thread t reads slot t + 1, which
    // thread t + 1 may not have written yet (a race).
    llvm.func @racy_exchange() attributes {gpu.kernel} {
      %tid = nvvm.read.ptx.sreg.tid.x : i32
      %one = llvm.mlir.constant(1 : i32) : i32
      %base3 = llvm.mlir.addressof @__dynamic_shmem__0 : !llvm.ptr<3>
      %s = llvm.getelementptr %base3[%tid] : (!llvm.ptr<3>, i32) -> !llvm.ptr<3>, i32
      llvm.store %tid, %s : i32, !llvm.ptr<3>
      %nx = llvm.add %tid, %one : i32
      %s2 = llvm.getelementptr %base3[%nx] : (!llvm.ptr<3>, i32) -> !llvm.ptr<3>, i32
      %r = llvm.load %s2 : !llvm.ptr<3> -> i32
      llvm.store %r, %s : i32, !llvm.ptr<3>
      llvm.return
    }

    // A barrier only half of the block reaches.
    llvm.func @divergent_barrier() attributes {gpu.kernel} {
      %tid = nvvm.read.ptx.sreg.tid.x : i32
      %c32 = llvm.mlir.constant(32 : i32) : i32
      %low = llvm.icmp "ult" %tid, %c32 : i32
      llvm.cond_br %low, ^sync, ^done
    ^sync:
      nvvm.barrier0
      llvm.br ^done
    ^done:
      llvm.return
    }

    // Thread 5 stores one element past the end of `out` (n elements).
    llvm.func @out_of_bounds(%out: !llvm.ptr, %n: i32) attributes {gpu.kernel} {
      %tid = nvvm.read.ptx.sreg.tid.x : i32
      %c5 = llvm.mlir.constant(5 : i32) : i32
      %is5 = llvm.icmp "eq" %tid, %c5 : i32
      %i = llvm.select %is5, %n, %tid : i1, i32
      %p = llvm.getelementptr %out[%i] : (!llvm.ptr, i32) -> !llvm.ptr, i32
      llvm.store %tid, %p : i32, !llvm.ptr
      llvm.return
    }
  }
}
