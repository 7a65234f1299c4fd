//===- LinAttnAttrs.h - linattn attributes and enums --------------*- C++
//-*-===//
//
// Declares the linattn enums (feature maps, decays, normalization, layouts)
// and attributes (#linattn.decay, #linattn.chunking).
//
//===----------------------------------------------------------------------===//

#ifndef LINATTN_DIALECT_LINATTN_IR_LINATTNATTRS_H
#define LINATTN_DIALECT_LINATTN_IR_LINATTNATTRS_H

#include "mlir/IR/Attributes.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/DialectImplementation.h"

#include "linattn/Dialect/LinAttn/IR/LinAttnEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "linattn/Dialect/LinAttn/IR/LinAttnAttrs.h.inc"

#endif // LINATTN_DIALECT_LINATTN_IR_LINATTNATTRS_H
