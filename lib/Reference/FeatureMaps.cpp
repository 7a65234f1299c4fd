//===- FeatureMaps.cpp - Feature maps phi of MATH.md 3 ---------*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
//
// Row-wise feature maps applied to the last dimension of a tensor. Every map
// writes one output row of width featureMapWidth() per input row.
//
//===----------------------------------------------------------------------===//

#include "linattn/Reference/Reference.h"

#include <algorithm>
#include <cmath>
#include <tuple>

namespace linattn::reference {

int64_t featureMapWidth(FeatureMap m, int64_t d, int64_t f) {
  switch (m) {
  case FeatureMap::Identity:
  case FeatureMap::EluPlusOne:
  case FeatureMap::Relu:
    return d;
  case FeatureMap::Taylor2:
    return 1 + d + d * d;
  case FeatureMap::Taylor2Symmetric:
    return 1 + d + d * (d + 1) / 2;
  case FeatureMap::Hedgehog:
    return 2 * f;
  case FeatureMap::HedgehogJoint:
    return 2 * d;
  case FeatureMap::Performer:
    return f;
  case FeatureMap::PerformerHyperbolic:
    return 2 * f;
  }
  return 0;
}

//===----------------------------------------------------------------------===//
// Parameter checks
//===----------------------------------------------------------------------===//

/// Checks that `t` is a well-formed tensor of rank `rank`.
static std::string checkParam(const char *name, const Tensor &t, size_t rank,
                              FeatureMap m) {
  if (t.shape.size() != rank ||
      t.numel() != static_cast<int64_t>(t.data.size()))
    return std::string(name) + ": expected a rank-" + std::to_string(rank) +
           " tensor for feature map '" + featureMapName(m) + "', got shape " +
           formatShape(t.shape) + " with " + std::to_string(t.data.size()) +
           " elements";
  for (int64_t e : t.shape)
    if (e < 1)
      return std::string(name) + ": every extent must be >= 1, got " +
             formatShape(t.shape);
  return "";
}

/// Validates weight/bias for map m on input width d; sets f (feature count).
static std::string checkParams(FeatureMap m, int64_t d, const Tensor *weight,
                               const Tensor *bias, int64_t &f) {
  std::string name = featureMapName(m);
  bool hedgehog = m == FeatureMap::Hedgehog || m == FeatureMap::HedgehogJoint;
  bool performer =
      m == FeatureMap::Performer || m == FeatureMap::PerformerHyperbolic;
  if (!hedgehog && !performer) {
    if (weight || bias)
      return std::string(weight ? "weight" : "bias") + ": feature map '" +
             name + "' takes no parameters";
    return "";
  }
  if (!weight)
    return "weight: required for feature map '" + name + "'";
  if (std::string err = checkParam("weight", *weight, 2, m); !err.empty())
    return err;
  const std::vector<int64_t> &ws = weight->shape;
  if (performer) {
    if (bias)
      return "bias: feature map '" + name + "' takes no bias";
    if (ws[1] != d)
      return "weight: expected shape [m, " + std::to_string(d) +
             "] for feature map '" + name + "', got " + formatShape(ws);
    f = ws[0];
    return "";
  }
  bool ok = ws[0] == d && (m == FeatureMap::Hedgehog || ws[1] == d);
  if (!ok)
    return "weight: expected shape [" + std::to_string(d) + ", " +
           (m == FeatureMap::Hedgehog ? std::string("f") : std::to_string(d)) +
           "] for feature map '" + name + "', got " + formatShape(ws);
  f = ws[1];
  if (bias) {
    if (std::string err = checkParam("bias", *bias, 1, m); !err.empty())
      return err;
    if (bias->shape[0] != f)
      return "bias: expected shape [" + std::to_string(f) +
             "] for feature map '" + name + "', got " +
             formatShape(bias->shape);
  }
  return "";
}

//===----------------------------------------------------------------------===//
// Row kernels
//===----------------------------------------------------------------------===//

/// Based's second-order Taylor features (full or symmetric storage).
static void taylorRow(const double *x, int64_t d, bool symmetric, double *out) {
  double rd = std::sqrt(static_cast<double>(d));
  double linScale = 1.0 / std::sqrt(rd);
  double quadScale = 1.0 / (std::sqrt(2.0) * rd);
  *out++ = 1.0;
  for (int64_t i = 0; i < d; ++i)
    *out++ = x[i] * linScale;
  if (!symmetric) {
    for (int64_t i = 0; i < d; ++i)
      for (int64_t j = 0; j < d; ++j)
        *out++ = x[i] * x[j] * quadScale;
    return;
  }
  for (int64_t i = 0; i < d; ++i)
    *out++ = x[i] * x[i] * quadScale;
  for (int64_t i = 0; i < d; ++i)
    for (int64_t j = i + 1; j < d; ++j)
      *out++ = x[i] * x[j] / rd;
}

/// Numerically stable softmax of y[0..n) (subtracts the maximum).
static void softmaxInto(const double *y, int64_t n, double *out) {
  double mx = *std::max_element(y, y + n);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i)
    sum += out[i] = std::exp(y[i] - mx);
  for (int64_t i = 0; i < n; ++i)
    out[i] /= sum;
}

/// Hedgehog: y = xW + b; [softmax(y), softmax(-y)] or softmax([2y, -2y]).
static void hedgehogRow(const double *x, int64_t d, const Tensor &w,
                        const Tensor *bias, int64_t f, bool joint,
                        double *out) {
  std::vector<double> y(static_cast<size_t>(2 * f), 0.0);
  for (int64_t j = 0; j < f; ++j) {
    double acc = bias ? bias->data[static_cast<size_t>(j)] : 0.0;
    for (int64_t i = 0; i < d; ++i)
      acc += x[i] * w.data[static_cast<size_t>(i * f + j)];
    double sign = joint ? 2.0 : 1.0;
    y[static_cast<size_t>(j)] = sign * acc;
    y[static_cast<size_t>(f + j)] = -sign * acc;
  }
  if (joint) {
    softmaxInto(y.data(), 2 * f, out);
    return;
  }
  softmaxInto(y.data(), f, out);
  softmaxInto(y.data() + f, f, out + f);
}

/// FAVOR+ positive (or hyperbolic) random features with xhat = x / d^{1/4}.
static void performerRow(const double *x, int64_t d, const Tensor &w, int64_t m,
                         bool hyperbolic, double *out) {
  double inv = 1.0 / std::sqrt(std::sqrt(static_cast<double>(d)));
  double sq = 0.0;
  for (int64_t i = 0; i < d; ++i)
    sq += (x[i] * inv) * (x[i] * inv);
  double norm = hyperbolic ? std::sqrt(2.0 * static_cast<double>(m))
                           : std::sqrt(static_cast<double>(m));
  for (int64_t r = 0; r < m; ++r) {
    double proj = 0.0;
    for (int64_t i = 0; i < d; ++i)
      proj += w.data[static_cast<size_t>(r * d + i)] * x[i] * inv;
    out[r] = std::exp(proj - sq / 2.0) / norm;
    if (hyperbolic)
      out[m + r] = std::exp(-proj - sq / 2.0) / norm;
  }
}

/// Applies map m to one row x of width d; f is the parameter feature count.
static void applyRow(FeatureMap m, const double *x, int64_t d,
                     const Tensor *weight, const Tensor *bias, int64_t f,
                     double *out) {
  switch (m) {
  case FeatureMap::Identity:
    std::copy(x, x + d, out);
    return;
  case FeatureMap::EluPlusOne:
    for (int64_t i = 0; i < d; ++i)
      out[i] = x[i] > 0.0 ? x[i] + 1.0 : std::exp(x[i]);
    return;
  case FeatureMap::Relu:
    for (int64_t i = 0; i < d; ++i)
      out[i] = std::max(x[i], 0.0);
    return;
  case FeatureMap::Taylor2:
  case FeatureMap::Taylor2Symmetric:
    taylorRow(x, d, m == FeatureMap::Taylor2Symmetric, out);
    return;
  case FeatureMap::Hedgehog:
  case FeatureMap::HedgehogJoint:
    hedgehogRow(x, d, *weight, bias, f, m == FeatureMap::HedgehogJoint, out);
    return;
  case FeatureMap::Performer:
  case FeatureMap::PerformerHyperbolic:
    performerRow(x, d, *weight, f, m == FeatureMap::PerformerHyperbolic, out);
    return;
  }
}

std::string applyFeatureMap(FeatureMap m, const Tensor &x, Tensor &out,
                            const Tensor *weight, const Tensor *bias) {
  bool negative = std::any_of(x.shape.begin(), x.shape.end(),
                              [](int64_t e) { return e < 0; });
  if (x.shape.empty() || negative ||
      x.numel() != static_cast<int64_t>(x.data.size()))
    return "x: expected a tensor of rank >= 1 whose data matches its shape, "
           "got shape " +
           formatShape(x.shape) + " with " + std::to_string(x.data.size()) +
           " elements";
  int64_t d = x.shape.back();
  if (d < 1)
    return "x: the last dimension must be >= 1, got " + formatShape(x.shape);
  int64_t f = 0;
  if (std::string err = checkParams(m, d, weight, bias, f); !err.empty())
    return err;
  int64_t width = featureMapWidth(m, d, f);
  std::vector<int64_t> shape = x.shape;
  shape.back() = width;
  Tensor result(shape);
  int64_t rows = x.numel() / d;
  for (int64_t r = 0; r < rows; ++r)
    applyRow(m, x.data.data() + r * d, d, weight, bias, f,
             result.data.data() + r * width);
  out = std::move(result);
  return "";
}

/// Slice h of a tensor with a leading head dim.
static Tensor headSlice(const Tensor &t, int64_t h) {
  std::vector<int64_t> shape(t.shape.begin() + 1, t.shape.end());
  Tensor r(shape);
  auto n = static_cast<size_t>(r.numel());
  std::copy(t.data.begin() + static_cast<std::ptrdiff_t>(h * n),
            t.data.begin() + static_cast<std::ptrdiff_t>((h + 1) * n),
            r.data.begin());
  return r;
}

std::string applyFeatureMapPerHead(FeatureMap m, const Tensor &x, Tensor &out,
                                   const Tensor *weight, const Tensor *bias) {
  bool perHead = (weight && weight->shape.size() == 3) ||
                 (bias && bias->shape.size() == 2);
  if (!perHead)
    return applyFeatureMap(m, x, out, weight, bias);
  if (x.shape.size() != 4 || x.numel() != static_cast<int64_t>(x.data.size()))
    return "x: per-head weights need a [B, H, T, d] tensor, got " +
           formatShape(x.shape);
  int64_t B = x.shape[0], H = x.shape[1], T = x.shape[2], d = x.shape[3];
  for (auto [name, t, rank] : {std::tuple{"weight", weight, size_t(3)},
                               std::tuple{"bias", bias, size_t(2)}})
    if (t && (t->shape.size() != rank || t->shape[0] != H ||
              t->numel() != static_cast<int64_t>(t->data.size())))
      return std::string(name) + ": expected a leading head dim of " +
             std::to_string(H) + " (rank " + std::to_string(rank) + "), got " +
             formatShape(t->shape);
  Tensor result;
  for (int64_t h = 0; h < H; ++h) {
    Tensor xh({B, 1, T, d});
    for (int64_t b = 0; b < B; ++b)
      std::copy_n(
          x.data.begin() + static_cast<std::ptrdiff_t>((b * H + h) * T * d),
          T * d, xh.data.begin() + static_cast<std::ptrdiff_t>(b * T * d));
    Tensor wh, bh, oh;
    if (weight)
      wh = headSlice(*weight, h);
    if (bias)
      bh = headSlice(*bias, h);
    if (std::string e = applyFeatureMap(m, xh, oh, weight ? &wh : nullptr,
                                        bias ? &bh : nullptr);
        !e.empty())
      return e;
    int64_t w = oh.shape[3];
    if (h == 0)
      result = Tensor({B, H, T, w});
    for (int64_t b = 0; b < B; ++b)
      std::copy_n(oh.data.begin() + static_cast<std::ptrdiff_t>(b * T * w),
                  T * w,
                  result.data.begin() +
                      static_cast<std::ptrdiff_t>((b * H + h) * T * w));
  }
  out = std::move(result);
  return "";
}

std::string applyFeatureMapsQK(FeatureMap m, Tensor &q, Tensor &k,
                               const Tensor *weight, const Tensor *bias,
                               const Tensor *keyWeight, const Tensor *keyBias) {
  if (keyWeight == nullptr) {
    keyWeight = weight;
    keyBias = bias;
  }
  Tensor mq, mk;
  if (std::string e = applyFeatureMapPerHead(m, q, mq, weight, bias);
      !e.empty())
    return "feature map on q: " + e;
  if (std::string e = applyFeatureMapPerHead(m, k, mk, keyWeight, keyBias);
      !e.empty())
    return "feature map on k: " + e;
  q = std::move(mq);
  k = std::move(mk);
  return "";
}

} // namespace linattn::reference
