//===- WorkedExamplesTest.cpp - MATH.md 10, cases 1-6 ----------*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
//
// Hand-checkable closed forms and worked examples, evaluated in every form.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include "gtest/gtest.h"

#include <cmath>
#include <limits>

using namespace linattn::reference;
using namespace linattn::reference::testutil;

namespace {

constexpr double kTol = 1e-12;

/// Expects o[0, 0, t, 0] == want[t] for every t.
void expectColumn(const Tensor &o, const std::vector<double> &want,
                  const std::string &what) {
  ASSERT_EQ(o.dim(2), static_cast<int64_t>(want.size())) << what;
  for (size_t t = 0; t < want.size(); ++t)
    EXPECT_NEAR(o.at({0, 0, static_cast<int64_t>(t), 0}), want[t], kTol)
        << what << " at t = " << t;
}

/// Worked example A (MATH.md 10.2).
Inputs exampleA() {
  return oneHead({{1, 0}, {0, 1}, {1, 1}}, {{1, 0}, {1, 1}, {0, 1}},
                 {{1}, {2}, {3}});
}

/// Worked example B (MATH.md 10.3): one-hot keys, k = q = [e1, e2, e1].
Inputs exampleB(double beta) {
  Inputs in = oneHead({{1, 0}, {0, 1}, {1, 0}}, {{1, 0}, {0, 1}, {1, 0}},
                      {{1}, {2}, {3}});
  in.beta = Tensor({1, 1, 3}, beta);
  return in;
}

} // namespace

//===----------------------------------------------------------------------===//
// 1. T = 1
//===----------------------------------------------------------------------===//

TEST(WorkedExamples, SingleTokenClosedForm) {
  std::mt19937_64 rng(1);
  Inputs in;
  in.q = randn({1, 1, 1, 3}, rng);
  in.k = randn({1, 1, 1, 3}, rng);
  in.v = randn({1, 1, 1, 2}, rng);
  in.initialState = randn({1, 1, 3, 2}, rng);
  const double g = -0.3, sq = 0.7;
  in.gate = Tensor({1, 1, 1}, g);
  Spec spec = makeSpec(DecayKind::Scalar);
  spec.scale = sq;
  const Tensor &s0 = *in.initialState;
  double qk = 0.0;
  for (int64_t i = 0; i < 3; ++i)
    qk += in.q.at({0, 0, 0, i}) * in.k.at({0, 0, 0, i});
  for (const FormCase &fc : allForms()) {
    Outputs out = mustRun(spec, in, fc.form, fc.chunkSize);
    for (int64_t j = 0; j < 2; ++j) {
      double qs0 = 0.0;
      for (int64_t i = 0; i < 3; ++i)
        qs0 += in.q.at({0, 0, 0, i}) * s0.at({0, 0, i, j});
      double want = sq * qk * in.v.at({0, 0, 0, j}) + std::exp(g) * sq * qs0;
      EXPECT_NEAR(out.o.at({0, 0, 0, j}), want, kTol) << fc.name;
      for (int64_t i = 0; i < 3; ++i)
        EXPECT_NEAR(out.finalState.at({0, 0, i, j}),
                    std::exp(g) * s0.at({0, 0, i, j}) +
                        in.k.at({0, 0, 0, i}) * in.v.at({0, 0, 0, j}),
                    kTol)
            << fc.name;
    }
  }
}

//===----------------------------------------------------------------------===//
// 2. Worked example A
//===----------------------------------------------------------------------===//

TEST(WorkedExamples, ExampleANoDecay) {
  Inputs in = exampleA();
  for (const FormCase &fc : allForms()) {
    Outputs out = mustRun(makeSpec(DecayKind::None), in, fc.form, fc.chunkSize);
    expectColumn(out.o, {1, 2, 8}, fc.name);
    EXPECT_NEAR(out.finalState.at({0, 0, 0, 0}), 3.0, kTol) << fc.name;
    EXPECT_NEAR(out.finalState.at({0, 0, 1, 0}), 5.0, kTol) << fc.name;
  }
}

TEST(WorkedExamples, ExampleAHalfDecay) {
  Inputs constant = exampleA();
  constant.gate = Tensor({1}, std::log(0.5));
  Inputs scalar = exampleA();
  scalar.gate = Tensor({1, 1, 3}, std::log(0.5));
  Inputs vec = exampleA();
  vec.gate = Tensor({1, 1, 3, 2}, std::log(0.5));
  for (const FormCase &fc : allForms()) {
    Outputs outs[] = {
        mustRun(makeSpec(DecayKind::Constant), constant, fc.form, fc.chunkSize),
        mustRun(makeSpec(DecayKind::Scalar), scalar, fc.form, fc.chunkSize),
        mustRun(makeSpec(DecayKind::Vector), vec, fc.form, fc.chunkSize)};
    for (const Outputs &out : outs) {
      expectColumn(out.o, {1, 2, 5.25}, fc.name);
      EXPECT_NEAR(out.finalState.at({0, 0, 0, 0}), 1.25, kTol) << fc.name;
      EXPECT_NEAR(out.finalState.at({0, 0, 1, 0}), 4.0, kTol) << fc.name;
    }
  }
}

// The exclusive read sees S_{t-1} decayed by step t: o_3 = q_3 (S_3 - k_3^T
// v_3).
TEST(WorkedExamples, ExampleAExclusive) {
  Inputs plain = exampleA();
  Inputs decayed = exampleA();
  decayed.gate = Tensor({1}, std::log(0.5));
  Spec none = makeSpec(DecayKind::None);
  none.exclusive = true;
  Spec constant = makeSpec(DecayKind::Constant);
  constant.exclusive = true;
  for (const FormCase &fc : allForms()) {
    Outputs a = mustRun(none, plain, fc.form, fc.chunkSize);
    expectColumn(a.o, {0, 0, 5}, fc.name + " (no decay)");
    EXPECT_NEAR(a.finalState.at({0, 0, 1, 0}), 5.0, kTol) << fc.name;
    Outputs b = mustRun(constant, decayed, fc.form, fc.chunkSize);
    expectColumn(b.o, {0, 0, 2.25}, fc.name + " (lambda = 1/2)");
    EXPECT_NEAR(b.finalState.at({0, 0, 0, 0}), 1.25, kTol) << fc.name;
  }
}

//===----------------------------------------------------------------------===//
// 3. Worked example B (delta rule)
//===----------------------------------------------------------------------===//

TEST(WorkedExamples, ExampleBDeltaRule) {
  for (const FormCase &fc : allForms()) {
    Outputs overwrite = mustRun(makeSpec(DecayKind::Delta), exampleB(1.0),
                                fc.form, fc.chunkSize);
    expectColumn(overwrite.o, {1, 2, 3}, fc.name + " beta = 1");
    Inputs linear = exampleB(1.0);
    linear.beta.reset();
    Outputs accumulate =
        mustRun(makeSpec(DecayKind::None), linear, fc.form, fc.chunkSize);
    expectColumn(accumulate.o, {1, 2, 4}, fc.name + " linear");
    Outputs half = mustRun(makeSpec(DecayKind::Delta), exampleB(0.5), fc.form,
                           fc.chunkSize);
    expectColumn(half.o, {0.5, 1, 1.75}, fc.name + " beta = 1/2");
  }
}

TEST(WorkedExamples, GatedDeltaWithZeroGateIsDelta) {
  Dims d;
  d.seqLen = 23;
  Inputs in = randomInputs(DecayKind::GatedDelta, d, 3);
  Inputs plain = in;
  plain.gate.reset();
  for (double &g : in.gate->data)
    g = 0.0;
  for (const FormCase &fc : allForms())
    expectOutputsNear(
        mustRun(makeSpec(DecayKind::GatedDelta), in, fc.form, fc.chunkSize),
        mustRun(makeSpec(DecayKind::Delta), plain, fc.form, fc.chunkSize),
        1e-13, fc.name);
}

// beta = 0 never writes: o_t = exp(b_t) q_t S_0 and S_T = exp(b_T) S_0.
TEST(WorkedExamples, ZeroBetaOnlyDecaysInitialState) {
  Dims d;
  d.seqLen = 11;
  Inputs in = randomInputs(DecayKind::GatedDelta, d, 4);
  for (double &b : in.beta->data)
    b = 0.0;
  Outputs want;
  want.o = Tensor({1, 2, 11, 3});
  want.finalState = Tensor({1, 2, 4, 3});
  for (int64_t h = 0; h < 2; ++h) {
    double b = 0.0;
    for (int64_t t = 0; t < 11; ++t) {
      b += in.gate->at({0, h, t});
      for (int64_t j = 0; j < 3; ++j)
        for (int64_t i = 0; i < 4; ++i)
          want.o.at({0, h, t, j}) += std::exp(b) * in.q.at({0, h, t, i}) *
                                     in.initialState->at({0, h, i, j});
    }
    for (int64_t i = 0; i < 4; ++i)
      for (int64_t j = 0; j < 3; ++j)
        want.finalState.at({0, h, i, j}) =
            std::exp(b) * in.initialState->at({0, h, i, j});
  }
  for (const FormCase &fc : allForms())
    expectOutputsNear(
        mustRun(makeSpec(DecayKind::GatedDelta), in, fc.form, fc.chunkSize),
        want, 1e-13, fc.name);
}

//===----------------------------------------------------------------------===//
// 4. Worked example C (normalized, phi = 1)
//===----------------------------------------------------------------------===//

TEST(WorkedExamples, ExampleCRunningMean) {
  Inputs in = oneHead({{1}, {1}, {1}, {1}, {1}}, {{1}, {1}, {1}, {1}, {1}},
                      {{2}, {4}, {6}, {1}, {7}});
  Spec spec = makeSpec(DecayKind::None, /*normalized=*/true);
  spec.eps = 1e-14;
  for (const FormCase &fc : allForms()) {
    Outputs out = mustRun(spec, in, fc.form, fc.chunkSize);
    expectColumn(out.o, {2, 3, 4, 3.25, 4}, fc.name);
    EXPECT_NEAR(out.finalState.at({0, 0, 0, 0}), 20.0, kTol) << fc.name;
    EXPECT_NEAR(out.finalNormalizer.at({0, 0, 0}), 5.0, kTol) << fc.name;
  }
}

//===----------------------------------------------------------------------===//
// 5. Constant inputs
//===----------------------------------------------------------------------===//

namespace {
/// q_t = 0.3 * 1, k_t = 0.5 * 1 (Dk = 3), v_t = [1, -2], T = 20.
Inputs constantInputs() {
  std::vector<std::vector<double>> q(20, {0.3, 0.3, 0.3});
  std::vector<std::vector<double>> k(20, {0.5, 0.5, 0.5});
  std::vector<std::vector<double>> v(20, {1.0, -2.0});
  return oneHead(q, k, v);
}
} // namespace

TEST(WorkedExamples, ConstantInputsWithDecay) {
  const double lambda = 0.9, qk = 0.45;
  Inputs in = constantInputs();
  in.gate = Tensor({1}, std::log(lambda));
  for (const FormCase &fc : allForms()) {
    Outputs out =
        mustRun(makeSpec(DecayKind::Constant), in, fc.form, fc.chunkSize);
    for (int64_t t = 1; t <= 20; ++t) {
      double geo = (1.0 - std::pow(lambda, t)) / (1.0 - lambda);
      EXPECT_NEAR(out.o.at({0, 0, t - 1, 0}), qk * geo, kTol) << fc.name;
      EXPECT_NEAR(out.o.at({0, 0, t - 1, 1}), -2.0 * qk * geo, kTol) << fc.name;
    }
    double geoT = (1.0 - std::pow(lambda, 20)) / (1.0 - lambda);
    for (int64_t i = 0; i < 3; ++i) {
      EXPECT_NEAR(out.finalState.at({0, 0, i, 0}), 0.5 * geoT, kTol);
      EXPECT_NEAR(out.finalState.at({0, 0, i, 1}), -1.0 * geoT, kTol);
    }
  }
}

TEST(WorkedExamples, ConstantInputsNoDecay) {
  Inputs in = constantInputs();
  for (const FormCase &fc : allForms()) {
    Outputs out = mustRun(makeSpec(DecayKind::None), in, fc.form, fc.chunkSize);
    for (int64_t t = 1; t <= 20; ++t) {
      EXPECT_NEAR(out.o.at({0, 0, t - 1, 0}), t * 0.45, kTol) << fc.name;
      EXPECT_NEAR(out.o.at({0, 0, t - 1, 1}), -2.0 * t * 0.45, kTol);
    }
  }
}

// With a positive feature map every normalized output is exactly v.
TEST(WorkedExamples, ConstantInputsNormalizedGiveV) {
  Inputs plain = constantInputs();
  Inputs decayed = constantInputs();
  decayed.gate = Tensor({1}, std::log(0.7));
  Spec none = makeSpec(DecayKind::None, true);
  none.eps = 1e-14;
  Spec constant = makeSpec(DecayKind::Constant, true);
  constant.eps = 1e-14;
  for (const FormCase &fc : allForms()) {
    for (const Outputs &out :
         {mustRun(none, plain, fc.form, fc.chunkSize),
          mustRun(constant, decayed, fc.form, fc.chunkSize)})
      for (int64_t t = 0; t < 20; ++t) {
        EXPECT_NEAR(out.o.at({0, 0, t, 0}), 1.0, kTol) << fc.name;
        EXPECT_NEAR(out.o.at({0, 0, t, 1}), -2.0, kTol) << fc.name;
      }
  }
}

//===----------------------------------------------------------------------===//
// 6. Decay limits
//===----------------------------------------------------------------------===//

TEST(DecayLimits, ZeroGateEqualsNoDecay) {
  Dims d;
  d.seqLen = 37;
  Inputs none = randomInputs(DecayKind::None, d, 5);
  for (DecayKind kind :
       {DecayKind::Constant, DecayKind::Scalar, DecayKind::Vector}) {
    Inputs gated = none;
    gated.gate = Tensor(randomInputs(kind, d, 5).gate->shape, 0.0);
    for (const FormCase &fc : allForms())
      expectOutputsNear(
          mustRun(makeSpec(kind), gated, fc.form, fc.chunkSize),
          mustRun(makeSpec(DecayKind::None), none, fc.form, fc.chunkSize),
          1e-13, std::string(decayKindName(kind)) + " " + fc.name);
  }
}

namespace {
/// o_t = beta_t (q_t . k_t) v_t (beta = 1 without a delta rule).
Tensor diagonalOnly(const Inputs &in) {
  Tensor o(in.v.shape);
  for (int64_t h = 0; h < in.v.dim(1); ++h)
    for (int64_t t = 0; t < in.v.dim(2); ++t) {
      double qk = 0.0;
      for (int64_t i = 0; i < in.q.dim(3); ++i)
        qk += in.q.at({0, h, t, i}) * in.k.at({0, h, t, i});
      double beta = in.beta ? in.beta->at({0, h, t}) : 1.0;
      for (int64_t j = 0; j < in.v.dim(3); ++j)
        o.at({0, h, t, j}) = beta * qk * in.v.at({0, h, t, j});
    }
  return o;
}
} // namespace

// g = -30 and g = -inf leave only the diagonal, finite and NaN-free.
TEST(DecayLimits, StrongDecayIsDiagonalOnly) {
  Dims d;
  d.seqLen = 40;
  const double inf = std::numeric_limits<double>::infinity();
  for (DecayKind kind : {DecayKind::Constant, DecayKind::Scalar,
                         DecayKind::Vector, DecayKind::GatedDelta})
    for (double g : {-30.0, -inf}) {
      Inputs in = randomInputs(kind, d, 6);
      for (double &x : in.gate->data)
        x = g;
      Tensor want = diagonalOnly(in);
      for (const FormCase &fc : allForms()) {
        std::string what = std::string(decayKindName(kind)) +
                           " g = " + std::to_string(g) + " " + fc.name;
        Outputs out = mustRun(makeSpec(kind), in, fc.form, fc.chunkSize);
        expectFinite(out.o, what);
        expectFinite(out.finalState, what);
        // exp(-30) ~ 1e-13 times O(1) history terms.
        EXPECT_LE(maxAbsDiff(out.o, want), g == -inf ? 1e-14 : 1e-11) << what;
      }
    }
}
