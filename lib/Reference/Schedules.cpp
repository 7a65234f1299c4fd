//===- Schedules.cpp - Constant per-head decay schedules -------*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
//
// The four constant-decay schedules of MATH.md 4.b, returned in log space
// (g_h = ln lambda_h) so that lambda close to 1 keeps full precision.
//
//===----------------------------------------------------------------------===//

#include "linattn/Reference/Reference.h"

#include <cmath>

namespace linattn::reference {

std::vector<double> alibiSlopes(int64_t numHeads) {
  if (numHeads <= 0)
    return {};
  int64_t pow2 = 1;
  while (pow2 * 2 <= numHeads)
    pow2 *= 2;
  std::vector<double> slopes;
  slopes.reserve(static_cast<size_t>(numHeads));
  // Slopes of the nearest lower power of two: 2^{-8(i+1)/pow2}.
  for (int64_t i = 0; i < pow2; ++i)
    slopes.push_back(std::exp2(-8.0 * static_cast<double>(i + 1) /
                               static_cast<double>(pow2)));
  // Then every other slope of 2 * pow2 heads: 2^{-8(2i+1)/(2 pow2)}.
  for (int64_t i = 0; static_cast<int64_t>(slopes.size()) < numHeads; ++i)
    slopes.push_back(std::exp2(-8.0 * static_cast<double>(2 * i + 1) /
                               static_cast<double>(2 * pow2)));
  return slopes;
}

/// RetNet: gamma_h = 1 - 2^{-5-h}.
static double retNetLogDecay(int64_t h) {
  return std::log1p(-std::exp2(-5.0 - static_cast<double>(h)));
}

/// 1 - exp(linspace(ln(1/32), ln(1/512), H)); H == 1 gives the first point.
static double retNetLinspaceLogDecay(int64_t h, int64_t numHeads) {
  double lo = std::log(1.0 / 32.0);
  double hi = std::log(1.0 / 512.0);
  double frac = numHeads > 1
                    ? static_cast<double>(h) / static_cast<double>(numHeads - 1)
                    : 0.0;
  return std::log1p(-std::exp(lo + (hi - lo) * frac));
}

/// TransNormerLLM as implemented in FLA: -(8h/H) (1 - l/L).
static double transNormerLogDecay(int64_t h, int64_t numHeads, int64_t layer,
                                  int64_t numLayers) {
  double rate = 8.0 * static_cast<double>(h) / static_cast<double>(numHeads);
  return -rate *
         (1.0 - static_cast<double>(layer) / static_cast<double>(numLayers));
}

/// Lightning-Attention code: -s_h (1 - l/(L-1) + 1e-5); L == 1 uses l/(L-1)=0.
static double lightningLogDecay(double slope, int64_t layer,
                                int64_t numLayers) {
  double depth = numLayers > 1 ? static_cast<double>(layer) /
                                     static_cast<double>(numLayers - 1)
                               : 0.0;
  return -slope * (1.0 - depth + 1e-5);
}

std::vector<double> logDecaySchedule(Schedule s, int64_t numHeads,
                                     int64_t layer, int64_t numLayers) {
  if (numHeads <= 0 || numLayers <= 0 || layer < 0 || layer >= numLayers)
    return {};
  std::vector<double> result(static_cast<size_t>(numHeads));
  std::vector<double> slopes;
  if (s == Schedule::Lightning)
    slopes = alibiSlopes(numHeads);
  for (int64_t h = 0; h < numHeads; ++h) {
    double &g = result[static_cast<size_t>(h)];
    switch (s) {
    case Schedule::RetNet:
      g = retNetLogDecay(h);
      break;
    case Schedule::RetNetLinspace:
      g = retNetLinspaceLogDecay(h, numHeads);
      break;
    case Schedule::TransNormer:
      g = transNormerLogDecay(h, numHeads, layer, numLayers);
      break;
    case Schedule::Lightning:
      g = lightningLogDecay(slopes[static_cast<size_t>(h)], layer, numLayers);
      break;
    }
  }
  return result;
}

} // namespace linattn::reference
