//===- StatePassingTest.cpp - MATH.md 10, case 9 ---------------*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
//
// final_state -> initial_state chaining: any split of the sequence, and
// token-by-token decoding after a prefill, must reproduce a single call.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include "gtest/gtest.h"

using namespace linattn::reference;
using namespace linattn::reference::testutil;

namespace {

class StatePassing : public ::testing::TestWithParam<DecayKind> {};

std::string kindName(const ::testing::TestParamInfo<DecayKind> &info) {
  return decayKindName(info.param);
}

/// Runs [t0, t1) of `in` starting from `prev`'s final state (or the original
/// initial state when prev is null).
Outputs runPart(const Spec &spec, const Inputs &in, int64_t t0, int64_t t1,
                const Outputs *prev, Form form, int64_t chunk) {
  Inputs part = sliceTime(spec, in, t0, t1);
  if (prev) {
    part.initialState = prev->finalState;
    if (spec.normalized)
      part.initialNormalizer = prev->finalNormalizer;
  }
  return mustRun(spec, part, form, chunk);
}

/// Inputs and spec for one configuration; value-major stores S transposed.
void makeProblem(DecayKind kind, bool normalized, bool valueMajor,
                 int64_t seqLen, Spec &spec, Inputs &in) {
  Dims d;
  d.batch = 2;
  d.seqLen = seqLen;
  RandomOptions opts;
  opts.positive = normalized;
  opts.normalizer = normalized;
  in = randomInputs(kind, d, 21, opts);
  spec = makeSpec(kind, normalized);
  spec.stateValueMajor = valueMajor;
  if (valueMajor)
    in.initialState = transposeLast2(*in.initialState);
}

} // namespace

TEST_P(StatePassing, SplitPrefillEqualsOneShot) {
  const int64_t chunk = 16, seqLen = 50;
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<int64_t> pick(1, seqLen - 1);
  for (int variant = 0; variant < 3; ++variant) {
    Spec spec;
    Inputs in;
    makeProblem(GetParam(), variant == 1, variant == 2, seqLen, spec, in);
    Outputs oneShot = mustRun(spec, in, Form::Chunked, chunk);
    for (int64_t split : {int64_t(1), chunk - 1, chunk, chunk + 3, pick(rng)}) {
      Outputs a = runPart(spec, in, 0, split, nullptr, Form::Chunked, chunk);
      Outputs b = runPart(spec, in, split, seqLen, &a, Form::Chunked, chunk);
      Outputs joined = b;
      joined.o = concatAxis({a.o, b.o}, 2);
      expectOutputsNear(joined, oneShot, 1e-11,
                        "variant " + std::to_string(variant) +
                            ", T1 = " + std::to_string(split));
    }
  }
}

TEST_P(StatePassing, TokenByTokenDecodeAfterPrefill) {
  const int64_t prefill = 20, seqLen = 33;
  for (bool normalized : {false, true}) {
    Spec spec;
    Inputs in;
    makeProblem(GetParam(), normalized, false, seqLen, spec, in);
    Outputs oneShot = mustRun(spec, in, Form::Parallel);
    std::vector<Tensor> outs;
    Outputs last = runPart(spec, in, 0, prefill, nullptr, Form::Chunked, 8);
    outs.push_back(last.o);
    const Form forms[] = {Form::Recurrent, Form::Chunked, Form::Parallel};
    for (int64_t t = prefill; t < seqLen; ++t) {
      last = runPart(spec, in, t, t + 1, &last, forms[t % 3], 64);
      outs.push_back(last.o);
    }
    Outputs joined = last;
    joined.o = concatAxis(outs, 2);
    expectOutputsNear(joined, oneShot, 1e-11,
                      normalized ? "normalized" : "plain");
  }
}

INSTANTIATE_TEST_SUITE_P(AllDecays, StatePassing,
                         ::testing::ValuesIn(allDecayKinds()), kindName);
