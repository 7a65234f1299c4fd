//===- LinAttnAttrs.cpp - linattn attributes --------------------*- C++ -*-===//
//
// Parsing, printing and verification of the linattn attributes.
//
//===----------------------------------------------------------------------===//

#include "linattn/Dialect/LinAttn/IR/LinAttnAttrs.h"
#include "linattn/Dialect/LinAttn/IR/LinAttnDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>

using namespace mlir;
using namespace mlir::linattn;

#include "linattn/Dialect/LinAttn/IR/LinAttnEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "linattn/Dialect/LinAttn/IR/LinAttnAttrs.cpp.inc"

void LinAttnDialect::registerAttributes() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "linattn/Dialect/LinAttn/IR/LinAttnAttrs.cpp.inc"
      >();
}

//===----------------------------------------------------------------------===//
// DecayAttr
//===----------------------------------------------------------------------===//

bool DecayAttr::isDataDependent() const {
  DecayKind k = getKind();
  return k == DecayKind::Scalar || k == DecayKind::Vector ||
         k == DecayKind::GatedDelta;
}

bool DecayAttr::isDeltaRule() const {
  return getKind() == DecayKind::Delta || getKind() == DecayKind::GatedDelta;
}

bool DecayAttr::needsGateOperand() const {
  if (isDataDependent())
    return true;
  return getKind() == DecayKind::Constant && !getSchedule() && !getLogDecay();
}

/// Parses one `key = value` entry of a decay attribute into the fields.
static ParseResult parseDecayField(AsmParser &parser, StringRef key,
                                   std::optional<DecaySchedule> &schedule,
                                   int64_t &layer, int64_t &numLayers,
                                   DenseF64ArrayAttr &logDecay,
                                   FloatAttr &clampMin) {
  MLIRContext *ctx = parser.getContext();
  if (key == "schedule") {
    StringRef name;
    SMLoc loc = parser.getCurrentLocation();
    if (parser.parseKeyword(&name))
      return failure();
    schedule = symbolizeDecaySchedule(name);
    if (!schedule)
      return parser.emitError(loc, "unknown decay schedule '")
             << name
             << "' (expected retnet, retnet_linspace, transnormer or "
                "lightning)";
    return success();
  }
  if (key == "layer")
    return parser.parseInteger(layer);
  if (key == "num_layers")
    return parser.parseInteger(numLayers);
  if (key == "log_decay") {
    SmallVector<double> values;
    if (parser.parseCommaSeparatedList(AsmParser::Delimiter::Square,
                                       [&]() -> ParseResult {
                                         double v;
                                         if (parser.parseFloat(v))
                                           return failure();
                                         values.push_back(v);
                                         return success();
                                       }))
      return failure();
    logDecay = DenseF64ArrayAttr::get(ctx, values);
    return success();
  }
  if (key == "clamp_min") {
    double v;
    if (parser.parseFloat(v))
      return failure();
    clampMin = FloatAttr::get(Float64Type::get(ctx), v);
    return success();
  }
  return parser.emitError(parser.getCurrentLocation(),
                          "unknown decay parameter '")
         << key
         << "' (expected schedule, layer, num_layers, log_decay or "
            "clamp_min)";
}

Attribute DecayAttr::parse(AsmParser &parser, Type) {
  SMLoc loc = parser.getCurrentLocation();
  StringRef kindName;
  if (parser.parseLess() || parser.parseKeyword(&kindName))
    return {};
  std::optional<DecayKind> kind = symbolizeDecayKind(kindName);
  if (!kind) {
    parser.emitError(loc, "unknown decay kind '")
        << kindName
        << "' (expected none, constant, scalar, vector, delta or gated_delta)";
    return {};
  }
  std::optional<DecaySchedule> schedule;
  int64_t layer = 0, numLayers = 0;
  DenseF64ArrayAttr logDecay;
  FloatAttr clampMin;
  while (succeeded(parser.parseOptionalComma())) {
    StringRef key;
    if (parser.parseKeyword(&key) || parser.parseEqual() ||
        parseDecayField(parser, key, schedule, layer, numLayers, logDecay,
                        clampMin))
      return {};
  }
  if (parser.parseGreater())
    return {};
  return parser.getChecked<DecayAttr>(loc, parser.getContext(), *kind, schedule,
                                      layer, numLayers, logDecay, clampMin);
}

void DecayAttr::print(AsmPrinter &printer) const {
  printer << "<" << stringifyDecayKind(getKind());
  if (getSchedule())
    printer << ", schedule = " << stringifyDecaySchedule(*getSchedule());
  if (getLayer() != 0)
    printer << ", layer = " << getLayer();
  if (getNumLayers() != 0)
    printer << ", num_layers = " << getNumLayers();
  if (getLogDecay()) {
    printer << ", log_decay = [";
    llvm::interleaveComma(getLogDecay().asArrayRef(), printer,
                          [&](double v) { printer << v; });
    printer << "]";
  }
  if (getClampMin())
    printer << ", clamp_min = " << getClampMin().getValueAsDouble();
  printer << ">";
}

/// Checks the schedule-related fields of a decay attribute.
static LogicalResult
verifySchedule(function_ref<InFlightDiagnostic()> emitError, DecayKind kind,
               std::optional<DecaySchedule> schedule, int64_t layer,
               int64_t numLayers, DenseF64ArrayAttr logDecay) {
  if ((schedule || logDecay) && kind != DecayKind::Constant)
    return emitError() << "'schedule' and 'log_decay' are only valid for a "
                          "'constant' decay, not '"
                       << stringifyDecayKind(kind) << "'";
  if (schedule && logDecay)
    return emitError() << "give either 'schedule' or 'log_decay', not both";
  bool layered = schedule && (*schedule == DecaySchedule::TransNormer ||
                              *schedule == DecaySchedule::Lightning);
  if (!layered && (layer != 0 || numLayers != 0))
    return emitError() << "'layer' and 'num_layers' are only valid with the "
                          "'transnormer' and 'lightning' schedules";
  if (layered) {
    int64_t minLayers = *schedule == DecaySchedule::Lightning ? 2 : 1;
    if (numLayers < minLayers)
      return emitError() << "schedule '" << stringifyDecaySchedule(*schedule)
                         << "' needs 'num_layers' >= " << minLayers << ", got "
                         << numLayers;
    if (layer < 0 || layer >= numLayers)
      return emitError() << "'layer' must be in [0, " << numLayers << "), got "
                         << layer;
  }
  if (logDecay) {
    for (auto [i, v] : llvm::enumerate(logDecay.asArrayRef()))
      if (!(v <= 0.0))
        return emitError() << "'log_decay' entries are ln(lambda) and must be "
                              "<= 0 (decay, not growth); entry "
                           << i << " is " << v;
  }
  return success();
}

LogicalResult DecayAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                DecayKind kind,
                                std::optional<DecaySchedule> schedule,
                                int64_t layer, int64_t numLayers,
                                DenseF64ArrayAttr logDecay,
                                FloatAttr clampMin) {
  if (failed(verifySchedule(emitError, kind, schedule, layer, numLayers,
                            logDecay)))
    return failure();
  if (clampMin) {
    if (kind != DecayKind::Scalar && kind != DecayKind::Vector &&
        kind != DecayKind::GatedDelta)
      return emitError() << "'clamp_min' is only valid for data-dependent "
                            "gates (scalar, vector, gated_delta)";
    double v = clampMin.getValueAsDouble();
    if (!(v < 0.0) || !std::isfinite(v))
      return emitError() << "'clamp_min' must be a finite negative log-gate, "
                            "got "
                         << v;
  }
  return success();
}

//===----------------------------------------------------------------------===//
// ChunkingAttr
//===----------------------------------------------------------------------===//

LogicalResult ChunkingAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                   int64_t size, int64_t subSize) {
  if (size < 1)
    return emitError() << "chunk 'size' must be >= 1, got " << size;
  if (subSize < 0 || (subSize > 0 && size % subSize != 0))
    return emitError() << "'sub_size' must divide the chunk size " << size
                       << ", got " << subSize;
  return success();
}
