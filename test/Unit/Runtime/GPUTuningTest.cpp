//===- GPUTuningTest.cpp - GPU variant tuner and cache entries -*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
//
// The selection, verification and budget logic of tuneVariants() with fake
// launches (no GPU), the variant index format, the GPU fingerprint and the
// tuning cache with entries of both backends.
//
//===----------------------------------------------------------------------===//

#include "linattn/Runtime/GPUTuner.h"
#include "linattn/Runtime/TuningCache.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <unistd.h>

using namespace linattn;
using namespace linattn::cuda;
namespace ref = linattn::reference;

namespace {

VariantIndex makeIndex(int n) {
  VariantIndex index;
  index.name = "k";
  index.chip = "sm_90";
  index.compiler = "linattn test";
  index.specKey = "scalar bf16 dk=64 dv=64";
  for (int i = 0; i < n; ++i) {
    AOTVariant v;
    v.manifest = "k" + std::to_string(i) + ".json";
    v.config.backend = "gpu";
    v.config.params = {
        {"chunk", 32 << (i % 3)}, {"block_v", 16 << (i / 3)}, {"warps", 4}};
    index.variants.push_back(v);
  }
  return index;
}

/// A fake GPU: variant i takes ms[i] per timed launch and `cost` seconds of
/// the injected clock per run and per timing; its output is the default's
/// plus `error[i]` relative noise.
struct FakeGPU {
  std::vector<double> ms, error;
  std::vector<int> runs, timings;
  std::vector<bool> fails;
  double clock = 0, cost = 0;
  bool defaultBad = false;

  explicit FakeGPU(std::vector<double> times)
      : ms(times), error(times.size(), 0.0), runs(times.size(), 0),
        timings(times.size(), 0), fails(times.size(), false) {}

  VariantTuneHooks hooks() {
    VariantTuneHooks h;
    h.run = [this](size_t i, VariantOutput &out) -> std::string {
      ++runs[i];
      clock += cost;
      if (fails[i])
        return "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES";
      out.o = ref::Tensor({2, 8});
      out.state = ref::Tensor({2, 4});
      for (size_t j = 0; j < out.o.data.size(); ++j)
        out.o.data[j] = (1.0 + (j % 3)) * (1.0 + error[i] * (j % 2 ? 1 : -1));
      for (size_t j = 0; j < out.state.data.size(); ++j)
        out.state.data[j] = 2.0 + j;
      return "";
    };
    h.time = [this](size_t i, double &t) -> std::string {
      ++timings[i];
      clock += cost;
      t = ms[i];
      return "";
    };
    h.checkDefault = [this]() -> std::string {
      return defaultBad ? "output ratio 0.5" : "";
    };
    h.now = [this] { return clock; };
    h.progress = [](const std::string &) {};
    return h;
  }
};

VariantTuneOptions quiet(double budget = 100) {
  VariantTuneOptions o;
  o.budgetSeconds = budget;
  o.tolerance = 5e-3;
  o.verbosity = Verbosity::Verbose; // into the hooks' sink
  return o;
}

} // namespace

TEST(GPUTuner, PicksTheFastestVerifiedVariant) {
  FakeGPU gpu({1.0, 0.9, 0.5, 0.7});
  VariantIndex index = makeIndex(4);
  VariantTuneResult r;
  ASSERT_EQ(tuneVariants(index, gpu.hooks(), quiet(), r), "");
  EXPECT_EQ(r.best, 2u);
  EXPECT_DOUBLE_EQ(r.bestMs, 0.5);
  EXPECT_DOUBLE_EQ(r.defaultMs, 1.0);
  EXPECT_EQ(r.tried, 4);
  EXPECT_EQ(r.dropped, 0);
  EXPECT_FALSE(r.budgetReached);
  // The winner and the default are timed again at the end.
  EXPECT_EQ(gpu.timings[0], 2);
  EXPECT_EQ(gpu.timings[2], 2);
  EXPECT_EQ(gpu.timings[1], 1);
}

TEST(GPUTuner, VariantsThatDifferOrFailAreDroppedBeforeTiming) {
  FakeGPU gpu({1.0, 0.1, 0.2, 0.8});
  gpu.error[1] = 0.05; // ratio ~5e-2 > 5e-3
  gpu.fails[2] = true;
  gpu.error[3] = 1e-4; // within tolerance
  VariantTuneResult r;
  ASSERT_EQ(tuneVariants(makeIndex(4), gpu.hooks(), quiet(), r), "");
  EXPECT_EQ(r.best, 3u);
  EXPECT_EQ(r.dropped, 2);
  EXPECT_EQ(gpu.timings[1], 0);
  EXPECT_EQ(gpu.timings[2], 0);
}

TEST(GPUTuner, NaNOutputIsDropped) {
  FakeGPU gpu({1.0, 0.1});
  gpu.error[1] = std::nan("");
  VariantTuneResult r;
  ASSERT_EQ(tuneVariants(makeIndex(2), gpu.hooks(), quiet(), r), "");
  EXPECT_EQ(r.best, 0u);
  EXPECT_EQ(r.dropped, 1);
}

TEST(GPUTuner, DefaultFailingTheReferenceIsAnError) {
  FakeGPU gpu({1.0, 0.5});
  gpu.defaultBad = true;
  VariantTuneResult r;
  std::string e = tuneVariants(makeIndex(2), gpu.hooks(), quiet(), r);
  EXPECT_NE(e.find("fails the reference check: output ratio 0.5"),
            std::string::npos)
      << e;
  EXPECT_EQ(gpu.runs[1], 0);
}

TEST(GPUTuner, BudgetStopsTheSearch) {
  // Each run or timing costs 1 s of the fake clock: the default costs 2 s,
  // so a budget of 7 s fits the default and two candidates (4 s) but not a
  // third (estimated 2 s more at 6 s).
  FakeGPU gpu({1.0, 0.9, 0.8, 0.1, 0.05});
  gpu.cost = 1;
  VariantTuneResult r;
  ASSERT_EQ(tuneVariants(makeIndex(5), gpu.hooks(), quiet(7), r), "");
  EXPECT_TRUE(r.budgetReached);
  EXPECT_EQ(r.tried, 3);
  EXPECT_EQ(gpu.runs[3], 0);
  EXPECT_EQ(gpu.runs[4], 0);
  EXPECT_EQ(r.best, 2u);
  VariantTuneResult bad;
  EXPECT_NE(tuneVariants(makeIndex(2), gpu.hooks(), quiet(0), bad), "");
}

TEST(GPUTuner, KeepsTheDefaultUnlessTheWinnerIsFasterWhenRetimed) {
  FakeGPU gpu({1.0, 0.5});
  VariantTuneHooks h = gpu.hooks();
  // The candidate was lucky once: re-timed, it is slower than the default.
  int calls = 0;
  h.time = [&](size_t i, double &t) -> std::string {
    t = i == 0 ? 1.0 : (++calls == 1 ? 0.5 : 1.2);
    return "";
  };
  VariantTuneResult r;
  ASSERT_EQ(tuneVariants(makeIndex(2), h, quiet(), r), "");
  EXPECT_EQ(r.best, 0u);
  EXPECT_DOUBLE_EQ(r.bestMs, r.defaultMs);
}

TEST(GPUTuner, NonDefaultIndexDefault) {
  FakeGPU gpu({0.3, 1.0, 0.9});
  VariantIndex index = makeIndex(3);
  index.defaultIndex = 1;
  VariantTuneResult r;
  ASSERT_EQ(tuneVariants(index, gpu.hooks(), quiet(), r), "");
  EXPECT_EQ(r.best, 0u);
  EXPECT_DOUBLE_EQ(r.defaultMs, 1.0);
}

TEST(GPUTuner, Fingerprint) {
  EXPECT_EQ(gpuFingerprint("NVIDIA H100 80GB HBM3", 90, 12080),
            "gpu: NVIDIA H100 80GB HBM3 (sm_90, driver 12.8)");
  EXPECT_EQ(gpuFingerprint("NVIDIA A100-SXM4-40GB", 80, 11040),
            "gpu: NVIDIA A100-SXM4-40GB (sm_80, driver 11.4)");
}

TEST(GPUTuner, VariantIndexRoundTripAndErrors) {
  VariantIndex index = makeIndex(3);
  index.defaultIndex = 2;
  index.specKey = "quote \" and \\ backslash";
  std::string text = variantIndexJSON(index);
  EXPECT_TRUE(isVariantIndex(text));
  VariantIndex back;
  ASSERT_EQ(parseVariantIndex(text, back), "");
  EXPECT_EQ(back.specKey, index.specKey);
  EXPECT_EQ(back.defaultIndex, 2u);
  ASSERT_EQ(back.variants.size(), 3u);
  EXPECT_EQ(back.variants[1].manifest, "k1.json");
  EXPECT_EQ(back.variants[1].config.params, index.variants[1].config.params);
  EXPECT_EQ(back.variants[1].config.backend, "gpu");
  EXPECT_EQ(findVariant(back, index.variants[2].config), 2);
  TuneConfig other;
  other.params = {{"chunk", 7}};
  EXPECT_EQ(findVariant(back, other), -1);

  EXPECT_FALSE(isVariantIndex("{\"format\": \"linattn-aot\"}"));
  VariantIndex untouched;
  std::string e = parseVariantIndex(
      "{\"format\": \"linattn-aot-variants\", \"version\": 1, \"name\": "
      "\"k\", \"chip\": \"sm_90\", \"compiler\": \"c\", \"spec_key\": \"s\", "
      "\"default\": 3, \"variants\": [{\"manifest\": \"a.json\", \"params\": "
      "{\"chunk\": 64}}]}",
      untouched);
  EXPECT_NE(e.find("'default' must index 'variants' (0..0)"), std::string::npos)
      << e;
  e = parseVariantIndex("{\"format\": \"linattn-aot-variants\", \"version\": "
                        "1, \"name\": \"k\", \"chip\": \"sm_90\", "
                        "\"compiler\": \"c\", \"spec_key\": \"s\", "
                        "\"default\": 0, \"variants\": [{\"manifest\": "
                        "\"a.json\", \"params\": {\"chunk\": 6.5}}]}",
                        untouched);
  EXPECT_NE(e.find("variants[0]: params.chunk must be an integer"),
            std::string::npos)
      << e;
  EXPECT_NE(parseVariantIndex("[1", untouched), "");
  EXPECT_TRUE(untouched.variants.empty());
}

TEST(GPUTuner, DescribeNamesEveryParameter) {
  TuneConfig c;
  c.backend = "gpu";
  c.params = {{"chunk", 128}, {"block_v", 64}, {"warps", 8}, {"stages", 2}};
  EXPECT_EQ(c.describe(), "C=128 bv=64 warps=8 stages=2");
}

//===----------------------------------------------------------------------===//
// Tuning cache with both backends
//===----------------------------------------------------------------------===//

namespace {
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/linattn-gputune-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
};
} // namespace

TEST(GPUTuningCache, RoundTripWithBothBackends) {
  TempDir dir;
  std::string file = dir.path + "/sub/tuning.json";
  TuningEntry g;
  g.device = gpuFingerprint("NVIDIA H100 80GB HBM3", 90, 12080);
  g.spec = "scalar bthd bf16 gate=f32 dk=128 dv=128";
  g.shape = shapeClassOf(4096, 64, 0);
  EXPECT_EQ(g.shape, "T4096.BH64");
  g.config.backend = "gpu";
  g.config.params = {{"chunk", 64}, {"block_v", 32}, {"warps", 4}};
  g.ms = 0.125;
  g.defaultMs = 0.25;
  g.tuneSeconds = 12.5;
  TuningEntry c;
  c.device = "cpu: test";
  c.spec = g.spec;
  c.shape = shapeClassOf(4096, 64, 2);
  EXPECT_EQ(c.shape, "T4096.BH64.t2");
  c.config.params = {{"chunk", 32}, {"tile_m", 4}};
  c.ms = 3;
  std::string gk = tuningKey(g.device, g.spec, g.shape);
  std::string ck = tuningKey(c.device, c.spec, c.shape);
  ASSERT_EQ(storeTuningCacheEntries(file, "v1", {{gk, g}}), "");
  ASSERT_EQ(storeTuningCacheEntries(file, "v1", {{ck, c}}), "");
  std::string problem;
  auto got = readTuningCacheFile(file, "v1", &problem);
  ASSERT_EQ(problem, "");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[gk].device, g.device);
  EXPECT_EQ(got[gk].config.backend, "gpu");
  EXPECT_EQ(got[gk].config.params, g.config.params);
  EXPECT_DOUBLE_EQ(got[gk].ms, 0.125);
  EXPECT_DOUBLE_EQ(got[gk].tuneSeconds, 12.5);
  EXPECT_EQ(got[ck].config.backend, "cpu");
  // Another compiler's file is ignored as a whole, and rewritten on store.
  EXPECT_TRUE(readTuningCacheFile(file, "v2", &problem).empty());
  EXPECT_NE(problem.find("written by 'v1', this is 'v2'"), std::string::npos);
  ASSERT_EQ(storeTuningCacheEntries(file, "v2", {{gk, g}}), "");
  EXPECT_EQ(readTuningCacheFile(file, "v2", nullptr).size(), 1u);
}

TEST(GPUTuningCache, CorruptFileIsIgnoredAndRewritten) {
  TempDir dir;
  std::string file = dir.path + "/tuning.json";
  std::ofstream(file) << "{\"format\": 1, \"compiler\": \"v1\", \"entr";
  std::string problem;
  EXPECT_TRUE(readTuningCacheFile(file, "v1", &problem).empty());
  EXPECT_NE(problem.find("not valid JSON"), std::string::npos) << problem;
  TuningEntry g;
  g.device = "gpu: x (sm_80, driver 12.0)";
  g.spec = "s";
  g.shape = "T64.BH1";
  g.config.backend = "gpu";
  g.config.params = {{"chunk", 64}};
  ASSERT_EQ(storeTuningCacheEntries(file, "v1", {{"k", g}}), "");
  EXPECT_EQ(readTuningCacheFile(file, "v1", &problem).size(), 1u) << problem;
}
