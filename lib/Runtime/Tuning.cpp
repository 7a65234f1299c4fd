//===- Tuning.cpp - autotuner and tuning cache -----------------*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
//
// The tuner searches the CPU pipeline's options in stages (chunk size, then
// register tiles at the best chunk size, then the vector-gate sub-chunk,
// then the remaining chunk x tile pairs) until the budget runs out. The
// default configuration is measured first and checked against the fp64
// reference; every other candidate must reproduce its output before it is
// timed. Timing uses a problem of the requested T and head dims but at most
// `maxItems` (sequence, head) items: the kernel runs per item, so more items
// only scale the time.
//
// The cache file format and its reader/writer are in TuningCache.cpp
// (shared with linattn-launch).
//
//===----------------------------------------------------------------------===//

#include "linattn/Runtime/Tuning.h"

#include "linattn/Runtime/Npy.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/Config/llvm-config.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/TargetParser/Host.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <unistd.h>

namespace linattn {

namespace ref = linattn::reference;

/// Bumped when the generated code changes in a way that invalidates tuning
/// results.
static const char *const kLinattnVersion = "0.1.0";

//===----------------------------------------------------------------------===//
// Identities and keys
//===----------------------------------------------------------------------===//

std::string compilerVersion() {
  return std::string("linattn ") + kLinattnVersion + " (LLVM " +
         LLVM_VERSION_STRING + ")";
}

std::string deviceFingerprint() {
  static const std::string fp = [] {
    std::string model;
    std::ifstream cpuinfo("/proc/cpuinfo");
    for (std::string line; model.empty() && std::getline(cpuinfo, line);)
      if (line.rfind("model name", 0) == 0) {
        size_t colon = line.find(':');
        if (colon != std::string::npos)
          model = llvm::StringRef(line).substr(colon + 1).trim().str();
      }
    std::string r = "cpu: " + (model.empty() ? "unknown" : model) + " (" +
                    llvm::sys::getHostCPUName().str();
    llvm::StringMap<bool> f = llvm::sys::getHostCPUFeatures();
    for (const char *name :
         {"avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
          "avx512dq", "avx512vnni", "avx512bf16", "avx512fp16", "amx-tile",
          "amx-bf16"})
      if (f.lookup(name))
        r += std::string(" +") + name;
    return r + ")";
  }();
  return fp;
}

static int64_t hostVectorWidth() {
  return llvm::sys::getHostCPUFeatures().lookup("avx512f") ? 16 : 8;
}

std::string specKey(const AttentionSpec &s) {
  std::ostringstream os;
  os.precision(17);
  os << ref::decayKindName(s.decay)
     << " fm=" << ref::featureMapName(s.featureMap);
  if (s.featureCount)
    os << " features=" << s.featureCount;
  if (s.schedule)
    os << " schedule=" << static_cast<int>(*s.schedule) << "/" << s.layer << "/"
       << s.numLayers;
  if (!s.logDecay.empty()) {
    os << " log_decay=";
    for (size_t i = 0; i < s.logDecay.size(); ++i)
      os << (i ? "," : "") << s.logDecay[i];
  }
  if (s.clampMin)
    os << " clamp_min=" << *s.clampMin;
  if (s.normalized)
    os << " norm eps=" << s.eps;
  if (s.scale)
    os << " scale=" << *s.scale;
  os << (s.causal ? "" : " noncausal") << (s.exclusive ? " exclusive" : "")
     << (s.layout == Layout::BTHD ? " bthd" : " bhtd")
     << (s.stateValueMajor ? " value_major" : "") << " " << dtypeName(s.dtype)
     << " gate=" << dtypeName(s.gateDType) << " dk=" << s.keyDim
     << " dv=" << s.valueDim;
  return os.str();
}

static int64_t pow2Ceil(int64_t x) {
  int64_t p = 1;
  while (p < x && p < (int64_t(1) << 40))
    p *= 2;
  return p;
}

std::string shapeClass(const ProblemShape &shape, int threads) {
  return shapeClassOf(shape.seqLen, shape.batch * shape.heads,
                      std::max(threads, 1));
}

TuneConfig TuneConfig::fromOptions(const CompileOptions &o) {
  TuneConfig c;
  c.params = {{"chunk", o.chunkSize},
              {"sub_chunk", o.subChunkSize},
              {"tile_m", o.tileM},
              {"tile_n", o.tileN},
              {"vector_width", o.vectorWidth}};
  return c;
}

CompileOptions TuneConfig::toOptions(const CompileOptions &base) const {
  CompileOptions o = base;
  auto get = [&](const char *name, int64_t &field) {
    auto it = params.find(name);
    if (it != params.end())
      field = it->second;
  };
  get("chunk", o.chunkSize);
  get("sub_chunk", o.subChunkSize);
  get("tile_m", o.tileM);
  get("tile_n", o.tileN);
  get("vector_width", o.vectorWidth);
  return o;
}

//===----------------------------------------------------------------------===//
// Problems: random inputs in the kernel's dtype and layout
//===----------------------------------------------------------------------===//

namespace {

struct Problem {
  ref::Spec refSpec;
  /// Rounded fp64 inputs in [B, H, T, D] order, feature map applied.
  ref::Inputs logical;
  std::map<std::string, npy::Array> arrays;
  npy::Array o, s1, z1;
  Arguments args;
  bool bthd = false;
};

double tolerance(DType t) {
  return t == DType::F32   ? 1e-5
         : t == DType::F64 ? 1e-12
         : t == DType::F16 ? 1e-3
                           : 5e-3;
}

ref::Tensor toLogical(const npy::Array &a, bool swapHT) {
  ref::Tensor t(a.shape);
  t.data = npy::toF64(a);
  return swapHT && t.shape.size() >= 3 ? ref::swapDims(t, 1, 2) : t;
}

npy::Array fromLogical(const ref::Tensor &t, DType dtype, bool swapHT) {
  ref::Tensor u = swapHT && t.shape.size() >= 3 ? ref::swapDims(t, 1, 2) : t;
  return npy::fromF64(u.data, u.shape, toNpy(dtype));
}

TensorView viewOf(npy::Array &a, DType t) {
  return TensorView(a.data.data(), t, a.shape);
}

/// Builds a problem like linattn-run --random does.
void makeProblem(const AttentionSpec &s, int64_t B, int64_t H, int64_t T,
                 uint64_t seed, int threads, Problem &p) {
  p.bthd = s.layout == Layout::BTHD;
  DType stateType = s.dtype == DType::F64 ? DType::F64 : DType::F32;
  ref::RandomDims rd;
  rd.batch = B;
  rd.hq = rd.hk = rd.hv = H;
  rd.seqLen = T;
  rd.dk = s.keyDim;
  rd.dv = s.valueDim;
  ref::RandomOptions ro;
  ro.positive = s.normalized;
  ro.normalizer = s.normalized;
  ref::Inputs r = ref::randomInputs(s.decay, rd, seed, ro);
  auto put = [&](const char *name, const ref::Tensor &t, DType dt, bool swap,
                 std::optional<ref::Tensor> &logical) {
    npy::Array a = fromLogical(t, dt, swap);
    logical = toLogical(a, swap);
    p.arrays[name] = std::move(a);
  };
  std::optional<ref::Tensor> q, k, v, gate, beta, s0, z0;
  put("q", r.q, s.dtype, p.bthd, q);
  put("k", r.k, s.dtype, p.bthd, k);
  put("v", r.v, s.dtype, p.bthd, v);
  bool constFromSpec =
      s.decay == DecayKind::Constant && (s.schedule || !s.logDecay.empty());
  if (r.gate && !constFromSpec)
    put("gate", *r.gate,
        s.decay == DecayKind::Constant ? stateType : s.gateDType,
        p.bthd && r.gate->shape.size() >= 3, gate);
  // Delta rules: beta in (0, 1), as linattn-run --random draws it.
  if (r.beta)
    put("beta", *r.beta, stateType, p.bthd, beta);
  if (r.initialState)
    put("initial_state", *r.initialState, stateType, false, s0);
  if (r.initialNormalizer)
    put("initial_normalizer", *r.initialNormalizer, stateType, false, z0);

  p.logical.q = *q;
  p.logical.k = *k;
  p.logical.v = *v;
  if (s.featureMap != FeatureMap::Identity) {
    ref::Tensor mq, mk;
    ref::applyFeatureMap(s.featureMap, p.logical.q, mq);
    ref::applyFeatureMap(s.featureMap, p.logical.k, mk);
    p.logical.q = mq;
    p.logical.k = mk;
  }
  if (gate) {
    p.logical.gate = *gate;
  } else if (s.decay == DecayKind::Constant) {
    ref::Tensor g({H});
    g.data = !s.logDecay.empty()
                 ? s.logDecay
                 : ref::logDecaySchedule(*s.schedule, H, s.layer, s.numLayers);
    p.logical.gate = g;
  }
  if (beta)
    p.logical.beta = *beta;
  if (s0)
    p.logical.initialState = *s0;
  if (z0)
    p.logical.initialNormalizer = *z0;
  ref::Spec &rs = p.refSpec;
  rs.decay = s.decay;
  rs.normalized = s.normalized;
  rs.eps = s.eps;
  rs.scale =
      s.scale ? *s.scale : 1.0 / std::sqrt(static_cast<double>(s.keyDim));
  rs.causal = s.causal;
  rs.exclusive = s.exclusive;
  rs.stateValueMajor = s.stateValueMajor;

  int64_t dk = s.keyDim, dv = s.valueDim;
  p.o = fromLogical(ref::Tensor({B, H, T, dv}), s.dtype, p.bthd);
  p.s1 = fromLogical(ref::Tensor(s.stateValueMajor
                                     ? std::vector<int64_t>{B, H, dv, dk}
                                     : std::vector<int64_t>{B, H, dk, dv}),
                     stateType, false);
  p.z1 = fromLogical(ref::Tensor({B, H, dk}), stateType, false);
  Arguments &a = p.args;
  a.q = viewOf(p.arrays["q"], s.dtype);
  a.k = viewOf(p.arrays["k"], s.dtype);
  a.v = viewOf(p.arrays["v"], s.dtype);
  if (p.arrays.count("gate"))
    a.gate = viewOf(p.arrays["gate"],
                    s.decay == DecayKind::Constant ? stateType : s.gateDType);
  if (p.arrays.count("beta"))
    a.beta = viewOf(p.arrays["beta"], stateType);
  if (p.arrays.count("initial_state"))
    a.initialState = viewOf(p.arrays["initial_state"], stateType);
  if (p.arrays.count("initial_normalizer"))
    a.initialNormalizer = viewOf(p.arrays["initial_normalizer"], stateType);
  a.output = viewOf(p.o, s.dtype);
  a.finalState = viewOf(p.s1, stateType);
  if (s.normalized)
    a.finalNormalizer = viewOf(p.z1, stateType);
  a.numThreads = threads;
  // Validated once by the first run; the timed runs skip the gate scan.
  a.checkGateValues = true;
}

double secondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t)
      .count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

/// Milliseconds of one kernel->run(args).
double timeRun(const Kernel &k, const Arguments &args) {
  auto t = std::chrono::steady_clock::now();
  k.run(args);
  return secondsSince(t) * 1e3;
}

/// The candidate space of the CPU backend.
struct CPUSpace {
  int64_t width;
  std::vector<int64_t> chunks;
  std::vector<std::pair<int64_t, int64_t>> tiles; // (mr, nr)
  std::vector<int64_t> subs;
  CompileOptions defaults;

  CPUSpace(const AttentionSpec &s, int64_t T) {
    width = hostVectorWidth();
    defaults.vectorWidth = width;
    defaults.tileN = 2 * width;
    // Chunks beyond the sequence only add padding.
    int64_t maxChunk = std::max<int64_t>(16, pow2Ceil(T));
    for (int64_t c : {16, 32, 64, 128})
      if (c <= maxChunk || c == defaults.chunkSize)
        chunks.push_back(c);
    // Register blocks: mr x (nr / width) accumulators, nr / width loads of B
    // and one broadcast of A must fit in the vector register file.
    int64_t regs = width == 16 ? 32 : 16;
    for (int64_t v = 1; v <= 4; ++v) {
      int64_t maxMr = (regs - v - 1) / v;
      std::set<int64_t> mrs;
      for (int64_t mr : {maxMr, maxMr * 2 / 3, maxMr / 2, int64_t(4)})
        if (mr >= 2 && mr <= std::min<int64_t>(maxMr, 16))
          mrs.insert(mr);
      for (auto it = mrs.rbegin(); it != mrs.rend(); ++it)
        tiles.push_back({*it, v * width});
    }
    if (s.decay == DecayKind::Vector)
      subs = {8, 16, 32};
  }

  bool legal(const CompileOptions &o) const {
    if (o.chunkSize % o.subChunkSize != 0)
      return false;
    return o.subChunkSize % 16 == 0 || 16 % o.subChunkSize == 0;
  }
};

/// Progress output.
class Progress {
public:
  explicit Progress(Verbosity v) : on(progressEnabled(v)) {}
  template <typename... Ts> void line(const char *fmt, Ts &&...args) {
    if (!on)
      return;
    llvm::errs() << "[linattn tune] "
                 << llvm::formatv(fmt, std::forward<Ts>(args)...) << "\n";
    llvm::errs().flush();
  }

private:
  bool on;
};

} // namespace

//===----------------------------------------------------------------------===//
// The tuner
//===----------------------------------------------------------------------===//

std::optional<TuneResult> tune(const AttentionSpec &spec,
                               const ProblemShape &shape,
                               const TuneOptions &options, std::string *error) {
  auto fail = [&](const std::string &msg) -> std::optional<TuneResult> {
    if (error)
      *error = msg;
    return std::nullopt;
  };
  if (shape.batch <= 0 || shape.heads <= 0 || shape.seqLen <= 0)
    return fail("tune: batch, heads and seqLen must be positive, got " +
                std::to_string(shape.batch) + ", " +
                std::to_string(shape.heads) + ", " +
                std::to_string(shape.seqLen));
  // The tuner's random problems carry no feature-map weights.
  if (isWidthChangingMap(spec.featureMap))
    return fail(std::string("tune: feature map '") +
                ref::featureMapName(spec.featureMap) +
                "' is applied in the kernel and cannot be tuned yet; compile "
                "it with explicit options");
  if (!(options.budgetSeconds > 0))
    return fail("tune: the budget must be positive, got " +
                std::to_string(options.budgetSeconds) + " s");
  auto start = std::chrono::steady_clock::now();
  Progress progress(options.verbosity);
  ScopedNoKernelDiskWrites noDisk;
  CPUSpace space(spec, shape.seqLen);
  int reps = std::max(options.reps, 1);
  int threads = std::max(options.numThreads, 1);
  TuneResult result;

  // 1. The default configuration, checked against the fp64 reference on a
  //    short problem.
  std::string err;
  std::unique_ptr<Kernel> defaultKernel =
      Kernel::compile(spec, space.defaults, &err);
  if (!defaultKernel)
    return fail("tune: the default configuration does not compile: " + err);
  {
    Problem small;
    makeProblem(spec, 1, std::min<int64_t>(shape.heads, 2),
                std::min<int64_t>(shape.seqLen, 256), options.seed, threads,
                small);
    if (std::string e = defaultKernel->run(small.args); !e.empty())
      return fail("tune: " + e);
    ref::Outputs want;
    if (std::string e =
            ref::run(small.refSpec, small.logical, ref::Form::Chunked, want);
        !e.empty())
      return fail("tune: reference: " + e);
    double ro = ref::ratio(toLogical(small.o, small.bthd), want.o);
    double rs = ref::ratio(toLogical(small.s1, false), want.finalState);
    double tol = tolerance(spec.dtype);
    if (!(ro <= tol && rs <= tol))
      return fail(llvm::formatv("tune: the default configuration fails the "
                                "reference check (output ratio {0}, state "
                                "ratio {1}, tolerance {2})",
                                ro, rs, tol));
  }

  // 2. The timing problem and the baseline output.
  int64_t items =
      std::max<int64_t>(1, std::min(shape.batch * shape.heads,
                                    std::max<int64_t>(options.maxItems, 1)));
  Problem p;
  makeProblem(spec, 1, items, shape.seqLen, options.seed + 1, threads, p);
  if (std::string e = defaultKernel->run(p.args); !e.empty())
    return fail("tune: " + e);
  p.args.checkGateValues = false; // checked by the run above
  ref::Tensor baseO = toLogical(p.o, p.bthd);
  ref::Tensor baseS = toLogical(p.s1, false);
  double verifyTol = 4 * tolerance(spec.dtype);

  auto measure = [&](const Kernel &k) {
    std::vector<double> ms;
    timeRun(k, p.args); // warm-up
    for (int i = 0; i < reps; ++i)
      ms.push_back(timeRun(k, p.args));
    return median(ms);
  };

  TuneConfig defaultConfig = TuneConfig::fromOptions(space.defaults);
  progress.line("{0}: {1}, T={2}, {3} item(s), {4} thread(s), budget {5} s",
                deviceFingerprint(), specKey(spec), shape.seqLen, items,
                threads, options.budgetSeconds);
  double defaultMs = measure(*defaultKernel);
  CompileOptions best = space.defaults;
  double bestMs = defaultMs;
  std::unique_ptr<Kernel> bestKernel;
  result.tried = 1;
  progress.line("[1] {0} (default): {1:F3} ms", defaultConfig.describe(),
                defaultMs);

  // 3. Staged search.
  std::set<std::string> seen = {defaultConfig.describe()};
  double costEstimate = secondsSince(start) / 2;
  bool outOfTime = false;
  auto tryCandidate = [&](CompileOptions o) {
    if (outOfTime || !space.legal(o))
      return;
    std::string name = TuneConfig::fromOptions(o).describe();
    if (!seen.insert(name).second)
      return;
    if (secondsSince(start) + costEstimate > options.budgetSeconds) {
      outOfTime = true;
      progress.line("budget reached after {0} candidates", result.tried);
      return;
    }
    auto t0 = std::chrono::steady_clock::now();
    ++result.tried;
    std::string e;
    std::unique_ptr<Kernel> k = Kernel::compile(spec, o, &e);
    if (!k) {
      ++result.failed;
      progress.line("[{0}] {1}: dropped, does not compile: {2}", result.tried,
                    name, e);
      return;
    }
    if (std::string re = k->run(p.args); !re.empty()) {
      ++result.failed;
      progress.line("[{0}] {1}: dropped, run failed: {2}", result.tried, name,
                    re);
      return;
    }
    double ro = ref::ratio(toLogical(p.o, p.bthd), baseO);
    double rs = ref::ratio(toLogical(p.s1, false), baseS);
    if (!(ro <= verifyTol && rs <= verifyTol)) {
      ++result.failed;
      progress.line("[{0}] {1}: dropped, differs from the default (output "
                    "ratio {2}, state ratio {3})",
                    result.tried, name, ro, rs);
      return;
    }
    double ms = measure(*k);
    if (ms < bestMs) {
      bestMs = ms;
      best = k->options();
      bestKernel = std::move(k);
    }
    costEstimate = std::max(costEstimate * 0.5, secondsSince(t0));
    progress.line("[{0}] {1}: {2:F3} ms   best {3:F3} ms ({4})", result.tried,
                  name, ms, bestMs, TuneConfig::fromOptions(best).describe());
  };
  for (int64_t c : space.chunks) {
    CompileOptions o = space.defaults;
    o.chunkSize = c;
    o.subChunkSize = std::min(o.subChunkSize, c);
    tryCandidate(o);
  }
  for (auto [mr, nr] : space.tiles) {
    CompileOptions o = best;
    o.tileM = mr;
    o.tileN = nr;
    tryCandidate(o);
  }
  for (int64_t sub : space.subs) {
    CompileOptions o = best;
    o.subChunkSize = sub;
    tryCandidate(o);
  }
  // Remaining pairs, nearest chunk sizes to the best first.
  std::vector<int64_t> chunks = space.chunks;
  int64_t bc = best.chunkSize;
  std::stable_sort(chunks.begin(), chunks.end(), [&](int64_t a, int64_t b) {
    return std::abs(std::log2(double(a) / bc)) <
           std::abs(std::log2(double(b) / bc));
  });
  CompileOptions anchor = best;
  for (int64_t c : chunks)
    for (auto [mr, nr] : space.tiles) {
      CompileOptions o = anchor;
      o.chunkSize = c;
      o.subChunkSize = std::min(o.subChunkSize, c);
      o.tileM = mr;
      o.tileN = nr;
      tryCandidate(o);
    }

  // 4. Re-measure the winner against the default, interleaved, so that a
  //    lucky sample cannot make the result slower than the default.
  if (bestKernel) {
    std::vector<double> d, w;
    timeRun(*defaultKernel, p.args);
    timeRun(*bestKernel, p.args);
    for (int i = 0; i < reps; ++i) {
      d.push_back(timeRun(*defaultKernel, p.args));
      w.push_back(timeRun(*bestKernel, p.args));
    }
    defaultMs = median(d);
    bestMs = median(w);
    if (bestMs >= defaultMs) {
      progress.line("re-measured: {0} {1:F3} ms vs default {2:F3} ms; "
                    "keeping the default",
                    TuneConfig::fromOptions(best).describe(), bestMs,
                    defaultMs);
      best = space.defaults;
      bestMs = defaultMs;
    }
  }
  result.options = best;
  result.bestMs = bestMs;
  result.defaultMs = defaultMs;
  result.seconds = secondsSince(start);
  progress.line("done in {0:F1} s: {1} at {2:F3} ms (default {3:F3} ms, "
                "{4:F2}x), {5} tried, {6} dropped",
                result.seconds, TuneConfig::fromOptions(best).describe(),
                bestMs, defaultMs, defaultMs / bestMs, result.tried,
                result.failed);
  return result;
}

//===----------------------------------------------------------------------===//
// Tuning cache file
//===----------------------------------------------------------------------===//

std::map<std::string, TuningEntry> readTuningFile(const std::string &file,
                                                  std::string *problem) {
  return readTuningCacheFile(file, compilerVersion(), problem);
}

std::string storeTuningEntries(const std::string &file,
                               const std::map<std::string, TuningEntry> &e) {
  return storeTuningCacheEntries(file, compilerVersion(), e);
}

std::string exportTuning(const std::string &outFile,
                         const std::string &cacheFile, int *count) {
  std::string file = cacheFile.empty() ? defaultTuningCacheFile() : cacheFile;
  if (file.empty())
    return "no cache directory (set LINATTN_CACHE_DIR)";
  std::string problem;
  std::map<std::string, TuningEntry> entries = readTuningFile(file, &problem);
  if (entries.empty() && !problem.empty())
    return "nothing to export: " + problem;
  if (count)
    *count = static_cast<int>(entries.size());
  return writeTuningCacheFile(outFile, compilerVersion(), entries);
}

std::string importTuning(const std::string &inFile,
                         const std::string &cacheFile, int *count) {
  std::string file = cacheFile.empty() ? defaultTuningCacheFile() : cacheFile;
  if (file.empty())
    return "no cache directory (set LINATTN_CACHE_DIR)";
  std::string problem;
  std::map<std::string, TuningEntry> entries = readTuningFile(inFile, &problem);
  if (!problem.empty())
    return "cannot import: " + problem;
  if (count)
    *count = static_cast<int>(entries.size());
  return storeTuningEntries(file, entries);
}

//===----------------------------------------------------------------------===//
// Cache-aware entry points
//===----------------------------------------------------------------------===//

std::optional<CompileOptions>
tunedOptions(const AttentionSpec &spec, const ProblemShape &shape,
             TuneMode mode, const TuneOptions &options, std::string *error,
             TuneResult *result) {
  TuneResult local;
  TuneResult &r = result ? *result : local;
  r = TuneResult();
  if (mode == TuneMode::Off)
    return r.options;
  std::string file =
      options.cacheFile.empty() ? defaultTuningCacheFile() : options.cacheFile;
  std::string device = deviceFingerprint(), sk = specKey(spec),
              sc = shapeClass(shape, options.numThreads);
  std::string key = tuningKey(device, sk, sc);
  Progress progress(options.verbosity);
  if (mode != TuneMode::Force && !file.empty()) {
    std::string problem;
    std::map<std::string, TuningEntry> entries = readTuningFile(file, &problem);
    if (!problem.empty() && llvm::sys::fs::exists(file))
      progress.line("ignoring the tuning cache: {0}", problem);
    auto it = entries.find(key);
    if (it != entries.end() && it->second.config.backend == "cpu") {
      r.options = it->second.config.toOptions();
      r.bestMs = it->second.ms;
      r.defaultMs = it->second.defaultMs;
      r.fromCache = true;
      progress.line("cached: {0} for {1}", it->second.config.describe(), sc);
      return r.options;
    }
  }
  if (mode == TuneMode::UseOnly)
    return r.options;
  std::optional<TuneResult> tuned = tune(spec, shape, options, error);
  if (!tuned)
    return std::nullopt;
  r = *tuned;
  if (!file.empty()) {
    TuningEntry e;
    e.device = device;
    e.spec = sk;
    e.shape = sc;
    e.config = TuneConfig::fromOptions(r.options);
    e.ms = r.bestMs;
    e.defaultMs = r.defaultMs;
    e.tuneSeconds = r.seconds;
    if (std::string err = storeTuningEntries(file, {{key, e}}); !err.empty())
      progress.line("could not store the tuning result: {0}", err);
  }
  return r.options;
}

std::unique_ptr<Kernel> compileTuned(const AttentionSpec &spec,
                                     const ProblemShape &shape, TuneMode mode,
                                     const TuneOptions &options,
                                     std::string *error, TuneResult *result) {
  TuneResult local;
  TuneResult &r = result ? *result : local;
  std::optional<CompileOptions> o =
      tunedOptions(spec, shape, mode, options, error, &r);
  if (!o)
    return nullptr;
  std::unique_ptr<Kernel> k = Kernel::compile(spec, *o, error);
  if (!k && r.fromCache) {
    // A cached entry that no longer compiles (hand-edited or imported):
    // fall back to the defaults rather than failing the run.
    r.fromCache = false;
    r.options = CompileOptions();
    k = Kernel::compile(spec, CompileOptions(), error);
  }
  return k;
}

} // namespace linattn
