//===- CudaRuntimeTest.cpp - Tests of the CUDA AOT runtime ------*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
//
// Everything here runs without a GPU: manifest parsing, shape validation,
// launch geometry, parameter packing, and the "no driver" path of
// Device::open. Execution on a GPU is covered by test/GPU/run-gpu-tests.sh.
//
//===----------------------------------------------------------------------===//

#include "linattn/Runtime/CudaRuntime.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>

using namespace linattn::cuda;
using linattn::reference::DecayKind;
using linattn::reference::FeatureMap;

namespace {

/// The example manifest of docs/gpu-kernel-abi.md.
const char *goodManifest = R"json({
  "format": "linattn-aot",
  "version": 1,
  "entry": "linattn_fwd",
  "ptx": "gla_bf16.ptx",
  "chip": "sm_90",
  "compiler": "linattn 0.1 (LLVM 22.1.8)",
  "spec": {
    "decay": "scalar",
    "feature_map": "identity",
    "layout": "bthd",
    "dtype": "bf16",
    "gate_dtype": "f32",
    "key_dim": 128,
    "value_dim": 128,
    "scale": 0.08838834764831845,
    "causal": true,
    "exclusive": false,
    "normalized": false,
    "state_value_major": false,
    "schedule": null,
    "layer": 0,
    "num_layers": 1,
    "log_decay": [],
    "clamp_min": null
  },
  "launch": {
    "threads": 128,
    "block_v": 64,
    "chunk_size": 64,
    "shared_bytes": 57344
  }
})json";

/// goodManifest with the first occurrence of `from` replaced by `to`.
std::string edited(const std::string &from, const std::string &to) {
  std::string s = goodManifest;
  size_t at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos)
    s.replace(at, from.size(), to);
  return s;
}

/// `base` with each (from, to) applied in turn to the first occurrence.
std::string
editedFrom(std::string s,
           std::initializer_list<std::pair<std::string, std::string>> edits) {
  for (const auto &[from, to] : edits) {
    size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos)
      s.replace(at, from.size(), to);
  }
  return s;
}

/// A Hedgehog kernel with d = 16, f = 20: Dphi = 40, Dp = 48 (the example
/// of the prepass section of docs/gpu-kernel-abi.md).
std::string mappedManifest() {
  return editedFrom(
      goodManifest,
      {{"\"identity\"", "\"hedgehog\""},
       {"\"key_dim\": 128", "\"key_dim\": 16, \"feature_count\": 20, "
                            "\"feature_dim\": 40"},
       {"\"launch\"", "\"map\": {\"entry\": \"linattn_map\", \"threads\": "
                      "128, \"rows_per_block\": 4, \"padded_dim\": 48},\n  "
                      "\"launch\""}});
}

Manifest parsed(const std::string &json) {
  Manifest m;
  std::string e = parseManifest(json, m);
  EXPECT_EQ(e, "");
  return m;
}

} // namespace

//===----------------------------------------------------------------------===//
// Manifest
//===----------------------------------------------------------------------===//

TEST(CudaManifest, ParsesTheAbiExample) {
  Manifest m = parsed(goodManifest);
  EXPECT_EQ(m.version, 1);
  EXPECT_EQ(m.entry, "linattn_fwd");
  EXPECT_EQ(m.ptx, "gla_bf16.ptx");
  EXPECT_EQ(m.chip, "sm_90");
  EXPECT_EQ(m.compiler, "linattn 0.1 (LLVM 22.1.8)");
  EXPECT_EQ(m.spec.decay, DecayKind::Scalar);
  EXPECT_TRUE(m.spec.bthd);
  EXPECT_EQ(m.spec.dtype, ElemType::BF16);
  EXPECT_EQ(m.spec.gateDType, ElemType::F32);
  EXPECT_EQ(m.spec.keyDim, 128);
  EXPECT_EQ(m.spec.valueDim, 128);
  EXPECT_DOUBLE_EQ(m.spec.scale, 0.08838834764831845);
  EXPECT_FALSE(m.spec.schedule.has_value());
  EXPECT_FALSE(m.spec.clampMin.has_value());
  EXPECT_EQ(m.launch.threads, 128);
  EXPECT_EQ(m.launch.blockV, 64);
  EXPECT_EQ(m.launch.chunkSize, 64);
  EXPECT_EQ(m.launch.sharedBytes, 57344);
}

// Readers must ignore keys they do not know (forward compatibility).
TEST(CudaManifest, IgnoresUnknownKeys) {
  Manifest m = parsed(edited("\"entry\"",
                             "\"future\": {\"x\": [1, 2.5e3, \"\\u00e9\"]}, "
                             "\"entry\""));
  EXPECT_EQ(m.entry, "linattn_fwd");
}

TEST(CudaManifest, ReadsNullableFields) {
  Manifest m = parsed(edited("\"schedule\": null", "\"schedule\": \"retnet\""));
  ASSERT_TRUE(m.spec.schedule.has_value());
  EXPECT_EQ(*m.spec.schedule, linattn::reference::Schedule::RetNet);
  Manifest c = parsed(edited("\"clamp_min\": null", "\"clamp_min\": -5"));
  ASSERT_TRUE(c.spec.clampMin.has_value());
  EXPECT_EQ(*c.spec.clampMin, -5.0);
  Manifest l =
      parsed(edited("\"log_decay\": []", "\"log_decay\": [-0.1, -0.25]"));
  EXPECT_EQ(l.spec.logDecay, (std::vector<double>{-0.1, -0.25}));
}

struct BadManifest {
  const char *name;
  std::string json;
  const char *error;
};

// Each malformed manifest gets an error naming the field and the problem.
TEST(CudaManifest, RejectsMalformedManifests) {
  std::vector<BadManifest> cases = {
      {"truncated", std::string(goodManifest).substr(0, 40),
       "manifest: invalid JSON: line 3, column 12: expected ':' after key "
       "'version'"},
      {"unterminated string", std::string(goodManifest).substr(0, 36),
       "manifest: invalid JSON: line 3, column 8: unterminated string"},
      {"trailing comma", edited("\"clamp_min\": null", "\"clamp_min\": null,"),
       "manifest: invalid JSON: line 26, column 3: expected a string key"},
      {"duplicate key",
       edited("\"version\": 1", "\"version\": 1, \"version\": 1"),
       "duplicate key 'version'"},
      {"not an object", "[1, 2]",
       "manifest: the top level must be an object, got array"},
      {"unknown format", edited("linattn-aot", "onnx"),
       "manifest: unknown format 'onnx' (expected 'linattn-aot')"},
      {"newer version", edited("\"version\": 1", "\"version\": 2"),
       "manifest: version 2 is newer than this runtime reads (1)"},
      {"missing entry", edited("\"entry\": \"linattn_fwd\",", ""),
       "manifest: missing field 'entry'"},
      {"missing nested", edited("\"threads\": 128,", ""),
       "manifest: missing field 'launch.threads'"},
      {"missing spec", edited("\"spec\"", "\"spec_\""),
       "manifest: missing field 'spec'"},
      {"string for integer", edited("\"key_dim\": 128", "\"key_dim\": \"128\""),
       "manifest: field 'spec.key_dim' must be an integer, got string"},
      {"fraction for integer", edited("\"block_v\": 64", "\"block_v\": 64.5"),
       "manifest: field 'launch.block_v' must be an integer, got 64.5"},
      {"out of range", edited("\"threads\": 128", "\"threads\": 2048"),
       "manifest: field 'launch.threads' is 2048, expected 1 to 1024"},
      {"boolean type", edited("\"causal\": true", "\"causal\": 1"),
       "manifest: field 'spec.causal' must be a boolean, got number"},
      {"unknown decay", edited("\"scalar\"", "\"hgrn\""),
       "manifest: field 'spec.decay' is 'hgrn', expected one of none, "
       "constant, scalar, vector, delta, gated_delta"},
      {"unknown dtype", edited("\"bf16\"", "\"f64\""),
       "manifest: field 'spec.dtype' is 'f64', expected one of bf16, f16, "
       "f32"},
      {"bad chip", edited("\"sm_90\"", "\"gfx90a\""),
       "manifest: field 'chip' is 'gfx90a', expected sm_XY or sm_XYa"},
      {"positive log decay",
       edited("\"log_decay\": []", "\"log_decay\": [-0.5, 0.1]"),
       "manifest: field 'spec.log_decay[1]' is 0.1; log-decays must be <= 0"},
      {"gate dtype",
       edited("\"gate_dtype\": \"f32\"", "\"gate_dtype\": \"f16\""),
       "manifest: spec.gate_dtype 'f16' must be f32 or the dtype 'bf16'"},
      {"unknown schedule",
       edited("\"schedule\": null", "\"schedule\": \"alibi\""),
       "manifest: field 'spec.schedule' is 'alibi', expected one of retnet, "
       "retnet_linspace, transnormer, lightning"},
      {"schedule type", edited("\"schedule\": null", "\"schedule\": 3"),
       "manifest: field 'spec.schedule' must be a string, got number"},
      {"layer", edited("\"layer\": 0", "\"layer\": 1"),
       "manifest: spec.layer 1 is outside [0, num_layers = 1)"},
  };
  for (const BadManifest &c : cases) {
    Manifest m;
    m.entry = "untouched";
    std::string e = parseManifest(c.json, m);
    EXPECT_NE(e.find(c.error), std::string::npos)
        << c.name << ": got '" << e << "'";
    EXPECT_EQ(m.entry, "untouched") << c.name;
  }
}

TEST(CudaManifest, LoadNamesTheFile) {
  Manifest m;
  EXPECT_EQ(loadManifest("/nonexistent/k.json", m),
            "cannot read manifest '/nonexistent/k.json'");
  std::string path = ::testing::TempDir() + "cuda_manifest_test.json";
  std::ofstream(path) << edited("\"version\": 1", "\"version\": 7");
  EXPECT_EQ(loadManifest(path, m),
            path + ": manifest: version 7 is newer than this runtime reads "
                   "(1); rebuild linattn-launch");
}

TEST(CudaManifest, Chips) {
  int sm = 0;
  bool a = false;
  EXPECT_TRUE(parseChip("sm_90a", sm, a));
  EXPECT_EQ(sm, 90);
  EXPECT_TRUE(a);
  EXPECT_TRUE(parseChip("sm_100", sm, a));
  EXPECT_EQ(sm, 100);
  EXPECT_FALSE(a);
  for (const char *bad : {"sm_9", "sm_", "sm90", "sm_90b", "compute_90", ""})
    EXPECT_FALSE(parseChip(bad, sm, a)) << bad;
  // PTX for an older chip is JIT-compiled for newer ones ...
  EXPECT_EQ(checkChip("sm_80", 90, "H100"), "");
  EXPECT_EQ(checkChip("sm_90", 90, "H100"), "");
  EXPECT_EQ(checkChip("sm_90a", 90, "H100"), "");
  // ... but not the reverse, and "a" code runs on exactly one chip.
  EXPECT_EQ(checkChip("sm_90", 80, "A100"),
            "kernel compiled for sm_90 (manifest chip) cannot run on the "
            "older device A100 (sm_80)");
  EXPECT_NE(checkChip("sm_90a", 100, "B200")
                .find("only run on sm_90, device is B200 (sm_100)"),
            std::string::npos);
}

//===----------------------------------------------------------------------===//
// Validation, geometry, packing
//===----------------------------------------------------------------------===//

namespace {

/// Arguments for the example manifest (bthd, Dk = Dv = 128): B = 2, T = 100,
/// Hq = 4, Hk = Hv = 2 (GQA), scalar gate [B, T, H].
LaunchArgs sampleArgs() {
  LaunchArgs a;
  a.q = {0x1000, {2, 100, 4, 128}};
  a.k = {0x2000, {2, 100, 2, 128}};
  a.v = {0x3000, {2, 100, 2, 128}};
  a.gate = DeviceTensor{0x4000, {2, 100, 4}};
  a.o = {0x6000, {2, 100, 4, 128}};
  a.finalState = DeviceTensor{0x7000, {2, 4, 128, 128}};
  return a;
}

std::string validate(const LaunchArgs &a, const Manifest &m) {
  Problem p;
  return validateArgs(m, a, p);
}

} // namespace

TEST(CudaLaunch, ValidatesShapes) {
  Manifest m = parsed(goodManifest);
  Problem p;
  ASSERT_EQ(validateArgs(m, sampleArgs(), p), "");
  EXPECT_EQ(p.batch, 2);
  EXPECT_EQ(p.seqLen, 100);
  EXPECT_EQ(p.hq, 4);
  EXPECT_EQ(p.hk, 2);
  EXPECT_EQ(p.heads, 4);
  EXPECT_EQ(p.numSeqs, 2);

  LaunchArgs a = sampleArgs();
  a.v.shape = {2, 100, 2, 64};
  EXPECT_EQ(validate(a, m), "v: expected value dim 128 (manifest), got shape "
                            "[2, 100, 2, 64]");
  a = sampleArgs();
  a.k.shape = {2, 100, 3, 128};
  EXPECT_EQ(validate(a, m), "heads: q, k, v have 4, 3, 2 heads; each must "
                            "divide the largest (GQA/GVA)");
  a = sampleArgs();
  a.k.shape = {2, 99, 2, 128};
  EXPECT_EQ(validate(a, m), "k: length 99 does not match q's length 100");
  a = sampleArgs();
  a.q.shape = {2, 100, 128};
  EXPECT_EQ(validate(a, m), "q: expected rank 4, got shape [2, 100, 128]");
  a = sampleArgs();
  a.gate->shape = {2, 4, 100};
  EXPECT_EQ(validate(a, m), "gate: expected shape [2, 100, 4] (bthd layout), "
                            "got [2, 4, 100]");
  a = sampleArgs();
  a.gate.reset();
  EXPECT_EQ(validate(a, m), "gate: the 'scalar' decay needs a gate");
  a = sampleArgs();
  a.o.shape = {2, 100, 2, 128};
  EXPECT_EQ(validate(a, m), "o: expected shape [2, 100, 4, 128] (bthd layout, "
                            "H = max(Hq, Hk, Hv), Dv), got [2, 100, 2, 128]");
  a = sampleArgs();
  a.initialState = DeviceTensor{0x5000, {2, 4, 128, 64}};
  EXPECT_EQ(validate(a, m), "initial_state: expected shape [2, 4, 128, 128] "
                            "([N, H, Dk, Dv] f32), got [2, 4, 128, 64]");
  a = sampleArgs();
  a.q.ptr = 0;
  EXPECT_EQ(validate(a, m), "q: null device pointer");
  a = sampleArgs();
  a.offsets = DeviceTensor{0x8000, {3}};
  EXPECT_EQ(validate(a, m), "offsets: packed sequences need batch 1, got 2");
}

TEST(CudaLaunch, ValidatesOffsetsAndGates) {
  Manifest m = parsed(goodManifest);
  LaunchArgs a = sampleArgs();
  for (DeviceTensor *t : {&a.q, &a.k, &a.v, &a.o})
    t->shape[0] = 1;
  a.gate->shape = {1, 100, 4};
  a.offsets = DeviceTensor{0x8000, {4}};
  a.finalState->shape = {3, 4, 128, 128};
  Problem p;
  ASSERT_EQ(validateArgs(m, a, p), "");
  EXPECT_EQ(p.numSeqs, 3);

  EXPECT_EQ(validateOffsets({0, 10, 10, 100}, 100), "");
  EXPECT_EQ(validateOffsets({0, 10, 5, 100}, 100),
            "offsets: entry 2 (5) is smaller than entry 1 (10)");
  EXPECT_EQ(validateOffsets({1, 100}, 100),
            "offsets: entry 0 must be 0, got 1");
  EXPECT_EQ(validateOffsets({0, 90}, 100),
            "offsets: the last entry must be the total length T = 100, got 90");
  EXPECT_EQ(validateOffsets({0}, 0),
            "offsets: need at least 2 entries (N + 1), got 1");

  // Decay none takes no gate; constant decay needs a source of ln(lambda).
  Manifest none = parsed(edited("\"scalar\"", "\"none\""));
  EXPECT_EQ(validate(sampleArgs(), none), "gate: decay 'none' takes no gate");
  Manifest constant = parsed(edited("\"scalar\"", "\"constant\""));
  LaunchArgs c = sampleArgs();
  c.gate.reset();
  EXPECT_EQ(validate(c, constant),
            "gate: constant decay without a schedule or log_decay in the "
            "manifest needs a [H] gate tensor of ln(lambda)");
  c.gate = DeviceTensor{0x4000, {4}};
  EXPECT_EQ(validate(c, constant), "");
  Manifest listed = parsed(edited("\"scalar\"", "\"constant\""));
  listed.spec.logDecay = {-0.1, -0.2};
  c.gate.reset();
  EXPECT_EQ(validate(c, listed),
            "gate: the manifest's log_decay has 2 entries for 4 heads");
}

TEST(CudaLaunch, Geometry) {
  Manifest m = parsed(goodManifest);
  Problem p;
  ASSERT_EQ(validateArgs(m, sampleArgs(), p), "");
  Geometry g;
  ASSERT_EQ(computeGeometry(m, p, g), "");
  EXPECT_EQ(g.grid[0], 2u); // ceil(128 / 64)
  EXPECT_EQ(g.grid[1], 4u); // H
  EXPECT_EQ(g.grid[2], 2u); // N
  EXPECT_EQ(g.block[0], 128u);
  EXPECT_EQ(g.block[1], 1u);
  EXPECT_EQ(g.block[2], 1u);
  EXPECT_EQ(g.sharedBytes, 57344u);
  m.spec.valueDim = 100;
  m.launch.blockV = 32;
  ASSERT_EQ(computeGeometry(m, p, g), "");
  EXPECT_EQ(g.grid[0], 4u); // ceil(100 / 32)
  p.numSeqs = 70000;
  EXPECT_EQ(computeGeometry(m, p, g),
            "grid: 70000 sequences exceed the grid z limit 65535");
}

TEST(CudaLaunch, PacksParameters) {
  Manifest m = parsed(goodManifest);
  LaunchArgs a = sampleArgs();
  a.initialState = DeviceTensor{0x5000, {2, 4, 128, 128}};
  Problem p;
  ASSERT_EQ(validateArgs(m, a, p), "");
  PackedParams pp;
  packParams(a, p, pp);
  ASSERT_EQ(PackedParams::NumBaseSlots, 48);
  EXPECT_EQ(pp.size, 48);
  // Tensors in ABI order, each {allocated, aligned, offset 0, size, stride 1}.
  struct Want {
    uint64_t ptr;
    int64_t size;
  } want[8] = {{0x1000, 2 * 100 * 4 * 128}, {0x2000, 2 * 100 * 2 * 128},
               {0x3000, 2 * 100 * 2 * 128}, {0x4000, 2 * 100 * 4},
               {0x5000, 2 * 4 * 128 * 128}, {0x6000, 2 * 100 * 4 * 128},
               {0x7000, 2 * 4 * 128 * 128}, {0, 0}}; // no offsets: null, size 0
  for (int t = 0; t < 8; ++t) {
    const uint64_t *s = pp.slots + 5 * t;
    EXPECT_EQ(s[0], want[t].ptr) << "tensor " << t;
    EXPECT_EQ(s[1], want[t].ptr) << "tensor " << t;
    EXPECT_EQ(s[2], 0u) << "tensor " << t;
    EXPECT_EQ(s[3], static_cast<uint64_t>(want[t].size)) << "tensor " << t;
    EXPECT_EQ(s[4], 1u) << "tensor " << t;
  }
  // num_seqs, seq_len, heads_q, heads_k, heads_v, has_initial_state,
  // has_final_state, has_offsets.
  const uint64_t scalars[8] = {2, 100, 4, 2, 2, 1, 1, 0};
  for (int i = 0; i < 8; ++i)
    EXPECT_EQ(pp.slots[40 + i], scalars[i]) << "scalar " << i;
  // kernelParams point at the slots, also in a copy.
  PackedParams copy = pp;
  for (int i = 0; i < PackedParams::NumSlots; ++i) {
    EXPECT_EQ(pp.params[i], &pp.slots[i]);
    EXPECT_EQ(copy.params[i], &copy.slots[i]);
    EXPECT_EQ(copy.slots[i], pp.slots[i]);
  }
  // A runtime-provided gate (constant decay) replaces args.gate.
  DeviceTensor constGate{0x9000, {4}};
  packParams(a, p, pp, &constGate);
  EXPECT_EQ(pp.slots[15], 0x9000u);
  EXPECT_EQ(pp.slots[18], 4u);
}

TEST(CudaLaunch, NormalizedKernelsTakeTheNormalizers) {
  Manifest m = parsed(edited("\"normalized\": false", "\"normalized\": true, "
                                                      "\"eps\": 1e-10"));
  EXPECT_EQ(m.spec.eps, 1e-10);
  Manifest bad;
  EXPECT_EQ(parseManifest(edited("\"normalized\": false",
                                 "\"normalized\": true, \"eps\": 0"),
                          bad),
            "manifest: spec.eps must be a finite positive number for the "
            "normalized form");
  LaunchArgs a = sampleArgs();
  a.initialNormalizer = DeviceTensor{0xa000, {2, 4, 128}};
  a.finalNormalizer = DeviceTensor{0xb000, {2, 4, 64}};
  EXPECT_EQ(validate(a, m), "final_normalizer: expected shape [2, 4, 128] "
                            "([N, H, Dk] f32), got [2, 4, 64]");
  a.finalNormalizer->shape = {2, 4, 128};
  Problem p;
  ASSERT_EQ(validateArgs(m, a, p), "");
  // The 8 tensors and 8 scalars, then z0, z1 and their two flags.
  PackedParams pp;
  packParams(a, p, pp, nullptr, /*normalized=*/true);
  ASSERT_EQ(PackedParams::NumSlots, 60);
  EXPECT_EQ(pp.size, 60);
  const uint64_t z0[5] = {0xa000, 0xa000, 0, 2 * 4 * 128, 1};
  const uint64_t z1[5] = {0xb000, 0xb000, 0, 2 * 4 * 128, 1};
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(pp.slots[48 + i], z0[i]) << i;
    EXPECT_EQ(pp.slots[53 + i], z1[i]) << i;
  }
  EXPECT_EQ(pp.slots[58], 1u);
  EXPECT_EQ(pp.slots[59], 1u);
  PackedParams copy = pp;
  EXPECT_EQ(copy.size, 60);
  // Absent normalizers: null tensors, flags 0.
  a.initialNormalizer.reset();
  a.finalNormalizer.reset();
  packParams(a, p, pp, nullptr, true);
  EXPECT_EQ(pp.slots[48], 0u);
  EXPECT_EQ(pp.slots[51], 0u);
  EXPECT_EQ(pp.slots[58], 0u);
  EXPECT_EQ(pp.slots[59], 0u);

  // Un-normalized kernels take no normalizer.
  Manifest plain = parsed(goodManifest);
  a.initialNormalizer = DeviceTensor{0xa000, {2, 4, 128}};
  EXPECT_EQ(validate(a, plain), "initial_normalizer: only normalized kernels "
                                "(spec.normalized) take a normalizer");
}

//===----------------------------------------------------------------------===//
// Width-changing feature maps: manifest, validation, the map prepass
//===----------------------------------------------------------------------===//

TEST(CudaMapManifest, ParsesAMappedManifest) {
  Manifest m = parsed(mappedManifest());
  EXPECT_EQ(m.spec.featureMap, FeatureMap::Hedgehog);
  EXPECT_EQ(m.spec.keyDim, 16);
  EXPECT_EQ(m.spec.featureCount, 20);
  EXPECT_EQ(m.spec.featureDim, 40);
  ASSERT_TRUE(m.map.has_value());
  EXPECT_EQ(m.map->entry, "linattn_map");
  EXPECT_EQ(m.map->threads, 128);
  EXPECT_EQ(m.map->rowsPerBlock, 4);
  EXPECT_EQ(m.map->paddedDim, 48);

  // feature_count and feature_dim are optional: 0 and key_dim (or the
  // map's width) by default.
  Manifest plain = parsed(goodManifest);
  EXPECT_EQ(plain.spec.featureCount, 0);
  EXPECT_EQ(plain.spec.featureDim, 128);
  EXPECT_FALSE(plain.map.has_value());
  Manifest noDim =
      parsed(editedFrom(mappedManifest(), {{", \"feature_dim\": 40", ""}}));
  EXPECT_EQ(noDim.spec.featureDim, 40);

  // hedgehog_joint has f = d (0 stands for d); taylor2 has no weights.
  Manifest joint = parsed(editedFrom(
      mappedManifest(), {{"\"hedgehog\"", "\"hedgehog_joint\""},
                         {"\"feature_count\": 20", "\"feature_count\": 0"},
                         {"\"feature_dim\": 40", "\"feature_dim\": 32"},
                         {"\"padded_dim\": 48", "\"padded_dim\": 32"}}));
  EXPECT_EQ(joint.spec.featureCount, 16);
  EXPECT_EQ(joint.spec.featureDim, 32);
  Manifest taylor = parsed(editedFrom(
      mappedManifest(), {{"\"hedgehog\"", "\"taylor2_symmetric\""},
                         {"\"feature_count\": 20", "\"feature_count\": 0"},
                         {"\"feature_dim\": 40", "\"feature_dim\": 153"},
                         {"\"padded_dim\": 48", "\"padded_dim\": 160"}}));
  EXPECT_EQ(taylor.spec.featureDim, 1 + 16 + 16 * 17 / 2);
  EXPECT_EQ(taylor.map->paddedDim, 160);

  // Every map name of the reference is accepted.
  for (FeatureMap fm :
       {FeatureMap::Identity, FeatureMap::EluPlusOne, FeatureMap::Relu,
        FeatureMap::Taylor2, FeatureMap::Taylor2Symmetric, FeatureMap::Hedgehog,
        FeatureMap::HedgehogJoint, FeatureMap::Performer,
        FeatureMap::PerformerHyperbolic}) {
    bool weights = mapTakesWeight(fm);
    int64_t f = fm == FeatureMap::HedgehogJoint ? 16 : weights ? 20 : 0;
    int64_t dphi = linattn::reference::featureMapWidth(fm, 16, f);
    std::string json = editedFrom(
        goodManifest,
        {{"\"identity\"",
          std::string("\"") + linattn::reference::featureMapName(fm) + "\""},
         {"\"key_dim\": 128",
          "\"key_dim\": 16, \"feature_count\": " + std::to_string(f)}});
    if (needsMapPrepass(fm))
      json = editedFrom(
          json, {{"\"launch\"", "\"map\": {\"entry\": \"linattn_map\", "
                                "\"threads\": 128, \"rows_per_block\": 4, "
                                "\"padded_dim\": " +
                                    std::to_string(paddedFeatureDim(dphi)) +
                                    "}, \"launch\""}});
    Manifest m;
    ASSERT_EQ(parseManifest(json, m), "")
        << linattn::reference::featureMapName(fm);
    EXPECT_EQ(m.spec.featureMap, fm);
    EXPECT_EQ(m.spec.featureDim, dphi);
    EXPECT_EQ(m.map.has_value(), needsMapPrepass(fm));
  }
  EXPECT_EQ(paddedFeatureDim(16), 16);
  EXPECT_EQ(paddedFeatureDim(17), 32);
  EXPECT_EQ(paddedFeatureDim(273), 288);
}

TEST(CudaMapManifest, RejectsInconsistentMapFields) {
  std::string good = mappedManifest();
  auto bad = [&](std::initializer_list<std::pair<std::string, std::string>> e) {
    return editedFrom(good, e);
  };
  std::vector<BadManifest> cases = {
      {"missing map",
       bad({{"\"map\": {\"entry\": \"linattn_map\", \"threads\": 128, "
             "\"rows_per_block\": 4, \"padded_dim\": 48},",
             ""}}),
       "manifest: missing field 'map'"},
      {"padded dim not rounded up",
       bad({{"\"padded_dim\": 48", "\"padded_dim\": 40"}}),
       "manifest: map.padded_dim is 40, expected 48 (spec.feature_dim 40 "
       "rounded up to a multiple of 16)"},
      {"padded dim rounded too far",
       bad({{"\"padded_dim\": 48", "\"padded_dim\": 64"}}),
       "manifest: map.padded_dim is 64, expected 48"},
      {"feature dim", bad({{"\"feature_dim\": 40", "\"feature_dim\": 20"}}),
       "manifest: spec.feature_dim is 20, expected 40 (feature map "
       "'hedgehog' with key_dim 16, feature_count 20)"},
      {"map on an elementwise map",
       editedFrom(good, {{"\"hedgehog\"", "\"relu\""},
                         {", \"feature_count\": 20, \"feature_dim\": 40", ""}}),
       "manifest: field 'map' is only for the width-changing feature maps, "
       "got feature_map 'relu'"},
      {"feature dim 0", bad({{"\"feature_dim\": 40", "\"feature_dim\": 0"}}),
       "manifest: field 'spec.feature_dim' is 0, expected 1 to"},
      {"missing feature count", bad({{"\"feature_count\": 20, ", ""}}),
       "manifest: spec.feature_count must be >= 1 for feature map "
       "'hedgehog', got 0"},
      {"zero feature count",
       bad({{"\"feature_count\": 20", "\"feature_count\": 0"}}),
       "manifest: spec.feature_count must be >= 1 for feature map "
       "'hedgehog', got 0"},
      {"feature count without weights",
       editedFrom(goodManifest, {{"\"key_dim\": 128", "\"key_dim\": 128, "
                                                      "\"feature_count\": 4"}}),
       "manifest: spec.feature_count must be 0 for feature map 'identity' (it "
       "has no weights), got 4"},
      {"joint feature count",
       bad({{"\"hedgehog\"", "\"hedgehog_joint\""},
            {"\"feature_count\": 20", "\"feature_count\": 8"}}),
       "manifest: spec.feature_count of feature map 'hedgehog_joint' must be "
       "key_dim (16), got 8"},
      {"map threads", bad({{"\"threads\": 128, \"rows", "\"rows"}}),
       "manifest: missing field 'map.threads'"},
      {"map type", bad({{"\"map\": {", "\"map\": [{"}, {"48},", "48}],"}}),
       "manifest: field 'map' must be an object, got array"},
      {"map entry", bad({{"\"linattn_map\"", "\"linattn_fwd\""}}),
       "manifest: field 'map.entry' names the attention entry 'linattn_fwd'"},
      {"unknown map", bad({{"\"hedgehog\"", "\"cosformer\""}}),
       "manifest: field 'spec.feature_map' is 'cosformer', expected one of "
       "identity, elu_plus_one, relu, taylor2, taylor2_symmetric, hedgehog, "
       "hedgehog_joint, performer, performer_hyperbolic"},
  };
  for (const BadManifest &c : cases) {
    Manifest m;
    m.entry = "untouched";
    std::string e = parseManifest(c.json, m);
    EXPECT_NE(e.find(c.error), std::string::npos)
        << c.name << ": got '" << e << "'";
    EXPECT_EQ(m.entry, "untouched") << c.name;
  }
}

namespace {

/// sampleArgs() for mappedManifest() (d = 16, Dphi = 40, bthd, B = 2,
/// T = 100, Hq = 4, Hk = Hv = 2) with a shared Hedgehog weight and bias.
LaunchArgs mappedArgs() {
  LaunchArgs a = sampleArgs();
  a.q.shape[3] = 16;
  a.k.shape[3] = 16;
  a.finalState = DeviceTensor{0x7000, {2, 4, 40, 128}};
  a.mapWeight = DeviceTensor{0xc000, {16, 20}};
  a.mapBias = DeviceTensor{0xd000, {20}};
  return a;
}

} // namespace

TEST(CudaMapLaunch, ValidatesWidthsAndWeights) {
  Manifest m = parsed(mappedManifest());
  Problem p;
  ASSERT_EQ(validateArgs(m, mappedArgs(), p), "");
  EXPECT_EQ(p.hq, 4);
  EXPECT_EQ(p.hk, 2);

  // q and k keep the raw width d; states take Dphi.
  LaunchArgs a = mappedArgs();
  a.q.shape[3] = 40;
  EXPECT_EQ(validate(a, m),
            "q: expected key dim 16 (manifest), got shape [2, 100, 4, 40]");
  a = mappedArgs();
  a.finalState->shape = {2, 4, 16, 128};
  EXPECT_EQ(validate(a, m), "final_state: expected shape [2, 4, 40, 128] "
                            "([N, H, Dphi, Dv] f32), got [2, 4, 16, 128]");
  a = mappedArgs();
  a.initialState = DeviceTensor{0x5000, {2, 4, 40, 128}};
  EXPECT_EQ(validate(a, m), "");

  // Vector gates and normalizers have width Dphi too.
  Manifest vec =
      parsed(editedFrom(mappedManifest(), {{"\"scalar\"", "\"vector\""}}));
  a = mappedArgs();
  a.gate = DeviceTensor{0x4000, {2, 100, 4, 16}};
  EXPECT_EQ(validate(a, vec), "gate: expected shape [2, 100, 4, 40] (bthd "
                              "layout, Dphi), got [2, 100, 4, 16]");
  a.gate->shape = {2, 100, 4, 40};
  EXPECT_EQ(validate(a, vec), "");
  Manifest norm = parsed(editedFrom(
      mappedManifest(), {{"\"normalized\": false", "\"normalized\": true"}}));
  a = mappedArgs();
  a.finalNormalizer = DeviceTensor{0xb000, {2, 4, 16}};
  EXPECT_EQ(validate(a, norm), "final_normalizer: expected shape [2, 4, 40] "
                               "([N, H, Dphi] f32), got [2, 4, 16]");
  a.finalNormalizer->shape = {2, 4, 40};
  a.initialNormalizer = DeviceTensor{0xa000, {2, 4, 40}};
  EXPECT_EQ(validate(a, norm), "");
}

TEST(CudaMapLaunch, RejectsBadWeights) {
  Manifest m = parsed(mappedManifest());
  struct Case {
    const char *name;
    LaunchArgs args;
    std::string error;
  };
  std::vector<Case> cases;
  auto add = [&](const char *name, auto edit, std::string error) {
    LaunchArgs a = mappedArgs();
    edit(a);
    cases.push_back({name, a, std::move(error)});
  };
  add(
      "missing weight", [](LaunchArgs &a) { a.mapWeight.reset(); },
      "map_weight: feature map 'hedgehog' needs a weight");
  add(
      "wrong shape",
      [](LaunchArgs &a) {
        a.mapWeight->shape = {16, 8};
      },
      "map_weight: expected shape [16, 20] or [4, 16, 20] (hedgehog, d = 16, "
      "f = 20, one per q head), got [16, 8]");
  add(
      "wrong head count",
      [](LaunchArgs &a) {
        a.mapWeight->shape = {2, 16, 20};
        a.keyMapWeight = DeviceTensor{0xe000, {2, 16, 20}};
        a.mapBias.reset();
      },
      "map_weight: expected shape [16, 20] or [4, 16, 20] (hedgehog, d = 16, "
      "f = 20, one per q head), got [2, 16, 20]");
  add(
      "null weight", [](LaunchArgs &a) { a.mapWeight->ptr = 0; },
      "map_weight: null device pointer");
  add(
      "wrong bias", [](LaunchArgs &a) { a.mapBias->shape = {16}; },
      "map_bias: expected shape [20] (hedgehog, d = 16, f = 20, shared like "
      "map_weight), got [16]");
  add(
      "per-head bias with a shared weight",
      [](LaunchArgs &a) {
        a.mapBias->shape = {4, 20};
      },
      "map_bias: expected shape [20] (hedgehog, d = 16, f = 20, shared like "
      "map_weight), got [4, 20]");
  add(
      "shared bias with a per-head weight",
      [](LaunchArgs &a) {
        a.mapWeight->shape = {4, 16, 20};
        a.keyMapWeight = DeviceTensor{0xe000, {16, 20}};
      },
      "map_bias: expected shape [4, 20] (hedgehog, d = 16, f = 20, per head "
      "like map_weight), got [20]");
  add(
      "per-q-head weights for k",
      [](LaunchArgs &a) {
        a.mapWeight->shape = {4, 16, 20};
        a.mapBias->shape = {4, 20};
      },
      "map_weight: one map per q head (4) cannot be applied to the 2 k "
      "heads; pass key_map_weight");
  add(
      "key weight heads",
      [](LaunchArgs &a) {
        a.keyMapWeight = DeviceTensor{0xe000, {4, 16, 20}};
      },
      "key_map_weight: expected shape [16, 20] or [2, 16, 20] (hedgehog, d = "
      "16, f = 20, one per k head), got [4, 16, 20]");
  add(
      "key bias alone",
      [](LaunchArgs &a) {
        a.keyMapBias = DeviceTensor{0xf000, {20}};
      },
      "key_map_bias: given without key_map_weight (k uses map_weight and "
      "map_bias unless key_map_weight is given)");
  add(
      "key bias shape",
      [](LaunchArgs &a) {
        a.keyMapWeight = DeviceTensor{0xe000, {2, 16, 20}};
        a.keyMapBias = DeviceTensor{0xf000, {20}};
      },
      "key_map_bias: expected shape [2, 20] (hedgehog, d = 16, f = 20, per "
      "head like key_map_weight), got [20]");
  for (const Case &c : cases)
    EXPECT_EQ(validate(c.args, m), c.error) << c.name;

  // Per-head maps on both sides are fine.
  LaunchArgs ok = mappedArgs();
  ok.mapWeight->shape = {4, 16, 20};
  ok.mapBias->shape = {4, 20};
  ok.keyMapWeight = DeviceTensor{0xe000, {2, 16, 20}};
  EXPECT_EQ(validate(ok, m), "");

  // Performer: weight [m, d], no bias.
  Manifest perf = parsed(editedFrom(
      mappedManifest(), {{"\"hedgehog\"", "\"performer\""},
                         {"\"feature_dim\": 40", "\"feature_dim\": 20"},
                         {"\"padded_dim\": 48", "\"padded_dim\": 32"}}));
  LaunchArgs pa = mappedArgs();
  pa.finalState->shape = {2, 4, 20, 128};
  EXPECT_EQ(validate(pa, perf),
            "map_bias: feature map 'performer' takes no bias");
  pa.mapBias.reset();
  EXPECT_EQ(validate(pa, perf),
            "map_weight: expected shape [20, 16] or [4, 20, 16] (performer, d "
            "= 16, m = 20, one per q head), got [16, 20]");
  pa.mapWeight->shape = {20, 16};
  EXPECT_EQ(validate(pa, perf), "");

  // Maps without weights take none.
  Manifest taylor = parsed(editedFrom(
      mappedManifest(), {{"\"hedgehog\"", "\"taylor2\""},
                         {"\"feature_count\": 20", "\"feature_count\": 0"},
                         {"\"feature_dim\": 40", "\"feature_dim\": 273"},
                         {"\"padded_dim\": 48", "\"padded_dim\": 288"}}));
  LaunchArgs ta = mappedArgs();
  ta.finalState->shape = {2, 4, 273, 128};
  ta.mapBias.reset();
  EXPECT_EQ(validate(ta, taylor),
            "map_weight: feature map 'taylor2' takes no weights");
  ta.mapWeight.reset();
  EXPECT_EQ(validate(ta, taylor), "");
  LaunchArgs plain = sampleArgs();
  plain.keyMapBias = DeviceTensor{0xf000, {20}};
  EXPECT_EQ(validate(plain, parsed(goodManifest)),
            "key_map_bias: feature map 'identity' takes no weights");
}

TEST(CudaMapLaunch, WorkspaceSizes) {
  Manifest m = parsed(mappedManifest());
  Problem p;
  ASSERT_EQ(validateArgs(m, mappedArgs(), p), "");
  MapWorkspace ws = mapWorkspace(m, p);
  EXPECT_EQ(ws.rowsQ, 2 * 100 * 4);
  EXPECT_EQ(ws.rowsK, 2 * 100 * 2);
  EXPECT_EQ(ws.paddedDim, 48);
  EXPECT_EQ(ws.qBytes, 2u * 100 * 4 * 48 * 2); // bf16
  EXPECT_EQ(ws.kBytes, 2u * 100 * 2 * 48 * 2);
  EXPECT_EQ(ws.kOffset, ws.qBytes); // already a multiple of 256
  EXPECT_EQ(ws.bytes, ws.qBytes + ws.kBytes);
  auto [q, k] = mapWorkspaceTensors(m, p, ws, 0x100000);
  EXPECT_EQ(q.ptr, 0x100000u);
  EXPECT_EQ(q.shape, (std::vector<int64_t>{2, 100, 4, 48}));
  EXPECT_EQ(k.ptr, 0x100000u + ws.kOffset);
  EXPECT_EQ(k.shape, (std::vector<int64_t>{2, 100, 2, 48}));

  // phi(k) starts on a 256-byte boundary; bhtd tensors are [B, H, T, Dp].
  Manifest bhtd =
      parsed(editedFrom(mappedManifest(), {{"\"bthd\"", "\"bhtd\""}}));
  Problem small;
  small.batch = 1;
  small.seqLen = 3;
  small.hq = small.hk = 1;
  MapWorkspace w2 = mapWorkspace(bhtd, small);
  EXPECT_EQ(w2.qBytes, 3u * 48 * 2);
  EXPECT_EQ(w2.kOffset, 512u);
  EXPECT_EQ(w2.bytes, 512u + 3 * 48 * 2);
  small.hq = 2;
  auto [q2, k2] =
      mapWorkspaceTensors(bhtd, small, mapWorkspace(bhtd, small), 0);
  EXPECT_EQ(q2.shape, (std::vector<int64_t>{1, 2, 3, 48}));
  EXPECT_EQ(k2.shape, (std::vector<int64_t>{1, 1, 3, 48}));
}

TEST(CudaMapLaunch, PacksMapParameters) {
  Manifest m = parsed(mappedManifest());
  LaunchArgs a = mappedArgs();
  a.keyMapWeight = DeviceTensor{0xe000, {2, 16, 20}};
  Problem p;
  ASSERT_EQ(validateArgs(m, a, p), "");
  ASSERT_EQ(PackedMapParams::NumSlots, 25);
  DeviceTensor phiQ{0x100000, {2, 100, 4, 48}}, phiK{0x200000, {2, 100, 2, 48}};

  // q: x, the shared weight and bias, the workspace, then rows, seq_len,
  // heads, per_head, has_bias.
  PackedMapParams q;
  packMapParams(a, p, /*key=*/false, phiQ, q);
  const uint64_t wantQ[25] = {0x1000,
                              0x1000,
                              0,
                              2 * 100 * 4 * 16,
                              1,
                              0xc000,
                              0xc000,
                              0,
                              16 * 20,
                              1,
                              0xd000,
                              0xd000,
                              0,
                              20,
                              1,
                              0x100000,
                              0x100000,
                              0,
                              2 * 100 * 4 * 48,
                              1,
                              800,
                              100,
                              4,
                              0,
                              1};
  for (int i = 0; i < 25; ++i)
    EXPECT_EQ(q.slots[i], wantQ[i]) << "q slot " << i;

  // k with its own per-head weight and no bias: a null bias of size 0.
  PackedMapParams k;
  packMapParams(a, p, /*key=*/true, phiK, k);
  const uint64_t wantK[25] = {0x2000,
                              0x2000,
                              0,
                              2 * 100 * 2 * 16,
                              1,
                              0xe000,
                              0xe000,
                              0,
                              2 * 16 * 20,
                              1,
                              0,
                              0,
                              0,
                              0,
                              1,
                              0x200000,
                              0x200000,
                              0,
                              2 * 100 * 2 * 48,
                              1,
                              400,
                              100,
                              2,
                              1,
                              0};
  for (int i = 0; i < 25; ++i)
    EXPECT_EQ(k.slots[i], wantK[i]) << "k slot " << i;

  // Without key weights k uses q's weight and bias.
  a.keyMapWeight.reset();
  packMapParams(a, p, /*key=*/true, phiK, k);
  EXPECT_EQ(k.slots[5], 0xc000u);
  EXPECT_EQ(k.slots[10], 0xd000u);
  EXPECT_EQ(k.slots[23], 0u);
  EXPECT_EQ(k.slots[24], 1u);

  PackedMapParams copy = q;
  for (int i = 0; i < PackedMapParams::NumSlots; ++i) {
    EXPECT_EQ(q.params[i], &q.slots[i]);
    EXPECT_EQ(copy.params[i], &copy.slots[i]);
    EXPECT_EQ(copy.slots[i], q.slots[i]);
  }
}

TEST(CudaMapLaunch, Geometry) {
  Manifest m = parsed(mappedManifest());
  Geometry g;
  ASSERT_EQ(computeMapGeometry(m, 801, g), "");
  EXPECT_EQ(g.grid[0], 201u); // ceil(801 / 4)
  EXPECT_EQ(g.grid[1], 1u);
  EXPECT_EQ(g.grid[2], 1u);
  EXPECT_EQ(g.block[0], 128u);
  EXPECT_EQ(g.block[1], 1u);
  EXPECT_EQ(g.sharedBytes, 0u);
  // From the manifest, not hard-coded.
  m.map->threads = 256;
  m.map->rowsPerBlock = 8;
  ASSERT_EQ(computeMapGeometry(m, 801, g), "");
  EXPECT_EQ(g.grid[0], 101u);
  EXPECT_EQ(g.block[0], 256u);
  ASSERT_EQ(computeMapGeometry(m, 0, g), "");
  EXPECT_EQ(g.grid[0], 0u); // nothing to launch
  EXPECT_EQ(computeMapGeometry(parsed(goodManifest), 10, g),
            "manifest: feature map 'identity' has no map prepass");
}

//===----------------------------------------------------------------------===//
// No driver
//===----------------------------------------------------------------------===//

TEST(CudaDevice, MissingDriverIsACleanError) {
  ASSERT_EQ(setenv("LINATTN_LIBCUDA", "/nonexistent/libcuda.so.1", 1), 0);
  std::string e;
  OpenError kind = OpenError::None;
  EXPECT_EQ(Device::open(0, &e, &kind), nullptr);
  EXPECT_EQ(kind, OpenError::Unavailable);
  EXPECT_EQ(
      e.rfind("CUDA driver not found: dlopen(/nonexistent/libcuda.so.1):", 0),
      0u)
      << e;

  LinattnRtDevice *dev = nullptr;
  char err[256];
  EXPECT_EQ(linattnRtDeviceOpen(0, &dev, err, sizeof(err)), 77);
  EXPECT_EQ(dev, nullptr);
  EXPECT_EQ(std::string(err).rfind("CUDA driver not found", 0), 0u) << err;
  char tiny[8];
  EXPECT_EQ(linattnRtDeviceOpen(0, &dev, tiny, sizeof(tiny)), 77);
  EXPECT_EQ(std::string(tiny), "CUDA dr"); // truncated, NUL-terminated
  EXPECT_EQ(linattnRtApiVersion(), LINATTN_RT_API_VERSION);
  unsetenv("LINATTN_LIBCUDA");

  // linattnRtLaunchEx checks `size` before it touches the module.
  LinattnRtExtraArgs extra = {};
  EXPECT_EQ(linattnRtLaunchEx(nullptr, nullptr, &extra, err, sizeof(err)), 1);
  EXPECT_EQ(std::string(err), "linattnRtLaunchEx: extra->size is 0; set it "
                              "to sizeof(LinattnRtExtraArgs)");
}

// The CUDA toolkit ships a stub libcuda for linking; cuInit in it fails.
TEST(CudaDevice, StubDriverIsACleanError) {
  const char *stub = "/usr/local/cuda/lib64/stubs/libcuda.so";
  if (!std::ifstream(stub))
    GTEST_SKIP() << "no CUDA toolkit stub at " << stub;
  ASSERT_EQ(setenv("LINATTN_LIBCUDA", stub, 1), 0);
  std::string e;
  OpenError kind = OpenError::None;
  EXPECT_EQ(Device::open(0, &e, &kind), nullptr);
  EXPECT_EQ(kind, OpenError::Unavailable);
  EXPECT_NE(e.find("stub"), std::string::npos) << e;
  unsetenv("LINATTN_LIBCUDA");
}
