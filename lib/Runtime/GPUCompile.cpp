//===- GPUCompile.cpp - Compile a spec to a PTX kernel + manifest -*- C++
//-*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//

#include "linattn/Runtime/GPUCompile.h"

#include "KernelCache.h"
#include "KernelSource.h"

#include "linattn/Runtime/CudaRuntime.h"
#include "linattn/Runtime/GPUTuner.h"
#include "linattn/Runtime/Tuning.h"

#include "linattn/InitAll.h"
#include "linattn/Transforms/Passes.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVMIR/Export.h"
#include "llvm/Config/llvm-config.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/Module.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/SHA256.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Support/xxhash.h"
#include "llvm/TargetParser/Host.h"

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <tuple>

namespace linattn {

static const char *layoutName(Layout l) {
  return l == Layout::BTHD ? "bthd" : "bhtd";
}

std::string gpuManifestJSON(const AttentionSpec &s, const GPUKernelImage &img,
                            const std::string &name) {
  // The kernel's default scale is that of the mapped width Dφ.
  double scale = s.scale ? *s.scale : 1.0 / std::sqrt(double(featureDim(s)));
  llvm::json::Array logDecay;
  for (double x : s.logDecay)
    logDecay.push_back(x);
  llvm::json::Object spec{
      {"decay", reference::decayKindName(s.decay)},
      {"feature_map", reference::featureMapName(s.featureMap)},
      {"layout", layoutName(s.layout)},
      {"dtype", dtypeName(s.dtype)},
      {"gate_dtype",
       s.decay == DecayKind::Constant ? "f32" : dtypeName(s.gateDType)},
      {"key_dim", s.keyDim},
      {"value_dim", s.valueDim},
      {"scale", scale},
      {"causal", s.causal},
      {"exclusive", s.exclusive},
      {"normalized", s.normalized},
      {"eps", s.eps},
      {"state_value_major", s.stateValueMajor},
      {"schedule", s.schedule
                       ? llvm::json::Value(reference::scheduleName(*s.schedule))
                       : llvm::json::Value(nullptr)},
      {"layer", s.layer},
      {"num_layers", s.numLayers},
      {"log_decay", std::move(logDecay)},
      {"clamp_min", s.clampMin ? llvm::json::Value(*s.clampMin)
                               : llvm::json::Value(nullptr)},
      // f (HedgehogJoint: d) and Dphi, as the reference counts them.
      {"feature_count",
       s.featureMap == FeatureMap::HedgehogJoint ? s.keyDim : s.featureCount},
      {"feature_dim", featureDim(s)}};
  llvm::json::Object launch{
      {"threads", img.threads},          {"block_v", img.blockV},
      {"chunk_size", img.chunkSize},     {"stages", img.stages},
      {"shared_bytes", img.sharedBytes}, {"mma", img.wgmma ? "wgmma" : "sync"}};
  llvm::json::Object root{{"format", "linattn-aot"},
                          {"version", 1},
                          {"entry", img.entry},
                          {"ptx", name + ".ptx"},
                          {"chip", img.chip},
                          {"compiler", std::string("linattn 0.1 (LLVM ") +
                                           LLVM_VERSION_STRING + ")"},
                          {"spec", std::move(spec)},
                          {"launch", std::move(launch)}};
  // Width-changing maps run as a prepass entry writing phi(q), phi(k) into
  // a workspace of rows padded to a multiple of 16.
  if (isWidthChangingMap(s.featureMap))
    root["map"] = llvm::json::Object{
        {"entry", img.mapEntry},
        {"threads", img.mapThreads},
        {"rows_per_block", img.mapRowsPerBlock},
        {"padded_dim", cuda::paddedFeatureDim(featureDim(s))}};
  std::string out;
  llvm::raw_string_ostream os(out);
  os << llvm::formatv("{0:2}", llvm::json::Value(std::move(root))) << "\n";
  return out;
}

/// compileGPU without the cache.
static mlir::linattn::PTXPipelineOptions
pipelineOptions(const GPUCompileOptions &options) {
  mlir::linattn::PTXPipelineOptions po;
  po.chip = options.chip;
  po.mma = options.mma;
  po.chunkSize = options.chunkSize;
  po.blockV = options.blockV;
  po.warps = options.warps;
  po.stages = options.stages;
  return po;
}

/// The resolved kernel shape for `spec` under `options` (no compilation).
static std::string planKernel(const AttentionSpec &spec,
                              const GPUCompileOptions &options,
                              mlir::linattn::GpuKernelPlan &plan) {
  mlir::linattn::GpuKernelForm form;
  form.vectorGates = spec.decay == DecayKind::Vector;
  form.causal = spec.causal;
  form.normalized = spec.normalized;
  form.delta =
      spec.decay == DecayKind::Delta || spec.decay == DecayKind::GatedDelta;
  form.tokenGates = spec.decay == DecayKind::Scalar ||
                    spec.decay == DecayKind::Constant ||
                    spec.decay == DecayKind::GatedDelta;
  // Width-changing maps run as a prepass writing q and k at width Dφ (the
  // plan pads it to a multiple of 16).
  int64_t keyDim = spec.keyDim;
  if (isWidthChangingMap(spec.featureMap)) {
    keyDim = featureDim(spec);
    form.prepassMap = reference::featureMapName(spec.featureMap);
  }
  return mlir::linattn::planGpuKernel(pipelineOptions(options), keyDim,
                                      spec.valueDim, dtypeSize(spec.dtype),
                                      form, plan);
}

static void applyPlan(const mlir::linattn::GpuKernelPlan &plan,
                      GPUKernelImage &image) {
  image.chip = plan.targetChip;
  image.wgmma = plan.wgmma;
  image.chunkSize = plan.chunkSize;
  image.threads = plan.threads;
  image.blockV = plan.blockV;
  image.stages = plan.stages;
  image.sharedBytes = plan.sharedBytes;
  image.mapThreads = mlir::linattn::GpuKernelPlan::kMapThreads;
  image.mapRowsPerBlock = mlir::linattn::GpuKernelPlan::kMapRowsPerBlock;
}

static std::string writeFile(const std::string &path, const std::string &text) {
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec);
  if (ec)
    return "cannot write " + path + ": " + ec.message();
  os << text;
  os.close();
  if (os.has_error())
    return "cannot write " + path + ": " + os.error().message();
  return "";
}

/// What makes `spec` impossible on the GPU, or "".
static std::string checkGPUSpec(const AttentionSpec &spec) {
  if (spec.keyDim <= 0 || spec.valueDim <= 0)
    return "spec: key and value dims must be set (got " +
           std::to_string(spec.keyDim) + ", " + std::to_string(spec.valueDim) +
           ")";
  if (spec.dtype != DType::BF16 && spec.dtype != DType::F16)
    return std::string(
               "spec.dtype: GPU kernels take bf16 or f16 inputs, got ") +
           dtypeName(spec.dtype);
  return checkSpec(spec, CompileOptions());
}

/// Checks `spec`, plans its kernel under `options` and runs the pipeline
/// `build` adds on the kernel source; `parsed` then holds the result.
/// Returns "" or the error (`what` names the pipeline's output in it).
static std::string
runGPUPipeline(const AttentionSpec &spec, const GPUCompileOptions &options,
               llvm::function_ref<void(mlir::PassManager &)> build,
               const char *what, std::unique_ptr<ParsedModule> &parsed,
               mlir::linattn::GpuKernelPlan &plan) {
  if (std::string e = checkGPUSpec(spec); !e.empty())
    return e;
  parsed = std::make_unique<ParsedModule>(
      kernelSource(spec, CompileOptions(), /*wholeLayout=*/true));
  if (!parsed->module)
    return "internal error: generated kernel does not parse: " +
           parsed->diagnostics;
  if (std::string e = planKernel(spec, options, plan); !e.empty())
    return "GPU kernel options: " + e;
  mlir::PassManager pm(&parsed->context);
  build(pm);
  if (mlir::failed(pm.run(*parsed->module)))
    return std::string(what) + " failed: " + parsed->diagnostics;
  return "";
}

std::string compileGPUEmulation(const AttentionSpec &spec,
                                const GPUCompileOptions &options,
                                std::string &llvmIR, bool checkMemory) {
  std::unique_ptr<ParsedModule> parsed;
  mlir::linattn::GpuKernelPlan plan;
  if (std::string e = runGPUPipeline(
          spec, options,
          [&](mlir::PassManager &pm) {
            mlir::linattn::buildEmulationPipeline(pm, pipelineOptions(options),
                                                  checkMemory);
          },
          "GPU emulation code generation", parsed, plan);
      !e.empty())
    return e;
  llvm::LLVMContext llvmContext;
  std::unique_ptr<llvm::Module> module = mlir::translateModuleToLLVMIR(
      *parsed->module, llvmContext, "linattn_emu");
  if (!module)
    return "internal error: emulation code does not translate to LLVM IR: " +
           parsed->diagnostics;
  module->setTargetTriple(llvm::Triple(llvm::sys::getProcessTriple()));
  llvmIR.clear();
  llvm::raw_string_ostream os(llvmIR);
  module->print(os, nullptr);
  return "";
}

std::string writeEmulation(const AttentionSpec &spec,
                           const GPUCompileOptions &options,
                           const std::string &dir, const std::string &name,
                           bool checkMemory) {
  std::string ir;
  if (std::string e = compileGPUEmulation(spec, options, ir, checkMemory);
      !e.empty())
    return e;
  if (std::error_code ec = llvm::sys::fs::create_directories(dir))
    return "cannot create " + dir + ": " + ec.message();
  llvm::SmallString<256> llPath(dir), soPath(dir);
  llvm::sys::path::append(llPath, name + ".emu.ll");
  llvm::sys::path::append(soPath, name + ".emu.so");
  if (std::string e = writeFile(llPath.str().str(), ir); !e.empty())
    return e;
  std::string clang;
  if (const char *env = std::getenv("LINATTN_CLANG"); env && *env)
    clang = env;
  for (const char *candidate : {"clang-22", "clang"}) {
    if (!clang.empty())
      break;
    if (auto found = llvm::sys::findProgramByName(candidate))
      clang = *found;
  }
  if (clang.empty())
    return "building " + llPath.str().str() +
           " needs clang: set LINATTN_CLANG or put clang-22 on PATH";
  llvm::SmallVector<llvm::StringRef> args{
      clang,  "-O1", "-fPIC", "-shared", "-Wno-override-module",
      llPath, "-o",  soPath};
  std::string err;
  int rc = llvm::sys::ExecuteAndWait(clang, args, std::nullopt, {}, 0, 0, &err);
  if (rc != 0)
    return "building " + soPath.str().str() + " with " + clang +
           " failed (exit " + std::to_string(rc) + ")" +
           (err.empty() ? "" : ": " + err);
  return "";
}

static std::string compileGPUUncached(const AttentionSpec &spec,
                                      const GPUCompileOptions &options,
                                      const std::string &name,
                                      GPUKernelImage &image) {
  std::unique_ptr<ParsedModule> parsed;
  mlir::linattn::GpuKernelPlan plan;
  if (std::string e = runGPUPipeline(
          spec, options,
          [&](mlir::PassManager &pm) {
            mlir::linattn::buildPTXPipeline(pm, pipelineOptions(options));
          },
          "GPU kernel generation", parsed, plan);
      !e.empty())
    return e;

  std::string ptx;
  parsed->module->walk([&](mlir::gpu::BinaryOp binary) {
    for (mlir::Attribute a : binary.getObjects())
      if (auto obj = llvm::dyn_cast<mlir::gpu::ObjectAttr>(a))
        ptx = obj.getObject().getValue().str();
  });
  if (ptx.empty())
    return "internal error: the GPU pipeline produced no PTX";

  image.ptx = std::move(ptx);
  applyPlan(plan, image);
  image.manifest = gpuManifestJSON(spec, image, name);
  return "";
}

std::string writeAOT(const GPUKernelImage &image, const std::string &dir,
                     const std::string &name) {
  if (std::error_code ec = llvm::sys::fs::create_directories(dir))
    return "cannot create " + dir + ": " + ec.message();
  llvm::SmallString<256> ptxPath(dir), jsonPath(dir);
  llvm::sys::path::append(ptxPath, name + ".ptx");
  llvm::sys::path::append(jsonPath, name + ".json");
  if (std::string err = writeFile(ptxPath.str().str(), image.ptx); !err.empty())
    return err;
  return writeFile(jsonPath.str().str(), image.manifest);
}

//===----------------------------------------------------------------------===//
// GPU kernel cache
//===----------------------------------------------------------------------===//
//
// Disk format of `<cache dir>/kernels/gpu-<key>.ptxc`: a text header line
// "LINATTN-GPU 1 <key> <threads> <block_v> <shared_bytes> <ptx bytes>
// <xxh3 of the ptx>", then the PTX. The manifest is regenerated from the
// spec and options (it names the file stem, which differs between calls).
// Files are written to a unique temporary name and renamed into place; a
// file that fails any check is a miss and is rewritten.

namespace {
std::atomic<int64_t> gpuCompiled{0}, gpuMemoryHits{0}, gpuDiskHits{0},
    gpuDiskWrites{0}, gpuDiskRejected{0};
std::mutex gpuMemoryMutex;
/// Images by key; never destroyed (small: PTX text only).
std::map<std::string, GPUKernelImage> &gpuMemory() {
  static auto *m = new std::map<std::string, GPUKernelImage>;
  return *m;
}

std::string gpuCacheKey(const AttentionSpec &spec, const GPUCompileOptions &o) {
  std::ostringstream os;
  os << kernelSource(spec, CompileOptions(), /*wholeLayout=*/true)
     << "\n--\nchip=" << o.chip << " mma=" << o.mma;
  for (const auto &[name, value] : gpuTuneConfig(o).params)
    os << " " << name << "=" << value;
  os << "\n--\n" << detail::kernelBuildIdentity();
  std::string text = os.str();
  std::array<uint8_t, 32> digest = llvm::SHA256::hash(llvm::ArrayRef<uint8_t>(
      reinterpret_cast<const uint8_t *>(text.data()), text.size()));
  return llvm::toHex(llvm::ArrayRef<uint8_t>(digest.data(), 20),
                     /*LowerCase=*/true);
}

std::string gpuCachePath(const std::string &key) {
  std::string dir = cacheDirectory();
  return dir.empty() ? "" : dir + "/kernels/gpu-" + key + ".ptxc";
}

bool gpuDiskLoad(const std::string &path, const std::string &key,
                 GPUKernelImage &image) {
  auto buf = llvm::MemoryBuffer::getFile(path, /*IsText=*/false);
  if (!buf)
    return false;
  llvm::StringRef all = (*buf)->getBuffer();
  auto [header, ptx] = all.split('\n');
  std::istringstream is(header.str());
  std::string magic, fileKey;
  int version = 0;
  int64_t threads = 0, blockV = 0, shared = 0;
  uint64_t size = 0, hash = 0;
  bool ok = static_cast<bool>(is >> magic >> version >> fileKey >> threads >>
                              blockV >> shared >> size >> hash) &&
            magic == "LINATTN-GPU" && version == 1 && fileKey == key &&
            ptx.size() == size && llvm::xxh3_64bits(ptx) == hash &&
            threads > 0 && blockV > 0 && shared >= 0;
  if (!ok) {
    ++gpuDiskRejected;
    llvm::sys::fs::remove(path);
    return false;
  }
  image.ptx = ptx.str();
  image.threads = threads;
  image.blockV = blockV;
  image.sharedBytes = shared;
  return true;
}

void gpuDiskStore(const std::string &path, const std::string &key,
                  const GPUKernelImage &image) {
  llvm::SmallString<256> dir(path);
  llvm::sys::path::remove_filename(dir);
  if (llvm::sys::fs::create_directories(dir))
    return;
  int fd;
  llvm::SmallString<256> tmp;
  if (llvm::sys::fs::createUniqueFile(path + ".tmp-%%%%%%%%", fd, tmp))
    return;
  bool ok;
  {
    llvm::raw_fd_ostream os(fd, /*shouldClose=*/true);
    os << "LINATTN-GPU 1 " << key << " " << image.threads << " " << image.blockV
       << " " << image.sharedBytes << " " << image.ptx.size() << " "
       << llvm::xxh3_64bits(image.ptx) << "\n"
       << image.ptx;
    os.close();
    ok = !os.has_error();
    if (!ok)
      os.clear_error();
  }
  if (!ok || llvm::sys::fs::rename(tmp, path)) {
    llvm::sys::fs::remove(tmp);
    return;
  }
  ++gpuDiskWrites;
}
} // namespace

GPUKernelCacheStats gpuKernelCacheStats() {
  GPUKernelCacheStats s;
  s.compiled = gpuCompiled;
  s.memoryHits = gpuMemoryHits;
  s.diskHits = gpuDiskHits;
  s.diskWrites = gpuDiskWrites;
  s.diskRejected = gpuDiskRejected;
  return s;
}

std::string compileGPU(const AttentionSpec &spec,
                       const GPUCompileOptions &options,
                       const std::string &name, GPUKernelImage &image) {
  KernelCacheMode mode = kernelCacheMode();
  // Invalid specs are diagnosed by the compiler, never looked up.
  if (mode == KernelCacheMode::Off || spec.keyDim <= 0 || spec.valueDim <= 0 ||
      (spec.dtype != DType::BF16 && spec.dtype != DType::F16)) {
    std::string e = compileGPUUncached(spec, options, name, image);
    gpuCompiled += e.empty();
    return e;
  }
  std::string key = gpuCacheKey(spec, options);
  GPUKernelImage cached;
  bool hit = false;
  {
    std::lock_guard<std::mutex> lock(gpuMemoryMutex);
    auto it = gpuMemory().find(key);
    if (it != gpuMemory().end()) {
      cached = it->second;
      hit = true;
      ++gpuMemoryHits;
    }
  }
  std::string path =
      mode == KernelCacheMode::Disk ? gpuCachePath(key) : std::string();
  if (!hit && !path.empty() && gpuDiskLoad(path, key, cached)) {
    hit = true;
    ++gpuDiskHits;
  }
  if (hit) {
    // The launch fields come from the same plan the compiler used.
    mlir::linattn::GpuKernelPlan plan;
    if (std::string e = planKernel(spec, options, plan); !e.empty())
      return "GPU kernel options: " + e;
    applyPlan(plan, image);
    image.ptx = std::move(cached.ptx);
    image.manifest = gpuManifestJSON(spec, image, name);
  } else {
    // Failures (illegal combinations) are diagnosed again next time: they
    // fail early in the pass, so caching them would save little.
    if (std::string e = compileGPUUncached(spec, options, name, image);
        !e.empty())
      return e;
    ++gpuCompiled;
    if (!path.empty())
      gpuDiskStore(path, key, image);
  }
  std::lock_guard<std::mutex> lock(gpuMemoryMutex);
  GPUKernelImage &slot = gpuMemory()[key];
  slot.ptx = image.ptx;
  slot.threads = image.threads;
  slot.blockV = image.blockV;
  slot.sharedBytes = image.sharedBytes;
  return "";
}

//===----------------------------------------------------------------------===//
// Tuning parameters and variant sets
//===----------------------------------------------------------------------===//

// When GPUCompileOptions gains a field, add it to both functions below and,
// if it is tuned, to gpuTuningCandidates().
TuneConfig gpuTuneConfig(const GPUCompileOptions &o) {
  TuneConfig c;
  c.backend = "gpu";
  c.params = {{"chunk", o.chunkSize},
              {"block_v", o.blockV},
              {"warps", o.warps},
              {"stages", o.stages}};
  // The instruction set only once it is settled (tuned sm_90 variants);
  // "auto" has no parameter.
  if (o.mma == "wgmma" || o.mma == "sync")
    c.params["wgmma"] = o.mma == "wgmma";
  return c;
}

GPUCompileOptions gpuOptionsFromConfig(const TuneConfig &config,
                                       const GPUCompileOptions &base) {
  GPUCompileOptions o = base;
  auto get = [&](const char *name, int64_t &field) {
    auto it = config.params.find(name);
    if (it != config.params.end())
      field = it->second;
  };
  get("chunk", o.chunkSize);
  get("block_v", o.blockV);
  get("warps", o.warps);
  get("stages", o.stages);
  if (auto it = config.params.find("wgmma"); it != config.params.end())
    o.mma = it->second ? "wgmma" : "sync";
  return o;
}

std::vector<GPUCompileOptions>
gpuTuningCandidates(const GPUCompileOptions &base) {
  std::vector<GPUCompileOptions> out = {base};
  auto same = [](const GPUCompileOptions &a, const GPUCompileOptions &b) {
    return gpuTuneConfig(a).params == gpuTuneConfig(b).params;
  };
  // On sm_90 with mma=auto each shape also comes as the mma.sync kernel,
  // so that the GPU decides between the two (e.g. GLA on wgmma holds more
  // shared memory per block than on mma.sync).
  std::vector<std::string> mmas = {base.mma};
  if (base.mma == "auto" && llvm::StringRef(base.chip).starts_with("sm_90"))
    mmas.push_back("sync");
  for (int64_t chunk : {32, 64, 128})
    for (int64_t bv : {16, 32, 64})
      for (int64_t warps : {2, 4, 8})
        for (int64_t stages : {1, 2})
          for (const std::string &mma : mmas) {
            GPUCompileOptions o = base;
            o.chunkSize = chunk;
            o.blockV = bv;
            o.warps = warps;
            o.stages = stages;
            o.mma = mma;
            if (!same(o, base))
              out.push_back(o);
          }
  return out;
}

std::string emitAOTVariants(const AttentionSpec &spec,
                            const GPUCompileOptions &base,
                            const std::string &dir, const std::string &name,
                            int *written, int *skipped, bool emulation) {
  cuda::VariantIndex index;
  index.name = name;
  index.chip = base.chip;
  index.compiler = compilerVersion();
  index.specKey = specKey(spec);
  index.defaultIndex = 0;
  int skip = 0;
  // Candidates are written with their resolved options (0 = default picked
  // by planGpuKernel), and two that resolve to the same kernel only once.
  std::set<std::tuple<bool, int64_t, int64_t, int64_t, int64_t>> seen;
  for (GPUCompileOptions o : gpuTuningCandidates(base)) {
    bool isDefault = index.variants.empty() && skip == 0;
    mlir::linattn::GpuKernelPlan plan;
    if (std::string e = planKernel(spec, o, plan); !e.empty()) {
      if (isDefault)
        return "the default variant does not compile: " + e;
      ++skip;
      continue;
    }
    o.chunkSize = plan.chunkSize;
    o.blockV = plan.blockV;
    o.warps = plan.warps;
    o.stages = plan.stages;
    if (llvm::StringRef(o.chip).starts_with("sm_90"))
      o.mma = plan.wgmma ? "wgmma" : "sync";
    if (!seen.insert({plan.wgmma, plan.chunkSize, plan.blockV, plan.warps,
                      plan.stages})
             .second)
      continue;
    TuneConfig config = gpuTuneConfig(o);
    std::string stem = name;
    if (!isDefault)
      for (const auto &[param, value] : config.params)
        stem += "." + param + std::to_string(value);
    GPUKernelImage image;
    if (std::string e = compileGPU(spec, o, stem, image); !e.empty()) {
      if (isDefault)
        return "the default variant (" + config.describe() +
               ") does not compile: " + e;
      ++skip;
      continue;
    }
    if (std::string e = writeAOT(image, dir, stem); !e.empty())
      return e;
    if (emulation)
      if (std::string e = writeEmulation(spec, o, dir, stem); !e.empty())
        return e;
    index.variants.push_back({stem + ".json", config});
  }
  llvm::SmallString<256> indexPath(dir);
  llvm::sys::path::append(indexPath, name + ".variants.json");
  if (std::string e =
          writeFile(indexPath.str().str(), cuda::variantIndexJSON(index));
      !e.empty())
    return e;
  if (written)
    *written = static_cast<int>(index.variants.size());
  if (skipped)
    *skipped = skip;
  return "";
}

} // namespace linattn
