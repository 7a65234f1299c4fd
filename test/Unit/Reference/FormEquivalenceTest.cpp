//===- FormEquivalenceTest.cpp - MATH.md 10, cases 7, 8, 12 ----*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
//
// The recurrent, parallel and chunked forms are independent implementations
// of the same operator: they must agree for every decay kind, every chunk
// size (dividing T or not) and every secondary chunk size.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include "gtest/gtest.h"

#include <cmath>

using namespace linattn::reference;
using namespace linattn::reference::testutil;

namespace {

class FormEquivalence : public ::testing::TestWithParam<DecayKind> {};

std::string kindName(const ::testing::TestParamInfo<DecayKind> &info) {
  return decayKindName(info.param);
}

} // namespace

//===----------------------------------------------------------------------===//
// 7. C does not divide T
//===----------------------------------------------------------------------===//

TEST_P(FormEquivalence, ChunkSizeDoesNotMatter) {
  DecayKind kind = GetParam();
  Dims d;
  d.hq = d.hk = d.hv = 1;
  d.dk = 3;
  d.dv = 2;
  for (int64_t seqLen : {1, 15, 16, 17, 63, 64, 65, 127, 500, 913, 1213}) {
    d.seqLen = seqLen;
    Inputs in = randomInputs(kind, d, 100 + static_cast<uint64_t>(seqLen));
    Outputs want = mustRun(makeSpec(kind), in, Form::Recurrent);
    for (int64_t chunk : {16, 32, 64})
      expectOutputsNear(
          mustRun(makeSpec(kind), in, Form::Chunked, chunk), want, 1e-10,
          "T = " + std::to_string(seqLen) + ", C = " + std::to_string(chunk));
  }
}

//===----------------------------------------------------------------------===//
// 8. C = 1 == recurrent, C >= T == parallel
//===----------------------------------------------------------------------===//

TEST_P(FormEquivalence, ExtremeChunkSizes) {
  DecayKind kind = GetParam();
  Dims d;
  d.batch = 2;
  d.seqLen = 37;
  for (bool normalized : {false, true})
    for (bool exclusive : {false, true}) {
      RandomOptions opts;
      opts.positive = normalized;
      opts.normalizer = normalized;
      Inputs in = randomInputs(kind, d, 7, opts);
      Spec spec = makeSpec(kind, normalized);
      spec.exclusive = exclusive;
      std::string what = std::string(normalized ? "normalized" : "plain") +
                         (exclusive ? " exclusive" : " inclusive");
      Outputs rec = mustRun(spec, in, Form::Recurrent);
      Outputs par = mustRun(spec, in, Form::Parallel);
      expectOutputsNear(par, rec, 1e-11, what + ": parallel vs recurrent");
      expectOutputsNear(mustRun(spec, in, Form::Chunked, 1), rec, 1e-12,
                        what + ": C = 1 vs recurrent");
      for (int64_t chunk : {37, 64})
        expectOutputsNear(mustRun(spec, in, Form::Chunked, chunk), par, 1e-12,
                          what + ": C >= T vs parallel");
    }
}

namespace {
/// Log-gate of step t, head h, key channel i (0 without a gate).
double logGate(DecayKind kind, const Inputs &in, int64_t h, int64_t t,
               int64_t i) {
  switch (kind) {
  case DecayKind::Constant:
    return in.gate->at({h});
  case DecayKind::Scalar:
  case DecayKind::GatedDelta:
    return in.gate->at({0, h, t});
  case DecayKind::Vector:
    return in.gate->at({0, h, t, i});
  case DecayKind::None:
  case DecayKind::Delta:
    break;
  }
  return 0.0;
}
} // namespace

// Exclusive read: o_t = s_q (q_t (.) exp(g_t)) S_{t-1}, with S_{t-1} the final
// state of the prefix [0, t).
TEST_P(FormEquivalence, ExclusiveReadsDecayedPreviousState) {
  DecayKind kind = GetParam();
  Dims d;
  d.seqLen = 21;
  Inputs in = randomInputs(kind, d, 8);
  Spec spec = makeSpec(kind);
  spec.scale = 0.8;
  Tensor want({1, 2, d.seqLen, d.dv});
  for (int64_t t = 0; t < d.seqLen; ++t) {
    Inputs prefix = sliceTime(spec, in, 0, t);
    Tensor prev = mustRun(spec, prefix, Form::Recurrent).finalState;
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t i = 0; i < d.dk; ++i) {
        double qi = spec.scale * in.q.at({0, h, t, i}) *
                    std::exp(logGate(kind, in, h, t, i));
        for (int64_t j = 0; j < d.dv; ++j)
          want.at({0, h, t, j}) += qi * prev.at({0, h, i, j});
      }
  }
  Outputs inclusive = mustRun(spec, in, Form::Recurrent);
  spec.exclusive = true;
  for (const FormCase &fc : allForms()) {
    Outputs out = mustRun(spec, in, fc.form, fc.chunkSize);
    EXPECT_LE(ratio(out.o, want), 1e-12) << fc.name;
    EXPECT_LE(ratio(out.finalState, inclusive.finalState), 1e-12) << fc.name;
  }
}

INSTANTIATE_TEST_SUITE_P(AllDecays, FormEquivalence,
                         ::testing::ValuesIn(allDecayKinds()), kindName);

// For the additive decays (a)-(d) the exclusive read is the inclusive one
// minus the diagonal term s_q (q_t . k_t) v_t.
TEST(Exclusive, DropsTheDiagonal) {
  Dims d;
  d.seqLen = 21;
  for (DecayKind kind : {DecayKind::None, DecayKind::Constant,
                         DecayKind::Scalar, DecayKind::Vector}) {
    Inputs in = randomInputs(kind, d, 8);
    Spec spec = makeSpec(kind);
    spec.scale = 0.8;
    Tensor want = mustRun(spec, in, Form::Parallel).o;
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t t = 0; t < d.seqLen; ++t) {
        double qk = 0.0;
        for (int64_t i = 0; i < d.dk; ++i)
          qk += spec.scale * in.q.at({0, h, t, i}) * in.k.at({0, h, t, i});
        for (int64_t j = 0; j < d.dv; ++j)
          want.at({0, h, t, j}) -= qk * in.v.at({0, h, t, j});
      }
    spec.exclusive = true;
    for (const FormCase &fc : allForms())
      EXPECT_LE(ratio(mustRun(spec, in, fc.form, fc.chunkSize).o, want), 1e-12)
          << decayKindName(kind) << " " << fc.name;
  }
}

//===----------------------------------------------------------------------===//
// 12. Secondary chunking for vector gates
//===----------------------------------------------------------------------===//

TEST(SecondaryChunking, MatchesRecurrentDefinition) {
  Dims d;
  d.seqLen = 100;
  d.dk = 5;
  Inputs in = randomInputs(DecayKind::Vector, d, 9);
  for (double &g : in.gate->data)
    g *= 4.0; // logsigmoid(randn) / 4: visibly different channels.
  Spec spec = makeSpec(DecayKind::Vector);
  Outputs want = mustRun(spec, in, Form::Recurrent);
  for (int64_t chunk : {16, 20, 64})
    for (int64_t sub : {4, 8, 16})
      expectOutputsNear(
          mustRun(spec, in, Form::Chunked, chunk, sub), want, 1e-12,
          "C = " + std::to_string(chunk) + ", c = " + std::to_string(sub));
}

// g ~ -5 per step: exp(-b_s) over a 64-chunk would be exp(320); the reference
// row keeps every exponent <= 0.
TEST(SecondaryChunking, StrongGatesStayFinite) {
  Dims d;
  d.seqLen = 130;
  Inputs in = randomInputs(DecayKind::Vector, d, 10);
  for (double &g : in.gate->data)
    g = -5.0 + 2.0 * g; // g <= 0 already, so every step is <= -5.
  Spec spec = makeSpec(DecayKind::Vector);
  Outputs want = mustRun(spec, in, Form::Recurrent);
  for (int64_t sub : {4, 8, 16}) {
    Outputs got = mustRun(spec, in, Form::Chunked, 64, sub);
    expectOutputsNear(got, want, 1e-12, "c = " + std::to_string(sub));
  }
  expectOutputsNear(mustRun(spec, in, Form::Parallel), want, 1e-12, "parallel");
}

// Expected-failure demo (MATH.md 10.12): the naive factorization
// (q exp(b_r)) . (k exp(-b_s)) overflows where the reference does not.
TEST(SecondaryChunking, NaiveFactorizationOverflows) {
  const int64_t chunk = 64;
  const double g = -20.0;
  double bLast = g * chunk; // b of the last row of the chunk.
  double naive = std::exp(bLast) * std::exp(-bLast); // r = s = last row.
  EXPECT_FALSE(std::isfinite(naive)) << "0 * inf should be NaN";
  Dims d;
  d.seqLen = chunk;
  Inputs in = randomInputs(DecayKind::Vector, d, 11);
  for (double &x : in.gate->data)
    x = g;
  Outputs out = mustRun(makeSpec(DecayKind::Vector), in, Form::Chunked, chunk);
  expectFinite(out.o, "reference");
}
