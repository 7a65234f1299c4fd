//===- TestUtil.h - Helpers for the reference unit tests -------*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
///
/// \file
/// Random problem generation (fixed seeds), tensor slicing along the time and
/// head axes, and comparison helpers shared by the reference tests.
///
//===----------------------------------------------------------------------===//

#ifndef LINATTN_TEST_UNIT_REFERENCE_TESTUTIL_H
#define LINATTN_TEST_UNIT_REFERENCE_TESTUTIL_H

#include "linattn/Reference/Reference.h"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace linattn::reference::testutil {

/// Problem sizes of a random test problem (see reference::randomInputs).
using Dims = RandomDims;

/// One way of evaluating a problem.
struct FormCase {
  Form form;
  int64_t chunkSize;
  std::string name;
};

/// Recurrent, parallel, and chunked with C in {1, 2, 3, 64}.
std::vector<FormCase> allForms();

/// Single-sequence, single-head inputs [1, 1, T, D] from rows.
Inputs oneHead(const std::vector<std::vector<double>> &q,
               const std::vector<std::vector<double>> &k,
               const std::vector<std::vector<double>> &v);

/// Tensor with the given shape and values (sizes must match).
Tensor fromValues(std::vector<int64_t> shape, std::vector<double> values);

/// A spec for `kind` (optionally normalized with eps = 1e-6).
Spec makeSpec(DecayKind kind, bool normalized = false);

/// Runs the reference and records a test failure if it reports an error.
Outputs mustRun(const Spec &spec, const Inputs &in, Form form,
                int64_t chunkSize = 64, int64_t subChunk = 0);

/// Expects o, the final state and the final normalizer to agree within
/// ratio() <= tol (and to contain no NaN/Inf).
void expectOutputsNear(const Outputs &got, const Outputs &want, double tol,
                       const std::string &what);

/// Expects every element to be finite.
void expectFinite(const Tensor &t, const std::string &what);

/// Positions [t0, t1) along `axis` of t.
Tensor sliceAxis(const Tensor &t, size_t axis, int64_t t0, int64_t t1);

/// Concatenates tensors along `axis` (all other extents equal).
Tensor concatAxis(const std::vector<Tensor> &parts, size_t axis);

/// Time window [t0, t1) of every per-token operand (states are kept).
Inputs sliceTime(const Spec &spec, const Inputs &in, int64_t t0, int64_t t1);

/// Rearranges axis `axis` so that new index i holds old index perm[i] (the
/// extent may change: perm.size() becomes the new extent).
Tensor gatherAxis(const Tensor &t, size_t axis,
                  const std::vector<int64_t> &perm);

/// Swaps the last two axes of a rank-4 tensor (key-major <-> value-major).
Tensor transposeLast2(const Tensor &t);

} // namespace linattn::reference::testutil

#endif // LINATTN_TEST_UNIT_REFERENCE_TESTUTIL_H
