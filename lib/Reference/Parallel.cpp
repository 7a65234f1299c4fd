//===- Parallel.cpp - Explicit masked T x T (parallel) form ----*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
//
// o_t = sum_{s <= t} (q_t . k_s)_decayed v_s + (q_t (.) exp(b_t)) S_0
// (MATH.md 2.2 and the table of MATH.md 4). Every decay factor is exp of a
// segment sum sum_{j in (s, t]} g_j accumulated directly while s walks down
// from t, never a difference b_t - b_s of a global cumulative sum. Hence
// g = -inf gives exactly 0 beyond the diagonal and the diagonal factor is
// exactly 1.
//
//===----------------------------------------------------------------------===//

#include "Kernels.h"

#include <algorithm>
#include <cmath>

namespace linattn::reference::detail {

namespace {
/// Running segment sum of log-gates, one entry (scalar) or Dk entries.
struct Segment {
  const Slice &s;
  std::vector<double> sum;

  explicit Segment(const Slice &slice)
      : s(slice),
        sum(static_cast<size_t>(
                slice.gateShape == GateShape::Vector ? slice.q.cols : 1),
            0.0) {}
  void reset() { std::fill(sum.begin(), sum.end(), 0.0); }
  /// Adds g_t to the segment.
  void add(int64_t t) {
    if (s.gateShape == GateShape::None)
      return;
    for (size_t i = 0; i < sum.size(); ++i)
      sum[i] += s.g(t, static_cast<int64_t>(i));
  }
  /// exp of the segment sum for key channel i.
  double factor(int64_t i) const {
    return std::exp(sum[sum.size() == 1 ? 0 : static_cast<size_t>(i)]);
  }
};
} // namespace

/// sum_i x[i] y[i] w_i with w_i = exp(segment) (or exactly 1 on the diagonal).
static double decayedDot(const double *x, const double *y, int64_t n,
                         const Segment &seg, bool diagonal) {
  double acc = 0.0;
  for (int64_t i = 0; i < n; ++i)
    acc += x[i] * y[i] * (diagonal ? 1.0 : seg.factor(i));
  return acc;
}

/// out += scale * x.
static void axpy(double scale, const double *x, int64_t n, double *out) {
  for (int64_t i = 0; i < n; ++i)
    out[i] += scale * x[i];
}

/// out += (x (.) exp(b)) S_0 with b the current segment.
static void addInitialTerm(const double *x, const Matrix &s0,
                           const Segment &seg, double *out) {
  for (int64_t i = 0; i < s0.rows; ++i)
    axpy(x[i] * seg.factor(i), s0.row(i), s0.cols, out);
}

/// Q (K^T V) + Q S_0 with no mask and no decay, in the (Q K^T) V order.
static SliceResult parallelNonCausal(const Slice &s) {
  int64_t len = s.q.rows, dk = s.q.cols, dv = s.v.cols;
  SliceResult r;
  r.o = Matrix(len, dv);
  r.s = s.s0;
  Segment none(s);
  for (int64_t t = 0; t < len; ++t) {
    for (int64_t u = 0; u < len; ++u)
      axpy(decayedDot(s.q.row(t), s.k.row(u), dk, none, true), s.v.row(u), dv,
           r.o.row(t));
    addInitialTerm(s.q.row(t), s.s0, none, r.o.row(t));
  }
  for (int64_t u = 0; u < len; ++u)
    for (int64_t i = 0; i < dk; ++i)
      axpy(s.k(u, i), s.v.row(u), dv, r.s.row(i));
  return r;
}

/// S_T = exp(b_T) (.) S_0 + sum_s (k_s (.) exp(seg(s, T)))^T v_s.
static Matrix finalState(const Slice &s) {
  int64_t len = s.q.rows, dk = s.q.cols, dv = s.v.cols;
  Matrix state(dk, dv);
  Segment seg(s);
  for (int64_t u = len - 1; u >= 0; --u) {
    if (u < len - 1)
      seg.add(u + 1);
    for (int64_t i = 0; i < dk; ++i)
      axpy(s.k(u, i) * seg.factor(i), s.v.row(u), dv, state.row(i));
  }
  if (len > 0)
    seg.add(0);
  for (int64_t i = 0; i < dk; ++i)
    axpy(seg.factor(i), s.s0.row(i), dv, state.row(i));
  return state;
}

SliceResult runParallel(const Slice &s) {
  if (!s.causal)
    return parallelNonCausal(s);
  int64_t len = s.q.rows, dk = s.q.cols, dv = s.v.cols;
  SliceResult r;
  r.o = Matrix(len, dv);
  Segment seg(s);
  for (int64_t t = 0; t < len; ++t) {
    seg.reset();
    for (int64_t u = t; u >= 0; --u) {
      if (u < t)
        seg.add(u + 1);
      if (u == t && s.exclusive)
        continue;
      double score = decayedDot(s.q.row(t), s.k.row(u), dk, seg, u == t);
      axpy(score, s.v.row(u), dv, r.o.row(t));
    }
    seg.add(0); // The segment is now (0, t], i.e. b_t.
    addInitialTerm(s.q.row(t), s.s0, seg, r.o.row(t));
  }
  r.s = finalState(s);
  return r;
}

} // namespace linattn::reference::detail
