//===- Random.cpp - Seeded random problems for the reference ---*- C++ -*-===//
//
// Random inputs drawn the way MATH.md 9.7 prescribes for tests, shared by the
// unit tests, linattn-reference and (later) the benchmarks, plus the list of
// decay kinds and their parser.
//
//===----------------------------------------------------------------------===//

#include "linattn/Reference/Reference.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <string>

namespace linattn::reference {

std::vector<DecayKind> allDecayKinds() {
  return {DecayKind::None,   DecayKind::Constant, DecayKind::Scalar,
          DecayKind::Vector, DecayKind::Delta,    DecayKind::GatedDelta};
}

std::optional<DecayKind> parseDecayKind(const std::string &name) {
  for (DecayKind kind : allDecayKinds())
    if (name == decayKindName(kind))
      return kind;
  return std::nullopt;
}

std::vector<Schedule> allSchedules() {
  return {Schedule::RetNet, Schedule::RetNetLinspace, Schedule::TransNormer,
          Schedule::Lightning};
}

std::optional<Schedule> parseSchedule(const std::string &name) {
  for (Schedule s : allSchedules())
    if (name == scheduleName(s))
      return s;
  return std::nullopt;
}

Tensor randn(std::vector<int64_t> shape, std::mt19937_64 &rng, double scale) {
  Tensor t(std::move(shape));
  std::normal_distribution<double> dist(0.0, 1.0);
  for (double &x : t.data)
    x = scale * dist(rng);
  return t;
}

/// Stable logsigmoid (MATH.md 4.c).
static double logSigmoid(double x) {
  return std::min(x, 0.0) - std::log1p(std::exp(-std::fabs(x)));
}

/// L2-normalizes every row of the last dimension.
static void normalizeRows(Tensor &t) {
  int64_t d = t.shape.back();
  for (size_t r = 0; r < t.data.size(); r += static_cast<size_t>(d)) {
    double sq = 0.0;
    for (int64_t i = 0; i < d; ++i)
      sq += t.data[r + i] * t.data[r + i];
    for (int64_t i = 0; i < d; ++i)
      t.data[r + i] /= std::sqrt(sq) + 1e-12;
  }
}

/// Random gate for `kind` (logsigmoid(randn) / 16), or nothing.
static std::optional<Tensor> randomGate(DecayKind kind, const RandomDims &d,
                                        int64_t heads, std::mt19937_64 &rng) {
  std::vector<int64_t> shape;
  if (kind == DecayKind::Constant)
    shape = {heads};
  else if (kind == DecayKind::Scalar || kind == DecayKind::GatedDelta)
    shape = {d.batch, heads, d.seqLen};
  else if (kind == DecayKind::Vector)
    shape = {d.batch, heads, d.seqLen, d.dk};
  else
    return std::nullopt;
  Tensor g = randn(shape, rng);
  for (double &x : g.data)
    x = logSigmoid(x) / 16.0;
  return g;
}

Inputs randomInputs(DecayKind kind, const RandomDims &d, uint64_t seed,
                    const RandomOptions &opts) {
  std::mt19937_64 rng(seed);
  int64_t heads = std::max({d.hq, d.hk, d.hv});
  Inputs in;
  in.q = randn({d.batch, d.hq, d.seqLen, d.dk}, rng, 0.5);
  in.k = randn({d.batch, d.hk, d.seqLen, d.dk}, rng, 0.5);
  in.v = randn({d.batch, d.hv, d.seqLen, d.dv}, rng);
  if (opts.positive) {
    // elu+1 on a well-formed tensor cannot fail.
    [[maybe_unused]] std::string errQ =
        applyFeatureMap(FeatureMap::EluPlusOne, in.q, in.q);
    [[maybe_unused]] std::string errK =
        applyFeatureMap(FeatureMap::EluPlusOne, in.k, in.k);
    assert(errQ.empty() && errK.empty());
  }
  bool delta = kind == DecayKind::Delta || kind == DecayKind::GatedDelta;
  if (delta) {
    normalizeRows(in.q);
    normalizeRows(in.k);
    Tensor beta = randn({d.batch, heads, d.seqLen}, rng);
    for (double &x : beta.data)
      x = 1.0 / (1.0 + std::exp(-x));
    in.beta = beta;
  }
  in.gate = randomGate(kind, d, heads, rng);
  if (opts.initialState)
    in.initialState = randn({d.batch, heads, d.dk, d.dv}, rng);
  if (opts.normalizer) {
    Tensor z = randn({d.batch, heads, d.dk}, rng);
    for (double &x : z.data)
      x = std::fabs(x) + 0.5;
    in.initialNormalizer = z;
  }
  return in;
}

std::string parseRandomDims(const std::string &text, RandomDims &d) {
  std::string error =
      "--random expects B,H,T or B,Hq,Hk,Hv,T, got '" + text + "'";
  std::vector<int64_t> v;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find(',', pos);
    if (end == std::string::npos)
      end = text.size();
    std::string item = text.substr(pos, end - pos);
    size_t first = item.find_first_not_of(" \t");
    size_t last = item.find_last_not_of(" \t");
    if (first == std::string::npos)
      return error;
    item = item.substr(first, last - first + 1);
    if (item.find_first_not_of("0123456789") != std::string::npos ||
        item.size() > 18)
      return error;
    v.push_back(std::stoll(item));
    pos = end + 1;
  }
  if (v.size() != 3 && v.size() != 5)
    return error;
  d.batch = v[0];
  d.hq = v[1];
  d.hk = v.size() == 5 ? v[2] : v[1];
  d.hv = v.size() == 5 ? v[3] : v[1];
  d.seqLen = v.back();
  return "";
}

} // namespace linattn::reference
