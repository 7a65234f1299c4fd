//===- KernelSource.h - MLIR text of a spec's kernel ------------*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
//
// Internal to lib/Runtime: the CPU JIT and the GPU compiler both start from
// the same `linattn.attention` function built from an AttentionSpec.
//
//===----------------------------------------------------------------------===//

#ifndef LINATTN_LIB_RUNTIME_KERNELSOURCE_H
#define LINATTN_LIB_RUNTIME_KERNELSOURCE_H

#include "linattn/Runtime/Runtime.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/Support/raw_ostream.h"

#include <string>

namespace linattn {

/// MLIR text of `func.func @linattn_head`, which holds one
/// `linattn.attention` op for one (sequence, head) of `s`, on [1, 1, T, D]
/// views. With `wholeLayout` (the GPU kernels, which index the whole
/// tensors), the op carries the spec's layout and its shapes follow it.
std::string kernelSource(const AttentionSpec &s, const CompileOptions &o,
                         bool wholeLayout = false);

/// What makes `s` (with `o`) an invalid spec, or "" (shared by the CPU and
/// GPU compilers).
std::string checkSpec(const AttentionSpec &s, const CompileOptions &o);

/// MLIR text parsed in a fresh single-threaded context with every linattn
/// dialect; the context's diagnostics collect in `diagnostics` (prefixed by
/// their locations when `locations`). `module` is null when the text does
/// not parse.
struct ParsedModule {
  explicit ParsedModule(llvm::StringRef text, bool locations = false);
  mlir::MLIRContext context;
  std::string diagnostics;
  mlir::OwningOpRef<mlir::ModuleOp> module;

private:
  llvm::raw_string_ostream diagOS{diagnostics};
  mlir::ScopedDiagnosticHandler handler;
};

} // namespace linattn

#endif // LINATTN_LIB_RUNTIME_KERNELSOURCE_H
