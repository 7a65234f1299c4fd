//===- LinAttnEnums.td - linattn enums ---------------------*- tablegen -*-===//

#ifndef LINATTN_DIALECT_LINATTN_IR_LINATTNENUMS_TD
#define LINATTN_DIALECT_LINATTN_IR_LINATTNENUMS_TD

include "linattn/Dialect/LinAttn/IR/LinAttnBase.td"
include "mlir/IR/EnumAttr.td"

//===----------------------------------------------------------------------===//
// Feature maps (MATH.md section 3)
//===----------------------------------------------------------------------===//

def LinAttn_FeatureMapKind : I32EnumAttr<"FeatureMapKind",
    "feature map applied to queries and keys", [
      I32EnumAttrCase<"Identity", 0, "identity">,
      I32EnumAttrCase<"EluPlusOne", 1, "elu_plus_one">,
      I32EnumAttrCase<"Relu", 2, "relu">,
      I32EnumAttrCase<"Taylor2", 3, "taylor2">,
      I32EnumAttrCase<"Taylor2Symmetric", 4, "taylor2_symmetric">,
      I32EnumAttrCase<"Hedgehog", 5, "hedgehog">,
      I32EnumAttrCase<"HedgehogJoint", 6, "hedgehog_joint">,
      I32EnumAttrCase<"Performer", 7, "performer">,
      I32EnumAttrCase<"PerformerHyperbolic", 8, "performer_hyperbolic">
    ]> {
  let cppNamespace = "::mlir::linattn";
  let genSpecializedAttr = 0;
}
def LinAttn_FeatureMapKindAttr
    : EnumAttr<LinAttn_Dialect, LinAttn_FeatureMapKind, "feature_map"> {
  let assemblyFormat = "`<` $value `>`";
}

//===----------------------------------------------------------------------===//
// Decays and gates (MATH.md sections 4 and 5)
//===----------------------------------------------------------------------===//

def LinAttn_DecayKind : I32EnumAttr<"DecayKind", "decay / gate kind", [
      I32EnumAttrCase<"None", 0, "none">,
      I32EnumAttrCase<"Constant", 1, "constant">,
      I32EnumAttrCase<"Scalar", 2, "scalar">,
      I32EnumAttrCase<"Vector", 3, "vector">,
      I32EnumAttrCase<"Delta", 4, "delta">,
      I32EnumAttrCase<"GatedDelta", 5, "gated_delta">
    ]> {
  let cppNamespace = "::mlir::linattn";
}

def LinAttn_DecaySchedule : I32EnumAttr<"DecaySchedule",
    "constant per-head decay schedule (MATH.md 4.b)", [
      I32EnumAttrCase<"RetNet", 0, "retnet">,
      I32EnumAttrCase<"RetNetLinspace", 1, "retnet_linspace">,
      I32EnumAttrCase<"TransNormer", 2, "transnormer">,
      I32EnumAttrCase<"Lightning", 3, "lightning">
    ]> {
  let cppNamespace = "::mlir::linattn";
}

//===----------------------------------------------------------------------===//
// Normalization, layouts
//===----------------------------------------------------------------------===//

def LinAttn_Normalization : I32EnumAttr<"Normalization",
    "output normalization", [
      I32EnumAttrCase<"None", 0, "none">,
      I32EnumAttrCase<"Katharopoulos", 1, "katharopoulos">
    ]> {
  let cppNamespace = "::mlir::linattn";
  let genSpecializedAttr = 0;
}
def LinAttn_NormalizationAttr
    : EnumAttr<LinAttn_Dialect, LinAttn_Normalization, "norm"> {
  let assemblyFormat = "`<` $value `>`";
}

def LinAttn_Layout : I32EnumAttr<"Layout", "memory order of q/k/v/o", [
      I32EnumAttrCase<"BHTD", 0, "bhtd">,
      I32EnumAttrCase<"BTHD", 1, "bthd">
    ]> {
  let cppNamespace = "::mlir::linattn";
  let genSpecializedAttr = 0;
}
def LinAttn_LayoutAttr : EnumAttr<LinAttn_Dialect, LinAttn_Layout, "layout"> {
  let assemblyFormat = "`<` $value `>`";
}

def LinAttn_StateLayout : I32EnumAttr<"StateLayout",
    "layout of the initial/final state", [
      I32EnumAttrCase<"KeyMajor", 0, "key_major">,
      I32EnumAttrCase<"ValueMajor", 1, "value_major">
    ]> {
  let cppNamespace = "::mlir::linattn";
  let genSpecializedAttr = 0;
}
def LinAttn_StateLayoutAttr
    : EnumAttr<LinAttn_Dialect, LinAttn_StateLayout, "state_layout"> {
  let assemblyFormat = "`<` $value `>`";
}

#endif // LINATTN_DIALECT_LINATTN_IR_LINATTNENUMS_TD
