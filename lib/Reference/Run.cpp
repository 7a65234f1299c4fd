//===- Run.cpp - Slicing a problem and running one form --------*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
//
// run() validates the problem, cuts it into independent (sequence, head)
// slices (GQA/GVA head mapping, varlen offsets, query scale, normalizer
// column, state layout), runs the requested form on each slice and writes
// the results back into the [B, H, T, Dv] / [N, H, Dk, Dv] outputs.
//
//===----------------------------------------------------------------------===//

#include "Kernels.h"

#include <algorithm>

namespace linattn::reference {

using namespace detail;

namespace {
/// Where one slice lives in the packed tensors.
struct SliceLoc {
  int64_t seq;   // state index n
  int64_t batch; // batch row of q, k, v, gate, beta, o
  int64_t head;  // output head h
  int64_t begin; // first position in T
  int64_t len;   // number of positions
};
} // namespace

/// Flat offset of [a, b, c] in a rank-3 tensor of extents [*, e1, e2].
static size_t off3(int64_t a, int64_t b, int64_t c, int64_t e1, int64_t e2) {
  return static_cast<size_t>((a * e1 + b) * e2 + c);
}

/// Copies rows [begin, begin + len) of head `h` of a [B, Hx, T, D] tensor.
static Matrix gatherRows(const Tensor &t, const SliceLoc &loc, int64_t heads,
                         int64_t width, double scale) {
  int64_t hx = t.shape[1], seqLen = t.shape[2], d = t.shape[3];
  int64_t src = loc.head / (heads / hx);
  Matrix m(loc.len, width);
  for (int64_t r = 0; r < loc.len; ++r) {
    const double *row =
        t.data.data() + off3(loc.batch, src, loc.begin + r, hx, seqLen) * d;
    for (int64_t i = 0; i < d; ++i)
      m(r, i) = scale * row[i];
  }
  return m;
}

/// Gate rows of one slice ([L, 1] or [L, Dk]).
static void gatherGate(const Spec &spec, const Inputs &in, const ProblemDims &d,
                       const SliceLoc &loc, Slice &s) {
  DecayKind kind = spec.decay;
  if (kind == DecayKind::None || kind == DecayKind::Delta)
    return;
  bool vec = kind == DecayKind::Vector;
  s.gateShape = vec ? GateShape::Vector : GateShape::Scalar;
  s.g = Matrix(loc.len, vec ? d.dk : 1);
  const std::vector<double> &g = in.gate->data;
  for (int64_t r = 0; r < loc.len; ++r) {
    if (kind == DecayKind::Constant) {
      s.g(r, 0) = g[static_cast<size_t>(loc.head)];
      continue;
    }
    size_t base = off3(loc.batch, loc.head, loc.begin + r, d.heads, d.seqLen);
    for (int64_t i = 0; i < s.g.cols; ++i)
      s.g(r, i) = g[base * static_cast<size_t>(s.g.cols) + i];
  }
}

/// Initial state (and normalizer column) of one slice in key-major layout.
static Matrix gatherInitialState(const Spec &spec, const Inputs &in,
                                 const ProblemDims &d, const SliceLoc &loc) {
  Matrix s0(d.dk, d.dv + (spec.normalized ? 1 : 0));
  size_t base = static_cast<size_t>(loc.seq * d.heads + loc.head);
  if (in.initialState) {
    const std::vector<double> &src = in.initialState->data;
    size_t block = base * static_cast<size_t>(d.dk * d.dv);
    for (int64_t i = 0; i < d.dk; ++i)
      for (int64_t j = 0; j < d.dv; ++j)
        s0(i, j) = src[block + static_cast<size_t>(spec.stateValueMajor
                                                       ? j * d.dk + i
                                                       : i * d.dv + j)];
  }
  if (spec.normalized && in.initialNormalizer)
    for (int64_t i = 0; i < d.dk; ++i)
      s0(i, d.dv) =
          in.initialNormalizer->data[base * static_cast<size_t>(d.dk) + i];
  return s0;
}

/// Builds the slice problem for one (sequence, head).
static Slice makeSlice(const Spec &spec, const Inputs &in, const ProblemDims &d,
                       const SliceLoc &loc) {
  Slice s;
  s.q = gatherRows(in.q, loc, d.heads, d.dk, spec.scale);
  s.k = gatherRows(in.k, loc, d.heads, d.dk, 1.0);
  s.v = gatherRows(in.v, loc, d.heads, d.dv + (spec.normalized ? 1 : 0), 1.0);
  if (spec.normalized)
    for (int64_t r = 0; r < loc.len; ++r)
      s.v(r, d.dv) = 1.0;
  gatherGate(spec, in, d, loc, s);
  s.delta =
      spec.decay == DecayKind::Delta || spec.decay == DecayKind::GatedDelta;
  if (s.delta)
    for (int64_t r = 0; r < loc.len; ++r)
      s.beta.push_back(in.beta->data[off3(loc.batch, loc.head, loc.begin + r,
                                          d.heads, d.seqLen)]);
  s.causal = spec.causal;
  s.exclusive = spec.exclusive;
  s.s0 = gatherInitialState(spec, in, d, loc);
  return s;
}

/// Runs one form on a slice.
static SliceResult solve(const Slice &s, Form form, int64_t chunkSize,
                         int64_t subChunk) {
  switch (form) {
  case Form::Recurrent:
    return runRecurrent(s);
  case Form::Parallel:
    // The delta rules have no masked-matrix form: use one chunk for all of T.
    return s.delta ? runDeltaChunked(s, std::max<int64_t>(s.q.rows, 1))
                   : runParallel(s);
  case Form::Chunked:
    return s.delta ? runDeltaChunked(s, chunkSize)
                   : runChunked(s, chunkSize, subChunk);
  }
  return SliceResult();
}

/// Writes a slice result into the outputs (dividing by the normalizer).
static void scatter(const Spec &spec, const ProblemDims &d, const SliceLoc &loc,
                    const SliceResult &r, Outputs &out) {
  for (int64_t t = 0; t < loc.len; ++t) {
    double den = spec.normalized ? r.o(t, d.dv) + spec.eps : 1.0;
    double *dst = out.o.data.data() +
                  off3(loc.batch, loc.head, loc.begin + t, d.heads, d.seqLen) *
                      static_cast<size_t>(d.dv);
    for (int64_t j = 0; j < d.dv; ++j)
      dst[j] = r.o(t, j) / den;
  }
  size_t base = static_cast<size_t>(loc.seq * d.heads + loc.head);
  double *state = out.finalState.data.data() + base * d.dk * d.dv;
  for (int64_t i = 0; i < d.dk; ++i)
    for (int64_t j = 0; j < d.dv; ++j)
      state[spec.stateValueMajor ? j * d.dk + i : i * d.dv + j] = r.s(i, j);
  if (spec.normalized)
    for (int64_t i = 0; i < d.dk; ++i)
      out.finalNormalizer.data[base * d.dk + i] = r.s(i, d.dv);
}

std::string run(const Spec &spec, const Inputs &in, Form form, Outputs &out,
                int64_t chunkSize, int64_t subChunk) {
  if (std::string err = validate(spec, in); !err.empty())
    return err;
  if (chunkSize < 1)
    return "chunkSize: must be >= 1, got " + std::to_string(chunkSize);
  if (subChunk < 0)
    return "subChunk: must be >= 0 (0 means min(chunkSize, 16)), got " +
           std::to_string(subChunk);
  int64_t sub = subChunk == 0 ? std::min<int64_t>(chunkSize, 16) : subChunk;
  ProblemDims d = computeDims(in);
  Outputs result;
  result.o = Tensor({d.batch, d.heads, d.seqLen, d.dv});
  result.finalState =
      Tensor(spec.stateValueMajor
                 ? std::vector<int64_t>{d.numSeqs, d.heads, d.dv, d.dk}
                 : std::vector<int64_t>{d.numSeqs, d.heads, d.dk, d.dv});
  if (spec.normalized)
    result.finalNormalizer = Tensor({d.numSeqs, d.heads, d.dk});
  for (int64_t n = 0; n < d.numSeqs; ++n) {
    int64_t begin = in.offsets ? (*in.offsets)[static_cast<size_t>(n)] : 0;
    int64_t end =
        in.offsets ? (*in.offsets)[static_cast<size_t>(n + 1)] : d.seqLen;
    for (int64_t h = 0; h < d.heads; ++h) {
      SliceLoc loc{n, in.offsets ? 0 : n, h, begin, end - begin};
      Slice s = makeSlice(spec, in, d, loc);
      scatter(spec, d, loc, solve(s, form, chunkSize, sub), result);
    }
  }
  out = std::move(result);
  return "";
}

} // namespace linattn::reference
