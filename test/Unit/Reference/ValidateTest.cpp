//===- ValidateTest.cpp - Argument checking --------------------*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
//
// Table-driven: each case breaks one thing in a valid problem and expects a
// message naming the offending value; run() must then leave `out` untouched.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include "gtest/gtest.h"

#include <cmath>
#include <limits>

using namespace linattn::reference;
using namespace linattn::reference::testutil;

namespace {

/// Everything one case may modify.
struct Problem {
  Spec spec;
  Inputs in;
  int64_t chunkSize = 64;
  int64_t subChunk = 0;
};

/// A valid problem: B = 2 (1 for varlen cases), H = 2, T = 5, Dk = 3, Dv = 2.
Problem validProblem(DecayKind kind, int64_t batch = 2) {
  Dims d;
  d.batch = batch;
  d.seqLen = 5;
  d.dk = 3;
  d.dv = 2;
  Problem p;
  p.spec = makeSpec(kind);
  p.in = randomInputs(kind, d, 61);
  return p;
}

struct Case {
  const char *name;
  void (*mutate)(Problem &);
  const char *want;
};

const Case kCases[] = {
    {"q rank",
     [](Problem &p) {
       p.in.q = Tensor({2, 2, 15});
     },
     "q: expected rank 4 [B, Hq, T, Dk], got rank 3"},
    {"q data size", [](Problem &p) { p.in.q.data.pop_back(); },
     "q: shape [2, 2, 5, 3] needs 60 elements, data has 59"},
    {"k rank",
     [](Problem &p) {
       p.in.k = Tensor({2, 2, 5, 3, 1});
     },
     "k: expected rank 4"},
    {"mismatched T",
     [](Problem &p) {
       p.in.v = Tensor({2, 2, 4, 2});
     },
     "v: sequence length T = 4 does not match q (5)"},
    {"mismatched B",
     [](Problem &p) {
       p.in.k = Tensor({1, 2, 5, 3});
     },
     "k: batch B = 1 does not match q (2)"},
    {"mismatched Dk",
     [](Problem &p) {
       p.in.k = Tensor({2, 2, 5, 4});
     },
     "k: key dim Dk = 4 does not match q (3)"},
    {"zero Dv",
     [](Problem &p) {
       p.in.v = Tensor({2, 2, 5, 0});
     },
     "v: value dim Dv must be >= 1"},
    {"Hq not dividing H",
     [](Problem &p) {
       p.in.k = Tensor({2, 3, 5, 3});
       p.in.v = Tensor({2, 3, 5, 2});
     },
     "q: head count Hq = 2 does not divide H = max(Hq, Hk, Hv) = 3"},
    {"missing gate", [](Problem &p) { p.in.gate.reset(); },
     "gate: required for decay 'scalar'"},
    {"wrong gate shape",
     [](Problem &p) {
       p.in.gate = Tensor({2, 2, 4});
     },
     "gate: expected shape [2, 2, 5] for decay 'scalar', got [2, 2, 4]"},
    {"positive gate", [](Problem &p) { p.in.gate->data[3] = 0.25; },
     "gate: log-decays must be <= 0 (may be -inf), got 0.25 at flat index 3"},
    {"NaN gate",
     [](Problem &p) {
       p.in.gate->data[0] = std::numeric_limits<double>::quiet_NaN();
     },
     "gate: log-decays must be <= 0"},
    {"gate for decay none", [](Problem &p) { p.spec.decay = DecayKind::None; },
     "gate: must be absent for decay 'none'"},
    {"beta with non-delta",
     [](Problem &p) {
       p.in.beta = Tensor({2, 2, 5}, 0.5);
     },
     "beta: only allowed for the delta rules, not decay 'scalar'"},
    {"missing beta", [](Problem &p) { p.spec.decay = DecayKind::GatedDelta; },
     "beta: required for decay 'gated_delta'"},
    {"wrong beta shape",
     [](Problem &p) {
       p.spec.decay = DecayKind::GatedDelta;
       p.in.beta = Tensor({2, 5});
     },
     "beta: expected shape [2, 2, 5]"},
    {"offsets with B > 1",
     [](Problem &p) {
       p.in.offsets = std::vector<int64_t>{0, 5};
     },
     "offsets: variable-length packing requires batch B = 1, got B = 2"},
    {"bad initial state",
     [](Problem &p) {
       p.in.initialState = Tensor({2, 2, 2, 3});
     },
     "initialState: expected shape [2, 2, 3, 2] (key-major [N, H, Dk, Dv])"},
    {"value-major initial state",
     [](Problem &p) { p.spec.stateValueMajor = true; },
     "initialState: expected shape [2, 2, 2, 3] (value-major"},
    {"normalizer without normalized",
     [](Problem &p) {
       p.in.initialNormalizer = Tensor({2, 2, 3});
     },
     "initialNormalizer: only allowed for the normalized form"},
    {"bad normalizer shape",
     [](Problem &p) {
       p.spec.normalized = true;
       p.in.initialNormalizer = Tensor({2, 3});
     },
     "initialNormalizer: expected shape [2, 2, 3]"},
    {"causal=false with decay", [](Problem &p) { p.spec.causal = false; },
     "causal: non-causal attention requires decay 'none', got 'scalar'"},
    {"exclusive non-causal",
     [](Problem &p) {
       p.spec.decay = DecayKind::None;
       p.in.gate.reset();
       p.spec.causal = false;
       p.spec.exclusive = true;
     },
     "exclusive: a strictly causal read requires causal = true"},
    {"eps zero",
     [](Problem &p) {
       p.spec.normalized = true;
       p.spec.eps = 0.0;
     },
     "eps: must be finite and > 0"},
    {"scale NaN",
     [](Problem &p) {
       p.spec.scale = std::numeric_limits<double>::quiet_NaN();
     },
     "scale: must be finite"},
    {"chunkSize 0", [](Problem &p) { p.chunkSize = 0; },
     "chunkSize: must be >= 1, got 0"},
    {"subChunk negative", [](Problem &p) { p.subChunk = -2; },
     "subChunk: must be >= 0"},
};

/// Varlen cases start from a B = 1 problem with 2 sequences.
const Case kOffsetCases[] = {
    {"offsets too short",
     [](Problem &p) { p.in.offsets = std::vector<int64_t>{0}; },
     "offsets: need at least 2 entries, got 1"},
    {"offsets not from 0",
     [](Problem &p) {
       p.in.offsets = std::vector<int64_t>{1, 3, 5};
     },
     "offsets: offsets[0] must be 0, got 1"},
    {"offsets decreasing",
     [](Problem &p) {
       p.in.offsets = std::vector<int64_t>{0, 4, 3, 5};
     },
     "offsets: must be nondecreasing, but offsets[2] = 3 < offsets[1] = 4"},
    {"offsets end",
     [](Problem &p) {
       p.in.offsets = std::vector<int64_t>{0, 2, 4};
     },
     "offsets: last entry must equal T = 5, got 4"},
    {"state count",
     [](Problem &p) {
       p.in.offsets = std::vector<int64_t>{0, 2, 3, 5};
     },
     "initialState: expected shape [3, 2, 3, 2]"},
};

void checkCase(const Case &c, Problem p) {
  c.mutate(p);
  Outputs out;
  out.o = fromValues({1}, {7.0});
  out.finalState = fromValues({1}, {8.0});
  std::string err =
      run(p.spec, p.in, Form::Chunked, out, p.chunkSize, p.subChunk);
  EXPECT_NE(err.find(c.want), std::string::npos)
      << c.name << ": got '" << err << "', want '" << c.want << "'";
  EXPECT_EQ(out.o.data, (std::vector<double>{7.0})) << c.name;
  EXPECT_EQ(out.finalState.data, (std::vector<double>{8.0})) << c.name;
  EXPECT_TRUE(out.finalNormalizer.data.empty()) << c.name;
}

} // namespace

TEST(Validate, ValidProblemsPass) {
  for (DecayKind kind : allDecayKinds()) {
    Problem p = validProblem(kind);
    EXPECT_EQ(validate(p.spec, p.in), "") << decayKindName(kind);
  }
  Problem varlen = validProblem(DecayKind::Scalar, 1);
  varlen.in.offsets = std::vector<int64_t>{0, 2, 5};
  varlen.in.initialState = Tensor({2, 2, 3, 2});
  EXPECT_EQ(validate(varlen.spec, varlen.in), "");
  Problem reset = validProblem(DecayKind::Scalar);
  reset.in.gate->data[0] = -std::numeric_limits<double>::infinity();
  EXPECT_EQ(validate(reset.spec, reset.in), "") << "-inf is a hard reset";
}

TEST(Validate, RejectsEachBadInput) {
  for (const Case &c : kCases)
    checkCase(c, validProblem(DecayKind::Scalar));
}

TEST(Validate, RejectsBadOffsets) {
  Problem base = validProblem(DecayKind::Scalar, 1);
  base.in.initialState = Tensor({2, 2, 3, 2});
  for (const Case &c : kOffsetCases)
    checkCase(c, base);
}

TEST(Validate, RunAndValidateAgree) {
  Problem p = validProblem(DecayKind::Vector);
  p.in.gate = Tensor({2, 2, 5});
  Outputs out;
  EXPECT_EQ(run(p.spec, p.in, Form::Recurrent, out), validate(p.spec, p.in));
  EXPECT_EQ(validate(p.spec, p.in),
            "gate: expected shape [2, 2, 5, 3] for decay 'vector', got "
            "[2, 2, 5]");
}
