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

#include <string>

namespace linattn {

/// MLIR text of `func.func @linattn_head`, which holds one
/// `linattn.attention` op for one (sequence, head) of `s`.
std::string kernelSource(const AttentionSpec &s, const CompileOptions &o);

} // namespace linattn

#endif // LINATTN_LIB_RUNTIME_KERNELSOURCE_H
