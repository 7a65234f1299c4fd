//===- LinAttnOps.h - linattn operations --------------------------*- C++
//-*-===//
//
// Declares the linattn operations (attention, feature_map).
//
//===----------------------------------------------------------------------===//

#ifndef LINATTN_DIALECT_LINATTN_IR_LINATTNOPS_H
#define LINATTN_DIALECT_LINATTN_IR_LINATTNOPS_H

#include "linattn/Dialect/LinAttn/IR/LinAttnAttrs.h"
#include "linattn/Dialect/LinAttn/IR/LinAttnDialect.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#define GET_OP_CLASSES
#include "linattn/Dialect/LinAttn/IR/LinAttnOps.h.inc"

#endif // LINATTN_DIALECT_LINATTN_IR_LINATTNOPS_H
