//===- FeatureMapKernelTest.cpp - Width-changing maps in the JIT -*- C++
//-*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
//
// Kernels whose spec names a width-changing feature map (Taylor-2, Hedgehog,
// Performer): q and k of width d go in, the kernel applies
// linattn.feature_map and runs attention with Dk = Dphi. Each case is checked
// against lib/Reference (the map applied in fp64 to the same rounded inputs
// and weights) with the tolerances of MATH.md 9.7, on odd shapes, with and
// without decay, per-head and shared weights, GQA and varlen. Also the
// runtime's validation of the map parameters.
//
//===----------------------------------------------------------------------===//

#include "linattn/Runtime/CudaRuntime.h"
#include "linattn/Runtime/GPUCompile.h"
#include "linattn/Runtime/Npy.h"
#include "linattn/Runtime/Runtime.h"

#include "KernelTestUtil.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <sstream>

using namespace linattn;
namespace ref = linattn::reference;
using namespace linattn::test_util;

namespace {

struct MapCase {
  FeatureMap map = FeatureMap::Taylor2;
  DType dtype = DType::F32;
  int64_t batch = 1, hq = 2, hk = 2, hv = 2, seqLen = 63, d = 8, dv = 5;
  /// f (Hedgehog) or m (Performer).
  int64_t features = 0;
  DecayKind decay = DecayKind::None;
  bool normalized = false;
  /// Weights [H, ...] instead of shared [d, f].
  bool perHead = false;
  /// k gets its own weights (keyMapWeight/keyMapBias).
  bool separateK = false;
  bool offsets = false, bthd = false, initialState = true;
  std::optional<double> scale;
};

/// Map weights as Hedgehog/Performer use them: W ~ N(0, 1/d) (Hedgehog) or
/// N(0, 1) (Performer), b ~ N(0, 0.1^2); leading head dim when perHead.
void drawWeights(const MapCase &c, int64_t heads, std::mt19937_64 &rng,
                 std::optional<ref::Tensor> &w, std::optional<ref::Tensor> &b) {
  bool performer = c.map == FeatureMap::Performer ||
                   c.map == FeatureMap::PerformerHyperbolic;
  int64_t f = c.map == FeatureMap::HedgehogJoint ? c.d : c.features;
  std::vector<int64_t> ws =
      performer ? std::vector<int64_t>{f, c.d} : std::vector<int64_t>{c.d, f};
  std::vector<int64_t> bs = {f};
  if (c.perHead) {
    ws.insert(ws.begin(), heads);
    bs.insert(bs.begin(), heads);
  }
  w = ref::randn(ws, rng,
                 performer ? 1.0 : 1.0 / std::sqrt(static_cast<double>(c.d)));
  roundTo(*w, DType::F32);
  if (!performer) {
    b = ref::randn(bs, rng, 0.1);
    roundTo(*b, DType::F32);
  }
}

/// Compiles and runs `c`, compares with the reference; returns the output
/// ratio (and adds failures).
void runCase(const MapCase &c, uint64_t seed = 1) {
  SCOPED_TRACE(std::string("map ") + ref::featureMapName(c.map) + " " +
               dtypeName(c.dtype) + " T=" + std::to_string(c.seqLen) +
               " d=" + std::to_string(c.d));
  AttentionSpec spec;
  spec.decay = c.decay;
  spec.featureMap = c.map;
  spec.featureCount = c.map == FeatureMap::HedgehogJoint ? 0 : c.features;
  spec.normalized = c.normalized;
  spec.eps = 1e-6;
  spec.scale = c.scale;
  spec.dtype = c.dtype;
  spec.layout = c.bthd ? Layout::BTHD : Layout::BHTD;
  spec.keyDim = c.d;
  spec.valueDim = c.dv;
  int64_t dphi = featureDim(spec);
  std::string error;
  auto kernel = Kernel::compile(spec, CompileOptions(), &error);
  ASSERT_TRUE(kernel) << error;

  ref::RandomDims dims;
  dims.batch = c.batch;
  dims.hq = c.hq;
  dims.hk = c.hk;
  dims.hv = c.hv;
  dims.seqLen = c.seqLen;
  dims.dk = c.d;
  dims.dv = c.dv;
  ref::RandomOptions ro;
  ro.initialState = false;
  ref::Inputs in = ref::randomInputs(c.decay, dims, seed, ro);
  int64_t H = std::max({c.hq, c.hk, c.hv});
  int64_t N = c.batch;
  if (c.offsets) {
    ASSERT_EQ(c.batch, 1);
    in.offsets = std::vector<int64_t>{0, c.seqLen / 3, c.seqLen / 3, c.seqLen};
    N = 3;
  }
  std::mt19937_64 rng(seed + 100);
  if (c.decay == DecayKind::Vector) {
    // Vector gates have the mapped width Dphi: logsigmoid(z) / 16.
    in.gate = ref::randn({c.batch, H, c.seqLen, dphi}, rng);
    for (double &x : in.gate->data)
      x = (std::min(x, 0.0) - std::log1p(std::exp(-std::abs(x)))) / 16.0;
  }
  if (c.initialState) {
    in.initialState = ref::randn({N, H, dphi, c.dv}, rng, 0.1);
    roundTo(*in.initialState, DType::F32);
    if (c.normalized) {
      in.initialNormalizer = ref::randn({N, H, dphi}, rng);
      for (double &x : in.initialNormalizer->data)
        x = static_cast<float>(std::abs(x));
    }
  }
  for (ref::Tensor *t : {&in.q, &in.k, &in.v})
    roundTo(*t, c.dtype);
  if (in.gate)
    roundTo(*in.gate, DType::F32);
  std::optional<ref::Tensor> wq, bq, wk, bk;
  if (featureMapHasWeight(c.map)) {
    drawWeights(c, c.hq, rng, wq, bq);
    if (c.separateK)
      drawWeights(c, c.hk, rng, wk, bk);
  }

  // Kernel.
  auto swap = [&](const ref::Tensor &t) {
    return c.bthd ? ref::swapDims(t, 1, 2) : t;
  };
  Buffer q = pack(swap(in.q), c.dtype), k = pack(swap(in.k), c.dtype),
         v = pack(swap(in.v), c.dtype);
  Buffer o =
      pack(ref::Tensor(swap(ref::Tensor({c.batch, H, c.seqLen, c.dv})).shape),
           c.dtype);
  Buffer s1 = pack(ref::Tensor({N, H, dphi, c.dv}), DType::F32);
  Buffer z1 = pack(ref::Tensor({N, H, dphi}), DType::F32);
  std::optional<Buffer> g, s0, z0, bwq, bbq, bwk, bbk;
  Arguments a;
  a.q = q.view();
  a.k = k.view();
  a.v = v.view();
  if (in.gate) {
    g = pack(in.gate->shape.size() >= 3 ? swap(*in.gate) : *in.gate,
             DType::F32);
    a.gate = g->view();
  }
  auto opt = [](const std::optional<ref::Tensor> &t, std::optional<Buffer> &b,
                std::optional<TensorView> &slot) {
    if (!t)
      return;
    b = pack(*t, DType::F32);
    slot = b->view();
  };
  opt(in.initialState, s0, a.initialState);
  opt(in.initialNormalizer, z0, a.initialNormalizer);
  opt(wq, bwq, a.mapWeight);
  opt(bq, bbq, a.mapBias);
  opt(wk, bwk, a.keyMapWeight);
  opt(bk, bbk, a.keyMapBias);
  a.offsets = in.offsets;
  a.output = o.view();
  a.finalState = s1.view();
  if (c.normalized)
    a.finalNormalizer = z1.view();
  a.numThreads = 2;
  ASSERT_EQ(kernel->run(a), "");

  // Reference: phi in fp64 on the rounded inputs and weights.
  ref::Inputs ri = in;
  const ref::Tensor *wkp = wk ? &*wk : wq ? &*wq : nullptr;
  const ref::Tensor *bkp = wk ? (bk ? &*bk : nullptr) : bq ? &*bq : nullptr;
  ASSERT_EQ(ref::applyFeatureMapPerHead(c.map, in.q, ri.q, wq ? &*wq : nullptr,
                                        bq ? &*bq : nullptr),
            "");
  ASSERT_EQ(ref::applyFeatureMapPerHead(c.map, in.k, ri.k, wkp, bkp), "");
  ASSERT_EQ(ri.q.shape.back(), dphi);
  ref::Spec rs;
  rs.decay = c.decay;
  rs.normalized = c.normalized;
  rs.eps = spec.eps;
  rs.scale = c.scale ? *c.scale : 1.0 / std::sqrt(static_cast<double>(dphi));
  ref::Outputs want;
  ASSERT_EQ(ref::run(rs, ri, ref::Form::Chunked, want), "");

  double tol = c.dtype == DType::F32 ? 1e-5 : 5e-3; // MATH.md 9.7
  ref::Tensor got = unpack(o);
  if (c.bthd)
    got = ref::swapDims(got, 1, 2);
  double ro_ = ref::ratio(got, want.o);
  double rs_ = ref::ratio(unpack(s1), want.finalState);
  EXPECT_LE(ro_, tol) << "output ratio";
  EXPECT_LE(rs_, tol) << "final state ratio";
  if (c.normalized)
    EXPECT_LE(ref::ratio(unpack(z1), want.finalNormalizer), tol)
        << "final normalizer ratio";
  std::cout << "[ ratio    ] " << ref::featureMapName(c.map) << " "
            << dtypeName(c.dtype) << " Dphi=" << dphi << ": o " << ro_ << ", S "
            << rs_ << "\n";
}

//===----------------------------------------------------------------------===//
// Numerics against the reference
//===----------------------------------------------------------------------===//

TEST(FeatureMapKernel, Taylor2BasedWidth) {
  // Based: d = 16 gives Dphi = 273; Dv != Dphi; T = 500.
  MapCase c;
  c.d = 16;
  c.dv = 24;
  c.seqLen = 500;
  c.scale = 1.0;
  runCase(c);
}

TEST(FeatureMapKernel, Taylor2SymmetricDecayBf16) {
  MapCase c;
  c.map = FeatureMap::Taylor2Symmetric;
  c.dtype = DType::BF16;
  c.decay = DecayKind::Scalar;
  c.seqLen = 63;
  runCase(c);
}

TEST(FeatureMapKernel, Taylor2NormalizedT1) {
  MapCase c;
  c.seqLen = 1;
  c.normalized = true;
  runCase(c);
}

TEST(FeatureMapKernel, HedgehogNormalizedPerHeadSeparateK) {
  MapCase c;
  c.map = FeatureMap::Hedgehog;
  c.features = 12;
  c.normalized = true;
  c.perHead = true;
  c.separateK = true;
  c.seqLen = 500;
  runCase(c);
}

TEST(FeatureMapKernel, HedgehogBf16ConstantDecayGQA) {
  MapCase c;
  c.map = FeatureMap::Hedgehog;
  c.dtype = DType::BF16;
  c.features = 16;
  c.decay = DecayKind::Constant;
  c.hq = 4;
  c.hk = 2;
  c.hv = 4;
  c.separateK = true;
  c.perHead = true;
  runCase(c);
}

TEST(FeatureMapKernel, HedgehogJointVectorGateBthd) {
  MapCase c;
  c.map = FeatureMap::HedgehogJoint;
  c.decay = DecayKind::Vector;
  c.bthd = true;
  runCase(c);
}

TEST(FeatureMapKernel, HedgehogJointNormalizedBf16) {
  MapCase c;
  c.map = FeatureMap::HedgehogJoint;
  c.dtype = DType::BF16;
  c.normalized = true;
  c.seqLen = 500;
  runCase(c);
}

TEST(FeatureMapKernel, PerformerNormalizedVarlen) {
  MapCase c;
  c.map = FeatureMap::Performer;
  c.features = 20;
  c.normalized = true;
  c.offsets = true;
  c.seqLen = 500;
  runCase(c);
}

TEST(FeatureMapKernel, PerformerNormalizedBf16Decay) {
  MapCase c;
  c.map = FeatureMap::Performer;
  c.dtype = DType::BF16;
  c.features = 16;
  c.normalized = true;
  c.decay = DecayKind::Scalar;
  c.perHead = true;
  runCase(c);
}

TEST(FeatureMapKernel, PerformerHyperbolicNormalized) {
  MapCase c;
  c.map = FeatureMap::PerformerHyperbolic;
  c.features = 8;
  c.normalized = true;
  c.seqLen = 1;
  runCase(c);
}

TEST(FeatureMapKernel, PerformerHyperbolicBf16) {
  MapCase c;
  c.map = FeatureMap::PerformerHyperbolic;
  c.dtype = DType::BF16;
  c.features = 8;
  c.normalized = true;
  c.seqLen = 500;
  runCase(c);
}

//===----------------------------------------------------------------------===//
// Spec and argument errors
//===----------------------------------------------------------------------===//

TEST(FeatureMapKernel, SpecErrors) {
  AttentionSpec s;
  s.keyDim = 8;
  s.valueDim = 4;
  s.featureMap = FeatureMap::Hedgehog;
  std::string error;
  EXPECT_FALSE(Kernel::compile(s, CompileOptions(), &error));
  EXPECT_NE(error.find("featureCount"), std::string::npos) << error;
  s.featureMap = FeatureMap::HedgehogJoint;
  s.featureCount = 5;
  EXPECT_FALSE(Kernel::compile(s, CompileOptions(), &error));
  EXPECT_NE(error.find("hedgehog_joint"), std::string::npos) << error;
  s.featureMap = FeatureMap::Taylor2;
  s.featureCount = 3;
  EXPECT_FALSE(Kernel::compile(s, CompileOptions(), &error));
  EXPECT_NE(error.find("featureCount must be 0"), std::string::npos) << error;
}

/// A Hedgehog kernel (d = 4, f = 3, Dv = 2) and valid arguments for it.
struct ArgFixture {
  std::unique_ptr<Kernel> kernel;
  std::vector<float> q, k, v, o, w, b, wk;
  Arguments a;
  ArgFixture() {
    AttentionSpec s;
    s.featureMap = FeatureMap::Hedgehog;
    s.featureCount = 3;
    s.keyDim = 4;
    s.valueDim = 2;
    std::string error;
    kernel = Kernel::compile(s, CompileOptions(), &error);
    EXPECT_TRUE(kernel) << error;
    q.assign(1 * 2 * 5 * 4, 0.25f);
    k.assign(1 * 1 * 5 * 4, 0.5f);
    v.assign(1 * 2 * 5 * 2, 1.0f);
    o.assign(1 * 2 * 5 * 2, 42.0f);
    w.assign(2 * 4 * 3, 0.1f);
    b.assign(3, 0.0f);
    wk.assign(4 * 3, 0.2f);
    a.q = {q.data(), DType::F32, {1, 2, 5, 4}};
    a.k = {k.data(), DType::F32, {1, 1, 5, 4}};
    a.v = {v.data(), DType::F32, {1, 2, 5, 2}};
    a.output = {o.data(), DType::F32, {1, 2, 5, 2}};
    a.mapWeight = TensorView{w.data(), DType::F32, {4, 3}};
    a.mapBias = TensorView{b.data(), DType::F32, {3}};
  }
  /// Runs and expects an error containing `what`, with o untouched.
  void expectError(const std::string &what) {
    std::string e = kernel->run(a);
    EXPECT_NE(e.find(what), std::string::npos) << "got: " << e;
    for (float x : o)
      ASSERT_EQ(x, 42.0f) << "output written on failure";
  }
};

TEST(FeatureMapKernel, ArgumentErrors) {
  ArgFixture f;
  ASSERT_TRUE(f.kernel);
  {
    Arguments saved = f.a;
    f.a.mapWeight.reset();
    f.expectError("mapWeight: feature map 'hedgehog' needs a weight");
    f.a = saved;
  }
  {
    Arguments saved = f.a;
    f.a.mapWeight->shape = {3, 4};
    f.expectError("mapWeight: expected shape [4, 3] (shared) or [2, 4, 3]");
    f.a.mapWeight->shape = {4, 3};
    f.a.mapWeight->dtype = DType::BF16;
    f.expectError("mapWeight: dtype bf16");
    f.a.mapWeight->dtype = DType::F32;
    f.a.mapWeight->data = nullptr;
    f.expectError("mapWeight: null data pointer");
    f.a = saved;
  }
  {
    Arguments saved = f.a;
    f.a.mapBias->shape = {4};
    f.expectError("mapBias: expected shape [3]");
    f.a = saved;
  }
  {
    // One map per q head (2) cannot serve the single k head.
    Arguments saved = f.a;
    f.a.mapWeight->shape = {2, 4, 3};
    f.a.mapBias.reset();
    f.expectError("pass keyMapWeight");
    f.a.keyMapWeight = TensorView{f.wk.data(), DType::F32, {2, 4, 3}};
    f.expectError("keyMapWeight: expected shape [4, 3] (shared) or [1, 4, 3]");
    f.a = saved;
  }
  {
    Arguments saved = f.a;
    f.a.keyMapBias = TensorView{f.b.data(), DType::F32, {3}};
    f.expectError("keyMapBias: given without keyMapWeight");
    f.a = saved;
  }
  // The valid arguments run (and write o).
  f.a.mapWeight->shape = {2, 4, 3};
  f.a.keyMapWeight = TensorView{f.wk.data(), DType::F32, {4, 3}};
  EXPECT_EQ(f.kernel->run(f.a), "");
  EXPECT_NE(f.o[0], 42.0f);
}

TEST(FeatureMapKernel, WeightsOnMapWithoutWeights) {
  AttentionSpec s;
  s.featureMap = FeatureMap::Taylor2Symmetric;
  s.keyDim = 2;
  s.valueDim = 2;
  std::string error;
  auto kernel = Kernel::compile(s, CompileOptions(), &error);
  ASSERT_TRUE(kernel) << error;
  std::vector<float> x(1 * 1 * 3 * 2, 1.0f), o(6, 42.0f), w(4, 0.0f);
  Arguments a;
  a.q = {x.data(), DType::F32, {1, 1, 3, 2}};
  a.k = a.q;
  a.v = a.q;
  a.output = {o.data(), DType::F32, {1, 1, 3, 2}};
  a.mapWeight = TensorView{w.data(), DType::F32, {2, 2}};
  EXPECT_EQ(kernel->run(a),
            "mapWeight: feature map 'taylor2_symmetric' takes no weights");
  for (float e : o)
    EXPECT_EQ(e, 42.0f);
  a.mapWeight.reset();
  // Wrong state width: the state has Dphi = 1 + 2 + 3 = 6 rows.
  std::vector<float> s1(1 * 1 * 2 * 2);
  a.finalState = TensorView{s1.data(), DType::F32, {1, 1, 2, 2}};
  EXPECT_EQ(kernel->run(a),
            "finalState: expected shape [1, 1, 6, 2], got [1, 1, 2, 2]");
  a.finalState.reset();
  EXPECT_EQ(kernel->run(a), "");
}

TEST(FeatureMapKernel, ReferencePerHeadUsesHeadSlices) {
  // Head h of a [B, H, T, d] input uses weight slice h, checked against the
  // 2-D reference map on that head alone.
  std::mt19937_64 rng(7);
  ref::Tensor x = ref::randn({2, 3, 5, 4}, rng);
  ref::Tensor w = ref::randn({3, 4, 6}, rng), b = ref::randn({3, 6}, rng);
  ref::Tensor out;
  ASSERT_EQ(ref::applyFeatureMapPerHead(FeatureMap::Hedgehog, x, out, &w, &b),
            "");
  ASSERT_EQ(out.shape, (std::vector<int64_t>{2, 3, 5, 12}));
  for (int64_t h = 0; h < 3; ++h) {
    ref::Tensor wh({4, 6}), bh({6}), xh({2, 5, 4}), oh;
    std::copy_n(w.data.begin() + h * 24, 24, wh.data.begin());
    std::copy_n(b.data.begin() + h * 6, 6, bh.data.begin());
    for (int64_t bb = 0; bb < 2; ++bb)
      std::copy_n(x.data.begin() + (bb * 3 + h) * 20, 20,
                  xh.data.begin() + bb * 20);
    ASSERT_EQ(ref::applyFeatureMap(FeatureMap::Hedgehog, xh, oh, &wh, &bh), "");
    for (int64_t bb = 0; bb < 2; ++bb)
      for (int64_t i = 0; i < 60; ++i)
        ASSERT_EQ(out.data[static_cast<size_t>((bb * 3 + h) * 60 + i)],
                  oh.data[static_cast<size_t>(bb * 60 + i)]);
  }
  // Per-head weights without a bias are fine; a bias of the wrong head
  // count is not.
  EXPECT_EQ(
      ref::applyFeatureMapPerHead(FeatureMap::Hedgehog, x, out, &w, nullptr),
      "");
  ref::Tensor b2 = ref::randn({2, 6}, rng);
  EXPECT_EQ(ref::applyFeatureMapPerHead(FeatureMap::Hedgehog, x, out, &w, &b2),
            "bias: expected a leading head dim of 3 (rank 2), got [2, 6]");
  ref::Tensor w2 = ref::randn({2, 4, 6}, rng);
  EXPECT_EQ(
      ref::applyFeatureMapPerHead(FeatureMap::Hedgehog, x, out, &w2, nullptr),
      "weight: expected a leading head dim of 3 (rank 3), got [2, 4, 6]");
}

TEST(FeatureMapKernel, ParseSpecReadsFeatureMapOps) {
  const char *text = R"mlir(
func.func @f(%q: tensor<1x4x?x16xbf16>, %k: tensor<1x4x?x16xbf16>,
             %v: tensor<1x4x?x32xbf16>, %w: tensor<16x24xf32>) -> tensor<1x4x?x32xbf16> {
  %pq = linattn.feature_map %q weight(%w : tensor<16x24xf32>) {kind = #linattn.feature_map<hedgehog>} : tensor<1x4x?x16xbf16> -> tensor<1x4x?x48xbf16>
  %pk = linattn.feature_map %k weight(%w : tensor<16x24xf32>) {kind = #linattn.feature_map<hedgehog>} : tensor<1x4x?x16xbf16> -> tensor<1x4x?x48xbf16>
  %o, %s, %z = linattn.attention %pq, %pk, %v {normalization = #linattn.norm<katharopoulos>}
      : tensor<1x4x?x48xbf16>, tensor<1x4x?x48xbf16>, tensor<1x4x?x32xbf16> -> tensor<1x4x?x32xbf16>, tensor<1x4x48x32xf32>, tensor<1x4x48xf32>
  return %o : tensor<1x4x?x32xbf16>
})mlir";
  AttentionSpec spec;
  std::vector<std::vector<int64_t>> shapes;
  ASSERT_EQ(parseSpec(text, spec, nullptr, &shapes), "");
  EXPECT_EQ(spec.featureMap, FeatureMap::Hedgehog);
  EXPECT_EQ(spec.keyDim, 16);
  EXPECT_EQ(spec.featureCount, 24);
  EXPECT_EQ(featureDim(spec), 48);
  EXPECT_TRUE(spec.normalized);
  ASSERT_EQ(shapes.size(), 3u);
  EXPECT_EQ(shapes[0], (std::vector<int64_t>{1, 4, -1, 16}));
}

// The AOT manifest of a mapped spec carries feature_count, feature_dim and
// the prepass's `map` object, and the CUDA runtime reads it back (no
// compilation: the image's launch fields are filled by hand).
TEST(FeatureMapKernel, GPUManifestDescribesTheMapPrepass) {
  GPUKernelImage img;
  img.chip = "sm_80";
  img.chunkSize = 64;
  img.threads = 128;
  img.blockV = 32;
  img.sharedBytes = 40000;
  struct Case {
    FeatureMap map;
    int64_t d, f;
    int64_t count, dphi, padded; // expected; padded 0: no map object
  } cases[] = {
      {FeatureMap::Hedgehog, 16, 20, 20, 40, 48},
      {FeatureMap::HedgehogJoint, 16, 0, 16, 32, 32},
      {FeatureMap::Performer, 32, 64, 64, 64, 64},
      {FeatureMap::PerformerHyperbolic, 16, 24, 24, 48, 48},
      {FeatureMap::Taylor2, 4, 0, 0, 21, 32},
      {FeatureMap::Taylor2Symmetric, 16, 0, 0, 153, 160},
      {FeatureMap::Relu, 64, 0, 0, 64, 0},
      {FeatureMap::Identity, 64, 0, 0, 64, 0},
  };
  for (const Case &c : cases) {
    const char *name = ref::featureMapName(c.map);
    AttentionSpec spec;
    spec.featureMap = c.map;
    spec.featureCount = c.f;
    spec.keyDim = c.d;
    spec.valueDim = 32;
    spec.dtype = DType::BF16;
    std::string json = gpuManifestJSON(spec, img, "k");
    cuda::Manifest m;
    ASSERT_EQ(cuda::parseManifest(json, m), "") << name << "\n" << json;
    EXPECT_EQ(m.spec.featureMap, c.map) << name;
    EXPECT_EQ(m.spec.featureCount, c.count) << name;
    EXPECT_EQ(m.spec.featureDim, c.dphi) << name;
    EXPECT_EQ(m.ptx, "k.ptx");
    // Written explicitly, not left to the reader's defaults.
    EXPECT_NE(json.find("\"feature_dim\": " + std::to_string(c.dphi)),
              std::string::npos)
        << name;
    if (c.padded == 0) {
      EXPECT_FALSE(m.map.has_value()) << name;
      EXPECT_EQ(json.find("\"map\""), std::string::npos) << name;
      continue;
    }
    ASSERT_TRUE(m.map.has_value()) << name;
    EXPECT_EQ(m.map->entry, "linattn_map") << name;
    EXPECT_EQ(m.map->threads, 128) << name;
    EXPECT_EQ(m.map->rowsPerBlock, 4) << name;
    EXPECT_EQ(m.map->paddedDim, c.padded) << name;
  }
}

} // namespace
