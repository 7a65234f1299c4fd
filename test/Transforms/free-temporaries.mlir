// RUN: linattn-opt %s --linattn-free-temporaries | FileCheck %s

// A temporary (also read through a view) is freed at the end of its block;
// one already freed, and one that is returned, are left alone.
// CHECK-LABEL: func.func @temporaries
// CHECK:      %[[T:.*]] = memref.alloc(%{{.*}}) : memref<?x5xf32>
// CHECK:      %[[F:.*]] = memref.alloc() : memref<4xf32>
// CHECK:      %[[R:.*]] = memref.alloc() : memref<3xf32>
// CHECK:      memref.dealloc %[[F]]
// CHECK-NOT:  memref.dealloc %[[R]]
// CHECK:      memref.dealloc %[[T]]
// CHECK-NEXT: return %[[R]]
func.func @temporaries(%n: index, %out: memref<?x4xf32>) -> memref<3xf32> {
  %t = memref.alloc(%n) : memref<?x5xf32>
  %f = memref.alloc() : memref<4xf32>
  %r = memref.alloc() : memref<3xf32>
  %v = memref.subview %t[0, 1] [%n, 4] [1, 1] : memref<?x5xf32> to memref<?x4xf32, strided<[5, 1], offset: 1>>
  memref.copy %v, %out : memref<?x4xf32, strided<[5, 1], offset: 1>> to memref<?x4xf32>
  memref.dealloc %f : memref<4xf32>
  return %r : memref<3xf32>
}

// A buffer yielded out of a loop is not freed inside it.
// CHECK-LABEL: func.func @yielded
// CHECK:     scf.for
// CHECK-NOT:   memref.dealloc
// CHECK:       scf.yield
func.func @yielded(%m: memref<2xf32>, %n: index) -> memref<2xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %r = scf.for %i = %c0 to %n step %c1 iter_args(%acc = %m) -> memref<2xf32> {
    %a = memref.alloc() : memref<2xf32>
    scf.yield %a : memref<2xf32>
  }
  return %r : memref<2xf32>
}
