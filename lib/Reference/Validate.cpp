//===- Validate.cpp - Argument checking for the reference ------*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
//
// validate() checks every shape and argument of a linear-attention problem and
// names the offending operand at the start of its message ("gate: ...").
//
//===----------------------------------------------------------------------===//

#include "Kernels.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace linattn::reference {

using detail::ProblemDims;

/// Formats a double the way messages show it (shortest round-trip-ish).
static std::string fmt(double x) {
  std::ostringstream os;
  os << x;
  return os.str();
}

/// Checks that the data size matches the shape and that no extent is < 0.
static std::string checkWellFormed(const std::string &name, const Tensor &t) {
  for (int64_t e : t.shape)
    if (e < 0)
      return name + ": negative extent in shape " + formatShape(t.shape);
  if (t.numel() != static_cast<int64_t>(t.data.size()))
    return name + ": shape " + formatShape(t.shape) + " needs " +
           std::to_string(t.numel()) + " elements, data has " +
           std::to_string(t.data.size());
  return "";
}

/// Checks well-formedness and an exact expected shape.
static std::string checkShape(const std::string &name, const Tensor &t,
                              const std::vector<int64_t> &expected,
                              const std::string &context) {
  if (std::string err = checkWellFormed(name, t); !err.empty())
    return err;
  if (t.shape != expected)
    return name + ": expected shape " + formatShape(expected) + " " + context +
           ", got " + formatShape(t.shape);
  return "";
}

/// Rank-4 check for q, k, v.
static std::string checkRank4(const std::string &name, const Tensor &t,
                              const char *layout) {
  if (std::string err = checkWellFormed(name, t); !err.empty())
    return err;
  if (t.shape.size() != 4)
    return name + ": expected rank 4 " + layout + ", got rank " +
           std::to_string(t.shape.size()) + " (shape " + formatShape(t.shape) +
           ")";
  return "";
}

/// Compares one extent of k or v against q.
static std::string checkAgrees(const std::string &name, const Tensor &t,
                               size_t axis, int64_t want, const char *what) {
  if (t.shape[axis] == want)
    return "";
  return name + ": " + what + " = " + std::to_string(t.shape[axis]) +
         " does not match q (" + std::to_string(want) + ")";
}

static std::string checkQKV(const Inputs &in) {
  if (std::string e = checkRank4("q", in.q, "[B, Hq, T, Dk]"); !e.empty())
    return e;
  if (std::string e = checkRank4("k", in.k, "[B, Hk, T, Dk]"); !e.empty())
    return e;
  if (std::string e = checkRank4("v", in.v, "[B, Hv, T, Dv]"); !e.empty())
    return e;
  const std::vector<int64_t> &qs = in.q.shape;
  for (const std::string &e :
       {checkAgrees("k", in.k, 0, qs[0], "batch B"),
        checkAgrees("k", in.k, 2, qs[2], "sequence length T"),
        checkAgrees("k", in.k, 3, qs[3], "key dim Dk"),
        checkAgrees("v", in.v, 0, qs[0], "batch B"),
        checkAgrees("v", in.v, 2, qs[2], "sequence length T")})
    if (!e.empty())
      return e;
  if (qs[0] < 1)
    return "q: batch B must be >= 1, got " + std::to_string(qs[0]);
  if (qs[3] < 1)
    return "q: key dim Dk must be >= 1, got " + std::to_string(qs[3]);
  if (in.v.shape[3] < 1)
    return "v: value dim Dv must be >= 1, got " + std::to_string(in.v.shape[3]);
  int64_t heads = std::max({qs[1], in.k.shape[1], in.v.shape[1]});
  const char *names[] = {"q", "k", "v"};
  const char *hnames[] = {"Hq", "Hk", "Hv"};
  const Tensor *ts[] = {&in.q, &in.k, &in.v};
  for (int i = 0; i < 3; ++i) {
    int64_t h = ts[i]->shape[1];
    if (h < 1 || heads % h != 0)
      return std::string(names[i]) + ": head count " + hnames[i] + " = " +
             std::to_string(h) +
             " does not divide H = max(Hq, Hk, Hv) = " + std::to_string(heads);
  }
  return "";
}

static std::string checkSpec(const Spec &spec) {
  if (!std::isfinite(spec.scale))
    return "scale: must be finite, got " + fmt(spec.scale);
  if (spec.normalized && !(spec.eps > 0.0 && std::isfinite(spec.eps)))
    return "eps: must be finite and > 0 for the normalized form, got " +
           fmt(spec.eps);
  if (!spec.causal && spec.decay != DecayKind::None)
    return std::string("causal: non-causal attention requires decay 'none', "
                       "got '") +
           decayKindName(spec.decay) + "'";
  if (!spec.causal && spec.exclusive)
    return "exclusive: a strictly causal read requires causal = true";
  return "";
}

/// Expected gate shape for a decay kind (empty for kinds without a gate).
static std::vector<int64_t> gateShapeFor(DecayKind kind, const ProblemDims &d) {
  switch (kind) {
  case DecayKind::Constant:
    return {d.heads};
  case DecayKind::Scalar:
  case DecayKind::GatedDelta:
    return {d.batch, d.heads, d.seqLen};
  case DecayKind::Vector:
    return {d.batch, d.heads, d.seqLen, d.dk};
  case DecayKind::None:
  case DecayKind::Delta:
    break;
  }
  return {};
}

static std::string checkGate(const Spec &spec, const Inputs &in,
                             const ProblemDims &d) {
  std::string kind = std::string("'") + decayKindName(spec.decay) + "'";
  std::vector<int64_t> expected = gateShapeFor(spec.decay, d);
  if (expected.empty())
    return in.gate ? "gate: must be absent for decay " + kind : "";
  if (!in.gate)
    return "gate: required for decay " + kind;
  if (std::string e =
          checkShape("gate", *in.gate, expected, "for decay " + kind);
      !e.empty())
    return e;
  const std::vector<double> &g = in.gate->data;
  for (size_t i = 0; i < g.size(); ++i)
    if (!(g[i] <= 0.0))
      return "gate: log-decays must be <= 0 (may be -inf), got " + fmt(g[i]) +
             " at flat index " + std::to_string(i);
  return "";
}

static std::string checkBeta(const Spec &spec, const Inputs &in,
                             const ProblemDims &d) {
  bool isDelta =
      spec.decay == DecayKind::Delta || spec.decay == DecayKind::GatedDelta;
  std::string kind = std::string("'") + decayKindName(spec.decay) + "'";
  if (!isDelta)
    return in.beta ? "beta: only allowed for the delta rules, not decay " + kind
                   : "";
  if (!in.beta)
    return "beta: required for decay " + kind;
  if (std::string e = checkShape("beta", *in.beta, {d.batch, d.heads, d.seqLen},
                                 "for decay " + kind);
      !e.empty())
    return e;
  for (size_t i = 0; i < in.beta->data.size(); ++i)
    if (!std::isfinite(in.beta->data[i]))
      return "beta: must be finite, got " + fmt(in.beta->data[i]) +
             " at flat index " + std::to_string(i);
  return "";
}

static std::string checkOffsets(const Inputs &in, const ProblemDims &d) {
  if (!in.offsets)
    return "";
  const std::vector<int64_t> &off = *in.offsets;
  if (d.batch != 1)
    return "offsets: variable-length packing requires batch B = 1, got B = " +
           std::to_string(d.batch);
  if (off.size() < 2)
    return "offsets: need at least 2 entries, got " +
           std::to_string(off.size());
  if (off.front() != 0)
    return "offsets: offsets[0] must be 0, got " + std::to_string(off.front());
  for (size_t i = 1; i < off.size(); ++i)
    if (off[i] < off[i - 1])
      return "offsets: must be nondecreasing, but offsets[" +
             std::to_string(i) + "] = " + std::to_string(off[i]) +
             " < offsets[" + std::to_string(i - 1) +
             "] = " + std::to_string(off[i - 1]);
  if (off.back() != d.seqLen)
    return "offsets: last entry must equal T = " + std::to_string(d.seqLen) +
           ", got " + std::to_string(off.back());
  return "";
}

static std::string checkStates(const Spec &spec, const Inputs &in,
                               const ProblemDims &d) {
  if (in.initialState) {
    std::vector<int64_t> expected =
        spec.stateValueMajor
            ? std::vector<int64_t>{d.numSeqs, d.heads, d.dv, d.dk}
            : std::vector<int64_t>{d.numSeqs, d.heads, d.dk, d.dv};
    const char *layout = spec.stateValueMajor ? "(value-major [N, H, Dv, Dk])"
                                              : "(key-major [N, H, Dk, Dv])";
    if (std::string e =
            checkShape("initialState", *in.initialState, expected, layout);
        !e.empty())
      return e;
  }
  if (!in.initialNormalizer)
    return "";
  if (!spec.normalized)
    return "initialNormalizer: only allowed for the normalized form";
  return checkShape("initialNormalizer", *in.initialNormalizer,
                    {d.numSeqs, d.heads, d.dk}, "([N, H, Dk])");
}

namespace detail {
ProblemDims computeDims(const Inputs &in) {
  ProblemDims d;
  d.batch = in.q.shape[0];
  d.seqLen = in.q.shape[2];
  d.dk = in.q.shape[3];
  d.dv = in.v.shape[3];
  d.hq = in.q.shape[1];
  d.hk = in.k.shape[1];
  d.hv = in.v.shape[1];
  d.heads = std::max({d.hq, d.hk, d.hv});
  d.numSeqs =
      in.offsets ? static_cast<int64_t>(in.offsets->size()) - 1 : d.batch;
  return d;
}
} // namespace detail

std::string validate(const Spec &spec, const Inputs &in) {
  if (std::string e = checkQKV(in); !e.empty())
    return e;
  if (std::string e = checkSpec(spec); !e.empty())
    return e;
  ProblemDims d = detail::computeDims(in);
  if (std::string e = checkGate(spec, in, d); !e.empty())
    return e;
  if (std::string e = checkBeta(spec, in, d); !e.empty())
    return e;
  if (std::string e = checkOffsets(in, d); !e.empty())
    return e;
  return checkStates(spec, in, d);
}

} // namespace linattn::reference
