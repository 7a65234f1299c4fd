//===- linattn-run.cpp - Run a linattn kernel on .npy tensors --*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
//
// The language-neutral way to run, check and time a kernel:
//
//   linattn-run spec.mlir --in q=q.npy --in k=k.npy --in v=v.npy \
//       --out o=o.npy --out final_state=s.npy --check --bench
//   linattn-run --decay=vector --dk=128 --dv=128 --random=1,8,4096 --bench
//
// The spec is the first linattn.attention op of an .mlir file, or given by
// flags. Inputs come from .npy files or are drawn at random (--random=B,H,T).
// --check runs the fp64 reference on the same (rounded) inputs and compares
// with the tolerances of MATH.md 9.7; --bench times the kernel.
//
//===----------------------------------------------------------------------===//

#include "linattn/Reference/Reference.h"
#include "linattn/Runtime/GPUCompile.h"
#include "linattn/Runtime/Npy.h"
#include "linattn/Runtime/Runtime.h"
#include "linattn/Runtime/Tuning.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>

using namespace linattn;
namespace cl = llvm::cl;
namespace ref = linattn::reference;

static cl::OptionCategory cat("linattn-run options");
static cl::opt<std::string> specFile(cl::Positional, cl::desc("[spec.mlir]"),
                                     cl::init(""), cl::cat(cat));
static cl::list<std::string>
    inputs("in",
           cl::desc("Input NAME=FILE.npy (q, k, v, gate, beta, "
                    "initial_state, initial_normalizer, offsets, map_weight, "
                    "map_bias, key_map_weight, key_map_bias)"),
           cl::cat(cat));
static cl::list<std::string>
    outputs("out",
            cl::desc("Output NAME=FILE.npy (o, final_state, final_normalizer)"),
            cl::cat(cat));
static cl::opt<std::string>
    randomDims("random",
               cl::desc("Random inputs of logical shape B,H,T (or "
                        "B,Hq,Hk,Hv,T) instead of --in files"),
               cl::init(""), cl::cat(cat));
static cl::opt<unsigned> seed("seed", cl::desc("Seed of --random"), cl::init(1),
                              cl::cat(cat));
static cl::opt<bool> check("check", cl::desc("Compare with the fp64 reference"),
                           cl::cat(cat));
static cl::opt<bool> bench("bench", cl::desc("Time the kernel"), cl::cat(cat));
static cl::opt<int> reps("reps", cl::desc("Timed repetitions of --bench"),
                         cl::init(10), cl::cat(cat));
static cl::opt<int> warmup("warmup", cl::desc("Untimed runs before --bench"),
                           cl::init(2), cl::cat(cat));
static cl::opt<int> threads("num-threads", cl::desc("Threads (0: all cores)"),
                            cl::init(0), cl::cat(cat));
static cl::opt<bool> printIR("print-ir",
                             cl::desc("Print the kernel's linattn IR"),
                             cl::cat(cat));
// Spec flags (used without an .mlir file).
static cl::opt<std::string>
    decayFlag("decay",
              cl::desc("none|constant|scalar|vector|delta|gated_delta"),
              cl::init("none"), cl::cat(cat));
static cl::opt<std::string>
    scheduleFlag("schedule",
                 cl::desc("Constant decay schedule: retnet|retnet_linspace|"
                          "transnormer|lightning"),
                 cl::init(""), cl::cat(cat));
static cl::opt<std::string> featureFlag(
    "feature-map",
    cl::desc("identity|elu_plus_one|relu (fused), or taylor2|"
             "taylor2_symmetric|hedgehog|hedgehog_joint|performer|"
             "performer_hyperbolic (applied to q and k in the kernel; --dk is "
             "then the input width d)"),
    cl::init("identity"), cl::cat(cat));
static cl::opt<int64_t>
    featuresFlag("features",
                 cl::desc("Feature count of a map with weights: f (hedgehog, "
                          "weight [d, f]) or m (performer, weight [m, d])"),
                 cl::init(0), cl::cat(cat));
static cl::opt<std::string> dtypeFlag("dtype", cl::desc("f32|bf16|f16|f64"),
                                      cl::init("f32"), cl::cat(cat));
static cl::opt<std::string> layoutFlag("layout", cl::desc("bhtd|bthd"),
                                       cl::init("bhtd"), cl::cat(cat));
static cl::opt<int64_t> dkFlag("dk", cl::desc("Key dim"), cl::init(64),
                               cl::cat(cat));
static cl::opt<int64_t> dvFlag("dv", cl::desc("Value dim"), cl::init(64),
                               cl::cat(cat));
static cl::opt<bool> normalizedFlag("normalized",
                                    cl::desc("Katharopoulos normalization"),
                                    cl::cat(cat));
static cl::opt<bool> exclusiveFlag("exclusive", cl::desc("Exclusive read"),
                                   cl::cat(cat));
static cl::opt<bool> nonCausalFlag("non-causal", cl::desc("Bidirectional"),
                                   cl::cat(cat));
// Code generation.
static cl::opt<int64_t> chunkSize("chunk-size", cl::desc("Chunk size"),
                                  cl::init(0), cl::cat(cat));
static cl::opt<int64_t> subChunkSize("sub-chunk-size",
                                     cl::desc("Vector-gate sub-chunk size"),
                                     cl::init(0), cl::cat(cat));
static cl::opt<int64_t> tileM("tile-m", cl::desc("Register block rows"),
                              cl::init(0), cl::cat(cat));
static cl::opt<int64_t> tileN("tile-n", cl::desc("Register block columns"),
                              cl::init(0), cl::cat(cat));
static cl::opt<int64_t> vectorWidth("vector-width",
                                    cl::desc("f32 lanes (0: host)"),
                                    cl::init(0), cl::cat(cat));

// GPU ahead-of-time compilation.
static cl::opt<std::string>
    emitAOT("emit-aot",
            cl::desc("Compile the spec for the GPU and write DIR/NAME.ptx and "
                     "DIR/NAME.json (docs/gpu-kernel-abi.md), then exit"),
            cl::value_desc("DIR"), cl::cat(cat));
static cl::opt<std::string> aotName("name",
                                    cl::desc("File name stem of --emit-aot"),
                                    cl::init("linattn_fwd"), cl::cat(cat));
static cl::opt<std::string> chip("chip", cl::desc("GPU chip of --emit-aot"),
                                 cl::init("sm_80"), cl::cat(cat));
static cl::opt<std::string>
    mmaKind("mma",
            cl::desc("GPU tensor-core instructions of --emit-aot: auto (wgmma "
                     "on sm_90 where the shape allows), sync or wgmma"),
            cl::init("auto"), cl::cat(cat));
static cl::opt<int64_t>
    blockV("block-v",
           cl::desc("GPU value columns per thread block (0: default)"),
           cl::init(0), cl::cat(cat));
static cl::opt<int64_t>
    warps("warps", cl::desc("GPU warps per thread block (0: default)"),
          cl::init(0), cl::cat(cat));
static cl::opt<int64_t>
    stages("stages",
           cl::desc("GPU pipeline stages, chunks in flight through cp.async "
                    "(0: default, 1)"),
           cl::init(0), cl::cat(cat));
static cl::opt<bool> emulation(
    "emulation",
    cl::desc("With --emit-aot: also write DIR/NAME.emu.ll and build "
             "DIR/NAME.emu.so (and one per --aot-variants=tune variant), the "
             "same kernels as host code for the CUDA driver emulator "
             "(docs/gpu-emulator.md; needs clang)"),
    cl::init(false), cl::cat(cat));
static cl::opt<std::string> aotVariants(
    "aot-variants",
    cl::desc("With --emit-aot: 'tune' also writes every legal variant "
             "(chunk, block-v, warps, stages) and NAME.variants.json for "
             "linattn-launch --tune; 'default' (default) writes one kernel"),
    cl::init("default"), cl::cat(cat));
// Tuning and caches.
static cl::opt<bool> tuneFlag("tune",
                              cl::desc("Tune for this shape now and store the "
                                       "result (same as --tune-mode=force)"),
                              cl::cat(cat));
static cl::opt<std::string>
    tuneModeFlag("tune-mode",
                 cl::desc("off|use-only|tune-if-missing|force (default: "
                          "$LINATTN_TUNE, else off)"),
                 cl::init(""), cl::cat(cat));
static cl::opt<double> tuneBudget("tune-budget",
                                  cl::desc("Tuning budget in seconds"),
                                  cl::init(30), cl::cat(cat));
static cl::opt<int> tuneThreads("tune-threads",
                                cl::desc("Threads of the tuning runs"),
                                cl::init(1), cl::cat(cat));
static cl::opt<bool> quiet("quiet", cl::desc("No tuning progress output"),
                           cl::cat(cat));
static cl::opt<bool> verbose("verbose",
                             cl::desc("Tuning progress even when stderr is "
                                      "not a terminal"),
                             cl::cat(cat));
static cl::opt<std::string>
    exportTuningFlag("export-tuning",
                     cl::desc("Write the tuning cache's entries to FILE"),
                     cl::init(""), cl::cat(cat));
static cl::opt<std::string>
    importTuningFlag("import-tuning",
                     cl::desc("Merge the tuning results in FILE into the "
                              "cache"),
                     cl::init(""), cl::cat(cat));

static cl::opt<bool> compareDefault(
    "compare-default",
    cl::desc("With --bench and a tune mode: also time the default "
             "configuration, interleaved with the tuned one"),
    cl::cat(cat));

static int fail(const std::string &msg) {
  llvm::errs() << "linattn-run: error: " << msg << "\n";
  return 1;
}

static std::optional<DType> parseDType(const std::string &s) {
  if (s == "f32")
    return DType::F32;
  if (s == "bf16")
    return DType::BF16;
  if (s == "f16")
    return DType::F16;
  if (s == "f64")
    return DType::F64;
  return std::nullopt;
}

static std::optional<DType> fromNpy(npy::DType t) {
  switch (t) {
  case npy::DType::F32:
    return DType::F32;
  case npy::DType::BF16:
    return DType::BF16;
  case npy::DType::F16:
    return DType::F16;
  case npy::DType::F64:
    return DType::F64;
  default:
    return std::nullopt;
  }
}

static std::string specFromFlags(AttentionSpec &s) {
  auto decay = ref::parseDecayKind(decayFlag);
  if (!decay)
    return "unknown --decay '" + decayFlag + "'";
  s.decay = *decay;
  if (!scheduleFlag.empty()) {
    s.schedule = ref::parseSchedule(scheduleFlag);
    if (!s.schedule)
      return "unknown --schedule '" + scheduleFlag + "'";
    if (s.schedule == Schedule::Lightning)
      s.numLayers = 2;
  }
  bool foundMap = false;
  for (FeatureMap m :
       {FeatureMap::Identity, FeatureMap::EluPlusOne, FeatureMap::Relu,
        FeatureMap::Taylor2, FeatureMap::Taylor2Symmetric, FeatureMap::Hedgehog,
        FeatureMap::HedgehogJoint, FeatureMap::Performer,
        FeatureMap::PerformerHyperbolic})
    if (featureFlag == ref::featureMapName(m)) {
      s.featureMap = m;
      foundMap = true;
    }
  if (!foundMap)
    return "unknown --feature-map '" + featureFlag + "'";
  s.featureCount = featuresFlag;
  auto dt = parseDType(dtypeFlag);
  if (!dt)
    return "unknown --dtype '" + dtypeFlag + "'";
  s.dtype = *dt;
  if (layoutFlag != "bhtd" && layoutFlag != "bthd")
    return "unknown --layout '" + layoutFlag + "'";
  s.layout = layoutFlag == "bthd" ? Layout::BTHD : Layout::BHTD;
  s.keyDim = dkFlag;
  s.valueDim = dvFlag;
  s.normalized = normalizedFlag;
  if (s.normalized)
    s.eps = 1e-6;
  s.exclusive = exclusiveFlag;
  s.causal = !nonCausalFlag;
  return "";
}

/// An owned tensor in the kernel's dtype plus its fp64 copy (bhtd order for
/// q/k/v-like tensors) for the reference.
struct Slot {
  npy::Array array;
  ref::Tensor logical; // reference view (bhtd)
};

static ref::Tensor toLogical(const npy::Array &a, bool swapHT) {
  ref::Tensor t(a.shape);
  t.data = npy::toF64(a);
  return swapHT && t.shape.size() >= 3 ? ref::swapDims(t, 1, 2) : t;
}

static npy::Array fromLogical(const ref::Tensor &t, DType dtype, bool swapHT) {
  ref::Tensor u = swapHT && t.shape.size() >= 3 ? ref::swapDims(t, 1, 2) : t;
  return npy::fromF64(u.data, u.shape, toNpy(dtype));
}

static TensorView viewOf(npy::Array &a, DType t) {
  return TensorView(a.data.data(), t, a.shape);
}

/// Random weights for a map with weights (shared by all heads): Hedgehog
/// W ~ N(0, 1/d) and b ~ N(0, 0.1^2); Performer orthogonal random features
/// (blocks of d orthonormal rows, each rescaled to the norm of a d-dim
/// Gaussian vector, MATH.md 3).
static void randomMapWeights(const AttentionSpec &s, uint64_t seed,
                             ref::Tensor &weight, ref::Tensor &bias) {
  std::mt19937_64 rng(seed * 7919 + 17);
  int64_t d = s.keyDim;
  int64_t f = s.featureMap == FeatureMap::HedgehogJoint && !s.featureCount
                  ? d
                  : s.featureCount;
  if (s.featureMap == FeatureMap::Hedgehog ||
      s.featureMap == FeatureMap::HedgehogJoint) {
    weight = ref::randn({d, f}, rng, 1.0 / std::sqrt(static_cast<double>(d)));
    bias = ref::randn({f}, rng, 0.1);
    return;
  }
  weight = ref::Tensor({f, d});
  for (int64_t r0 = 0; r0 < f; r0 += d) {
    ref::Tensor g = ref::randn({d, d}, rng);
    // Gram-Schmidt on the rows of g.
    for (int64_t i = 0; i < d; ++i) {
      double *gi = &g.data[static_cast<size_t>(i * d)];
      for (int64_t j = 0; j < i; ++j) {
        const double *gj = &g.data[static_cast<size_t>(j * d)];
        double dot = 0;
        for (int64_t c = 0; c < d; ++c)
          dot += gi[c] * gj[c];
        for (int64_t c = 0; c < d; ++c)
          gi[c] -= dot * gj[c];
      }
      double n = 0;
      for (int64_t c = 0; c < d; ++c)
        n += gi[c] * gi[c];
      n = std::sqrt(n);
      for (int64_t c = 0; c < d; ++c)
        gi[c] /= n;
    }
    for (int64_t i = 0; i < d && r0 + i < f; ++i) {
      ref::Tensor z = ref::randn({d}, rng);
      double chi = 0;
      for (double x : z.data)
        chi += x * x;
      chi = std::sqrt(chi);
      for (int64_t c = 0; c < d; ++c)
        weight.data[static_cast<size_t>((r0 + i) * d + c)] =
            g.data[static_cast<size_t>(i * d + c)] * chi;
    }
  }
  bias = ref::Tensor();
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions(cat);
  cl::ParseCommandLineOptions(
      argc, argv,
      "linattn-run: compile a linear-attention spec for this CPU and run it "
      "on .npy tensors\n");

  if (!importTuningFlag.empty()) {
    int n = 0;
    if (std::string e = importTuning(importTuningFlag, "", &n); !e.empty())
      return fail(e);
    llvm::outs() << "imported " << n << " tuning result(s) from "
                 << importTuningFlag << "\n";
  }
  if (!exportTuningFlag.empty()) {
    int n = 0;
    if (std::string e = exportTuning(exportTuningFlag, "", &n); !e.empty())
      return fail(e);
    llvm::outs() << "exported " << n << " tuning result(s) to "
                 << exportTuningFlag << "\n";
  }
  if ((!importTuningFlag.empty() || !exportTuningFlag.empty()) &&
      specFile.empty() && randomDims.empty() && inputs.empty())
    return 0;

  TuneMode tuneMode = tuneModeFromEnvironment(TuneMode::Off);
  if (!tuneModeFlag.empty()) {
    auto m = parseTuneMode(tuneModeFlag);
    if (!m)
      return fail("unknown --tune-mode '" + tuneModeFlag +
                  "' (off, use-only, tune-if-missing, force)");
    tuneMode = *m;
  }
  if (tuneFlag)
    tuneMode = TuneMode::Force;
  if (tuneMode != TuneMode::Off &&
      (chunkSize || subChunkSize || tileM || tileN || vectorWidth))
    return fail(std::string("--tune-mode=") + tuneModeName(tuneMode) +
                " picks the chunk and tile sizes; drop --chunk-size, "
                "--sub-chunk-size, --tile-m, --tile-n and --vector-width");
  if (!(tuneBudget > 0))
    return fail("--tune-budget must be positive, got " +
                std::to_string(tuneBudget.getValue()));

  AttentionSpec spec;
  CompileOptions options;
  std::vector<std::vector<int64_t>> opShapes;
  if (!specFile.empty()) {
    auto buf = llvm::MemoryBuffer::getFileOrSTDIN(specFile);
    if (!buf)
      return fail("cannot read '" + specFile +
                  "': " + buf.getError().message());
    if (std::string e =
            parseSpec((*buf)->getBuffer().str(), spec, &options, &opShapes);
        !e.empty())
      return fail(specFile + ": " + e);
  } else if (std::string e = specFromFlags(spec); !e.empty()) {
    return fail(e);
  }
  if (chunkSize)
    options.chunkSize = chunkSize;
  if (subChunkSize)
    options.subChunkSize = subChunkSize;
  if (tileM)
    options.tileM = tileM;
  if (tileN)
    options.tileN = tileN;
  options.vectorWidth = vectorWidth;

  if (emulation && emitAOT.empty())
    return fail("--emulation writes next to --emit-aot's kernel; give "
                "--emit-aot=DIR");
  if (!emitAOT.empty()) {
    GPUCompileOptions gpu;
    gpu.chip = chip;
    gpu.mma = mmaKind;
    gpu.chunkSize = chunkSize;
    gpu.blockV = blockV;
    gpu.warps = warps;
    gpu.stages = stages;
    auto cacheLine = [] {
      GPUKernelCacheStats st = gpuKernelCacheStats();
      llvm::outs() << "kernel cache: " << st.compiled << " compiled, "
                   << st.diskHits << " loaded from disk\n";
    };
    if (aotVariants == "tune") {
      int written = 0, skipped = 0;
      if (std::string e = emitAOTVariants(spec, gpu, emitAOT, aotName, &written,
                                          &skipped, emulation);
          !e.empty())
        return fail(e);
      llvm::outs() << "wrote " << written << " variants (" << skipped
                   << " illegal for " << gpu.chip << ", skipped) and "
                   << emitAOT << "/" << aotName << ".variants.json\n";
      cacheLine();
      return 0;
    }
    if (aotVariants != "default")
      return fail("--aot-variants expects 'default' or 'tune', got '" +
                  aotVariants + "'");
    GPUKernelImage image;
    if (std::string e = compileGPU(spec, gpu, aotName, image); !e.empty())
      return fail(e);
    if (std::string e = writeAOT(image, emitAOT, aotName); !e.empty())
      return fail(e);
    if (emulation)
      if (std::string e = writeEmulation(spec, gpu, emitAOT, aotName);
          !e.empty())
        return fail(e);
    llvm::outs() << "wrote " << emitAOT << "/" << aotName << ".ptx"
                 << (emulation ? ", .emu.so" : "") << " and .json ("
                 << image.chip << ", " << (image.wgmma ? "wgmma" : "mma.sync")
                 << ", " << image.threads << " threads, block-v "
                 << image.blockV << ", " << image.sharedBytes
                 << " bytes of shared memory)\n";
    cacheLine();
    return 0;
  }
  bool bthd = spec.layout == Layout::BTHD;
  DType stateType = spec.dtype == DType::F64 ? DType::F64 : DType::F32;

  // Inputs.
  std::map<std::string, Slot> in;
  std::optional<std::vector<int64_t>> offsets;
  for (const std::string &arg : inputs) {
    size_t eq = arg.find('=');
    if (eq == std::string::npos)
      return fail("--in expects NAME=FILE.npy, got '" + arg + "'");
    std::string name = arg.substr(0, eq), path = arg.substr(eq + 1);
    static const char *known[] = {"q",
                                  "k",
                                  "v",
                                  "gate",
                                  "beta",
                                  "initial_state",
                                  "initial_normalizer",
                                  "offsets",
                                  "map_weight",
                                  "map_bias",
                                  "key_map_weight",
                                  "key_map_bias"};
    if (std::find_if(std::begin(known), std::end(known), [&](const char *k) {
          return name == k;
        }) == std::end(known))
      return fail("unknown input '" + name + "'");
    npy::Array a;
    if (std::string e = npy::load(path, a); !e.empty())
      return fail(e);
    if (name == "offsets") {
      std::vector<double> v = npy::toF64(a);
      offsets = std::vector<int64_t>(v.begin(), v.end());
      continue;
    }
    bool qkv = name == "q" || name == "k" || name == "v";
    // Feature-map parameters are in the state type (f32, f64 for f64).
    auto dt = fromNpy(a.dtype);
    if (!dt)
      return fail(path + ": dtype " + npy::toString(a.dtype) +
                  " is not a float type");
    DType want = qkv ? spec.dtype
                 : name == "gate" && spec.decay != DecayKind::Constant
                     ? spec.gateDType
                     : stateType;
    if (name == "gate" && spec.decay != DecayKind::Constant &&
        *dt == spec.dtype)
      want = spec.gateDType = spec.dtype;
    // beta may be f32 or the input dtype (the runtime converts it).
    if (name == "beta" && (*dt == DType::F32 || *dt == spec.dtype))
      want = *dt;
    if (*dt != want)
      return fail(path + ": " + name + " has dtype " + dtypeName(*dt) +
                  ", expected " + dtypeName(want));
    Slot s;
    s.logical = toLogical(a, bthd && (qkv || name == "gate" || name == "beta"));
    s.array = std::move(a);
    in[name] = std::move(s);
  }
  if (!randomDims.empty()) {
    ref::RandomDims rd;
    if (std::string e = ref::parseRandomDims(randomDims, rd); !e.empty())
      return fail(e);
    rd.dk = spec.keyDim;
    rd.dv = spec.valueDim;
    ref::RandomOptions ro;
    // The width-changing maps take raw q and k; their normalized forms
    // need no positive inputs.
    ro.positive = spec.normalized && !isWidthChangingMap(spec.featureMap);
    ro.normalizer = spec.normalized;
    ref::Inputs r = ref::randomInputs(spec.decay, rd, seed, ro);
    auto put = [&](const char *name, const ref::Tensor &t, DType dt,
                   bool swap) {
      if (in.count(name))
        return;
      Slot s;
      s.array = fromLogical(t, dt, swap);
      s.logical = toLogical(s.array, swap); // rounded values
      in[name] = std::move(s);
    };
    put("q", r.q, spec.dtype, bthd);
    put("k", r.k, spec.dtype, bthd);
    put("v", r.v, spec.dtype, bthd);
    if (r.gate && !(spec.decay == DecayKind::Constant &&
                    (spec.schedule || !spec.logDecay.empty())))
      put("gate", *r.gate,
          spec.decay == DecayKind::Constant ? stateType : spec.gateDType,
          bthd && r.gate->shape.size() >= 3);
    // Delta rules: beta in (0, 1), L2-normalized q and k (randomInputs).
    if (r.beta)
      put("beta", *r.beta, stateType, bthd);
    bool wide = featureDim(spec) != spec.keyDim;
    if (r.initialState && !wide)
      put("initial_state", *r.initialState, stateType, false);
    if (r.initialNormalizer) {
      // A normalizer of width Dphi: positive, like the drawn one.
      ref::Tensor z = *r.initialNormalizer;
      if (wide) {
        std::mt19937_64 rng(seed + 3);
        z = ref::randn({z.dim(0), z.dim(1), featureDim(spec)}, rng);
        for (double &x : z.data)
          x = std::abs(x);
      }
      put("initial_normalizer", z, stateType, false);
    }
    if (r.initialState && wide) {
      // A state of width Dphi (the drawn one has width d).
      ref::Tensor s0 = *r.initialState;
      std::mt19937_64 rng(seed + 5);
      int64_t dphi = featureDim(spec);
      put("initial_state",
          ref::randn(spec.stateValueMajor
                         ? std::vector<int64_t>{s0.dim(0), s0.dim(1),
                                                spec.valueDim, dphi}
                         : std::vector<int64_t>{s0.dim(0), s0.dim(1), dphi,
                                                spec.valueDim},
                     rng, 0.1),
          stateType, false);
    }
    if (featureMapHasWeight(spec.featureMap)) {
      ref::Tensor w, b;
      randomMapWeights(spec, seed, w, b);
      put("map_weight", w, stateType, false);
      if (!b.shape.empty())
        put("map_bias", b, stateType, false);
    }
  }
  for (const char *need : {"q", "k", "v"})
    if (!in.count(need))
      return fail(std::string("missing input '") + need + "' (give --in " +
                  need + "=FILE.npy or --random)");

  // Kernel.
  std::string error;
  std::unique_ptr<Kernel> kernel;
  auto processStart = std::chrono::steady_clock::now();
  if (tuneMode == TuneMode::Off) {
    kernel = Kernel::compile(spec, options, &error);
  } else {
    const ref::Tensor &q0 = in["q"].logical;
    ProblemShape shape;
    shape.batch =
        offsets ? static_cast<int64_t>(offsets->size()) - 1 : q0.dim(0);
    shape.heads =
        std::max({q0.dim(1), in["k"].logical.dim(1), in["v"].logical.dim(1)});
    shape.seqLen =
        offsets ? q0.dim(2) / std::max<int64_t>(shape.batch, 1) : q0.dim(2);
    TuneOptions to;
    to.budgetSeconds = tuneBudget;
    to.numThreads = tuneThreads;
    to.seed = seed;
    to.verbosity = quiet     ? Verbosity::Quiet
                   : verbose ? Verbosity::Verbose
                             : Verbosity::Auto;
    TuneResult tr;
    kernel = compileTuned(spec, shape, tuneMode, to, &error, &tr);
    if (kernel)
      llvm::outs() << "tuning (" << tuneModeName(tuneMode) << ", "
                   << shapeClass(shape, to.numThreads) << "): "
                   << (tr.fromCache ? "cached result"
                       : tr.tried
                           ? "tuned in " +
                                 std::to_string(tr.seconds).substr(0, 5) +
                                 " s, " + std::to_string(tr.tried) +
                                 " candidates"
                           : "defaults (no cached result)")
                   << "\n";
  }
  if (!kernel)
    return fail(error);
  double readySeconds = std::chrono::duration<double>(
                            std::chrono::steady_clock::now() - processStart)
                            .count();
  if (printIR)
    llvm::outs() << kernel->sourceIR();
  KernelCacheStats stats = kernelCacheStats();
  llvm::outs() << "kernel cache: " << stats.compiled << " compiled, "
               << stats.diskHits << " loaded from disk, " << stats.memoryHits
               << " shared in memory; ready in "
               << llvm::format("%.3f", readySeconds) << " s\n";
  llvm::outs() << (kernel->fromCache() ? "loaded for " : "compiled for ")
               << hostDescription() << " in "
               << llvm::format("%.2f", kernel->compileSeconds())
               << " s (C = " << kernel->options().chunkSize
               << ", tile = " << kernel->options().tileM << "x"
               << kernel->options().tileN
               << ", vector width = " << kernel->options().vectorWidth << ")\n";

  // Outputs.
  const ref::Tensor &q = in["q"].logical, &v = in["v"].logical;
  int64_t B = q.dim(0), T = q.dim(2);
  int64_t H = std::max({q.dim(1), in["k"].logical.dim(1), v.dim(1)});
  int64_t N = offsets ? static_cast<int64_t>(offsets->size()) - 1 : B;
  // States and normalizers have the feature map's output width.
  int64_t dk = featureDim(spec), dv = spec.valueDim;
  npy::Array o = fromLogical(ref::Tensor({B, H, T, dv}), spec.dtype, bthd);
  npy::Array s1 = fromLogical(
      ref::Tensor(spec.stateValueMajor ? std::vector<int64_t>{N, H, dv, dk}
                                       : std::vector<int64_t>{N, H, dk, dv}),
      stateType, false);
  npy::Array z1 = fromLogical(ref::Tensor({N, H, dk}), stateType, false);

  Arguments args;
  args.q = viewOf(in["q"].array, spec.dtype);
  args.k = viewOf(in["k"].array, spec.dtype);
  args.v = viewOf(in["v"].array, spec.dtype);
  if (in.count("gate")) {
    DType gt = spec.decay == DecayKind::Constant
                   ? *fromNpy(in["gate"].array.dtype)
                   : spec.gateDType;
    args.gate = viewOf(in["gate"].array, gt);
  }
  if (in.count("beta"))
    args.beta = viewOf(in["beta"].array, *fromNpy(in["beta"].array.dtype));
  for (auto [name, slot] : {std::pair{"map_weight", &args.mapWeight},
                            {"map_bias", &args.mapBias},
                            {"key_map_weight", &args.keyMapWeight},
                            {"key_map_bias", &args.keyMapBias}})
    if (in.count(name))
      *slot = viewOf(in[name].array, stateType);
  if (in.count("initial_state"))
    args.initialState = viewOf(in["initial_state"].array, stateType);
  if (in.count("initial_normalizer"))
    args.initialNormalizer = viewOf(in["initial_normalizer"].array, stateType);
  args.offsets = offsets;
  args.output = viewOf(o, spec.dtype);
  args.finalState = viewOf(s1, stateType);
  if (spec.normalized)
    args.finalNormalizer = viewOf(z1, stateType);
  args.numThreads = threads;

  if (std::string e = kernel->run(args); !e.empty())
    return fail(e);

  int status = 0;
  if (check) {
    ref::Spec rs;
    rs.decay = spec.decay;
    rs.normalized = spec.normalized;
    rs.eps = spec.eps;
    rs.scale =
        spec.scale ? *spec.scale : 1.0 / std::sqrt(static_cast<double>(dk));
    rs.causal = spec.causal;
    rs.exclusive = spec.exclusive;
    rs.stateValueMajor = spec.stateValueMajor;
    ref::Inputs ri;
    ri.q = in["q"].logical;
    ri.k = in["k"].logical;
    ri.v = in["v"].logical;
    if (spec.featureMap != FeatureMap::Identity) {
      auto param = [&](const char *name) -> const ref::Tensor * {
        return in.count(name) ? &in[name].logical : nullptr;
      };
      if (std::string e = ref::applyFeatureMapsQK(
              spec.featureMap, ri.q, ri.k, param("map_weight"),
              param("map_bias"), param("key_map_weight"),
              param("key_map_bias"));
          !e.empty())
        return fail("reference " + e);
    }
    if (in.count("gate"))
      ri.gate = in["gate"].logical;
    else if (spec.decay == DecayKind::Constant) {
      std::vector<double> logs =
          !spec.logDecay.empty()
              ? spec.logDecay
              : ref::logDecaySchedule(*spec.schedule, H, spec.layer,
                                      spec.numLayers);
      ri.gate = ref::Tensor({H});
      ri.gate->data = logs;
    }
    if (in.count("beta"))
      ri.beta = in["beta"].logical;
    if (in.count("initial_state"))
      ri.initialState = in["initial_state"].logical;
    if (in.count("initial_normalizer"))
      ri.initialNormalizer = in["initial_normalizer"].logical;
    ri.offsets = offsets;
    ref::Outputs want;
    auto start = std::chrono::steady_clock::now();
    if (std::string e =
            ref::run(rs, ri, ref::Form::Chunked, want, options.chunkSize);
        !e.empty())
      return fail("reference: " + e);
    double refSec =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
    bool delta =
        spec.decay == DecayKind::Delta || spec.decay == DecayKind::GatedDelta;
    double tol = spec.dtype == DType::F32   ? 1e-5
                 : spec.dtype == DType::F64 ? 1e-12
                 : spec.dtype == DType::F16 ? 1e-3
                 : delta                    ? 8e-3 // MATH.md 9.7
                                            : 5e-3;
    double ro = ref::ratio(toLogical(o, bthd), want.o);
    double rsr = ref::ratio(toLogical(s1, false), want.finalState);
    bool ok = ro <= tol && rsr <= tol;
    llvm::outs() << llvm::format(
        "check: output ratio %.3g, final state ratio %.3g (tolerance %.0e "
        "for %s) -> %s  [fp64 reference %.1f ms]\n",
        ro, rsr, tol, dtypeName(spec.dtype), ok ? "PASS" : "FAIL",
        refSec * 1e3);
    if (!ok)
      status = 2;
  }
  if (bench && compareDefault && tuneMode != TuneMode::Off) {
    // Interleaved, so that load from other processes hits both alike.
    std::unique_ptr<Kernel> base = Kernel::compile(spec, options, &error);
    if (!base)
      return fail(error);
    for (int i = 0; i < warmup; ++i) {
      kernel->run(args);
      base->run(args);
    }
    std::vector<double> tuned, dflt;
    auto time = [&](const Kernel &k, std::vector<double> &out) {
      auto start = std::chrono::steady_clock::now();
      k.run(args);
      out.push_back(std::chrono::duration<double, std::milli>(
                        std::chrono::steady_clock::now() - start)
                        .count());
    };
    for (int i = 0; i < std::max(reps.getValue(), 1); ++i) {
      time(*kernel, tuned);
      time(*base, dflt);
    }
    std::sort(tuned.begin(), tuned.end());
    std::sort(dflt.begin(), dflt.end());
    double mt = tuned[tuned.size() / 2], md = dflt[dflt.size() / 2];
    llvm::outs() << llvm::format(
        "compare: tuned (C=%lld tile=%lldx%lld sub=%lld) median %.3f ms, "
        "default (C=%lld tile=%lldx%lld) median %.3f ms, default/tuned "
        "%.3f over %d interleaved runs\n",
        (long long)kernel->options().chunkSize,
        (long long)kernel->options().tileM, (long long)kernel->options().tileN,
        (long long)kernel->options().subChunkSize, mt,
        (long long)base->options().chunkSize, (long long)base->options().tileM,
        (long long)base->options().tileN, md, md / mt, (int)tuned.size());
  }
  if (bench) {
    for (int i = 0; i < warmup; ++i)
      kernel->run(args);
    std::vector<double> ms;
    for (int i = 0; i < std::max(reps.getValue(), 1); ++i) {
      auto start = std::chrono::steady_clock::now();
      kernel->run(args);
      ms.push_back(std::chrono::duration<double, std::milli>(
                       std::chrono::steady_clock::now() - start)
                       .count());
    }
    std::sort(ms.begin(), ms.end());
    double median = ms[ms.size() / 2];
    // Chunked-form FLOPs (MATH.md 6.7): causal halves of QKᵀ and PV, plus
    // QS and the state update; delta rules: C²(6Dk + 4Dv) + C³/3 + 6C·Dk·Dv
    // per chunk.
    double C = static_cast<double>(kernel->options().chunkSize);
    double fk = static_cast<double>(dk), fv = static_cast<double>(dv);
    double perToken =
        spec.decay == DecayKind::Delta || spec.decay == DecayKind::GatedDelta
            ? C * (6.0 * fk + 4.0 * fv) + C * C / 3.0 + 6.0 * fk * fv
            : C * (fk + fv) + 4.0 * fk * fv;
    double flops = static_cast<double>(B * H * T) * perToken;
    llvm::outs() << llvm::format(
        "bench: B=%lld H=%lld T=%lld Dk=%lld Dv=%lld %s threads=%d: median "
        "%.3f ms, min %.3f ms over %d runs (%.1f GFLOP/s chunked-form)\n",
        (long long)B, (long long)H, (long long)T, (long long)dk, (long long)dv,
        dtypeName(spec.dtype), threads.getValue(), median, ms.front(),
        (int)ms.size(), flops / (median * 1e-3) / 1e9);
  }
  for (const std::string &arg : outputs) {
    size_t eq = arg.find('=');
    if (eq == std::string::npos)
      return fail("--out expects NAME=FILE.npy, got '" + arg + "'");
    std::string name = arg.substr(0, eq), path = arg.substr(eq + 1);
    const npy::Array *a = name == "o"                  ? &o
                          : name == "final_state"      ? &s1
                          : name == "final_normalizer" ? &z1
                                                       : nullptr;
    if (!a || (name == "final_normalizer" && !spec.normalized))
      return fail("unknown or absent output '" + name + "'");
    if (std::string e = npy::save(path, *a); !e.empty())
      return fail(e);
  }
  return status;
}
