//===- TuningTest.cpp - tuner, tuning cache and kernel cache tests -*- C++ -*-//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
//
// Every test runs with its own LINATTN_CACHE_DIR. The cross-process tests
// fork (concurrent writers) or re-execute this binary with a filter and
// LINATTN_TEST_CHILD set (kernel cache hit in a second process).
//
//===----------------------------------------------------------------------===//

#include "linattn/Runtime/Tuning.h"
#include "linattn/Runtime/GPUCompile.h"

#include "gtest/gtest.h"

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

using namespace linattn;

namespace {

std::string readFile(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void writeFile(const std::string &path, const std::string &text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

/// A fresh cache directory per test (or the one a parent gave the child).
class CacheTest : public ::testing::Test {
protected:
  std::string dir;
  void SetUp() override {
    if (const char *child = std::getenv("LINATTN_TEST_CHILD")) {
      dir = child;
    } else {
      char tmpl[] = "/tmp/linattn-tuning-test-XXXXXX";
      ASSERT_NE(mkdtemp(tmpl), nullptr);
      dir = tmpl;
      owned = true;
    }
    setenv("LINATTN_CACHE_DIR", dir.c_str(), 1);
    setKernelCacheMode(KernelCacheMode::Disk);
  }
  void TearDown() override {
    if (owned)
      std::system(("rm -rf '" + dir + "'").c_str());
  }
  std::string file() const { return dir + "/tuning.json"; }
  bool owned = false;
};

AttentionSpec smallSpec(DecayKind decay = DecayKind::Vector, int64_t d = 16) {
  AttentionSpec s;
  s.decay = decay;
  s.keyDim = s.valueDim = d;
  return s;
}

TuningEntry entry(const std::string &spec, const std::string &shape,
                  int64_t chunk, const std::string &device = "") {
  TuningEntry e;
  e.device = device.empty() ? deviceFingerprint() : device;
  e.spec = spec;
  e.shape = shape;
  CompileOptions o;
  o.chunkSize = chunk;
  e.config = TuneConfig::fromOptions(o);
  e.ms = 1.5;
  e.defaultMs = 2.0;
  return e;
}

std::string keyOf(const TuningEntry &e) {
  return tuningKey(e.device, e.spec, e.shape);
}

/// Runs this test binary again on `filter` with LINATTN_TEST_CHILD=dir.
int runChild(const std::string &filter, const std::string &dir) {
  pid_t pid = fork();
  if (pid == 0) {
    setenv("LINATTN_TEST_CHILD", dir.c_str(), 1);
    std::string f = "--gtest_filter=" + filter;
    execl("/proc/self/exe", "/proc/self/exe", f.c_str(), (char *)nullptr);
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

} // namespace

//===----------------------------------------------------------------------===//
// Keys
//===----------------------------------------------------------------------===//

TEST(TuningKeys, SpecKeySeparatesEveryField) {
  AttentionSpec a = smallSpec();
  std::string k = specKey(a);
  EXPECT_EQ(k, specKey(smallSpec()));
  auto differs = [&](auto mutate) {
    AttentionSpec b = a;
    mutate(b);
    return specKey(b) != k;
  };
  EXPECT_TRUE(differs([](AttentionSpec &s) { s.dtype = DType::BF16; }));
  EXPECT_TRUE(differs([](AttentionSpec &s) { s.decay = DecayKind::Scalar; }));
  EXPECT_TRUE(differs([](AttentionSpec &s) { s.keyDim = 32; }));
  EXPECT_TRUE(differs([](AttentionSpec &s) { s.valueDim = 32; }));
  EXPECT_TRUE(differs([](AttentionSpec &s) { s.layout = Layout::BTHD; }));
  EXPECT_TRUE(differs([](AttentionSpec &s) { s.normalized = true; }));
  EXPECT_TRUE(differs([](AttentionSpec &s) { s.scale = 0.5; }));
  EXPECT_TRUE(differs([](AttentionSpec &s) { s.clampMin = -5.0; }));
  EXPECT_TRUE(differs([](AttentionSpec &s) { s.stateValueMajor = true; }));
  EXPECT_TRUE(
      differs([](AttentionSpec &s) { s.featureMap = FeatureMap::Relu; }));
}

TEST(TuningKeys, ShapeClassBucketsTAndBH) {
  auto cls = [](int64_t b, int64_t h, int64_t t) {
    return shapeClass(ProblemShape{b, h, t});
  };
  EXPECT_EQ(cls(1, 8, 4096), "T4096.BH8.t1");
  EXPECT_EQ(cls(1, 8, 3000), cls(1, 8, 4096));
  EXPECT_EQ(cls(2, 3, 4096), cls(1, 8, 4096));
  EXPECT_NE(cls(1, 8, 4097), cls(1, 8, 4096));
  EXPECT_NE(cls(1, 16, 4096), cls(1, 8, 4096));
  // The thread count separates results (item 4 of issue 5).
  EXPECT_EQ(shapeClass(ProblemShape{1, 8, 4096}, 4), "T4096.BH8.t4");
  EXPECT_NE(shapeClass(ProblemShape{1, 8, 4096}, 4), cls(1, 8, 4096));
}

TEST(TuningKeys, ConfigRoundTrip) {
  CompileOptions o;
  o.chunkSize = 32;
  o.tileM = 4;
  o.tileN = 24;
  o.subChunkSize = 8;
  CompileOptions r = TuneConfig::fromOptions(o).toOptions();
  EXPECT_EQ(r.chunkSize, 32);
  EXPECT_EQ(r.tileM, 4);
  EXPECT_EQ(r.tileN, 24);
  EXPECT_EQ(r.subChunkSize, 8);
  EXPECT_EQ(TuneConfig::fromOptions(o).describe(), "C=32 sub=8 tile=4x24");
  EXPECT_EQ(parseTuneMode("tune-if-missing"), TuneMode::TuneIfMissing);
  EXPECT_FALSE(parseTuneMode("sometimes").has_value());
}

TEST(TuningKeys, GpuFamilyAndMmaParameter) {
  // sm_90 with mma=auto: every shape also as the mma.sync kernel, whose
  // config says so ("wgmma": 0) and maps back to mma=sync.
  GPUCompileOptions base;
  base.chip = "sm_90";
  std::vector<GPUCompileOptions> family = gpuTuningCandidates(base);
  ASSERT_FALSE(family.empty());
  EXPECT_EQ(family.front().mma, "auto");
  EXPECT_EQ(gpuTuneConfig(base).params.count("wgmma"), 0u);
  int sync = 0, autos = 0;
  for (const GPUCompileOptions &o : family) {
    if (o.mma == "sync") {
      ++sync;
      TuneConfig c = gpuTuneConfig(o);
      EXPECT_EQ(c.params.at("wgmma"), 0);
      EXPECT_EQ(gpuOptionsFromConfig(c, base).mma, "sync");
    } else {
      ++autos;
    }
  }
  EXPECT_EQ(sync, 54);  // 3 chunks x 3 block-v x 3 warps x 2 stages
  EXPECT_EQ(autos, 55); // base (defaults) + the 54 shapes
  GPUCompileOptions wg = base;
  wg.mma = "wgmma";
  EXPECT_EQ(gpuOptionsFromConfig(gpuTuneConfig(wg), base).mma, "wgmma");
  // Other chips have one kernel kind: no mma.sync copies.
  base.chip = "sm_80";
  for (const GPUCompileOptions &o : gpuTuningCandidates(base))
    EXPECT_EQ(o.mma, "auto");
}

//===----------------------------------------------------------------------===//
// Tuning cache file
//===----------------------------------------------------------------------===//

TEST_F(CacheTest, RoundTrip) {
  TuningEntry a = entry("spec-a", "T64.BH1", 32);
  TuningEntry b = entry("spec-b", "T64.BH1", 128);
  ASSERT_EQ(storeTuningEntries(file(), {{keyOf(a), a}}), "");
  ASSERT_EQ(storeTuningEntries(file(), {{keyOf(b), b}}), "");
  std::string problem;
  auto got = readTuningFile(file(), &problem);
  EXPECT_EQ(problem, "");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[keyOf(a)].config.toOptions().chunkSize, 32);
  EXPECT_EQ(got[keyOf(b)].config.toOptions().chunkSize, 128);
  EXPECT_EQ(got[keyOf(b)].ms, 1.5);
  EXPECT_EQ(got[keyOf(b)].config.backend, "cpu");
  // No temporary files are left behind.
  EXPECT_EQ(std::system(("test -z \"$(ls '" + dir + "' | grep tmp)\"").c_str()),
            0);
}

TEST_F(CacheTest, CorruptFilesAreIgnoredAndRewritten) {
  TuningEntry a = entry("spec-a", "T64.BH1", 32);
  ASSERT_EQ(storeTuningEntries(file(), {{keyOf(a), a}}), "");
  std::string good = readFile(file());
  const std::string bad[] = {
      "garbage \x01\x02 not json", good.substr(0, good.size() / 2), "[1, 2, 3]",
      "{\"format\": 1, \"compiler\": \"linattn 0.0.0 (LLVM 1)\", "
      "\"entries\": {}}"};
  for (const std::string &text : bad) {
    writeFile(file(), text);
    std::string problem;
    EXPECT_TRUE(readTuningFile(file(), &problem).empty());
    EXPECT_NE(problem, "") << text;
    // Using the cache still works (defaults), and storing rewrites the file.
    TuneOptions to;
    to.verbosity = Verbosity::Quiet;
    TuneResult r;
    std::string err;
    auto o =
        tunedOptions(smallSpec(), {1, 1, 64}, TuneMode::UseOnly, to, &err, &r);
    ASSERT_TRUE(o.has_value()) << err;
    EXPECT_FALSE(r.fromCache);
    EXPECT_EQ(o->chunkSize, CompileOptions().chunkSize);
    ASSERT_EQ(storeTuningEntries(file(), {{keyOf(a), a}}), "");
    EXPECT_EQ(readTuningFile(file(), &problem).size(), 1u) << problem;
  }
  // The version mismatch is named.
  writeFile(file(), bad[3]);
  std::string problem;
  readTuningFile(file(), &problem);
  EXPECT_NE(problem.find("linattn 0.0.0"), std::string::npos) << problem;
}

TEST_F(CacheTest, ConcurrentWritersKeepAValidFile) {
  constexpr int kWriters = 2, kEntries = 15;
  std::vector<pid_t> pids;
  for (int w = 0; w < kWriters; ++w) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      for (int i = 0; i < kEntries; ++i) {
        TuningEntry e =
            entry("writer" + std::to_string(w) + "-" + std::to_string(i),
                  "T64.BH1", 16 << (i % 4));
        if (!storeTuningEntries(file(), {{keyOf(e), e}}).empty())
          _exit(1);
      }
      _exit(0);
    }
    pids.push_back(pid);
  }
  for (pid_t pid : pids) {
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  std::string problem;
  auto got = readTuningFile(file(), &problem);
  EXPECT_EQ(problem, "");
  // The lock serializes the read-merge-write cycles: nothing is lost.
  EXPECT_EQ(got.size(), size_t(kWriters * kEntries));
}

TEST_F(CacheTest, LookupSeparatesSpecShapeAndDevice) {
  AttentionSpec a = smallSpec(), b = smallSpec(DecayKind::Scalar);
  ProblemShape shape{1, 2, 100};
  TuningEntry mine = entry(specKey(a), shapeClass(shape), 32);
  TuningEntry other = entry(specKey(b), shapeClass(shape), 128,
                            "cpu: some other machine (x86-64)");
  ASSERT_EQ(
      storeTuningEntries(file(), {{keyOf(mine), mine}, {keyOf(other), other}}),
      "");
  TuneOptions to;
  to.verbosity = Verbosity::Quiet;
  std::string err;
  TuneResult r;
  // Same spec, same shape class (T 100 -> 128): the cached result.
  auto o = tunedOptions(a, {2, 1, 120}, TuneMode::UseOnly, to, &err, &r);
  ASSERT_TRUE(o);
  EXPECT_TRUE(r.fromCache);
  EXPECT_EQ(o->chunkSize, 32);
  // Another shape class, another spec, or another device's entry: defaults.
  o = tunedOptions(a, {1, 2, 1000}, TuneMode::UseOnly, to, &err, &r);
  EXPECT_FALSE(r.fromCache);
  EXPECT_EQ(o->chunkSize, 64);
  o = tunedOptions(b, shape, TuneMode::UseOnly, to, &err, &r);
  EXPECT_FALSE(r.fromCache);
  EXPECT_EQ(o->chunkSize, 64);
  // Off ignores the cache.
  o = tunedOptions(a, shape, TuneMode::Off, to, &err, &r);
  EXPECT_FALSE(r.fromCache);
  EXPECT_EQ(o->chunkSize, 64);
}

TEST_F(CacheTest, ExportImport) {
  TuningEntry a = entry("spec-a", "T64.BH1", 32);
  ASSERT_EQ(storeTuningEntries(file(), {{keyOf(a), a}}), "");
  int n = 0;
  ASSERT_EQ(exportTuning(dir + "/ship.json", "", &n), "");
  EXPECT_EQ(n, 1);
  std::string other = dir + "/other/tuning.json";
  ASSERT_EQ(importTuning(dir + "/ship.json", other, &n), "");
  EXPECT_EQ(readTuningFile(other, nullptr).size(), 1u);
  writeFile(dir + "/bad.json", "{");
  std::string e = importTuning(dir + "/bad.json", other);
  EXPECT_NE(e.find("bad.json"), std::string::npos) << e;
  EXPECT_EQ(readTuningFile(other, nullptr).size(), 1u);
}

//===----------------------------------------------------------------------===//
// Tuner
//===----------------------------------------------------------------------===//

TEST_F(CacheTest, TuneStoresAndReusesResult) {
  AttentionSpec spec = smallSpec();
  ProblemShape shape{1, 2, 64};
  TuneOptions to;
  to.budgetSeconds = 2;
  to.reps = 3;
  to.verbosity = Verbosity::Quiet;
  std::string err;
  TuneResult r;
  auto o = tunedOptions(spec, shape, TuneMode::TuneIfMissing, to, &err, &r);
  ASSERT_TRUE(o) << err;
  EXPECT_FALSE(r.fromCache);
  // How many candidates fit the budget depends on the machine's load.
  EXPECT_GE(r.tried, 1);
  EXPECT_GT(r.defaultMs, 0);
  EXPECT_LE(r.bestMs, r.defaultMs);
  // The winner compiles and its result is reused without tuning.
  TuneResult again;
  auto o2 =
      tunedOptions(spec, shape, TuneMode::TuneIfMissing, to, &err, &again);
  ASSERT_TRUE(o2);
  EXPECT_TRUE(again.fromCache);
  EXPECT_EQ(o2->chunkSize, o->chunkSize);
  EXPECT_EQ(o2->tileM, o->tileM);
  EXPECT_EQ(o2->tileN, o->tileN);
  EXPECT_EQ(o2->subChunkSize, o->subChunkSize);
  std::unique_ptr<Kernel> k =
      compileTuned(spec, shape, TuneMode::UseOnly, to, &err);
  ASSERT_TRUE(k) << err;
  EXPECT_EQ(k->options().chunkSize, o->chunkSize);
}

TEST_F(CacheTest, TuneRejectsBadShapeAndBudget) {
  TuneOptions to;
  to.verbosity = Verbosity::Quiet;
  std::string err;
  EXPECT_FALSE(tune(smallSpec(), {1, 0, 64}, to, &err));
  EXPECT_NE(err.find("positive"), std::string::npos) << err;
  to.budgetSeconds = 0;
  EXPECT_FALSE(tune(smallSpec(), {1, 1, 64}, to, &err));
  EXPECT_NE(err.find("budget"), std::string::npos) << err;
}

//===----------------------------------------------------------------------===//
// Kernel cache
//===----------------------------------------------------------------------===//

namespace {
/// A spec no other test compiles (each test passes its own scale, so that
/// the in-memory cache of a whole-binary run does not mask a disk miss).
AttentionSpec kernelCacheSpec(double scale) {
  AttentionSpec s = smallSpec(DecayKind::Scalar, 8);
  s.scale = scale;
  return s;
}

/// Runs `k` on fixed inputs and returns the output.
std::vector<float> runOnce(const Kernel &k) {
  int64_t T = 40, d = 8;
  std::vector<float> q(T * d), kk(T * d), v(T * d), g(T), o(T * d, 0);
  for (int64_t i = 0; i < T * d; ++i) {
    q[i] = 0.01f * float(i % 17) - 0.05f;
    kk[i] = 0.02f * float(i % 13) - 0.1f;
    v[i] = 0.03f * float(i % 7) - 0.1f;
  }
  for (int64_t t = 0; t < T; ++t)
    g[t] = -0.01f * float(t % 5);
  Arguments a;
  a.q = {q.data(), DType::F32, {1, 1, T, d}};
  a.k = {kk.data(), DType::F32, {1, 1, T, d}};
  a.v = {v.data(), DType::F32, {1, 1, T, d}};
  a.gate = TensorView(g.data(), DType::F32, {1, 1, T});
  a.output = {o.data(), DType::F32, {1, 1, T, d}};
  a.numThreads = 1;
  EXPECT_EQ(k.run(a), "");
  return o;
}
} // namespace

TEST_F(CacheTest, KernelMemoryAndDiskHits) {
  std::string err;
  KernelCacheStats s0 = kernelCacheStats();
  auto k1 = Kernel::compile(kernelCacheSpec(0.3125), {}, &err);
  ASSERT_TRUE(k1) << err;
  EXPECT_EQ(k1->codeOrigin(), CodeOrigin::Compiled);
  auto k2 = Kernel::compile(kernelCacheSpec(0.3125), {}, &err);
  ASSERT_TRUE(k2) << err;
  EXPECT_EQ(k2->codeOrigin(), CodeOrigin::MemoryCache);
  KernelCacheStats s1 = kernelCacheStats();
  EXPECT_EQ(s1.compiled - s0.compiled, 1);
  EXPECT_EQ(s1.diskWrites - s0.diskWrites, 1);
  EXPECT_EQ(runOnce(*k1), runOnce(*k2));
  // Different options: a different kernel.
  CompileOptions o;
  o.chunkSize = 32;
  auto k3 = Kernel::compile(kernelCacheSpec(0.3125), o, &err);
  ASSERT_TRUE(k3) << err;
  EXPECT_EQ(k3->codeOrigin(), CodeOrigin::Compiled);
}

/// Child half of KernelDiskHitInSecondProcess.
TEST_F(CacheTest, ChildLoadsFromDisk) {
  if (!std::getenv("LINATTN_TEST_CHILD"))
    GTEST_SKIP() << "runs as the child of KernelDiskHitInSecondProcess";
  std::string err;
  auto k = Kernel::compile(kernelCacheSpec(0.40625), {}, &err);
  ASSERT_TRUE(k) << err;
  EXPECT_EQ(k->codeOrigin(), CodeOrigin::DiskCache);
  EXPECT_EQ(kernelCacheStats().compiled, 0);
  EXPECT_EQ(kernelCacheStats().diskHits, 1);
  std::vector<float> o = runOnce(*k);
  writeFile(dir + "/child-output.bin",
            std::string(reinterpret_cast<const char *>(o.data()),
                        o.size() * sizeof(float)));
}

TEST_F(CacheTest, KernelDiskHitInSecondProcess) {
  if (std::getenv("LINATTN_TEST_CHILD"))
    GTEST_SKIP();
  std::string err;
  std::vector<float> want;
  {
    auto k = Kernel::compile(kernelCacheSpec(0.40625), {}, &err);
    ASSERT_TRUE(k) << err;
    want = runOnce(*k);
  }
  ASSERT_EQ(runChild("CacheTest.ChildLoadsFromDisk", dir), 0);
  std::string got = readFile(dir + "/child-output.bin");
  ASSERT_EQ(got.size(), want.size() * sizeof(float));
  EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size()), 0);
}

TEST_F(CacheTest, CorruptKernelObjectIsRecompiled) {
  if (std::getenv("LINATTN_TEST_CHILD"))
    GTEST_SKIP();
  std::string err;
  AttentionSpec spec = kernelCacheSpec(0.15625);
  {
    auto k = Kernel::compile(spec, {}, &err);
    ASSERT_TRUE(k) << err;
  }
  // Corrupt every object file of this cache (only this spec's is there).
  std::string objs = dir + "/kernels";
  ASSERT_EQ(std::system(("for f in '" + objs +
                         "'/*.o; do printf 'LINATTNKgarbage' > \"$f\"; done")
                            .c_str()),
            0);
  ASSERT_EQ(runChild("CacheTest.ChildRecompilesCorrupt", dir), 0);
}

/// Child half of CorruptKernelObjectIsRecompiled.
TEST_F(CacheTest, ChildRecompilesCorrupt) {
  if (!std::getenv("LINATTN_TEST_CHILD"))
    GTEST_SKIP() << "runs as the child of CorruptKernelObjectIsRecompiled";
  AttentionSpec spec = kernelCacheSpec(0.15625);
  std::string err;
  auto k = Kernel::compile(spec, {}, &err);
  ASSERT_TRUE(k) << err;
  EXPECT_EQ(k->codeOrigin(), CodeOrigin::Compiled);
  EXPECT_EQ(kernelCacheStats().diskRejected, 1);
  EXPECT_EQ(kernelCacheStats().diskWrites, 1);
}
