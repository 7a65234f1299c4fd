//===- Kernels.h - Per-slice reference kernels (internal) ------*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
///
/// \file
/// Internal interface of the reference library. run() splits a problem into
/// independent (sequence, head) slices, each described by a Slice whose
/// queries are already scaled and whose values (and initial state) already
/// carry the normalizer column when the op is normalized. The three forms are
/// implemented on slices in Recurrent.cpp, Parallel.cpp, Chunked.cpp and
/// DeltaChunked.cpp.
///
//===----------------------------------------------------------------------===//

#ifndef LINATTN_LIB_REFERENCE_KERNELS_H
#define LINATTN_LIB_REFERENCE_KERNELS_H

#include "linattn/Reference/Reference.h"

#include <cstdint>
#include <vector>

namespace linattn::reference::detail {

/// Small dense row-major fp64 matrix.
struct Matrix {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<double> data;

  Matrix() = default;
  /// Zero-initialized rows x cols matrix.
  Matrix(int64_t r, int64_t c)
      : rows(r), cols(c), data(static_cast<size_t>(r * c), 0.0) {}

  double &operator()(int64_t r, int64_t c) {
    return data[static_cast<size_t>(r * cols + c)];
  }
  double operator()(int64_t r, int64_t c) const {
    return data[static_cast<size_t>(r * cols + c)];
  }
  /// Pointer to the first element of row r.
  double *row(int64_t r) { return data.data() + r * cols; }
  /// Pointer to the first element of row r.
  const double *row(int64_t r) const { return data.data() + r * cols; }
};

/// How the log-gates of a slice are shaped.
enum class GateShape { None, Scalar, Vector };

/// One (sequence, head) problem in the conventions of MATH.md section 0.
struct Slice {
  /// [L, Dk], already multiplied by the query scale.
  Matrix q;
  /// [L, Dk].
  Matrix k;
  /// [L, Dv'] where Dv' = Dv + 1 for the normalized form (ones column).
  Matrix v;
  GateShape gateShape = GateShape::None;
  /// [L, 1] (scalar) or [L, Dk] (vector) log-gates; empty for None.
  Matrix g;
  /// Delta rule (plain or gated); beta then holds the L write strengths.
  bool delta = false;
  std::vector<double> beta;
  bool causal = true;
  bool exclusive = false;
  /// [Dk, Dv'] initial state (normalizer in the last column if normalized).
  Matrix s0;
};

/// Outputs of one slice, in the augmented width Dv'.
struct SliceResult {
  /// [L, Dv'].
  Matrix o;
  /// [Dk, Dv'].
  Matrix s;
};

/// Smallest log-gate used by the chunked forms. exp(-1000) underflows to 0 in
/// fp64, so clamping -inf here keeps b_r - b_s finite without changing any
/// decay factor that involves the clamped step.
constexpr double kMinLogGate = -1000.0;

/// Token-by-token recurrence (MATH.md 2.3, 4, 5.1, 8).
SliceResult runRecurrent(const Slice &s);

/// Explicit masked T x T form with segment-sum decays (MATH.md 2.2, 4).
/// Not for delta rules.
SliceResult runParallel(const Slice &s);

/// Chunkwise form for decays (a)-(d) (MATH.md 6.1-6.3) with chunk size C and
/// vector-gate sub-chunk size c (1 <= c).
SliceResult runChunked(const Slice &s, int64_t chunkSize, int64_t subChunk);

/// Chunkwise WY/UT form of the (gated) delta rule (MATH.md 5.2).
SliceResult runDeltaChunked(const Slice &s, int64_t chunkSize);

/// Dimensions of a validated problem.
struct ProblemDims {
  int64_t batch = 0, heads = 0, seqLen = 0, dk = 0, dv = 0;
  int64_t hq = 0, hk = 0, hv = 0;
  /// Number of sequences (B, or offsets->size() - 1).
  int64_t numSeqs = 0;
};

/// Dimensions of inputs that passed validate().
ProblemDims computeDims(const Inputs &in);

} // namespace linattn::reference::detail

#endif // LINATTN_LIB_REFERENCE_KERNELS_H
