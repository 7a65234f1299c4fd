//===- Tensor.cpp - Dense fp64 tensor and error metrics --------*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//

#include "linattn/Reference/Reference.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <sstream>
#include <utility>

namespace linattn::reference {

//===----------------------------------------------------------------------===//
// Tensor
//===----------------------------------------------------------------------===//

/// Product of the extents; negative extents count as 0.
static int64_t shapeProduct(const std::vector<int64_t> &shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d < 0 ? 0 : d;
  return n;
}

Tensor::Tensor(std::vector<int64_t> shapeIn, double fill)
    : shape(std::move(shapeIn)),
      data(static_cast<size_t>(shapeProduct(shape)), fill) {}

int64_t Tensor::numel() const { return shapeProduct(shape); }

/// Row-major flat offset of a full multi-index.
static size_t flatIndex(const std::vector<int64_t> &shape,
                        std::initializer_list<int64_t> idx) {
  assert(idx.size() == shape.size() && "index rank does not match the shape");
  size_t flat = 0;
  size_t i = 0;
  for (int64_t x : idx) {
    assert(x >= 0 && x < shape[i] && "index out of bounds");
    flat = flat * static_cast<size_t>(shape[i]) + static_cast<size_t>(x);
    ++i;
  }
  return flat;
}

double &Tensor::at(std::initializer_list<int64_t> idx) {
  return data[flatIndex(shape, idx)];
}

double Tensor::at(std::initializer_list<int64_t> idx) const {
  return data[flatIndex(shape, idx)];
}

std::string formatShape(const std::vector<int64_t> &shape) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < shape.size(); ++i)
    os << (i ? ", " : "") << shape[i];
  os << ']';
  return os.str();
}

Tensor swapDims(const Tensor &t, size_t a, size_t b) {
  size_t rank = t.shape.size();
  assert(a < rank && b < rank && "swapDims: no such dim");
  std::vector<int64_t> shape = t.shape;
  std::swap(shape[a], shape[b]);
  Tensor out(shape);
  std::vector<int64_t> srcStride(rank, 1);
  for (size_t d = rank; d-- > 1;)
    srcStride[d - 1] = srcStride[d] * t.shape[d];
  // Walk `out` in row-major order; its index with a and b exchanged is the
  // source index.
  std::vector<int64_t> idx(rank, 0);
  for (double &e : out.data) {
    int64_t src = 0;
    for (size_t d = 0; d < rank; ++d) {
      size_t sd = d == a ? b : d == b ? a : d;
      src += idx[d] * srcStride[sd];
    }
    e = t.data[static_cast<size_t>(src)];
    for (size_t d = rank; d-- > 0;) {
      if (++idx[d] < shape[d])
        break;
      idx[d] = 0;
    }
  }
  return out;
}

//===----------------------------------------------------------------------===//
// Names
//===----------------------------------------------------------------------===//

const char *decayKindName(DecayKind kind) {
  switch (kind) {
  case DecayKind::None:
    return "none";
  case DecayKind::Constant:
    return "constant";
  case DecayKind::Scalar:
    return "scalar";
  case DecayKind::Vector:
    return "vector";
  case DecayKind::Delta:
    return "delta";
  case DecayKind::GatedDelta:
    return "gated_delta";
  }
  return "unknown";
}

const char *scheduleName(Schedule schedule) {
  switch (schedule) {
  case Schedule::RetNet:
    return "retnet";
  case Schedule::RetNetLinspace:
    return "retnet_linspace";
  case Schedule::TransNormer:
    return "transnormer";
  case Schedule::Lightning:
    return "lightning";
  }
  return "unknown";
}

const char *featureMapName(FeatureMap map) {
  switch (map) {
  case FeatureMap::Identity:
    return "identity";
  case FeatureMap::EluPlusOne:
    return "elu_plus_one";
  case FeatureMap::Relu:
    return "relu";
  case FeatureMap::Taylor2:
    return "taylor2";
  case FeatureMap::Taylor2Symmetric:
    return "taylor2_symmetric";
  case FeatureMap::Hedgehog:
    return "hedgehog";
  case FeatureMap::HedgehogJoint:
    return "hedgehog_joint";
  case FeatureMap::Performer:
    return "performer";
  case FeatureMap::PerformerHyperbolic:
    return "performer_hyperbolic";
  }
  return "unknown";
}

//===----------------------------------------------------------------------===//
// Error metrics
//===----------------------------------------------------------------------===//

static bool sameLayout(const Tensor &x, const Tensor &ref) {
  return x.shape == ref.shape && x.data.size() == ref.data.size();
}

double ratio(const Tensor &x, const Tensor &ref) {
  if (!sameLayout(x, ref))
    return std::numeric_limits<double>::infinity();
  double num = 0.0;
  double den = 0.0;
  for (size_t i = 0; i < x.data.size(); ++i) {
    double d = x.data[i] - ref.data[i];
    num += d * d;
    den += ref.data[i] * ref.data[i];
  }
  // An all-zero reference has no scale: fall back to the absolute error.
  if (den == 0.0)
    return std::sqrt(num);
  return std::sqrt(num) / std::sqrt(den);
}

double maxAbsDiff(const Tensor &x, const Tensor &ref) {
  if (!sameLayout(x, ref))
    return std::numeric_limits<double>::infinity();
  double worst = 0.0;
  for (size_t i = 0; i < x.data.size(); ++i) {
    double d = std::fabs(x.data[i] - ref.data[i]);
    if (std::isnan(d))
      return d;
    worst = std::max(worst, d);
  }
  return worst;
}

} // namespace linattn::reference
