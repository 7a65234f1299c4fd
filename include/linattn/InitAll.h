//===- InitAll.h - Register everything linattn tools need -------*- C++ -*-===//
//
// One place that registers the linattn dialect together with the upstream
// dialects, extensions, passes and LLVM IR translations the tools use, so
// linattn-opt, the JIT and the Python module see the same world.
//
//===----------------------------------------------------------------------===//

#ifndef LINATTN_INITALL_H
#define LINATTN_INITALL_H

#include "linattn/Dialect/LinAttn/IR/LinAttnDialect.h"
#include "linattn/Transforms/Passes.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"

namespace mlir::linattn {

/// Registers linattn plus every upstream dialect, dialect extension and LLVM
/// IR translation (gpu-module-to-binary needs the latter two).
inline void registerAllDialects(DialectRegistry &registry) {
  registry.insert<LinAttnDialect>();
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);
  mlir::registerAllToLLVMIRTranslations(registry);
}

/// Registers the upstream passes and (as they are added) linattn's own
/// passes and pipelines.
inline void registerAllPasses() {
  mlir::registerAllPasses();
  registerTransformsPasses();
}

} // namespace mlir::linattn

#endif // LINATTN_INITALL_H
