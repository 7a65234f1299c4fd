//===- LinAttnDialect.cpp - linattn dialect ---------------------*- C++ -*-===//
//
// Registers the linattn operations and attributes.
//
//===----------------------------------------------------------------------===//

#include "linattn/Dialect/LinAttn/IR/LinAttnDialect.h"
#include "linattn/Dialect/LinAttn/IR/LinAttnAttrs.h"
#include "linattn/Dialect/LinAttn/IR/LinAttnOps.h"

#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::linattn;

#include "linattn/Dialect/LinAttn/IR/LinAttnDialect.cpp.inc"

void LinAttnDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "linattn/Dialect/LinAttn/IR/LinAttnOps.cpp.inc"
      >();
  registerAttributes();
}
