//===- Recurrent.cpp - Token-by-token recurrent form -----------*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
//
// The definition every other form is checked against: the unified recurrence
// S_t = G_t (.) S_{t-1} + k_t^T v_t (MATH.md 4) and the delta-rule write
// Sbar = alpha S, u = beta (v - k Sbar), S = Sbar + k^T u (MATH.md 5.1).
//
//===----------------------------------------------------------------------===//

#include "Kernels.h"

#include <cmath>

namespace linattn::reference::detail {

/// S <- G_t (.) S for step t (row-broadcast for vector gates).
static void decayState(const Slice &s, int64_t t, Matrix &state) {
  if (s.gateShape == GateShape::None)
    return;
  for (int64_t i = 0; i < state.rows; ++i) {
    double alpha = std::exp(s.g(t, s.gateShape == GateShape::Vector ? i : 0));
    for (int64_t j = 0; j < state.cols; ++j)
      state(i, j) *= alpha;
  }
}

/// out = x S for a row vector x of width S.rows.
static void readState(const double *x, const Matrix &state, double *out) {
  for (int64_t j = 0; j < state.cols; ++j)
    out[j] = 0.0;
  for (int64_t i = 0; i < state.rows; ++i)
    for (int64_t j = 0; j < state.cols; ++j)
      out[j] += x[i] * state(i, j);
}

/// Writes token t into the (already decayed) state.
static void writeToken(const Slice &s, int64_t t, Matrix &state) {
  const double *k = s.k.row(t);
  const double *v = s.v.row(t);
  std::vector<double> u(v, v + state.cols);
  if (s.delta) {
    std::vector<double> kS(static_cast<size_t>(state.cols));
    readState(k, state, kS.data());
    double beta = s.beta[static_cast<size_t>(t)];
    for (int64_t j = 0; j < state.cols; ++j)
      u[static_cast<size_t>(j)] = beta * (v[j] - kS[static_cast<size_t>(j)]);
  }
  for (int64_t i = 0; i < state.rows; ++i)
    for (int64_t j = 0; j < state.cols; ++j)
      state(i, j) += k[i] * u[static_cast<size_t>(j)];
}

SliceResult runRecurrent(const Slice &s) {
  int64_t len = s.q.rows;
  SliceResult r;
  r.o = Matrix(len, s.v.cols);
  Matrix state = s.s0;
  for (int64_t t = 0; t < len; ++t) {
    decayState(s, t, state);
    if (s.causal && s.exclusive)
      readState(s.q.row(t), state, r.o.row(t));
    writeToken(s, t, state);
    if (s.causal && !s.exclusive)
      readState(s.q.row(t), state, r.o.row(t));
  }
  // Non-causal: every query reads the final state S_T.
  if (!s.causal)
    for (int64_t t = 0; t < len; ++t)
      readState(s.q.row(t), state, r.o.row(t));
  r.s = std::move(state);
  return r;
}

} // namespace linattn::reference::detail
