//===- DeltaChunked.cpp - WY/UT chunked (gated) delta rule -----*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
//
// MATH.md 5.2. Per chunk, with chunk-local cumulative gates b and
// Gamma_rs = exp(b_r - b_s) (r >= s):
//   A   = strict_tril(beta (K K^T) (.) Gamma)
//   W   = (I + A)^{-1} (beta exp(b) K),  U = (I + A)^{-1} (beta V)
//   Vt  = U - W S_n
//   O_n = exp(b) Q S_n + ((Q K^T) (.) Gamma (.) M) Vt
//   S_{n+1} = exp(b_C) S_n + (exp(b_C - b) K)^T Vt
// (I + A)^{-1} is applied by forward substitution. With an exclusive read M
// is strictly lower triangular. The parallel form of the delta rules is this
// computation with one chunk covering the whole sequence.
//
//===----------------------------------------------------------------------===//

#include "Kernels.h"

#include <algorithm>
#include <cmath>

namespace linattn::reference::detail {

/// Chunk-local inclusive cumulative log-gate (zeros without a gate).
static std::vector<double> localCumsum(const Slice &s, int64_t begin,
                                       int64_t size) {
  std::vector<double> b(static_cast<size_t>(size), 0.0);
  if (s.gateShape == GateShape::None)
    return b;
  double acc = 0.0;
  for (int64_t r = 0; r < size; ++r) {
    acc += std::max(s.g(begin + r, 0), kMinLogGate);
    b[static_cast<size_t>(r)] = acc;
  }
  return b;
}

/// Gamma (size x size, lower triangular, exact 1 on the diagonal).
static Matrix decayMatrix(const std::vector<double> &b) {
  int64_t n = static_cast<int64_t>(b.size());
  Matrix gamma(n, n);
  for (int64_t r = 0; r < n; ++r) {
    gamma(r, r) = 1.0;
    for (int64_t u = 0; u < r; ++u)
      gamma(r, u) =
          std::exp(b[static_cast<size_t>(r)] - b[static_cast<size_t>(u)]);
  }
  return gamma;
}

/// Dot product of rows of two matrices with equal column counts.
static double rowDot(const Matrix &x, int64_t r, const Matrix &y, int64_t u) {
  double acc = 0.0;
  for (int64_t i = 0; i < x.cols; ++i)
    acc += x(r, i) * y(u, i);
  return acc;
}

/// Solves (I + A) X = X in place by forward substitution; A strictly lower.
static void forwardSubstitute(const Matrix &a, Matrix &x) {
  for (int64_t r = 1; r < x.rows; ++r)
    for (int64_t u = 0; u < r; ++u)
      for (int64_t j = 0; j < x.cols; ++j)
        x(r, j) -= a(r, u) * x(u, j);
}

/// Copies rows [begin, begin + size) of m.
static Matrix rowBlock(const Matrix &m, int64_t begin, int64_t size) {
  Matrix out(size, m.cols);
  std::copy(m.row(begin), m.row(begin) + size * m.cols, out.data.begin());
  return out;
}

/// New values Vt = U - W S for one chunk (K, V are the chunk's rows).
static Matrix newValues(const Slice &s, int64_t begin, const Matrix &k,
                        const Matrix &v, const std::vector<double> &b,
                        const Matrix &gamma, const Matrix &state) {
  int64_t n = k.rows;
  Matrix a(n, n), w(n, k.cols), u(n, v.cols);
  for (int64_t r = 0; r < n; ++r) {
    double beta = s.beta[static_cast<size_t>(begin + r)];
    for (int64_t c = 0; c < r; ++c)
      a(r, c) = beta * rowDot(k, r, k, c) * gamma(r, c);
    double wScale = beta * std::exp(b[static_cast<size_t>(r)]);
    for (int64_t i = 0; i < k.cols; ++i)
      w(r, i) = wScale * k(r, i);
    for (int64_t j = 0; j < v.cols; ++j)
      u(r, j) = beta * v(r, j);
  }
  forwardSubstitute(a, w);
  forwardSubstitute(a, u);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t i = 0; i < k.cols; ++i)
      for (int64_t j = 0; j < v.cols; ++j)
        u(r, j) -= w(r, i) * state(i, j);
  return u;
}

/// Output rows of one chunk and the state update.
static void chunkStep(const Slice &s, int64_t begin, int64_t size,
                      Matrix &state, Matrix &o) {
  Matrix q = rowBlock(s.q, begin, size), k = rowBlock(s.k, begin, size);
  Matrix v = rowBlock(s.v, begin, size);
  std::vector<double> b = localCumsum(s, begin, size);
  Matrix gamma = decayMatrix(b);
  Matrix vt = newValues(s, begin, k, v, b, gamma, state);
  int64_t dk = k.cols, dv = v.cols;
  for (int64_t r = 0; r < size; ++r) {
    double *out = o.row(begin + r);
    double qScale = std::exp(b[static_cast<size_t>(r)]);
    for (int64_t i = 0; i < dk; ++i)
      for (int64_t j = 0; j < dv; ++j)
        out[j] += qScale * q(r, i) * state(i, j);
    int64_t last = s.exclusive ? r - 1 : r;
    for (int64_t c = 0; c <= last; ++c) {
      double score = rowDot(q, r, k, c) * gamma(r, c);
      for (int64_t j = 0; j < dv; ++j)
        out[j] += score * vt(c, j);
    }
  }
  double bLast = b.empty() ? 0.0 : b.back();
  for (int64_t i = 0; i < dk; ++i)
    for (int64_t j = 0; j < dv; ++j)
      state(i, j) *= std::exp(bLast);
  for (int64_t c = 0; c < size; ++c) {
    double kScale = std::exp(bLast - b[static_cast<size_t>(c)]);
    for (int64_t i = 0; i < dk; ++i)
      for (int64_t j = 0; j < dv; ++j)
        state(i, j) += kScale * k(c, i) * vt(c, j);
  }
}

SliceResult runDeltaChunked(const Slice &s, int64_t chunkSize) {
  int64_t len = s.q.rows;
  SliceResult r;
  r.o = Matrix(len, s.v.cols);
  r.s = s.s0;
  for (int64_t begin = 0; begin < len; begin += chunkSize)
    chunkStep(s, begin, std::min(chunkSize, len - begin), r.s, r.o);
  return r;
}

} // namespace linattn::reference::detail
