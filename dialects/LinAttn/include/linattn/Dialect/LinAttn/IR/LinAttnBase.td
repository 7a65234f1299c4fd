//===- LinAttnBase.td - linattn dialect definition ---------*- tablegen -*-===//
//
// The linattn dialect: a high-level description of linear-attention variants
// (feature map, decay/gate, normalization, chunking) that passes lower to
// vectorized CPU code and to PTX.
//
//===----------------------------------------------------------------------===//

#ifndef LINATTN_DIALECT_LINATTN_IR_LINATTNBASE_TD
#define LINATTN_DIALECT_LINATTN_IR_LINATTNBASE_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"

def LinAttn_Dialect : Dialect {
  let name = "linattn";
  let cppNamespace = "::mlir::linattn";
  let summary = "Linear-attention kernels: variants, chunking and lowering";
  let description = [{
    The `linattn` dialect states *which* linear attention a kernel computes:
    the feature map applied to queries and keys, the decay or gate (none,
    constant per head, data-dependent scalar or per-key-dim gates, delta and
    gated delta rules), the normalization, the state layout and the chunking
    hint. Its ops have tensor semantics; the math they compute is the one of
    the project's MATH.md (state S of shape Dk x Dv, o_t = q_t S_t).
  }];
  let useDefaultAttributePrinterParser = 1;
  let dependentDialects = ["::mlir::tensor::TensorDialect"];
  let extraClassDeclaration = [{
    /// Registers the attributes (defined next to their storage classes).
    void registerAttributes();
  }];
}

class LinAttn_Op<string mnemonic, list<Trait> traits = []>
    : Op<LinAttn_Dialect, mnemonic, traits>;

class LinAttn_Attr<string name, string attrMnemonic, list<Trait> traits = []>
    : AttrDef<LinAttn_Dialect, name, traits> {
  let mnemonic = attrMnemonic;
}

#endif // LINATTN_DIALECT_LINATTN_IR_LINATTNBASE_TD
