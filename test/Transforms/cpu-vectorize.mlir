// RUN: linattn-opt %s --linattn-cpu-vectorize='tile-m=4 tile-n=16 vector-width=8' --split-input-file | FileCheck %s

// 10x24 += 10x7 · 7x24 with 4x16 blocks: two full row blocks plus a 2-row
// remainder, one 16-column block plus an 8-column remainder. Accumulators
// are loop-carried vectors; B rows are vector loads, A elements broadcast.
// CHECK-LABEL: func.func @plain
// CHECK-NOT: linalg.matmul
// CHECK: scf.for %[[I:.*]] = %{{.*}} to %{{.*}} step %c4
// CHECK:   scf.for %[[N:.*]] = %{{.*}} to %{{.*}} step %c16
// CHECK:     vector.load %{{.*}} : memref<10x24xf32>, vector<8xf32>
// CHECK:     scf.for %{{.*}} iter_args(%{{.*}}) -> (vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>)
// CHECK:       vector.load %{{.*}} : memref<7x24xf32>, vector<8xf32>
// CHECK:       memref.load %{{.*}} : memref<10x7xf32>
// CHECK:       vector.broadcast %{{.*}} : f32 to vector<8xf32>
// CHECK:       vector.fma
// CHECK:     vector.store
// The 8-column remainder of the full row blocks: 4 accumulators.
// CHECK:   scf.for %{{.*}} iter_args(%{{.*}}) -> (vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>)
// The 2-row remainder block.
// CHECK: scf.for %{{.*}} iter_args(%{{.*}}) -> (vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>)
func.func @plain(%a: memref<10x7xf32>, %b: memref<7x24xf32>, %c: memref<10x24xf32>) {
  linalg.matmul ins(%a, %b : memref<10x7xf32>, memref<7x24xf32>) outs(%c : memref<10x24xf32>)
  return
}

// -----

// A zero fill right before the matmul becomes zero accumulators; a lower
// triangular left operand bounds the reduction by the block's last row.
// CHECK-LABEL: func.func @fill_triangular
// CHECK-NOT: linalg.fill
// CHECK: %[[Z:.*]] = arith.constant dense<0.000000e+00> : vector<8xf32>
// CHECK: scf.for %[[I:.*]] = %{{.*}} to %{{.*}} step %c4
// CHECK:   %[[END:.*]] = arith.addi %[[I]], %c4
// CHECK:   %[[K:.*]] = arith.minsi %[[END]], %c16
// CHECK:   scf.for %{{.*}} = %c0 to %[[K]] step %c1 iter_args(%{{.*}} = %[[Z]],
func.func @fill_triangular(%p: memref<16x16xf32>, %v: memref<16x8xf32>, %o: memref<16x8xf32>) {
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%o : memref<16x8xf32>)
  linalg.matmul {linattn.lower_triangular_lhs} ins(%p, %v : memref<16x16xf32>, memref<16x8xf32>) outs(%o : memref<16x8xf32>)
  return
}

// -----

// Dynamic shapes are left for the generic lowering; math.exp becomes a
// polynomial (no libm call).
// CHECK-LABEL: func.func @dynamic
// CHECK: linalg.matmul
// CHECK-NOT: math.exp
func.func @dynamic(%a: memref<?x8xf32>, %b: memref<8x8xf32>, %c: memref<?x8xf32>, %x: f32) -> f32 {
  linalg.matmul ins(%a, %b : memref<?x8xf32>, memref<8x8xf32>) outs(%c : memref<?x8xf32>)
  %e = math.exp %x : f32
  return %e : f32
}

// -----

// A 16x8 -> 8x16 transpose into a strided view: 8x8 register blocks (two
// along the rows), eight row loads, 24 shuffles, eight column stores each.
// CHECK-LABEL: func.func @transpose_blocks
// CHECK-NOT: linalg.transpose
// CHECK: scf.for %[[I:.*]] = %{{.*}} to %{{.*}} step %c8
// CHECK:   scf.for %[[J:.*]] = %{{.*}} to %{{.*}} step %c8
// CHECK-COUNT-8: vector.load %{{.*}} : memref<16x8xf32>, vector<8xf32>
// CHECK: vector.shuffle %{{.*}}, %{{.*}} [0, 8, 1, 9, 4, 12, 5, 13]
// CHECK-COUNT-23: vector.shuffle
// CHECK-COUNT-8: vector.store %{{.*}} : memref<8x16xf32, strided<[32, 1]>>, vector<8xf32>
func.func @transpose_blocks(%src: memref<16x8xf32>, %dst: memref<8x32xf32>) {
  %v = memref.subview %dst[0, 0] [8, 16] [1, 1] : memref<8x32xf32> to memref<8x16xf32, strided<[32, 1]>>
  linalg.transpose ins(%src : memref<16x8xf32>) outs(%v : memref<8x16xf32, strided<[32, 1]>>) permutation = [1, 0]
  return
}

// -----

// Dims that are not multiples of 8 (and f64) stay linalg.transpose, for
// the generic loop lowering.
// CHECK-LABEL: func.func @transpose_ragged
// CHECK: linalg.transpose
// CHECK-NOT: vector.shuffle
// CHECK: linalg.transpose
func.func @transpose_ragged(%a: memref<12x8xf32>, %b: memref<8x12xf32>,
                            %c: memref<8x8xf64>, %d: memref<8x8xf64>) {
  linalg.transpose ins(%a : memref<12x8xf32>) outs(%b : memref<8x12xf32>) permutation = [1, 0]
  linalg.transpose ins(%c : memref<8x8xf64>) outs(%d : memref<8x8xf64>) permutation = [1, 0]
  return
}
