//===- StructureTest.cpp - MATH.md 10, case 10 -----------------*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
//
// Structural identities: linearity, head/batch permutation, varlen packing,
// GQA/GVA head sharing, the non-causal form, state layout and query scale.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include "gtest/gtest.h"

using namespace linattn::reference;
using namespace linattn::reference::testutil;

namespace {

/// a * x + y elementwise.
Tensor axpy(double a, const Tensor &x, const Tensor &y) {
  Tensor out = y;
  for (size_t i = 0; i < out.data.size(); ++i)
    out.data[i] += a * x.data[i];
  return out;
}

const DecayKind kSampleKinds[] = {DecayKind::None, DecayKind::Scalar,
                                  DecayKind::Vector, DecayKind::GatedDelta};

} // namespace

// O and S_T are jointly linear in (V, S_0), including for the delta rules.
TEST(Structure, LinearInValuesAndInitialState) {
  Dims d;
  d.seqLen = 29;
  const double alpha = -1.7;
  for (DecayKind kind : kSampleKinds) {
    Inputs a = randomInputs(kind, d, 31);
    Inputs b = randomInputs(kind, d, 32);
    b.q = a.q;
    b.k = a.k;
    b.gate = a.gate;
    b.beta = a.beta;
    Inputs mix = a;
    mix.v = axpy(alpha, a.v, b.v);
    mix.initialState = axpy(alpha, *a.initialState, *b.initialState);
    for (const FormCase &fc : allForms()) {
      Spec spec = makeSpec(kind);
      Outputs oa = mustRun(spec, a, fc.form, fc.chunkSize);
      Outputs ob = mustRun(spec, b, fc.form, fc.chunkSize);
      Outputs want;
      want.o = axpy(alpha, oa.o, ob.o);
      want.finalState = axpy(alpha, oa.finalState, ob.finalState);
      expectOutputsNear(mustRun(spec, mix, fc.form, fc.chunkSize), want, 1e-12,
                        std::string(decayKindName(kind)) + " " + fc.name);
    }
  }
}

TEST(Structure, PermutingHeadsAndBatchPermutesOutputs) {
  Dims d;
  d.batch = 2;
  d.hq = d.hk = d.hv = 3;
  d.seqLen = 19;
  const std::vector<int64_t> heads = {2, 0, 1}, batch = {1, 0};
  for (DecayKind kind : allDecayKinds()) {
    Spec spec = makeSpec(kind);
    Inputs in = randomInputs(kind, d, 33);
    Inputs p = in;
    for (Tensor *t : {&p.q, &p.k, &p.v, &*p.initialState})
      *t = gatherAxis(gatherAxis(*t, 1, heads), 0, batch);
    if (p.beta)
      p.beta = gatherAxis(gatherAxis(*p.beta, 1, heads), 0, batch);
    if (p.gate)
      p.gate = kind == DecayKind::Constant
                   ? gatherAxis(*p.gate, 0, heads)
                   : gatherAxis(gatherAxis(*p.gate, 1, heads), 0, batch);
    Outputs base = mustRun(spec, in, Form::Chunked, 8);
    Outputs want;
    want.o = gatherAxis(gatherAxis(base.o, 1, heads), 0, batch);
    want.finalState =
        gatherAxis(gatherAxis(base.finalState, 1, heads), 0, batch);
    expectOutputsNear(mustRun(spec, p, Form::Chunked, 8), want, 1e-14,
                      decayKindName(kind));
  }
}

// Packing sequences of lengths {5, 0, 23, 17} into one row with offsets equals
// four separate calls, each with its own initial and final state.
TEST(Structure, VarlenPackingEqualsSeparateCalls) {
  const std::vector<int64_t> offsets = {0, 5, 5, 28, 45};
  Dims d;
  d.seqLen = 45;
  for (DecayKind kind : allDecayKinds())
    for (bool normalized : {false, true}) {
      RandomOptions opts;
      opts.positive = normalized;
      opts.normalizer = normalized;
      Inputs packed = randomInputs(kind, d, 34, opts);
      Dims states = d;
      states.batch = 4;
      Inputs init = randomInputs(kind, states, 35, opts);
      packed.initialState = init.initialState;
      packed.initialNormalizer = init.initialNormalizer;
      packed.offsets = offsets;
      Spec spec = makeSpec(kind, normalized);
      std::string what =
          std::string(decayKindName(kind)) + (normalized ? " normalized" : "");
      for (const FormCase &fc : allForms()) {
        Outputs got = mustRun(spec, packed, fc.form, fc.chunkSize);
        for (int64_t n = 0; n < 4; ++n) {
          Inputs one = sliceTime(spec, packed, offsets[n], offsets[n + 1]);
          one.offsets.reset();
          one.initialState = sliceAxis(*packed.initialState, 0, n, n + 1);
          if (normalized)
            one.initialNormalizer =
                sliceAxis(*packed.initialNormalizer, 0, n, n + 1);
          Outputs want = mustRun(spec, one, fc.form, fc.chunkSize);
          Outputs part;
          part.o = sliceAxis(got.o, 2, offsets[n], offsets[n + 1]);
          part.finalState = sliceAxis(got.finalState, 0, n, n + 1);
          if (normalized)
            part.finalNormalizer = sliceAxis(got.finalNormalizer, 0, n, n + 1);
          expectOutputsNear(part, want, 1e-14,
                            what + " " + fc.name + " seq " + std::to_string(n));
        }
      }
    }
}

// Shared q/k heads (GQA) and shared q/k with more value heads (GVA) equal the
// problem with every head repeated explicitly.
TEST(Structure, GroupedHeadsEqualRepeatedHeads) {
  struct Config {
    int64_t hq, hk, hv;
  };
  const Config configs[] = {{4, 2, 2}, {2, 4, 4}, {2, 2, 4}, {1, 1, 4}};
  for (DecayKind kind : kSampleKinds)
    for (const Config &c : configs) {
      Dims d;
      d.hq = c.hq;
      d.hk = c.hk;
      d.hv = c.hv;
      d.seqLen = 18;
      Inputs grouped = randomInputs(kind, d, 36);
      Inputs full = grouped;
      auto repeat = [](const Tensor &t, int64_t heads) {
        std::vector<int64_t> idx;
        for (int64_t h = 0; h < heads; ++h)
          idx.push_back(h / (heads / t.dim(1)));
        return gatherAxis(t, 1, idx);
      };
      full.q = repeat(grouped.q, 4);
      full.k = repeat(grouped.k, 4);
      full.v = repeat(grouped.v, 4);
      std::string what = std::string(decayKindName(kind)) +
                         " Hq/Hk/Hv = " + std::to_string(c.hq) + "/" +
                         std::to_string(c.hk) + "/" + std::to_string(c.hv);
      Spec spec = makeSpec(kind);
      for (const FormCase &fc : allForms())
        expectOutputsNear(mustRun(spec, grouped, fc.form, fc.chunkSize),
                          mustRun(spec, full, fc.form, fc.chunkSize), 1e-15,
                          what + " " + fc.name);
    }
}

namespace {
/// Non-causal oracle computed as Q (K^T V + S_0), optionally normalized by
/// q . (z_0 + sum_s k_s) + eps; returns o and S_T.
Outputs nonCausalByHand(const Inputs &in, const Spec &spec) {
  int64_t heads = in.q.dim(1), len = in.q.dim(2), dk = in.q.dim(3),
          dv = in.v.dim(3);
  Outputs out;
  out.o = Tensor({1, heads, len, dv});
  out.finalState = *in.initialState;
  for (int64_t h = 0; h < heads; ++h) {
    std::vector<double> z(static_cast<size_t>(dk), 0.0);
    for (int64_t i = 0; i < dk; ++i) {
      z[i] = spec.normalized ? in.initialNormalizer->at({0, h, i}) : 0.0;
      for (int64_t s = 0; s < len; ++s) {
        z[i] += in.k.at({0, h, s, i});
        for (int64_t j = 0; j < dv; ++j)
          out.finalState.at({0, h, i, j}) +=
              in.k.at({0, h, s, i}) * in.v.at({0, h, s, j});
      }
    }
    for (int64_t t = 0; t < len; ++t) {
      double den = spec.eps;
      for (int64_t i = 0; i < dk; ++i)
        den += in.q.at({0, h, t, i}) * z[i];
      for (int64_t j = 0; j < dv; ++j) {
        double num = 0.0;
        for (int64_t i = 0; i < dk; ++i)
          num += in.q.at({0, h, t, i}) * out.finalState.at({0, h, i, j});
        out.o.at({0, h, t, j}) = spec.normalized ? num / den : num;
      }
    }
  }
  return out;
}
} // namespace

// Parallel evaluates (Q K^T) V; recurrent and chunked evaluate Q (K^T V).
TEST(Structure, NonCausalAssociativity) {
  Dims d;
  d.seqLen = 27;
  for (bool normalized : {false, true}) {
    RandomOptions opts;
    opts.positive = normalized;
    opts.normalizer = normalized;
    Inputs in = randomInputs(DecayKind::None, d, 37, opts);
    Spec spec = makeSpec(DecayKind::None, normalized);
    spec.causal = false;
    Outputs want = nonCausalByHand(in, spec);
    for (const FormCase &fc : allForms()) {
      Outputs got = mustRun(spec, in, fc.form, fc.chunkSize);
      EXPECT_LE(ratio(got.o, want.o), 1e-13) << fc.name;
      EXPECT_LE(ratio(got.finalState, want.finalState), 1e-13) << fc.name;
    }
  }
}

TEST(Structure, ValueMajorStateIsTranspose) {
  Dims d;
  d.seqLen = 22;
  for (DecayKind kind : kSampleKinds) {
    Inputs keyMajor = randomInputs(kind, d, 38);
    Inputs valueMajor = keyMajor;
    valueMajor.initialState = transposeLast2(*keyMajor.initialState);
    Spec spec = makeSpec(kind);
    Spec vspec = spec;
    vspec.stateValueMajor = true;
    for (const FormCase &fc : allForms()) {
      Outputs a = mustRun(spec, keyMajor, fc.form, fc.chunkSize);
      Outputs b = mustRun(vspec, valueMajor, fc.form, fc.chunkSize);
      EXPECT_EQ(b.finalState.shape, (std::vector<int64_t>{1, 2, 3, 4}));
      EXPECT_LE(ratio(b.o, a.o), 1e-15) << fc.name;
      EXPECT_LE(ratio(b.finalState, transposeLast2(a.finalState)), 1e-15)
          << fc.name;
    }
  }
}

// scale multiplies q before anything, also inside the normalized form.
TEST(Structure, ScaleMultipliesQueries) {
  Dims d;
  d.seqLen = 14;
  for (bool normalized : {false, true}) {
    RandomOptions opts;
    opts.positive = normalized;
    Inputs in = randomInputs(DecayKind::Scalar, d, 39, opts);
    Spec spec = makeSpec(DecayKind::Scalar, normalized);
    spec.eps = 0.5; // Large enough that a wrong scale changes the output.
    Inputs scaled = in;
    for (double &x : scaled.q.data)
      x *= 0.3;
    Spec unit = spec;
    spec.scale = 0.3;
    for (const FormCase &fc : allForms())
      expectOutputsNear(mustRun(spec, in, fc.form, fc.chunkSize),
                        mustRun(unit, scaled, fc.form, fc.chunkSize), 1e-15,
                        fc.name);
  }
}

TEST(Structure, EmptySequenceKeepsInitialState) {
  Dims d;
  d.seqLen = 0;
  Inputs in = randomInputs(DecayKind::GatedDelta, d, 40);
  for (const FormCase &fc : allForms()) {
    Outputs out =
        mustRun(makeSpec(DecayKind::GatedDelta), in, fc.form, fc.chunkSize);
    EXPECT_EQ(out.o.shape, (std::vector<int64_t>{1, 2, 0, 3}));
    EXPECT_EQ(maxAbsDiff(out.finalState, *in.initialState), 0.0) << fc.name;
  }
}
