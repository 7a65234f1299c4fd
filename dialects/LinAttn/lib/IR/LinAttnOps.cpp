//===- LinAttnOps.cpp - linattn operations ----------------------*- C++ -*-===//
//
// Verifiers and helpers of the linattn operations. Every diagnostic names the
// offending operand or attribute and states what was expected.
//
//===----------------------------------------------------------------------===//

#include "linattn/Dialect/LinAttn/IR/LinAttnOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>

using namespace mlir;
using namespace mlir::linattn;

#define GET_OP_CLASSES
#include "linattn/Dialect/LinAttn/IR/LinAttnOps.cpp.inc"

//===----------------------------------------------------------------------===//
// Shape helpers
//===----------------------------------------------------------------------===//

/// Formats a shape as "[2, 4, ?, 64]".
static std::string formatShape(ArrayRef<int64_t> shape) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << "[";
  llvm::interleaveComma(shape, os, [&](int64_t d) {
    if (ShapedType::isDynamic(d))
      os << "?";
    else
      os << d;
  });
  os << "]";
  return s;
}

/// Two dims agree unless both are static and differ.
static bool dimsAgree(int64_t a, int64_t b) {
  return a == b || ShapedType::isDynamic(a) || ShapedType::isDynamic(b);
}

static bool shapesAgree(ArrayRef<int64_t> a, ArrayRef<int64_t> b) {
  if (a.size() != b.size())
    return false;
  for (auto [x, y] : llvm::zip_equal(a, b))
    if (!dimsAgree(x, y))
      return false;
  return true;
}

SmallVector<int64_t> AttentionOp::toBHTD(ArrayRef<int64_t> shape,
                                         Layout layout) {
  SmallVector<int64_t> result(shape);
  if (layout == Layout::BTHD && result.size() >= 3)
    std::swap(result[1], result[2]);
  return result;
}

/// Checks that `value` (named `name`) has the `expected` shape and, if given,
/// the `elementType`. `why` explains where the expectation comes from.
static LogicalResult checkTensor(Operation *op, StringRef name, Value value,
                                 ArrayRef<int64_t> expected, Type elementType,
                                 StringRef why) {
  auto type = cast<RankedTensorType>(value.getType());
  if (!shapesAgree(type.getShape(), expected))
    return op->emitOpError()
           << "'" << name << "' must have shape " << formatShape(expected)
           << " (" << why << "), got " << formatShape(type.getShape());
  if (elementType && type.getElementType() != elementType)
    return op->emitOpError()
           << "'" << name << "' must have element type " << elementType
           << ", got " << type.getElementType();
  return success();
}

//===----------------------------------------------------------------------===//
// AttentionOp
//===----------------------------------------------------------------------===//

namespace {
/// The logical problem dims of an attention op ([B, H, T, D] order).
struct AttentionDims {
  int64_t batch, seqLen, numQHeads, numKHeads, numVHeads, numHeads, keyDim,
      valueDim;
};
} // namespace

static AttentionDims getDims(AttentionOp op) {
  Layout layout = op.getLayout();
  auto q = AttentionOp::toBHTD(op.getQ().getType().getShape(), layout);
  auto k = AttentionOp::toBHTD(op.getK().getType().getShape(), layout);
  auto v = AttentionOp::toBHTD(op.getV().getType().getShape(), layout);
  AttentionDims d;
  d.batch = q[0];
  d.seqLen = q[2];
  d.numQHeads = q[1];
  d.numKHeads = k[1];
  d.numVHeads = v[1];
  d.numHeads = std::max({q[1], k[1], v[1]});
  d.keyDim = q[3];
  d.valueDim = v[3];
  return d;
}

int64_t AttentionOp::getNumHeads() { return getDims(*this).numHeads; }

double AttentionOp::getScaleOrDefault() {
  if (FloatAttr s = getScaleAttr())
    return s.getValueAsDouble();
  return 1.0 / std::sqrt(static_cast<double>(getDims(*this).keyDim));
}

/// q, k, v: rank, element type, static head/feature dims, agreement.
static LogicalResult verifyInputs(AttentionOp op) {
  Type elementType = op.getQ().getType().getElementType();
  for (auto [name, value] : {std::pair<StringRef, Value>{"q", op.getQ()},
                             {"k", op.getK()},
                             {"v", op.getV()}}) {
    auto type = cast<RankedTensorType>(value.getType());
    if (type.getRank() != 4)
      return op.emitOpError() << "'" << name << "' must have rank 4 ("
                              << stringifyLayout(op.getLayout())
                              << " layout), got rank " << type.getRank();
    if (type.getElementType() != elementType)
      return op.emitOpError() << "'q', 'k' and 'v' must share one element "
                                 "type; 'q' is "
                              << elementType << " but '" << name << "' is "
                              << type.getElementType();
    auto dims = AttentionOp::toBHTD(type.getShape(), op.getLayout());
    if (ShapedType::isDynamic(dims[1]) || ShapedType::isDynamic(dims[3]))
      return op.emitOpError() << "'" << name
                              << "' must have static head and feature dims, "
                                 "got "
                              << formatShape(type.getShape());
  }
  AttentionDims d = getDims(op);
  auto k = AttentionOp::toBHTD(op.getK().getType().getShape(), op.getLayout());
  auto v = AttentionOp::toBHTD(op.getV().getType().getShape(), op.getLayout());
  if (!dimsAgree(d.batch, k[0]) || !dimsAgree(d.batch, v[0]))
    return op.emitOpError() << "'q', 'k' and 'v' must have the same batch "
                               "size, got "
                            << d.batch << ", " << k[0] << ", " << v[0];
  if (!dimsAgree(d.seqLen, k[2]) || !dimsAgree(d.seqLen, v[2]))
    return op.emitOpError() << "'q', 'k' and 'v' must have the same sequence "
                               "length, got "
                            << d.seqLen << ", " << k[2] << ", " << v[2];
  if (d.keyDim != k[3])
    return op.emitOpError() << "'q' and 'k' must have the same key dim, got "
                            << d.keyDim << " and " << k[3];
  for (auto [name, heads] : {std::pair<StringRef, int64_t>{"q", d.numQHeads},
                             {"k", d.numKHeads},
                             {"v", d.numVHeads}}) {
    if (heads < 1)
      return op.emitOpError() << "'" << name << "' must have at least one "
                              << "head, got " << heads;
    if (d.numHeads % heads != 0)
      return op.emitOpError()
             << "the head count of '" << name << "' (" << heads
             << ") must divide the number of heads H = " << d.numHeads
             << " (grouped-query/value attention)";
  }
  return success();
}

/// Number of sequences N: B, or the packed sequence count with offsets.
static FailureOr<int64_t> verifyOffsets(AttentionOp op,
                                        const AttentionDims &d) {
  if (!op.getOffsets())
    return d.batch;
  auto type = op.getOffsets().getType();
  if (type.getRank() != 1)
    return op.emitOpError() << "'offsets' must be a 1-D tensor of sequence "
                               "boundaries (cu_seqlens), got rank "
                            << type.getRank();
  if (!dimsAgree(d.batch, 1))
    return op.emitOpError() << "with 'offsets' (packed variable-length "
                               "sequences) the batch size must be 1, got "
                            << d.batch;
  int64_t n = type.getDimSize(0);
  if (ShapedType::isDynamic(n))
    return n;
  if (n < 2)
    return op.emitOpError() << "'offsets' must hold at least 2 entries "
                               "(N + 1 boundaries), got "
                            << n;
  return n - 1;
}

/// The element type of states: f64 for f64 inputs, f32 otherwise.
static Type getStateElementType(AttentionOp op) {
  Type t = op.getQ().getType().getElementType();
  return t.isF64() ? t : Float32Type::get(op.getContext());
}

/// output, initial/final state and normalizer shapes and types.
static LogicalResult verifyStates(AttentionOp op, const AttentionDims &d,
                                  int64_t numSeqs) {
  Layout layout = op.getLayout();
  SmallVector<int64_t> out =
      AttentionOp::toBHTD({d.batch, d.numHeads, d.seqLen, d.valueDim}, layout);
  if (failed(checkTensor(op, "output", op.getOutput(), out,
                         op.getQ().getType().getElementType(),
                         "output has the layout of 'v' with H heads")))
    return failure();
  bool valueMajor = op.getStateLayout() == StateLayout::ValueMajor;
  SmallVector<int64_t> state = {numSeqs, d.numHeads,
                                valueMajor ? d.valueDim : d.keyDim,
                                valueMajor ? d.keyDim : d.valueDim};
  std::string why =
      (Twine("[N, H, ") + (valueMajor ? "Dv, Dk" : "Dk, Dv") + "] " +
       stringifyStateLayout(op.getStateLayout()) + " state")
          .str();
  Type stateType = getStateElementType(op);
  if (failed(checkTensor(op, "final_state", op.getFinalState(), state,
                         stateType, why)))
    return failure();
  if (op.getInitialState() &&
      failed(checkTensor(op, "initial_state", op.getInitialState(), state,
                         stateType, why)))
    return failure();
  bool normalized = op.getNormalization() != Normalization::None;
  SmallVector<int64_t> z = {numSeqs, d.numHeads, d.keyDim};
  if (normalized != static_cast<bool>(op.getFinalNormalizer()))
    return op.emitOpError()
           << (normalized ? "a normalized op must return the final "
                            "normalizer as a third result"
                          : "'final_normalizer' result requires "
                            "normalization = katharopoulos");
  if (op.getInitialNormalizer() && !normalized)
    return op.emitOpError() << "'initial_normalizer' requires normalization "
                               "= katharopoulos";
  for (auto [name, value] : {std::pair<StringRef, Value>{
                                 "final_normalizer", op.getFinalNormalizer()},
                             {"initial_normalizer", op.getInitialNormalizer()}})
    if (value && failed(checkTensor(op, name, value, z, stateType,
                                    "[N, H, Dk] normalizer state")))
      return failure();
  return success();
}

/// Gates and beta must be f32 or the input element type.
static LogicalResult checkGateElementType(AttentionOp op, StringRef name,
                                          Value value) {
  Type t = cast<RankedTensorType>(value.getType()).getElementType();
  Type in = op.getQ().getType().getElementType();
  if (t.isF32() || t == in)
    return success();
  return op.emitOpError() << "'" << name << "' must have element type f32 or "
                          << in << " (the input type), got " << t;
}

/// gate and beta operands against the decay kind.
static LogicalResult verifyGateAndBeta(AttentionOp op, const AttentionDims &d) {
  DecayAttr decay = op.getDecay();
  StringRef kind = stringifyDecayKind(decay.getKind());
  if (decay.needsGateOperand() != static_cast<bool>(op.getGate())) {
    if (op.getGate())
      return op.emitOpError()
             << "decay '" << kind << "' takes no 'gate' operand"
             << (decay.getKind() == DecayKind::Constant
                     ? " (its schedule or log_decay gives "
                       "the per-head decay)"
                     : "");
    return op.emitOpError()
           << "decay '" << kind << "' requires a 'gate' operand";
  }
  if (Value gate = op.getGate()) {
    SmallVector<int64_t> expected = {d.numHeads};
    if (decay.getKind() == DecayKind::Vector)
      expected = {d.batch, d.numHeads, d.seqLen, d.keyDim};
    else if (decay.isDataDependent())
      expected = {d.batch, d.numHeads, d.seqLen};
    expected = AttentionOp::toBHTD(expected, op.getLayout());
    std::string why = ("log-gates for decay '" + kind + "'").str();
    if (failed(checkTensor(op, "gate", gate, expected, {}, why)) ||
        failed(checkGateElementType(op, "gate", gate)))
      return failure();
  }
  if (DenseF64ArrayAttr logDecay = decay.getLogDecay())
    if (static_cast<int64_t>(logDecay.size()) != d.numHeads)
      return op.emitOpError() << "'log_decay' must have one entry per head ("
                              << d.numHeads << "), got " << logDecay.size();
  if (decay.isDeltaRule() != static_cast<bool>(op.getBeta()))
    return op.emitOpError()
           << (op.getBeta() ? "a 'beta' operand is only valid "
                              "for the delta rules, not "
                            : "decay '")
           << kind << (op.getBeta() ? "" : "' requires a 'beta' operand");
  if (Value beta = op.getBeta()) {
    auto expected =
        AttentionOp::toBHTD({d.batch, d.numHeads, d.seqLen}, op.getLayout());
    if (failed(checkTensor(op, "beta", beta, expected, {},
                           "write strength per token")) ||
        failed(checkGateElementType(op, "beta", beta)))
      return failure();
  }
  return success();
}

/// Attribute combinations: feature map, normalization, causality, scale.
static LogicalResult verifyOptions(AttentionOp op) {
  FeatureMapKind fm = op.getFeatureMap();
  if (fm != FeatureMapKind::Identity && fm != FeatureMapKind::EluPlusOne &&
      fm != FeatureMapKind::Relu)
    return op.emitOpError()
           << "'feature_map' on the attention op must be an elementwise map "
              "(identity, elu_plus_one, relu); apply '"
           << stringifyFeatureMapKind(fm) << "' with linattn.feature_map";
  DecayAttr decay = op.getDecay();
  if (op.getNormalization() != Normalization::None) {
    if (decay.isDeltaRule())
      return op.emitOpError() << "normalization 'katharopoulos' is not "
                                 "defined for the delta rules";
    double eps = op.getEps().convertToDouble();
    if (!(eps > 0.0) || !std::isfinite(eps))
      return op.emitOpError()
             << "'eps' must be a finite positive number, got " << eps;
  }
  if (!op.getCausal() && decay.getKind() != DecayKind::None)
    return op.emitOpError() << "non-causal attention ('causal = false') is "
                               "only defined without decay, got decay '"
                            << stringifyDecayKind(decay.getKind()) << "'";
  if (!op.getCausal() && op.getExclusive())
    return op.emitOpError() << "'exclusive' requires causal attention";
  if (FloatAttr scaleAttr = op.getScaleAttr()) {
    double scale = scaleAttr.getValueAsDouble();
    if (!(scale > 0.0) || !std::isfinite(scale))
      return op.emitOpError() << "'scale' must be a finite positive number, "
                                 "got "
                              << scale;
  }
  return success();
}

LogicalResult AttentionOp::verify() {
  if (failed(verifyInputs(*this)) || failed(verifyOptions(*this)))
    return failure();
  AttentionDims d = getDims(*this);
  FailureOr<int64_t> numSeqs = verifyOffsets(*this, d);
  if (failed(numSeqs) || failed(verifyStates(*this, d, *numSeqs)))
    return failure();
  return verifyGateAndBeta(*this, d);
}

//===----------------------------------------------------------------------===//
// FeatureMapOp
//===----------------------------------------------------------------------===//

int64_t FeatureMapOp::getOutputWidth(FeatureMapKind kind, int64_t d,
                                     int64_t f) {
  switch (kind) {
  case FeatureMapKind::Identity:
  case FeatureMapKind::EluPlusOne:
  case FeatureMapKind::Relu:
    return d;
  case FeatureMapKind::Taylor2:
    return 1 + d + d * d;
  case FeatureMapKind::Taylor2Symmetric:
    return 1 + d + d * (d + 1) / 2;
  case FeatureMapKind::Hedgehog:
  case FeatureMapKind::PerformerHyperbolic:
    return 2 * f;
  case FeatureMapKind::HedgehogJoint:
    return 2 * d;
  case FeatureMapKind::Performer:
    return f;
  }
  llvm_unreachable("unknown feature map kind");
}

/// Whether the kind takes a weight operand, and whether it is [d, f]-shaped
/// (Hedgehog) or [m, d]-shaped (Performer).
static bool takesWeight(FeatureMapKind kind) {
  return kind >= FeatureMapKind::Hedgehog;
}
static bool isPerformer(FeatureMapKind kind) {
  return kind == FeatureMapKind::Performer ||
         kind == FeatureMapKind::PerformerHyperbolic;
}

/// Verifies weight/bias of a learned or random-feature map; returns f (m).
static FailureOr<int64_t> verifyFeatureWeights(FeatureMapOp op, int64_t d) {
  FeatureMapKind kind = op.getKind();
  StringRef name = stringifyFeatureMapKind(kind);
  auto inShape = op.getInput().getType().getShape();
  auto wType = cast<RankedTensorType>(op.getWeight().getType());
  int64_t rank = wType.getRank();
  if (rank != 2 && !(rank == 3 && inShape.size() == 4))
    return op.emitOpError() << "'weight' of '" << name
                            << "' must have rank 2, or rank 3 with a leading "
                               "head dim for a [B, H, T, d] input; got rank "
                            << rank;
  if (rank == 3 && !dimsAgree(wType.getDimSize(0), inShape[1]))
    return op.emitOpError() << "'weight' has " << wType.getDimSize(0)
                            << " heads but the input has " << inShape[1];
  int64_t rows = wType.getDimSize(rank - 2), cols = wType.getDimSize(rank - 1);
  int64_t inDim = isPerformer(kind) ? cols : rows;
  int64_t f = isPerformer(kind) ? rows : cols;
  if (ShapedType::isDynamic(f) || !dimsAgree(inDim, d))
    return op.emitOpError()
           << "'weight' of '" << name << "' must be "
           << (isPerformer(kind) ? "[m, d]" : "[d, f]") << " with d = " << d
           << " and a static feature count, got "
           << formatShape(wType.getShape());
  if (kind == FeatureMapKind::HedgehogJoint && f != d)
    return op.emitOpError() << "'weight' of 'hedgehog_joint' must be square "
                               "[d, d], got "
                            << formatShape(wType.getShape());
  if (Value bias = op.getBias()) {
    if (isPerformer(kind))
      return op.emitOpError() << "'" << name << "' takes no 'bias'";
    SmallVector<int64_t> expected(wType.getShape().drop_back(2));
    expected.push_back(f);
    if (failed(checkTensor(op, "bias", bias, expected, {},
                           "one entry per feature")))
      return failure();
  }
  return f;
}

LogicalResult FeatureMapOp::verify() {
  auto inType = getInput().getType();
  FeatureMapKind kind = getKind();
  StringRef name = stringifyFeatureMapKind(kind);
  if (inType.getRank() < 1 || ShapedType::isDynamic(inType.getShape().back()))
    return emitOpError() << "input must have a static last (feature) dim, got "
                         << formatShape(inType.getShape());
  int64_t d = inType.getShape().back();
  int64_t f = 0;
  if (takesWeight(kind)) {
    if (!getWeight())
      return emitOpError() << "feature map '" << name
                           << "' requires a 'weight' operand";
    FailureOr<int64_t> features = verifyFeatureWeights(*this, d);
    if (failed(features))
      return failure();
    f = *features;
  } else if (getWeight() || getBias()) {
    return emitOpError() << "feature map '" << name
                         << "' takes no 'weight' or 'bias'";
  }
  SmallVector<int64_t> expected(inType.getShape().drop_back());
  expected.push_back(getOutputWidth(kind, d, f));
  return checkTensor(
      *this, "result", getResult(), expected, inType.getElementType(),
      ("feature map '" + name + "' of width d = " + Twine(d)).str());
}
