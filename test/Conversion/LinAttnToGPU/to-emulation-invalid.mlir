// RUN: linattn-opt %s --linattn-gpu-to-emulation -split-input-file -verify-diagnostics

// The emulator models a fixed set of NVVM operations; anything else is an
// error naming the operation, never silently dropped.
module attributes {gpu.container_module} {
  gpu.module @k {
    llvm.func @f(%out: !llvm.ptr) attributes {gpu.kernel} {
      // expected-error @below {{'nvvm.read.ptx.sreg.clock' op the GPU emulator does not model this operation}}
      %0 = nvvm.read.ptx.sreg.clock : i32
      llvm.store %0, %out : i32, !llvm.ptr
      llvm.return
    }
  }
}

// -----

module attributes {gpu.container_module} {
  gpu.module @k {
    llvm.func @f(%x: i32, %out: !llvm.ptr) attributes {gpu.kernel} {
      // expected-error @below {{the emulator does not model the inline PTX 'mov.b32 $0, $1;'}}
      %0 = nvvm.inline_ptx "mov.b32 $0, $1;" ro(%x : i32) -> i32
      llvm.store %0, %out : i32, !llvm.ptr
      llvm.return
    }
  }
}

// -----

module attributes {gpu.container_module} {
  gpu.module @k {
    llvm.func @f(%x: i32, %out: !llvm.ptr) attributes {gpu.kernel} {
      %m = llvm.mlir.constant(-1 : i32) : i32
      %c = llvm.mlir.constant(31 : i32) : i32
      // expected-error @below {{the emulator models shfl.sync of i32 or f32 without the valid flag only}}
      %0 = nvvm.shfl.sync bfly %m, %x, %c, %c {return_value_and_is_valid} : i32 -> !llvm.struct<(i32, i1)>
      llvm.return
    }
  }
}

// -----

module attributes {gpu.container_module} {
  gpu.module @k {
    // expected-error @below {{the emulator supports dynamic shared memory only}}
    llvm.mlir.global internal @tile() {addr_space = 3 : i32} : !llvm.array<64 x f32>
    llvm.func @f() attributes {gpu.kernel} {
      llvm.return
    }
  }
}

// -----

// expected-error @below {{expected one gpu.module to emulate, found 0}}
module {
  llvm.func @f() {
    llvm.return
  }
}
