//===- Passes.h - linattn transformation passes ----------------*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//

#ifndef LINATTN_TRANSFORMS_PASSES_H
#define LINATTN_TRANSFORMS_PASSES_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir::linattn {

#define GEN_PASS_DECL
#include "linattn/Transforms/Passes.h.inc"

/// Options of the whole CPU pipeline (`--linattn-to-cpu`).
struct CPUPipelineOptions {
  int64_t chunkSize = 0;
  int64_t subChunkSize = 0;
  int64_t tileM = 6;
  int64_t tileN = 16;
  int64_t vectorWidth = 8;
};

/// Adds chunking, bufferization, micro-kernel vectorization and the
/// lowering to the LLVM dialect to `pm`.
void buildCPUPipeline(OpPassManager &pm, const CPUPipelineOptions &options);

/// Registers the linattn passes and the `linattn-to-cpu` pipeline.
void registerTransformsPasses();

#define GEN_PASS_REGISTRATION
#include "linattn/Transforms/Passes.h.inc"

} // namespace mlir::linattn

#endif // LINATTN_TRANSFORMS_PASSES_H
