//===- KernelTest.cpp - JIT kernels against the fp64 reference -*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
//
// Every forward variant the CPU code generator supports, in f32, bf16, f16
// and f64, on odd shapes (T = 1, 63, 500; Dk != Dv; D = 60) and several
// chunk sizes, checked against lib/Reference on the same rounded inputs with
// the tolerances of MATH.md 9.7 (the delta rules with their own bf16
// tolerance). Also the runtime's validation of gate values and beta.
//
//===----------------------------------------------------------------------===//

#include "linattn/Runtime/Npy.h"
#include "linattn/Runtime/Runtime.h"

#include "KernelTestUtil.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <sstream>

using namespace linattn;
namespace ref = linattn::reference;
using namespace linattn::test_util;

namespace {

//===----------------------------------------------------------------------===//
// One test problem
//===----------------------------------------------------------------------===//

struct Case {
  DecayKind decay = DecayKind::None;
  DType dtype = DType::F32;
  ref::RandomDims dims;
  int64_t chunk = 64;
  int64_t subChunk = 16;
  FeatureMap featureMap = FeatureMap::Identity;
  bool normalized = false, exclusive = false, causal = true;
  bool valueMajor = false, bthd = false, initialState = true;
  bool offsets = false, scheduled = false;
  /// Delta rules: pass beta in the input dtype instead of f32.
  bool betaInInputType = false;
  int threads = 2;
  double gateScale = 1.0; ///< multiplies the random log-gates

  std::string name() const {
    std::ostringstream os;
    os << ref::decayKindName(decay) << "_" << dtypeName(dtype) << "_B"
       << dims.batch << "_H" << dims.hq << "x" << dims.hk << "x" << dims.hv
       << "_T" << dims.seqLen << "_Dk" << dims.dk << "_Dv" << dims.dv << "_C"
       << chunk;
    if (featureMap != FeatureMap::Identity)
      os << "_" << ref::featureMapName(featureMap);
    if (normalized)
      os << "_norm";
    if (exclusive)
      os << "_excl";
    if (!causal)
      os << "_noncausal";
    if (valueMajor)
      os << "_vmajor";
    if (bthd)
      os << "_bthd";
    if (!initialState)
      os << "_nostate";
    if (offsets)
      os << "_varlen";
    if (scheduled)
      os << "_schedule";
    if (subChunk != 16)
      os << "_c" << subChunk;
    if (threads != 2)
      os << "_threads" << threads;
    if (gateScale != 1.0)
      os << "_gx" << static_cast<int>(gateScale);
    if (betaInInputType)
      os << "_betaInput";
    return os.str();
  }
};

bool isDelta(DecayKind d) {
  return d == DecayKind::Delta || d == DecayKind::GatedDelta;
}

/// MATH.md 9.7: fp32 1e-5, fp16 1e-3, bf16 5e-3 (delta rules 8e-3), fp64
/// 1e-12 (ratio).
double tolerance(DType t, DecayKind decay) {
  if (t == DType::BF16 && isDelta(decay))
    return 8e-3;
  switch (t) {
  case DType::F32:
    return 1e-5;
  case DType::F16:
    return 1e-3;
  case DType::BF16:
    return 5e-3;
  case DType::F64:
    return 1e-12;
  }
  return 0;
}

/// Compiled kernels shared between cases with the same spec and options.
const Kernel *getKernel(const AttentionSpec &spec, const CompileOptions &o,
                        std::string &error) {
  // Leaked on purpose: a JIT engine must not be torn down by static
  // destructors, after LLVM's own statics are gone.
  static auto &cache = *new std::map<std::string, std::unique_ptr<Kernel>>();
  std::ostringstream key;
  key << int(spec.decay) << int(spec.featureMap) << spec.normalized
      << spec.exclusive << spec.causal << int(spec.layout)
      << spec.stateValueMajor << int(spec.dtype) << int(spec.gateDType) << "_"
      << spec.keyDim << "_" << spec.valueDim << "_" << o.chunkSize << "_"
      << o.subChunkSize << "_" << (spec.scale ? *spec.scale : -1.0) << "_"
      << spec.schedule.has_value() << "_" << spec.eps;
  auto &slot = cache[key.str()];
  if (!slot)
    slot = Kernel::compile(spec, o, &error);
  return slot.get();
}

struct Prepared {
  AttentionSpec spec;
  CompileOptions options;
  ref::Spec refSpec;
  ref::Inputs refIn;
  Buffer q, k, v, gate, beta, s0, z0;
  bool hasGate = false;
  Buffer o, s1, z1;
  Arguments args;
};

void prepare(const Case &c, Prepared &p) {
  ref::RandomOptions ro;
  ro.initialState = c.initialState;
  ro.positive = c.normalized;
  ro.normalizer = c.normalized && c.initialState;
  ref::RandomDims d = c.dims;
  ref::Inputs in = ref::randomInputs(c.decay, d, 1234 + d.seqLen, ro);
  if (in.gate && c.decay != DecayKind::Constant)
    for (double &g : in.gate->data)
      g *= c.gateScale;
  if (c.offsets) {
    int64_t T = d.seqLen;
    in.offsets = std::vector<int64_t>{0, T / 5, T / 5, T / 2 + 1, T};
    int64_t n = 4, H = std::max({d.hq, d.hk, d.hv});
    if (c.initialState) {
      std::mt19937_64 rng(99);
      in.initialState = c.valueMajor ? ref::randn({n, H, d.dv, d.dk}, rng)
                                     : ref::randn({n, H, d.dk, d.dv}, rng);
      if (c.normalized) {
        in.initialNormalizer = ref::randn({n, H, d.dk}, rng);
        for (double &z : in.initialNormalizer->data)
          z = std::fabs(z);
      }
    }
  } else if (c.valueMajor && in.initialState) {
    // randomInputs draws key-major states; transpose the last two dims.
    in.initialState = ref::swapDims(*in.initialState, 2, 3);
  }
  DType st = c.dtype == DType::F64 ? DType::F64 : DType::F32;
  roundTo(in.q, c.dtype);
  roundTo(in.k, c.dtype);
  roundTo(in.v, c.dtype);
  if (in.gate)
    roundTo(*in.gate, st);
  DType betaType = c.betaInInputType ? c.dtype : st;
  if (in.beta)
    roundTo(*in.beta, betaType);
  if (in.initialState)
    roundTo(*in.initialState, st);
  if (in.initialNormalizer)
    roundTo(*in.initialNormalizer, st);

  // The kernel applies the feature map; the reference takes mapped q, k.
  p.refIn = in;
  if (c.featureMap != FeatureMap::Identity) {
    ref::Tensor mq, mk;
    ASSERT_EQ(ref::applyFeatureMap(c.featureMap, in.q, mq), "");
    ASSERT_EQ(ref::applyFeatureMap(c.featureMap, in.k, mk), "");
    p.refIn.q = mq;
    p.refIn.k = mk;
  }
  p.refSpec.decay = c.decay;
  p.refSpec.normalized = c.normalized;
  p.refSpec.eps = 1e-6;
  p.refSpec.scale = 1.0 / std::sqrt(static_cast<double>(d.dk));
  p.refSpec.causal = c.causal;
  p.refSpec.exclusive = c.exclusive;
  p.refSpec.stateValueMajor = c.valueMajor;

  AttentionSpec &s = p.spec;
  s.decay = c.decay;
  s.featureMap = c.featureMap;
  s.normalized = c.normalized;
  s.eps = 1e-6;
  s.causal = c.causal;
  s.exclusive = c.exclusive;
  s.layout = c.bthd ? Layout::BTHD : Layout::BHTD;
  s.stateValueMajor = c.valueMajor;
  s.dtype = c.dtype;
  s.gateDType = st;
  s.keyDim = d.dk;
  s.valueDim = d.dv;
  int64_t H = std::max({d.hq, d.hk, d.hv});
  if (c.scheduled) {
    s.schedule = ref::Schedule::RetNet;
    std::vector<double> logs = ref::logDecaySchedule(ref::Schedule::RetNet, H);
    p.refIn.gate = ref::Tensor({H});
    p.refIn.gate->data = logs;
  }
  p.options.chunkSize = c.chunk;
  p.options.subChunkSize = c.subChunk;

  p.q = pack(in.q, c.dtype, c.bthd);
  p.k = pack(in.k, c.dtype, c.bthd);
  p.v = pack(in.v, c.dtype, c.bthd);
  p.args.q = p.q.view();
  p.args.k = p.k.view();
  p.args.v = p.v.view();
  if (in.gate && !c.scheduled) {
    bool swap = c.bthd && in.gate->shape.size() >= 3;
    p.gate = pack(*in.gate, st, swap);
    p.args.gate = p.gate.view();
  }
  if (in.beta) {
    p.beta = pack(*in.beta, betaType, c.bthd);
    p.args.beta = p.beta.view();
  }
  if (in.initialState) {
    p.s0 = pack(*in.initialState, st);
    p.args.initialState = p.s0.view();
  }
  if (in.initialNormalizer) {
    p.z0 = pack(*in.initialNormalizer, st);
    p.args.initialNormalizer = p.z0.view();
  }
  p.args.offsets = in.offsets;
  int64_t N =
      in.offsets ? static_cast<int64_t>(in.offsets->size()) - 1 : d.batch;
  p.o = pack(ref::Tensor({d.batch, H, d.seqLen, d.dv}, 0.0), c.dtype, c.bthd);
  p.s1 = pack(c.valueMajor ? ref::Tensor({N, H, d.dv, d.dk}, 0.0)
                           : ref::Tensor({N, H, d.dk, d.dv}, 0.0),
              st);
  p.args.output = p.o.view();
  p.args.finalState = p.s1.view();
  if (c.normalized) {
    p.z1 = pack(ref::Tensor({N, H, d.dk}, 0.0), st);
    p.args.finalNormalizer = p.z1.view();
  }
  p.args.numThreads = c.threads;
}

void checkCase(const Case &c) {
  SCOPED_TRACE(c.name());
  Prepared p;
  prepare(c, p);
  if (testing::Test::HasFatalFailure())
    return;
  std::string error;
  const Kernel *kernel = getKernel(p.spec, p.options, error);
  ASSERT_NE(kernel, nullptr) << error;
  ASSERT_EQ(kernel->run(p.args), "");

  ref::Outputs want;
  ASSERT_EQ(ref::run(p.refSpec, p.refIn, ref::Form::Recurrent, want), "");
  ref::Tensor o = unpack(p.o, c.bthd);
  ref::Tensor s = unpack(p.s1);
  double tol = tolerance(c.dtype, c.decay);
  double ro = ref::ratio(o, want.o), rs = ref::ratio(s, want.finalState);
  EXPECT_LE(ro, tol) << "output ratio";
  EXPECT_LE(rs, tol) << "final state ratio";
  if (c.normalized) {
    ref::Tensor z = unpack(p.z1);
    EXPECT_LE(ref::ratio(z, want.finalNormalizer), tol) << "normalizer ratio";
  }
  for (double x : o.data)
    ASSERT_TRUE(std::isfinite(x)) << "non-finite output";
  if (c.dtype == DType::F32 || c.dtype == DType::F64) {
    // Elementwise: |Δ| <= atol + rtol |ref|, rtol = 1e-4, atol = 1e-5 max.
    double maxRef = 0;
    for (double x : want.o.data)
      maxRef = std::max(maxRef, std::fabs(x));
    double rtol = c.dtype == DType::F64 ? 1e-10 : 1e-4;
    double atol = (c.dtype == DType::F64 ? 1e-11 : 1e-5) * maxRef;
    size_t bad = 0;
    for (size_t i = 0; i < o.data.size(); ++i)
      if (std::fabs(o.data[i] - want.o.data[i]) >
          atol + rtol * std::fabs(want.o.data[i]))
        ++bad;
    EXPECT_EQ(bad, 0u) << "elements outside atol + rtol |ref|";
  }
  testing::Test::RecordProperty("ratio_o", std::to_string(ro));
}

//===----------------------------------------------------------------------===//
// The sweep
//===----------------------------------------------------------------------===//

std::vector<Case> sweep() {
  std::vector<Case> cases;
  const DecayKind decays[] = {DecayKind::None, DecayKind::Constant,
                              DecayKind::Scalar, DecayKind::Vector};
  struct Shape {
    int64_t T, dk, dv;
  };
  const Shape shapes[] = {
      {1, 32, 32}, {63, 32, 48}, {500, 60, 60}, {130, 64, 64}};
  for (DecayKind decay : decays)
    for (DType dtype : {DType::F32, DType::BF16})
      for (const Shape &s : shapes)
        for (int64_t chunk : {16, 64}) {
          Case c;
          c.decay = decay;
          c.dtype = dtype;
          c.dims = {2, 3, 3, 3, s.T, s.dk, s.dv};
          c.chunk = chunk;
          cases.push_back(c);
        }
  auto add = [&](DecayKind decay, auto mutate) {
    Case c;
    c.decay = decay;
    c.dims = {2, 4, 4, 4, 77, 32, 24};
    c.chunk = 32;
    mutate(c);
    cases.push_back(c);
  };
  for (DecayKind decay : decays) {
    add(decay, [](Case &c) { c.dims.hk = c.dims.hv = 2; }); // GQA
    add(decay, [](Case &c) { c.dims.hq = 1; });             // shared q
    add(decay, [](Case &c) {
      c.offsets = true;
      c.dims.batch = 1;
    });
    add(decay, [](Case &c) { c.bthd = true; });
    add(decay, [](Case &c) { c.valueMajor = true; });
    add(decay, [](Case &c) { c.initialState = false; });
    add(decay, [](Case &c) { c.exclusive = true; });
    add(decay, [](Case &c) {
      c.normalized = true;
      c.featureMap = FeatureMap::EluPlusOne;
    });
    add(decay, [](Case &c) { c.featureMap = FeatureMap::Relu; });
    add(decay, [](Case &c) { c.dtype = DType::F16; });
    add(decay, [](Case &c) { c.dtype = DType::F64; });
    add(decay, [](Case &c) {
      c.chunk = 1;
      c.subChunk = 1;
    });
    add(decay, [](Case &c) { c.chunk = 48; });
    add(decay, [](Case &c) { c.threads = 1; });
  }
  add(DecayKind::None, [](Case &c) { c.causal = false; });
  add(DecayKind::None, [](Case &c) {
    c.causal = false;
    c.normalized = true;
    c.featureMap = FeatureMap::EluPlusOne;
  });
  add(DecayKind::Constant, [](Case &c) { c.scheduled = true; });
  // Large decays (MATH.md 9.3): g = 30x the usual, still finite.
  add(DecayKind::Scalar, [](Case &c) { c.gateScale = 400; });
  add(DecayKind::Vector, [](Case &c) { c.gateScale = 400; });
  // Medium decays: some sub-chunks span more than the factor limit of the
  // chunk pass and some less, so the rescaled K factors of a safe sub-chunk
  // meet the recomputed ones of an unsafe one (and the state update both).
  add(DecayKind::Vector, [](Case &c) {
    c.gateScale = 29;
    c.chunk = 64;
    c.dims.seqLen = 300;
  });
  add(DecayKind::Vector, [](Case &c) { c.subChunk = 8; });
  add(DecayKind::Vector, [](Case &c) { c.subChunk = 32; });

  // Delta rules (WY/UT form, MATH.md 5.2): keys L2-normalized, beta in
  // (0, 1). T = 1 is a one-row chunk, 63, 130 and 500 leave ragged last
  // chunks. Fewer (shape, C) pairs than above: each case compiles a kernel.
  struct DeltaShape {
    int64_t T, dk, dv, chunk;
  };
  const DeltaShape deltaShapes[] = {{1, 32, 32, 64},
                                    {63, 32, 48, 16},
                                    {130, 64, 64, 64},
                                    {500, 60, 60, 16},
                                    {500, 60, 60, 64}};
  for (DecayKind decay : {DecayKind::Delta, DecayKind::GatedDelta}) {
    for (DType dtype : {DType::F32, DType::BF16})
      for (const DeltaShape &s : deltaShapes) {
        Case c;
        c.decay = decay;
        c.dtype = dtype;
        c.dims = {2, 3, 3, 3, s.T, s.dk, s.dv};
        c.chunk = s.chunk;
        cases.push_back(c);
      }
    add(decay, [](Case &c) { c.dims.hk = c.dims.hv = 2; }); // GQA
    add(decay, [](Case &c) {
      c.offsets = true;
      c.dims.batch = 1;
    });
    add(decay, [](Case &c) { c.bthd = true; });
    add(decay, [](Case &c) { c.initialState = false; });
    add(decay, [](Case &c) { c.exclusive = true; });
    add(decay, [](Case &c) { c.dtype = DType::F64; });
    add(decay, [](Case &c) {
      c.chunk = 1;
      c.subChunk = 1;
    });
  }
  add(DecayKind::Delta, [](Case &c) {
    c.dtype = DType::BF16;
    c.betaInInputType = true;
  });
  add(DecayKind::GatedDelta, [](Case &c) { c.gateScale = 400; });
  return cases;
}

class KernelSweep : public testing::TestWithParam<Case> {};

TEST_P(KernelSweep, MatchesReference) { checkCase(GetParam()); }

INSTANTIATE_TEST_SUITE_P(Variants, KernelSweep, testing::ValuesIn(sweep()),
                         [](const testing::TestParamInfo<Case> &info) {
                           return info.param.name();
                         });

//===----------------------------------------------------------------------===//
// Gate value validation
//===----------------------------------------------------------------------===//

/// Runs a small GLA problem in `dtype` whose gate, stored as `gateType`, has
/// element `i` (flat, [B, H, T, Dk] = [1, 2, 20, 16]) set to `value`, and
/// returns run()'s message; the output must stay untouched on error.
std::string runGateWith(DType dtype, DType gateType, int64_t i, double value) {
  Case c;
  c.decay = DecayKind::Vector;
  c.dtype = dtype;
  c.dims = {1, 2, 2, 2, 20, 16, 16};
  c.chunk = 16;
  Prepared p;
  prepare(c, p);
  ref::Tensor g = *p.refIn.gate;
  g.data.at(static_cast<size_t>(i)) = value;
  p.spec.gateDType = gateType;
  p.gate = pack(g, gateType);
  p.args.gate = p.gate.view();
  std::string error;
  const Kernel *kernel = getKernel(p.spec, p.options, error);
  if (!kernel)
    return "compile: " + error;
  std::vector<uint8_t> before = p.o.bytes;
  std::string msg = kernel->run(p.args);
  if (!msg.empty() && p.o.bytes != before)
    return "output written on error: " + msg;
  return msg;
}

TEST(GateValues, NonPositiveAccepted) {
  const double inf = std::numeric_limits<double>::infinity();
  for (DType t : {DType::F32, DType::BF16, DType::F16}) {
    SCOPED_TRACE(dtypeName(t));
    EXPECT_EQ(runGateWith(t, t, 373, -inf), "");
    EXPECT_EQ(runGateWith(t, t, 373, 0.0), "");
    EXPECT_EQ(runGateWith(t, t, 373, -0.0), "");
  }
}

TEST(GateValues, GrowthAndNaNRejected) {
  const double inf = std::numeric_limits<double>::infinity();
  const char *where = " at [0, 1, 3, 5] (logical [B, H, T, D]) is not a "
                      "log-decay <= 0";
  // 373 = ((0 * 2 + 1) * 20 + 3) * 16 + 5; 639 is the last element.
  for (DType t : {DType::F32, DType::F64, DType::BF16, DType::F16}) {
    SCOPED_TRACE(dtypeName(t));
    EXPECT_EQ(runGateWith(t, t, 373, 0.5),
              std::string("gate: value 0.5") + where);
    EXPECT_EQ(runGateWith(t, t, 373, std::nan("")),
              std::string("gate: value nan") + where);
    EXPECT_EQ(runGateWith(t, t, 373, inf),
              std::string("gate: value inf") + where);
    EXPECT_EQ(runGateWith(t, t, 639, 0.25),
              "gate: value 0.25 at [0, 1, 19, 15] (logical [B, H, T, D]) "
              "is not a log-decay <= 0");
  }
  // The smallest positive bf16 (a subnormal, 2^-133) is growth too.
  EXPECT_EQ(runGateWith(DType::BF16, DType::BF16, 0, std::ldexp(1.0, -133)),
            "gate: value 9.18355e-41 at [0, 0, 0, 0] (logical [B, H, T, D]) "
            "is not a log-decay <= 0");
}

//===----------------------------------------------------------------------===//
// beta validation
//===----------------------------------------------------------------------===//

/// Runs a small delta problem with `mutate` applied to its arguments and
/// returns run()'s message; the output must stay untouched on error.
std::string runDeltaWith(DecayKind decay, void (*mutate)(Prepared &)) {
  Case c;
  c.decay = decay;
  c.dims = {1, 2, 2, 2, 20, 16, 16};
  c.chunk = 16;
  Prepared p;
  prepare(c, p);
  mutate(p);
  std::string error;
  const Kernel *kernel = getKernel(p.spec, p.options, error);
  if (!kernel)
    return "compile: " + error;
  std::vector<uint8_t> before = p.o.bytes;
  std::string msg = kernel->run(p.args);
  if (!msg.empty() && p.o.bytes != before)
    return "output written on error: " + msg;
  return msg;
}

TEST(DeltaArguments, Valid) {
  EXPECT_EQ(runDeltaWith(DecayKind::Delta, [](Prepared &) {}), "");
}

TEST(DeltaArguments, MissingBeta) {
  EXPECT_EQ(
      runDeltaWith(DecayKind::Delta, [](Prepared &p) { p.args.beta.reset(); }),
      "beta: the 'delta' rule needs a beta tensor");
}

TEST(DeltaArguments, BetaOutOfRange) {
  EXPECT_EQ(runDeltaWith(DecayKind::GatedDelta,
                         [](Prepared &p) {
                           reinterpret_cast<float *>(p.beta.bytes.data())[23] =
                               2.5f;
                         }),
            "beta: value 2.5 at [0, 1, 3] (logical [B, H, T]) is outside "
            "[0, 2]");
  EXPECT_EQ(runDeltaWith(DecayKind::Delta,
                         [](Prepared &p) {
                           reinterpret_cast<float *>(p.beta.bytes.data())[0] =
                               std::nanf("");
                         }),
            "beta: value nan at [0, 0, 0] (logical [B, H, T]) is outside "
            "[0, 2]");
}

TEST(DeltaArguments, BetaShape) {
  EXPECT_EQ(runDeltaWith(DecayKind::Delta,
                         [](Prepared &p) {
                           p.args.beta->shape = {1, 2, 19};
                         }),
            "beta: expected shape [1, 2, 20], got [1, 2, 19]");
}

TEST(DeltaArguments, BetaWithoutDeltaRule) {
  Case c;
  c.decay = DecayKind::None;
  c.dims = {1, 2, 2, 2, 20, 16, 16};
  Prepared p;
  prepare(c, p);
  float beta[40] = {};
  p.args.beta = TensorView(beta, DType::F32, {1, 2, 20});
  std::string error;
  const Kernel *kernel = getKernel(p.spec, p.options, error);
  ASSERT_NE(kernel, nullptr) << error;
  EXPECT_EQ(kernel->run(p.args), "beta: the 'none' decay takes no beta");
}

TEST(DeltaArguments, NormalizedDeltaIsRejected) {
  AttentionSpec spec;
  spec.decay = DecayKind::GatedDelta;
  spec.normalized = true;
  spec.keyDim = spec.valueDim = 16;
  std::string error;
  EXPECT_EQ(Kernel::compile(spec, CompileOptions(), &error), nullptr);
  EXPECT_EQ(error,
            "the normalized form is not defined for the 'gated_delta' rule");
}

} // namespace
