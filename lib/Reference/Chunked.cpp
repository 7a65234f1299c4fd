//===- Chunked.cpp - Chunkwise-parallel form, decays (a)-(d) ---*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
//
// MATH.md 6.1-6.3. Per chunk n (the last one may be short):
//   O_n     = P_n V_n + (Q_n (.) exp(b)) S_n
//   S_{n+1} = exp(b_C) (.) S_n + (K_n (.) exp(b_C - b))^T V_n
// with chunk-local inclusive cumulative log-gates b. Scalar gates build
// P_n = (Q K^T) (.) Gamma directly; vector gates use secondary chunking
// (reference-row factorization for off-diagonal sub-blocks, elementwise log
// space for diagonal sub-blocks). Log-gates are clamped at kMinLogGate so
// that hard resets (-inf) never produce (-inf) - (-inf).
//
//===----------------------------------------------------------------------===//

#include "Kernels.h"

#include <algorithm>
#include <cmath>

namespace linattn::reference::detail {

namespace {
/// Row range [begin, end) of the sequence handled by one chunk.
struct ChunkRange {
  int64_t begin;
  int64_t size;
};
} // namespace

/// Chunk-local inclusive cumulative sum of the clamped log-gates:
/// [size, 1] for scalar/no gates (zeros when there are none), [size, Dk] for
/// vector gates.
static Matrix chunkLocalCumsum(const Slice &s, ChunkRange c) {
  bool vec = s.gateShape == GateShape::Vector;
  Matrix b(c.size, vec ? s.q.cols : 1);
  if (s.gateShape == GateShape::None)
    return b;
  for (int64_t r = 0; r < c.size; ++r)
    for (int64_t i = 0; i < b.cols; ++i)
      b(r, i) =
          (r ? b(r - 1, i) : 0.0) + std::max(s.g(c.begin + r, i), kMinLogGate);
  return b;
}

/// exp(b(r, i)) for a scalar (one column) or vector cumulative gate.
static double expB(const Matrix &b, int64_t r, int64_t i) {
  return std::exp(b(r, b.cols == 1 ? 0 : i));
}

/// Scalar gates: P[r, s] = (q_r . k_s) Gamma_rs, Gamma_rr = 1 exactly.
static Matrix scalarScores(const Slice &s, ChunkRange c, const Matrix &b) {
  Matrix p(c.size, c.size);
  int64_t dk = s.q.cols;
  for (int64_t r = 0; r < c.size; ++r)
    for (int64_t u = 0; u <= r; ++u) {
      double dot = 0.0;
      for (int64_t i = 0; i < dk; ++i)
        dot += s.q(c.begin + r, i) * s.k(c.begin + u, i);
      double gamma = u == r ? 1.0 : std::exp(b(r, 0) - b(u, 0));
      p(r, u) = dot * gamma;
    }
  return p;
}

/// Vector gates, off-diagonal sub-block rows [i0, i1) x cols [j0, j1) with
/// the reference row rho = i0: P = (Q (.) exp(b - b_rho)) (K (.)
/// exp(b_rho - b))^T; both exponents are <= 0.
static void offDiagonalBlock(const Slice &s, ChunkRange c, const Matrix &b,
                             int64_t i0, int64_t i1, int64_t j0, int64_t j1,
                             Matrix &p) {
  int64_t dk = s.q.cols;
  Matrix kHat(j1 - j0, dk);
  for (int64_t u = j0; u < j1; ++u)
    for (int64_t i = 0; i < dk; ++i)
      kHat(u - j0, i) = s.k(c.begin + u, i) * std::exp(b(i0, i) - b(u, i));
  for (int64_t r = i0; r < i1; ++r) {
    std::vector<double> qHat(static_cast<size_t>(dk));
    for (int64_t i = 0; i < dk; ++i)
      qHat[static_cast<size_t>(i)] =
          s.q(c.begin + r, i) * std::exp(b(r, i) - b(i0, i));
    for (int64_t u = j0; u < j1; ++u) {
      double acc = 0.0;
      for (int64_t i = 0; i < dk; ++i)
        acc += qHat[static_cast<size_t>(i)] * kHat(u - j0, i);
      p(r, u) = acc;
    }
  }
}

/// Vector gates, diagonal sub-block [i0, i1): elementwise in log space.
static void diagonalBlock(const Slice &s, ChunkRange c, const Matrix &b,
                          int64_t i0, int64_t i1, Matrix &p) {
  int64_t dk = s.q.cols;
  for (int64_t r = i0; r < i1; ++r)
    for (int64_t u = i0; u <= r; ++u) {
      double acc = 0.0;
      for (int64_t i = 0; i < dk; ++i) {
        double decay = u == r ? 1.0 : std::exp(b(r, i) - b(u, i));
        acc += s.q(c.begin + r, i) * s.k(c.begin + u, i) * decay;
      }
      p(r, u) = acc;
    }
}

/// Vector gates with secondary chunking of size `sub` (MATH.md 6.3).
static Matrix vectorScores(const Slice &s, ChunkRange c, const Matrix &b,
                           int64_t sub) {
  Matrix p(c.size, c.size);
  for (int64_t i0 = 0; i0 < c.size; i0 += sub) {
    int64_t i1 = std::min(i0 + sub, c.size);
    for (int64_t j0 = 0; j0 < i0; j0 += sub)
      offDiagonalBlock(s, c, b, i0, i1, j0, std::min(j0 + sub, i0), p);
    diagonalBlock(s, c, b, i0, i1, p);
  }
  return p;
}

/// O_n = P V_n + (Q_n (.) exp(b)) S_n.
static void chunkOutput(const Slice &s, ChunkRange c, const Matrix &b,
                        const Matrix &p, const Matrix &state, Matrix &o) {
  int64_t dk = s.q.cols, dv = s.v.cols;
  for (int64_t r = 0; r < c.size; ++r) {
    double *out = o.row(c.begin + r);
    for (int64_t u = 0; u <= r; ++u)
      for (int64_t j = 0; j < dv; ++j)
        out[j] += p(r, u) * s.v(c.begin + u, j);
    for (int64_t i = 0; i < dk; ++i) {
      double qi = s.q(c.begin + r, i) * expB(b, r, i);
      for (int64_t j = 0; j < dv; ++j)
        out[j] += qi * state(i, j);
    }
  }
}

/// S_{n+1} = exp(b_C) (.) S_n + (K_n (.) exp(b_C - b))^T V_n.
static void chunkState(const Slice &s, ChunkRange c, const Matrix &b,
                       Matrix &state) {
  int64_t dk = s.q.cols, dv = s.v.cols, last = c.size - 1;
  for (int64_t i = 0; i < dk; ++i) {
    int64_t col = b.cols == 1 ? 0 : i;
    double chunkDecay = std::exp(b(last, col));
    for (int64_t j = 0; j < dv; ++j)
      state(i, j) *= chunkDecay;
    for (int64_t u = 0; u < c.size; ++u) {
      double ki = s.k(c.begin + u, i) * std::exp(b(last, col) - b(u, col));
      for (int64_t j = 0; j < dv; ++j)
        state(i, j) += ki * s.v(c.begin + u, j);
    }
  }
}

/// Non-causal: S_T = S_0 + K^T V accumulated chunk by chunk, then O = Q S_T.
static SliceResult chunkedNonCausal(const Slice &s, int64_t chunkSize) {
  int64_t len = s.q.rows;
  SliceResult r;
  r.o = Matrix(len, s.v.cols);
  r.s = s.s0;
  for (int64_t begin = 0; begin < len; begin += chunkSize) {
    ChunkRange c{begin, std::min(chunkSize, len - begin)};
    chunkState(s, c, Matrix(c.size, 1), r.s);
  }
  Matrix zeroGates(len, 1);
  chunkOutput(s, ChunkRange{0, len}, zeroGates, Matrix(len, len), r.s, r.o);
  return r;
}

SliceResult runChunked(const Slice &s, int64_t chunkSize, int64_t subChunk) {
  if (!s.causal)
    return chunkedNonCausal(s, chunkSize);
  int64_t len = s.q.rows;
  SliceResult r;
  r.o = Matrix(len, s.v.cols);
  r.s = s.s0;
  for (int64_t begin = 0; begin < len; begin += chunkSize) {
    ChunkRange c{begin, std::min(chunkSize, len - begin)};
    Matrix b = chunkLocalCumsum(s, c);
    Matrix p = s.gateShape == GateShape::Vector
                   ? vectorScores(s, c, b, subChunk)
                   : scalarScores(s, c, b);
    if (s.exclusive)
      for (int64_t u = 0; u < c.size; ++u)
        p(u, u) = 0.0;
    chunkOutput(s, c, b, p, r.s, r.o);
    chunkState(s, c, b, r.s);
  }
  return r;
}

} // namespace linattn::reference::detail
