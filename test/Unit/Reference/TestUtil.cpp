//===- TestUtil.cpp - Helpers for the reference unit tests -----*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include "gtest/gtest.h"

#include <algorithm>
#include <cmath>

namespace linattn::reference::testutil {

std::vector<FormCase> allForms() {
  return {
      {Form::Recurrent, 64, "recurrent"}, {Form::Parallel, 64, "parallel"},
      {Form::Chunked, 1, "chunked C=1"},  {Form::Chunked, 2, "chunked C=2"},
      {Form::Chunked, 3, "chunked C=3"},  {Form::Chunked, 64, "chunked C=64"}};
}

/// [1, 1, T, D] tensor from T rows of width D.
static Tensor rowsTensor(const std::vector<std::vector<double>> &rows) {
  int64_t width = rows.empty() ? 1 : static_cast<int64_t>(rows[0].size());
  Tensor t({1, 1, static_cast<int64_t>(rows.size()), width});
  size_t i = 0;
  for (const std::vector<double> &r : rows)
    for (double x : r)
      t.data[i++] = x;
  return t;
}

Inputs oneHead(const std::vector<std::vector<double>> &q,
               const std::vector<std::vector<double>> &k,
               const std::vector<std::vector<double>> &v) {
  Inputs in;
  in.q = rowsTensor(q);
  in.k = rowsTensor(k);
  in.v = rowsTensor(v);
  return in;
}

Tensor fromValues(std::vector<int64_t> shape, std::vector<double> values) {
  Tensor t(std::move(shape));
  EXPECT_EQ(t.data.size(), values.size()) << "fromValues: size mismatch";
  t.data = std::move(values);
  return t;
}

Spec makeSpec(DecayKind kind, bool normalized) {
  Spec spec;
  spec.decay = kind;
  spec.normalized = normalized;
  spec.eps = 1e-6;
  return spec;
}

Outputs mustRun(const Spec &spec, const Inputs &in, Form form,
                int64_t chunkSize, int64_t subChunk) {
  Outputs out;
  EXPECT_EQ(run(spec, in, form, out, chunkSize, subChunk), "");
  return out;
}

void expectFinite(const Tensor &t, const std::string &what) {
  size_t bad = 0;
  for (double x : t.data)
    bad += std::isfinite(x) ? 0 : 1;
  EXPECT_EQ(bad, 0u) << what << ": non-finite entries";
}

void expectOutputsNear(const Outputs &got, const Outputs &want, double tol,
                       const std::string &what) {
  EXPECT_LE(ratio(got.o, want.o), tol) << what << ": o";
  EXPECT_LE(ratio(got.finalState, want.finalState), tol)
      << what << ": finalState";
  EXPECT_LE(ratio(got.finalNormalizer, want.finalNormalizer), tol)
      << what << ": finalNormalizer";
  expectFinite(got.o, what + ": o");
  expectFinite(got.finalState, what + ": finalState");
}

/// Product of the extents in [begin, end).
static int64_t extentProduct(const std::vector<int64_t> &s, size_t begin,
                             size_t end) {
  int64_t n = 1;
  for (size_t i = begin; i < end; ++i)
    n *= s[i];
  return n;
}

Tensor gatherAxis(const Tensor &t, size_t axis,
                  const std::vector<int64_t> &perm) {
  int64_t outer = extentProduct(t.shape, 0, axis);
  int64_t inner = extentProduct(t.shape, axis + 1, t.shape.size());
  int64_t extent = t.shape[axis];
  std::vector<int64_t> shape = t.shape;
  shape[axis] = static_cast<int64_t>(perm.size());
  Tensor out(shape);
  double *dst = out.data.data();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t p : perm) {
      const double *src = t.data.data() + (o * extent + p) * inner;
      dst = std::copy(src, src + inner, dst);
    }
  return out;
}

Tensor sliceAxis(const Tensor &t, size_t axis, int64_t t0, int64_t t1) {
  std::vector<int64_t> idx;
  for (int64_t i = t0; i < t1; ++i)
    idx.push_back(i);
  return gatherAxis(t, axis, idx);
}

Tensor concatAxis(const std::vector<Tensor> &parts, size_t axis) {
  std::vector<int64_t> shape = parts.front().shape;
  shape[axis] = 0;
  for (const Tensor &p : parts)
    shape[axis] += p.shape[axis];
  Tensor out(shape);
  int64_t outer = extentProduct(shape, 0, axis);
  double *dst = out.data.data();
  for (int64_t o = 0; o < outer; ++o)
    for (const Tensor &p : parts) {
      int64_t block = extentProduct(p.shape, axis, p.shape.size());
      const double *src = p.data.data() + o * block;
      dst = std::copy(src, src + block, dst);
    }
  return out;
}

Inputs sliceTime(const Spec &spec, const Inputs &in, int64_t t0, int64_t t1) {
  Inputs out = in;
  out.q = sliceAxis(in.q, 2, t0, t1);
  out.k = sliceAxis(in.k, 2, t0, t1);
  out.v = sliceAxis(in.v, 2, t0, t1);
  if (in.gate && spec.decay != DecayKind::Constant)
    out.gate = sliceAxis(*in.gate, 2, t0, t1);
  if (in.beta)
    out.beta = sliceAxis(*in.beta, 2, t0, t1);
  return out;
}

Tensor transposeLast2(const Tensor &t) { return swapDims(t, 2, 3); }

} // namespace linattn::reference::testutil
