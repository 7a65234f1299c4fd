//===- LinAttnDialect.h - linattn dialect -------------------------*- C++
//-*-===//
//
// Declares the linattn dialect class.
//
//===----------------------------------------------------------------------===//

#ifndef LINATTN_DIALECT_LINATTN_IR_LINATTNDIALECT_H
#define LINATTN_DIALECT_LINATTN_IR_LINATTNDIALECT_H

#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Dialect.h"

#include "linattn/Dialect/LinAttn/IR/LinAttnDialect.h.inc"

#endif // LINATTN_DIALECT_LINATTN_IR_LINATTNDIALECT_H
