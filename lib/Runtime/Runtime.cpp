//===- Runtime.cpp - linattn CPU JIT runtime -------------------*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
//
// A Kernel is one `linattn.attention` op over a single (sequence, head) slice
// ([1, 1, T, D] memrefs with dynamic strides), lowered by the CPU pipeline
// and JIT-compiled. run() validates the arguments, then hands (sequence,
// head) work items to a pool of threads; each item calls the kernel with
// memref descriptors that point into the caller's tensors (layouts, GQA head
// sharing and packed sequences are all just offsets and strides).
//
//===----------------------------------------------------------------------===//

#include "linattn/Runtime/Runtime.h"

#include "KernelSource.h"

#include "linattn/Runtime/Npy.h"

#include "KernelCache.h"

#include "linattn/Dialect/LinAttn/IR/LinAttnOps.h"
#include "linattn/InitAll.h"
#include "linattn/Transforms/Passes.h"

#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"

#include "llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/TargetParser/Host.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <mutex>
#include <sstream>
#include <thread>

namespace linattn {

//===----------------------------------------------------------------------===//
// Small helpers
//===----------------------------------------------------------------------===//

const char *dtypeName(DType t) {
  switch (t) {
  case DType::F32:
    return "f32";
  case DType::BF16:
    return "bf16";
  case DType::F16:
    return "f16";
  case DType::F64:
    return "f64";
  }
  return "?";
}

npy::DType toNpy(DType t) {
  switch (t) {
  case DType::F32:
    return npy::DType::F32;
  case DType::BF16:
    return npy::DType::BF16;
  case DType::F16:
    return npy::DType::F16;
  case DType::F64:
    return npy::DType::F64;
  }
  return npy::DType::F32;
}

int64_t dtypeSize(DType t) {
  switch (t) {
  case DType::F32:
    return 4;
  case DType::BF16:
  case DType::F16:
    return 2;
  case DType::F64:
    return 8;
  }
  return 0;
}

std::vector<int64_t> TensorView::effectiveStrides() const {
  if (!strides.empty())
    return strides;
  std::vector<int64_t> s(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;)
    s[i - 1] = s[i] * shape[i];
  return s;
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

static std::string fmtShape(const std::vector<int64_t> &shape) {
  return reference::formatShape(shape);
}

static double readElement(const void *base, DType t, int64_t i) {
  switch (t) {
  case DType::F32:
    return static_cast<const float *>(base)[i];
  case DType::F64:
    return static_cast<const double *>(base)[i];
  case DType::BF16:
    return npy::bfloat16ToFloat(static_cast<const uint16_t *>(base)[i]);
  case DType::F16:
    return npy::halfToFloat(static_cast<const uint16_t *>(base)[i]);
  }
  return 0.0;
}

/// True when the 16-bit floats (sign bit 15, exponent and mantissa in the
/// low 15 bits, +inf pattern `inf`) are all <= 0: zero, or negative and not
/// NaN (-inf included).
static bool allNonPositive16(const uint16_t *p, int64_t n, uint16_t inf) {
  bool ok = true;
  for (int64_t d = 0; d < n; ++d) {
    uint16_t mag = p[d] & 0x7fff;
    ok &= mag == 0 || ((p[d] & 0x8000) != 0 && mag <= inf);
  }
  return ok;
}

/// True when elements [i, i + n) are all log-decays <= 0 (NaN is not). No
/// early exit, so the loops vectorize.
static bool allLogDecays(const void *base, DType t, int64_t i, int64_t n) {
  bool ok = true;
  switch (t) {
  case DType::F32: {
    const float *p = static_cast<const float *>(base) + i;
    for (int64_t d = 0; d < n; ++d)
      ok &= p[d] <= 0.0f;
    return ok;
  }
  case DType::F64: {
    const double *p = static_cast<const double *>(base) + i;
    for (int64_t d = 0; d < n; ++d)
      ok &= p[d] <= 0.0;
    return ok;
  }
  case DType::BF16:
    return allNonPositive16(static_cast<const uint16_t *>(base) + i, n, 0x7f80);
  case DType::F16:
    return allNonPositive16(static_cast<const uint16_t *>(base) + i, n, 0x7c00);
  }
  return false;
}

static const char *decayName(DecayKind k) {
  return reference::decayKindName(k);
}

bool isWidthChangingMap(FeatureMap m) {
  return m != FeatureMap::Identity && m != FeatureMap::EluPlusOne &&
         m != FeatureMap::Relu;
}

bool featureMapHasWeight(FeatureMap m) {
  return m == FeatureMap::Hedgehog || m == FeatureMap::HedgehogJoint ||
         m == FeatureMap::Performer || m == FeatureMap::PerformerHyperbolic;
}

/// The feature count f (m) of a spec's map, with HedgehogJoint's 0 = d.
static int64_t featureCountOf(const AttentionSpec &s) {
  if (s.featureMap == FeatureMap::HedgehogJoint && s.featureCount == 0)
    return s.keyDim;
  return s.featureCount;
}

int64_t featureDim(const AttentionSpec &s) {
  return reference::featureMapWidth(s.featureMap, s.keyDim, featureCountOf(s));
}

/// Shape of a map weight [d, f] (Hedgehog) or [m, d] (Performer).
static std::vector<int64_t> mapWeightShape(const AttentionSpec &s) {
  int64_t f = featureCountOf(s);
  if (s.featureMap == FeatureMap::Performer ||
      s.featureMap == FeatureMap::PerformerHyperbolic)
    return {f, s.keyDim};
  return {s.keyDim, f};
}

//===----------------------------------------------------------------------===//
// Kernel source
//===----------------------------------------------------------------------===//

namespace {
/// The parameter list of the generated function, in order.
struct Signature {
  bool gate = false, gateIsConstant = false, gateIsVector = false;
  bool beta = false;
  bool initNorm = false, finalNorm = false;
  /// A width-changing map applied in the kernel, with a weight and (Hedgehog)
  /// a bias per side.
  bool map = false, mapWeight = false, mapBias = false;
};
} // namespace

static Signature signatureOf(const AttentionSpec &s) {
  Signature sig;
  sig.gate = s.decay == DecayKind::Constant || s.decay == DecayKind::Scalar ||
             s.decay == DecayKind::Vector || s.decay == DecayKind::GatedDelta;
  // beta reaches the kernel converted to the state type, packed [B, H, T].
  sig.beta = s.decay == DecayKind::Delta || s.decay == DecayKind::GatedDelta;
  sig.gateIsConstant = s.decay == DecayKind::Constant;
  sig.gateIsVector = s.decay == DecayKind::Vector;
  sig.initNorm = sig.finalNorm = s.normalized;
  sig.map = isWidthChangingMap(s.featureMap);
  sig.mapWeight = featureMapHasWeight(s.featureMap);
  sig.mapBias = s.featureMap == FeatureMap::Hedgehog ||
                s.featureMap == FeatureMap::HedgehogJoint;
  return sig;
}

/// MLIR text of the per-(sequence, head) kernel.
static mlir::DialectRegistry allDialects() {
  mlir::DialectRegistry registry;
  mlir::linattn::registerAllDialects(registry);
  return registry;
}

ParsedModule::ParsedModule(llvm::StringRef text, bool locations)
    : context(allDialects()),
      handler(&context, [this, locations](mlir::Diagnostic &d) {
        if (locations)
          diagOS << d.getLocation() << ": ";
        diagOS << d << "\n";
        return mlir::success();
      }) {
  context.disableMultithreading();
  module = mlir::parseSourceString<mlir::ModuleOp>(text, &context);
}

std::string kernelSource(const AttentionSpec &s, const CompileOptions &o,
                         bool wholeLayout) {
  Signature sig = signatureOf(s);
  // The GPU kernel indexes the whole tensors, so the op states their layout;
  // the CPU's per-head op sees [1, 1, T, D] views either way.
  bool bthd = wholeLayout && s.layout == Layout::BTHD;
  std::string rows = bthd ? "1x?x1" : "1x1x?";
  std::string e = dtypeName(s.dtype);
  std::string st = s.dtype == DType::F64 ? "f64" : "f32";
  std::string gt = sig.gateIsConstant ? st : dtypeName(s.gateDType);
  // q and k have width d; everything after the feature map has width Dphi.
  int64_t d = s.keyDim, dk = featureDim(s), dv = s.valueDim;
  auto strided = [](int rank, bool unitInner = true) {
    std::string r = "strided<[";
    for (int i = 0; i < rank; ++i)
      r += (i + 1 < rank) ? "?, " : (unitInner ? "1" : "?");
    return r + "], offset: ?>";
  };
  auto tensor4 = [&](const std::string &dims, const std::string &t) {
    return "tensor<" + dims + "x" + t + ">";
  };
  auto memref = [&](const std::string &dims, const std::string &t, int rank,
                    bool unitInner = true) {
    return "memref<" + dims + "x" + t + ", " + strided(rank, unitInner) + ">";
  };
  std::string xd = rows + "x" + std::to_string(d);
  std::string qd = rows + "x" + std::to_string(dk);
  std::string vd = rows + "x" + std::to_string(dv);
  std::string sd = s.stateValueMajor
                       ? "1x1x" + std::to_string(dv) + "x" + std::to_string(dk)
                       : "1x1x" + std::to_string(dk) + "x" + std::to_string(dv);
  std::string nd = "1x1x" + std::to_string(dk);
  std::string gd = sig.gateIsConstant ? "1" : sig.gateIsVector ? qd : rows;
  int gr = sig.gateIsConstant ? 1 : sig.gateIsVector ? 4 : 3;

  struct Param {
    std::string name, memrefType, tensorType;
    bool output;
  };
  std::vector<Param> params = {{"q", memref(xd, e, 4), tensor4(xd, e), false},
                               {"k", memref(xd, e, 4), tensor4(xd, e), false},
                               {"v", memref(vd, e, 4), tensor4(vd, e), false}};
  std::vector<int64_t> ws = mapWeightShape(s);
  std::string wd = std::to_string(ws[0]) + "x" + std::to_string(ws[1]);
  std::string fd = std::to_string(featureCountOf(s));
  for (const char *side : {"q", "k"}) {
    if (sig.mapWeight)
      params.push_back(
          {std::string("w") + side, memref(wd, st, 2), tensor4(wd, st), false});
    if (sig.mapBias)
      params.push_back(
          {std::string("b") + side, memref(fd, st, 1), tensor4(fd, st), false});
  }
  if (sig.gate)
    params.push_back({"gate", memref(gd, gt, gr, /*unitInner=*/gr != 3),
                      tensor4(gd, gt), false});
  std::string bd = rows;
  if (sig.beta)
    params.push_back({"beta", memref(bd, st, 3), tensor4(bd, st), false});
  params.push_back({"s0", memref(sd, st, 4), tensor4(sd, st), false});
  if (sig.initNorm)
    params.push_back({"z0", memref(nd, st, 3), tensor4(nd, st), false});
  params.push_back({"o", memref(vd, e, 4), tensor4(vd, e), true});
  params.push_back({"s", memref(sd, st, 4), tensor4(sd, st), true});
  if (sig.finalNorm)
    params.push_back({"z", memref(nd, st, 3), tensor4(nd, st), true});

  std::ostringstream os;
  // Floats in scientific notation, so that MLIR parses 1.0 as a float.
  os.precision(17);
  os << std::scientific;
  os << "func.func @linattn_head(";
  for (size_t i = 0; i < params.size(); ++i)
    os << (i ? ", " : "") << "%" << params[i].name
       << "_m: " << params[i].memrefType;
  os << ") attributes {llvm.emit_c_interface} {\n";
  for (const Param &p : params)
    if (!p.output)
      os << "  %" << p.name << " = bufferization.to_tensor %" << p.name
         << "_m restrict : " << p.memrefType << " to " << p.tensorType << "\n";
  std::string qName = "%q", kName = "%k";
  if (sig.map) {
    for (const char *side : {"q", "k"}) {
      os << "  %" << side << "phi = linattn.feature_map %" << side;
      if (sig.mapWeight)
        os << " weight(%w" << side << " : " << tensor4(wd, st) << ")";
      if (sig.mapBias)
        os << " bias(%b" << side << " : " << tensor4(fd, st) << ")";
      os << " {kind = #linattn.feature_map<"
         << reference::featureMapName(s.featureMap) << ">} : " << tensor4(xd, e)
         << " -> " << tensor4(qd, e) << "\n";
    }
    qName = "%qphi";
    kName = "%kphi";
  }
  os << "  %r:" << (sig.finalNorm ? 3 : 2) << " = linattn.attention " << qName
     << ", " << kName << ", %v";
  if (sig.gate)
    os << " gate(%gate : " << tensor4(gd, gt) << ")";
  if (sig.beta)
    os << " beta(%beta : " << tensor4(bd, st) << ")";
  os << " initial_state(%s0 : " << tensor4(sd, st) << ")";
  if (sig.initNorm)
    os << " initial_normalizer(%z0 : " << tensor4(nd, st) << ")";
  os << " {decay = #linattn.decay<" << decayName(s.decay);
  if (s.clampMin &&
      (s.decay == DecayKind::Scalar || s.decay == DecayKind::Vector ||
       s.decay == DecayKind::GatedDelta))
    os << ", clamp_min = " << *s.clampMin;
  os << ">";
  os << ", feature_map = #linattn.feature_map<"
     << reference::featureMapName(sig.map ? FeatureMap::Identity : s.featureMap)
     << ">";
  if (s.normalized)
    os << ", normalization = #linattn.norm<katharopoulos>, eps = " << s.eps
       << " : f64";
  if (s.scale)
    os << ", scale = " << *s.scale << " : f64";
  if (!s.causal)
    os << ", causal = false";
  if (s.exclusive)
    os << ", exclusive";
  if (s.stateValueMajor)
    os << ", state_layout = #linattn.state_layout<value_major>";
  if (bthd)
    os << ", layout = #linattn.layout<bthd>";
  os << ", chunking = #linattn.chunking<size = " << o.chunkSize
     << ", sub_size = " << o.subChunkSize << ">";
  os << "} : " << tensor4(qd, e) << ", " << tensor4(qd, e) << ", "
     << tensor4(vd, e) << " -> " << tensor4(vd, e) << ", " << tensor4(sd, st);
  if (sig.finalNorm)
    os << ", " << tensor4(nd, st);
  os << "\n";
  int result = 0;
  for (const Param &p : params)
    if (p.output)
      os << "  bufferization.materialize_in_destination %r#" << result++
         << " in restrict writable %" << p.name << "_m : (" << p.tensorType
         << ", " << p.memrefType << ") -> ()\n";
  os << "  return\n}\n";
  return os.str();
}

//===----------------------------------------------------------------------===//
// Compilation
//===----------------------------------------------------------------------===//

std::string hostDescription() {
  std::string r = llvm::sys::getHostCPUName().str();
  llvm::StringMap<bool> features = llvm::sys::getHostCPUFeatures();
  for (const char *f : {"avx2", "fma", "avx512f", "avx512bf16"})
    if (features.lookup(f))
      r += std::string(" +") + f;
  return r;
}

static bool hostHasAVX512() {
  return llvm::sys::getHostCPUFeatures().lookup("avx512f");
}

class KernelImpl {
public:
  AttentionSpec spec;
  CompileOptions options;
  std::string source;
  double seconds = 0;
  /// Shared with other kernels of the same source and options.
  std::shared_ptr<detail::CompiledCode> code;
  CodeOrigin origin = CodeOrigin::Compiled;
  void (*entry)(void **) = nullptr;
  Signature sig;
};

std::string checkSpec(const AttentionSpec &s, const CompileOptions &o) {
  std::ostringstream os;
  if (s.keyDim <= 0 || s.valueDim <= 0)
    os << "keyDim and valueDim must be positive, got " << s.keyDim << " and "
       << s.valueDim;
  else if (s.normalized &&
           (s.decay == DecayKind::Delta || s.decay == DecayKind::GatedDelta))
    os << "the normalized form is not defined for the '" << decayName(s.decay)
       << "' rule";
  else if (featureMapHasWeight(s.featureMap) &&
           s.featureMap != FeatureMap::HedgehogJoint && s.featureCount <= 0)
    os << "feature map '" << reference::featureMapName(s.featureMap)
       << "' needs featureCount (f or m) >= 1, got " << s.featureCount;
  else if (s.featureMap == FeatureMap::HedgehogJoint && s.featureCount != 0 &&
           s.featureCount != s.keyDim)
    os << "feature map 'hedgehog_joint' has f = d = " << s.keyDim
       << ", got featureCount " << s.featureCount;
  else if (!featureMapHasWeight(s.featureMap) && s.featureCount != 0)
    os << "feature map '" << reference::featureMapName(s.featureMap)
       << "' has no weights; featureCount must be 0, got " << s.featureCount;
  else if (featureDim(s) > 65536)
    os << "feature map '" << reference::featureMapName(s.featureMap)
       << "' gives Dphi = " << featureDim(s) << " for d = " << s.keyDim
       << "; at most 65536 is supported";
  else if (!s.causal && s.decay != DecayKind::None)
    os << "non-causal attention needs decay 'none'";
  else if (s.gateDType != DType::F32 && s.gateDType != s.dtype)
    os << "gate dtype must be f32 or the input dtype, got "
       << dtypeName(s.gateDType);
  else if (o.chunkSize <= 0 || o.chunkSize > 1024)
    os << "chunkSize must be in [1, 1024], got " << o.chunkSize;
  else if (o.subChunkSize <= 0 || o.chunkSize % o.subChunkSize != 0)
    os << "subChunkSize " << o.subChunkSize << " must divide chunkSize "
       << o.chunkSize;
  else if (o.tileM <= 0 || o.tileM > 16)
    os << "tileM must be in [1, 16], got " << o.tileM;
  else if (o.vectorWidth < 0 || (o.vectorWidth & (o.vectorWidth - 1)))
    os << "vectorWidth must be 0 or a power of two, got " << o.vectorWidth;
  else if (o.optLevel < 0 || o.optLevel > 3)
    os << "optLevel must be in [0, 3], got " << o.optLevel;
  return os.str();
}

std::unique_ptr<Kernel> Kernel::compile(const AttentionSpec &spec,
                                        const CompileOptions &opts,
                                        std::string *error) {
  auto fail = [&](const std::string &msg) -> std::unique_ptr<Kernel> {
    if (error)
      *error = msg;
    return nullptr;
  };
  CompileOptions options = opts;
  if (options.vectorWidth == 0)
    options.vectorWidth = hostHasAVX512() ? 16 : 8;
  if (options.tileN == 0)
    options.tileN = 2 * options.vectorWidth;
  if (std::string msg = checkSpec(spec, options); !msg.empty())
    return fail(msg);
  if (options.tileN % options.vectorWidth != 0)
    return fail("tileN (" + std::to_string(options.tileN) +
                ") must be a multiple of vectorWidth (" +
                std::to_string(options.vectorWidth) + ")");
  // Vector gates: the sub-chunk columns are padded in units of 16.
  if (spec.decay == DecayKind::Vector && options.subChunkSize % 16 != 0 &&
      16 % options.subChunkSize != 0)
    return fail("subChunkSize must divide or be a multiple of 16, got " +
                std::to_string(options.subChunkSize));

  auto start = std::chrono::steady_clock::now();
  static std::once_flag initFlag;
  std::call_once(initFlag, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
  });

  auto impl = std::make_unique<KernelImpl>();
  impl->spec = spec;
  impl->options = options;
  impl->sig = signatureOf(spec);
  impl->source = kernelSource(spec, options);
  auto finish = [&]() {
    impl->entry = impl->code->entry;
    impl->seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
    return std::unique_ptr<Kernel>(new Kernel(std::move(impl)));
  };
  std::string cacheKey = detail::kernelCodeKey(impl->source, options);
  if ((impl->code = detail::findKernelCode(cacheKey, impl->origin)))
    return finish();
  impl->code = std::make_shared<detail::CompiledCode>();

  ParsedModule parsed(impl->source);
  if (!parsed.module)
    return fail("internal error: generated kernel does not parse: " +
                parsed.diagnostics + "\n" + impl->source);

  mlir::PassManager pm(&parsed.context);
  mlir::linattn::CPUPipelineOptions po;
  po.chunkSize = options.chunkSize;
  po.subChunkSize = options.subChunkSize;
  po.tileM = options.tileM;
  po.tileN = options.tileN;
  po.vectorWidth = options.vectorWidth;
  mlir::linattn::buildCPUPipeline(pm, po);
  if (mlir::failed(pm.run(*parsed.module)))
    return fail("kernel lowering failed: " + parsed.diagnostics);

  auto tmBuilder = llvm::orc::JITTargetMachineBuilder::detectHost();
  if (!tmBuilder)
    return fail("cannot detect the host target: " +
                llvm::toString(tmBuilder.takeError()));
  llvm::CodeGenOptLevel cgLevel =
      options.optLevel >= 3   ? llvm::CodeGenOptLevel::Aggressive
      : options.optLevel == 0 ? llvm::CodeGenOptLevel::None
                              : llvm::CodeGenOptLevel::Default;
  tmBuilder->setCodeGenOptLevel(cgLevel);
  // One target machine for the IR optimizer, owned by the kernel (the
  // transformer keeps a raw pointer to it), and one handed to the engine.
  auto optTM = tmBuilder->createTargetMachine();
  if (!optTM)
    return fail("cannot create the host target machine: " +
                llvm::toString(optTM.takeError()));
  impl->code->optimizerTM = std::move(*optTM);
  auto tm = tmBuilder->createTargetMachine();
  if (!tm)
    return fail("cannot create the host target machine: " +
                llvm::toString(tm.takeError()));
  auto transformer = mlir::makeOptimizingTransformer(
      options.optLevel, 0, impl->code->optimizerTM.get());
  mlir::ExecutionEngineOptions eeOptions;
  eeOptions.transformer = transformer;
  eeOptions.jitCodeGenOptLevel = cgLevel;
  eeOptions.enableGDBNotificationListener = false;
  // The perf jitdump listener writes files and crashed in concurrent runs,
  // so it is opt-in for profiling only (LINATTN_PERF_JITDUMP=1, then
  // `perf record -k 1` and `perf inject --jit`; see bench/README.md).
  const char *jitdump = std::getenv("LINATTN_PERF_JITDUMP");
  eeOptions.enablePerfNotificationListener =
      jitdump && *jitdump && std::string(jitdump) != "0";
  eeOptions.enableObjectDump = detail::kernelDiskCacheEnabled();
  auto engine = mlir::ExecutionEngine::create(*parsed.module, eeOptions,
                                              std::move(tm.get()));
  if (!engine)
    return fail("JIT compilation failed: " +
                llvm::toString(engine.takeError()));
  mlir::ExecutionEngine &ee = *(impl->code->engine = std::move(*engine));
  // Run the module's initializers now, so the JIT materializes its platform
  // support here rather than lazily in the destructor.
  ee.initialize();
  auto fn = ee.lookupPacked("_mlir_ciface_linattn_head");
  if (!fn)
    return fail("JIT lookup failed: " + llvm::toString(fn.takeError()));
  impl->code->entry = *fn;
  detail::noteKernelCompiled();
  detail::publishKernelCode(cacheKey, impl->code);
  return finish();
}

Kernel::Kernel(std::unique_ptr<KernelImpl> impl) : impl(std::move(impl)) {}
Kernel::~Kernel() = default;
Kernel::Kernel(Kernel &&) noexcept = default;
Kernel &Kernel::operator=(Kernel &&) noexcept = default;
const AttentionSpec &Kernel::spec() const { return impl->spec; }
const CompileOptions &Kernel::options() const { return impl->options; }
const std::string &Kernel::sourceIR() const { return impl->source; }
double Kernel::compileSeconds() const { return impl->seconds; }
CodeOrigin Kernel::codeOrigin() const { return impl->origin; }
bool Kernel::fromCache() const { return impl->origin != CodeOrigin::Compiled; }

//===----------------------------------------------------------------------===//
// Running
//===----------------------------------------------------------------------===//

namespace {

/// A memref descriptor as the C interface lays it out:
/// {allocated, aligned, offset, sizes[rank], strides[rank]}.
struct Descriptor {
  int64_t words[2 + 1 + 2 * 4] = {};
  void set(const void *ptr, int64_t offset,
           std::initializer_list<int64_t> sizes,
           std::initializer_list<int64_t> strides) {
    auto p = reinterpret_cast<int64_t>(ptr);
    words[0] = words[1] = p;
    words[2] = offset;
    size_t r = sizes.size(), i = 0;
    for (int64_t s : sizes)
      words[3 + i++] = s;
    i = 0;
    for (int64_t s : strides)
      words[3 + r + i++] = s;
  }
};

/// A validated q/k/v-like operand in logical [B, H, T, D] order.
struct Operand4 {
  const char *base = nullptr;
  int64_t B = 0, H = 0, T = 0, D = 0;
  int64_t sB = 0, sH = 0, sT = 0, sD = 0;
};

class Validator {
public:
  std::ostringstream err;
  bool failed() const { return !err.str().empty(); }

  /// Checks pointer, dtype and rank; returns dims/strides in logical order
  /// (the H and T dims swapped for BTHD when `swapHT`).
  bool view(const char *name, const TensorView &t, DType dtype, size_t rank,
            bool swapHT, std::vector<int64_t> &dims,
            std::vector<int64_t> &strides, bool unitInner = true) {
    if (failed())
      return false;
    if (t.dtype != dtype) {
      err << name << ": dtype " << dtypeName(t.dtype) << " does not match the "
          << "kernel's " << dtypeName(dtype);
      return false;
    }
    if (t.shape.size() != rank) {
      err << name << ": expected rank " << rank << ", got shape "
          << fmtShape(t.shape);
      return false;
    }
    for (int64_t d : t.shape)
      if (d < 0) {
        err << name << ": negative extent in shape " << fmtShape(t.shape);
        return false;
      }
    if (!t.strides.empty() && t.strides.size() != rank) {
      err << name << ": " << t.strides.size() << " strides for rank " << rank;
      return false;
    }
    if (!t.data && t.numel() > 0) {
      err << name << ": null data pointer";
      return false;
    }
    dims = t.shape;
    strides = t.effectiveStrides();
    if (unitInner && rank > 0 && t.numel() > 1 && dims.back() > 1 &&
        strides.back() != 1) {
      err << name << ": the innermost dim must be contiguous (stride 1), got "
          << "stride " << strides.back();
      return false;
    }
    if (swapHT && rank >= 3) {
      std::swap(dims[1], dims[2]);
      std::swap(strides[1], strides[2]);
    }
    return true;
  }

  bool operand4(const char *name, const TensorView &t, DType dtype, bool swapHT,
                Operand4 &out) {
    std::vector<int64_t> d, s;
    if (!view(name, t, dtype, 4, swapHT, d, s))
      return false;
    out.base = static_cast<const char *>(t.data);
    out.B = d[0], out.H = d[1], out.T = d[2], out.D = d[3];
    out.sB = s[0], out.sH = s[1], out.sT = s[2], out.sD = s[3];
    return true;
  }

  void expectShape(const char *name, const std::vector<int64_t> &got,
                   const std::vector<int64_t> &want, const char *layoutNote) {
    if (failed() || got == want)
      return;
    err << name << ": expected shape " << fmtShape(want) << layoutNote
        << ", got " << fmtShape(got);
  }
};

/// A validated feature-map weight or bias slice: head h starts at h * sH.
struct MapParam {
  const void *base = nullptr;
  int64_t sH = 0, rows = 1, cols = 0, sRow = 0;
};
struct MapParams {
  MapParam qWeight, qBias, kWeight, kBias;
  /// Backs an absent Hedgehog bias.
  std::vector<double> zeros;
};

} // namespace

/// Validates one weight ([a, b] or [heads, a, b]) or bias ([f] or [heads,
/// f]) named `name` against `want` (without the head dim).
static std::string checkMapParam(const char *name, const TensorView &t,
                                 const std::vector<int64_t> &want,
                                 int64_t heads, const char *side,
                                 const AttentionSpec &s, DType stateType,
                                 MapParam &out) {
  Validator v;
  size_t rank = want.size();
  bool perHead = t.shape.size() == rank + 1;
  std::vector<int64_t> dims, strides;
  std::vector<int64_t> full = want;
  if (perHead)
    full.insert(full.begin(), heads);
  if (!v.view(name, t, stateType, perHead ? rank + 1 : rank, false, dims,
              strides))
    return v.err.str();
  if (dims != full) {
    std::vector<int64_t> withHeads = want;
    withHeads.insert(withHeads.begin(), heads);
    return std::string(name) + ": expected shape " + fmtShape(want) +
           " (shared) or " + fmtShape(withHeads) + " (one per " + side +
           " head) for feature map '" +
           reference::featureMapName(s.featureMap) + "', got " +
           fmtShape(t.shape);
  }
  out.base = t.data;
  out.sH = perHead ? strides[0] : 0;
  out.cols = want.back();
  if (rank == 2) {
    out.rows = want[0];
    out.sRow = strides[perHead ? 1 : 0];
  }
  return "";
}

/// Validates the feature-map parameters of `args` for q (qHeads heads) and
/// k (kHeads); k falls back to q's parameters.
static std::string checkMapParams(const AttentionSpec &s, const Arguments &a,
                                  int64_t qHeads, int64_t kHeads,
                                  DType stateType, MapParams &out) {
  const char *map = reference::featureMapName(s.featureMap);
  bool hasBias = s.featureMap == FeatureMap::Hedgehog ||
                 s.featureMap == FeatureMap::HedgehogJoint;
  if (!featureMapHasWeight(s.featureMap)) {
    for (auto [name, t] : {std::pair{"mapWeight", &a.mapWeight},
                           {"mapBias", &a.mapBias},
                           {"keyMapWeight", &a.keyMapWeight},
                           {"keyMapBias", &a.keyMapBias}})
      if (*t)
        return std::string(name) + ": feature map '" + map +
               "' takes no weights";
    return "";
  }
  std::vector<int64_t> ws = mapWeightShape(s);
  std::vector<int64_t> bs = {featureCountOf(s)};
  if (!a.mapWeight)
    return "mapWeight: feature map '" + std::string(map) +
           "' needs a weight of shape " + fmtShape(ws) + " (or [Hq, " +
           std::to_string(ws[0]) + ", " + std::to_string(ws[1]) + "])";
  if (!hasBias && (a.mapBias || a.keyMapBias))
    return std::string(a.mapBias ? "mapBias" : "keyMapBias") +
           ": feature map '" + map + "' takes no bias";
  if (a.keyMapBias && !a.keyMapWeight)
    return "keyMapBias: given without keyMapWeight (k uses mapWeight and "
           "mapBias unless keyMapWeight is given)";
  std::string e = checkMapParam("mapWeight", *a.mapWeight, ws, qHeads, "q", s,
                                stateType, out.qWeight);
  if (e.empty() && a.mapBias)
    e = checkMapParam("mapBias", *a.mapBias, bs, qHeads, "q", s, stateType,
                      out.qBias);
  if (!e.empty())
    return e;
  if (a.keyMapWeight) {
    e = checkMapParam("keyMapWeight", *a.keyMapWeight, ws, kHeads, "k", s,
                      stateType, out.kWeight);
    if (e.empty() && a.keyMapBias)
      e = checkMapParam("keyMapBias", *a.keyMapBias, bs, kHeads, "k", s,
                        stateType, out.kBias);
    if (!e.empty())
      return e;
  } else {
    bool perHead = a.mapWeight->shape.size() == 3 ||
                   (a.mapBias && a.mapBias->shape.size() == 2);
    if (perHead && qHeads != kHeads)
      return "mapWeight: one map per q head (" + std::to_string(qHeads) +
             ") cannot be applied to the " + std::to_string(kHeads) +
             " k heads; pass keyMapWeight";
    out.kWeight = out.qWeight;
    out.kBias = a.mapBias ? out.qBias : MapParam();
  }
  // An absent bias reads zeros (sized for either state type).
  out.zeros.assign(static_cast<size_t>(bs[0]), 0.0);
  for (MapParam *b : {&out.qBias, &out.kBias})
    if (!b->base) {
      b->base = out.zeros.data();
      b->sH = 0;
      b->cols = bs[0];
    }
  return "";
}

std::string Kernel::run(const Arguments &args) const {
  const AttentionSpec &s = impl->spec;
  const Signature &sig = impl->sig;
  bool bthd = s.layout == Layout::BTHD;
  const char *note = bthd ? " (logical [B, H, T, D] order)" : "";
  DType stateType = s.dtype == DType::F64 ? DType::F64 : DType::F32;
  Validator v;

  Operand4 q, k, val, out;
  v.operand4("q", args.q, s.dtype, bthd, q);
  v.operand4("k", args.k, s.dtype, bthd, k);
  v.operand4("v", args.v, s.dtype, bthd, val);
  if (v.failed())
    return v.err.str();
  int64_t B = q.B, T = q.T, H = std::max({q.H, k.H, val.H});
  // q and k have width dx; the states, normalizers and vector gates have
  // the feature map's output width dk (the same for elementwise maps).
  int64_t dx = s.keyDim, dk = featureDim(s), dv = s.valueDim;
  if (q.D != dx)
    v.err << "q: key dim " << q.D << " does not match the kernel's Dk = " << dx;
  else if (k.D != dx)
    v.err << "k: key dim " << k.D << " does not match the kernel's Dk = " << dx;
  else if (val.D != dv)
    v.err << "v: value dim " << val.D
          << " does not match the kernel's Dv = " << dv;
  else if (k.B != B || val.B != B)
    v.err << "k/v: batch " << (k.B != B ? k.B : val.B)
          << " does not match q's batch " << B;
  else if (k.T != T || val.T != T)
    v.err << "k/v: length " << (k.T != T ? k.T : val.T)
          << " does not match q's length " << T;
  else if (H == 0 || q.H == 0 || k.H == 0 || val.H == 0 || H % q.H || H % k.H ||
           H % val.H)
    v.err << "heads: q, k, v have " << q.H << ", " << k.H << ", " << val.H
          << " heads; each must divide the largest (GQA/GVA)";
  if (v.failed())
    return v.err.str();
  v.operand4("output", args.output, s.dtype, bthd, out);
  if (v.failed())
    return v.err.str();
  v.expectShape("output", {out.B, out.H, out.T, out.D}, {B, H, T, dv}, note);

  // Sequences.
  std::vector<std::pair<int64_t, int64_t>> seqs; // (start, length)
  if (args.offsets) {
    const std::vector<int64_t> &off = *args.offsets;
    if (B != 1)
      v.err << "offsets: packed sequences need batch 1, got " << B;
    else if (off.size() < 2 || off.front() != 0 || off.back() != T)
      v.err << "offsets: must start at 0 and end at T = " << T << " (got "
            << off.size() << " entries" << (off.empty() ? "" : ", last ")
            << (off.empty() ? "" : std::to_string(off.back())) << ")";
    else
      for (size_t i = 0; i + 1 < off.size(); ++i) {
        if (off[i + 1] < off[i]) {
          v.err << "offsets: entry " << i + 1 << " (" << off[i + 1]
                << ") is smaller than entry " << i << " (" << off[i] << ")";
          break;
        }
        seqs.push_back({off[i], off[i + 1] - off[i]});
      }
  } else {
    for (int64_t b = 0; b < B; ++b)
      seqs.push_back({0, T});
  }
  if (v.failed())
    return v.err.str();
  int64_t N = static_cast<int64_t>(seqs.size());

  // Gate.
  std::vector<double> constLog;
  Operand4 gate;
  std::vector<int64_t> gDims, gStrides;
  if (sig.gateIsConstant) {
    if (!s.logDecay.empty()) {
      constLog = s.logDecay;
      if (static_cast<int64_t>(constLog.size()) != H)
        v.err << "spec.logDecay: " << constLog.size() << " entries for " << H
              << " heads";
    } else if (s.schedule) {
      constLog =
          reference::logDecaySchedule(*s.schedule, H, s.layer, s.numLayers);
      if (constLog.empty())
        v.err << "spec.schedule: invalid layer " << s.layer << " of "
              << s.numLayers;
    } else if (!args.gate) {
      v.err << "gate: a constant decay without a schedule or logDecay needs a "
               "[H] gate tensor of ln(lambda)";
    } else if (v.view("gate", *args.gate, args.gate->dtype, 1, false, gDims,
                      gStrides, /*unitInner=*/false)) {
      if (args.gate->dtype != DType::F32 && args.gate->dtype != s.dtype)
        v.err << "gate: dtype " << dtypeName(args.gate->dtype)
              << " must be f32 or " << dtypeName(s.dtype);
      else if (gDims[0] != H)
        v.err << "gate: expected shape [" << H << "], got "
              << fmtShape(args.gate->shape);
      else
        for (int64_t h = 0; h < H; ++h)
          constLog.push_back(
              readElement(args.gate->data, args.gate->dtype, h * gStrides[0]));
    }
    for (size_t h = 0; !v.failed() && h < constLog.size(); ++h)
      if (!(constLog[h] <= 0.0))
        v.err << "gate: ln(lambda) of head " << h << " is " << constLog[h]
              << "; log-decays must be <= 0";
  } else if (sig.gate) {
    if (!args.gate) {
      v.err << "gate: the '" << decayName(s.decay) << "' decay needs a gate";
    } else if (sig.gateIsVector) {
      if (v.operand4("gate", *args.gate, s.gateDType, bthd, gate))
        v.expectShape("gate", {gate.B, gate.H, gate.T, gate.D}, {B, H, T, dk},
                      note);
    } else if (v.view("gate", *args.gate, s.gateDType, 3, bthd, gDims, gStrides,
                      /*unitInner=*/false)) {
      v.expectShape("gate", gDims, {B, H, T}, note);
      gate.base = static_cast<const char *>(args.gate->data);
      gate.B = gDims[0], gate.H = gDims[1], gate.T = gDims[2], gate.D = 1;
      gate.sB = gStrides[0], gate.sH = gStrides[1], gate.sT = gStrides[2];
    }
    if (!v.failed() && args.checkGateValues) {
      // Every log-gate must be <= 0 (or -inf); NaN and growth are errors.
      // The scan is part of every run, so rows are checked branch-free and
      // only a failing row is searched for the value to report.
      int64_t D = sig.gateIsVector ? dk : 1;
      bool bad = false;
      for (int64_t b = 0; b < B && !bad; ++b)
        for (int64_t h = 0; h < H && !bad; ++h)
          for (int64_t t = 0; t < T && !bad; ++t) {
            int64_t row = b * gate.sB + h * gate.sH + t * gate.sT;
            if (allLogDecays(gate.base, s.gateDType, row, D))
              continue;
            bad = true;
            for (int64_t d = 0; d < D; ++d) {
              double g = readElement(gate.base, s.gateDType, row + d);
              if (!(g <= 0.0)) {
                v.err << "gate: value " << g << " at [" << b << ", " << h
                      << ", " << t << (sig.gateIsVector ? ", " : "")
                      << (sig.gateIsVector ? std::to_string(d) : "")
                      << "] (logical [B, H, T" << (D > 1 ? ", D" : "")
                      << "]) is not a log-decay <= 0";
                break;
              }
            }
          }
    }
  } else if (args.gate) {
    v.err << "gate: the '" << decayName(s.decay) << "' decay takes no gate";
  }
  if (v.failed())
    return v.err.str();

  // beta: validated and converted to the state type, packed [B, H, T].
  std::vector<float> betaF;
  std::vector<double> betaD;
  if (sig.beta) {
    std::vector<int64_t> bDims, bStrides;
    if (!args.beta)
      v.err << "beta: the '" << decayName(s.decay)
            << "' rule needs a beta tensor";
    else if (args.beta->dtype != DType::F32 && args.beta->dtype != s.dtype)
      v.err << "beta: dtype " << dtypeName(args.beta->dtype)
            << " must be f32 or " << dtypeName(s.dtype);
    else if (v.view("beta", *args.beta, args.beta->dtype, 3, bthd, bDims,
                    bStrides, /*unitInner=*/false))
      v.expectShape("beta", bDims, {B, H, T}, note);
    if (!v.failed()) {
      if (stateType == DType::F64)
        betaD.resize(static_cast<size_t>(B * H * T));
      else
        betaF.resize(static_cast<size_t>(B * H * T));
      for (int64_t b = 0; b < B && !v.failed(); ++b)
        for (int64_t h = 0; h < H && !v.failed(); ++h)
          for (int64_t t = 0; t < T; ++t) {
            double x = readElement(args.beta->data, args.beta->dtype,
                                   b * bStrides[0] + h * bStrides[1] +
                                       t * bStrides[2]);
            // beta in [0, 2] keeps I - beta k^T k non-expansive for unit
            // keys (MATH.md 5.1); NaN fails the test too.
            if (!(x >= 0.0 && x <= 2.0)) {
              v.err << "beta: value " << x << " at [" << b << ", " << h << ", "
                    << t << "] (logical [B, H, T]) is outside [0, 2]";
              break;
            }
            size_t i = static_cast<size_t>((b * H + h) * T + t);
            if (stateType == DType::F64)
              betaD[i] = x;
            else
              betaF[i] = static_cast<float>(x);
          }
    }
  } else if (args.beta) {
    v.err << "beta: the '" << decayName(s.decay) << "' decay takes no beta";
  }
  if (v.failed())
    return v.err.str();

  MapParams maps;
  if (std::string e = checkMapParams(s, args, q.H, k.H, stateType, maps);
      !e.empty())
    return e;

  // States.
  std::vector<int64_t> stateShape = s.stateValueMajor
                                        ? std::vector<int64_t>{N, H, dv, dk}
                                        : std::vector<int64_t>{N, H, dk, dv};
  Operand4 s0, s1;
  std::vector<int64_t> z0Dims, z0Strides, z1Dims, z1Strides;
  if (args.initialState &&
      v.operand4("initialState", *args.initialState, stateType, false, s0))
    v.expectShape("initialState", args.initialState->shape, stateShape, "");
  if (args.finalState &&
      v.operand4("finalState", *args.finalState, stateType, false, s1))
    v.expectShape("finalState", args.finalState->shape, stateShape, "");
  if (!s.normalized && (args.initialNormalizer || args.finalNormalizer))
    v.err << "normalizer: only the normalized form has a normalizer state";
  if (args.initialNormalizer &&
      v.view("initialNormalizer", *args.initialNormalizer, stateType, 3, false,
             z0Dims, z0Strides))
    v.expectShape("initialNormalizer", z0Dims, {N, H, dk}, "");
  if (args.finalNormalizer && v.view("finalNormalizer", *args.finalNormalizer,
                                     stateType, 3, false, z1Dims, z1Strides))
    v.expectShape("finalNormalizer", z1Dims, {N, H, dk}, "");
  if (v.failed())
    return v.err.str();

  // Outputs must not overlap inputs in a way that breaks the no-partial-
  // write promise; everything is validated, so launch.
  int64_t ss = dtypeSize(stateType);
  std::vector<char> zeros(static_cast<size_t>(dk * dv * ss), 0);
  std::vector<char> zeroNorm(static_cast<size_t>(dk * ss), 0);
  std::vector<float> constLogF(constLog.begin(), constLog.end());
  std::vector<double> constLogD(constLog.begin(), constLog.end());

  int threads = args.numThreads > 0
                    ? args.numThreads
                    : static_cast<int>(std::thread::hardware_concurrency());
  int64_t items = N * H;
  threads =
      static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, items)));
  std::atomic<int64_t> next{0};
  int64_t sv0 = s.stateValueMajor ? dk : dv; // row stride of a state slice

  auto worker = [&]() {
    std::vector<char> sScratch(static_cast<size_t>(dk * dv * ss));
    std::vector<char> zScratch(static_cast<size_t>(dk * ss));
    for (;;) {
      int64_t item = next.fetch_add(1);
      if (item >= items)
        break;
      int64_t n = item / H, h = item % H;
      int64_t b = args.offsets ? 0 : n;
      int64_t t0 = seqs[n].first, len = seqs[n].second;
      Descriptor d[14];
      void *ptrs[14];
      int p = 0;
      auto op4 = [&](const Operand4 &o, int64_t head, int64_t width) {
        d[p].set(o.base, (b * o.sB + head * o.sH + t0 * o.sT),
                 {1, 1, len, width}, {o.sB, o.sH, o.sT, 1});
        ++p;
      };
      op4(q, h / (H / q.H), dx);
      op4(k, h / (H / k.H), dx);
      op4(val, h / (H / val.H), dv);
      for (int side = 0; side < 2; ++side) {
        int64_t head = side == 0 ? h / (H / q.H) : h / (H / k.H);
        const MapParam &w = side == 0 ? maps.qWeight : maps.kWeight;
        const MapParam &bias = side == 0 ? maps.qBias : maps.kBias;
        if (sig.mapWeight)
          d[p++].set(w.base, head * w.sH, {w.rows, w.cols}, {w.sRow, 1});
        if (sig.mapBias)
          d[p++].set(bias.base, head * bias.sH, {bias.cols}, {1});
      }
      if (sig.gateIsConstant) {
        const void *ptr = stateType == DType::F64
                              ? static_cast<const void *>(&constLogD[h])
                              : static_cast<const void *>(&constLogF[h]);
        d[p++].set(ptr, 0, {1}, {1});
      } else if (sig.gateIsVector) {
        op4(gate, h, dk);
      } else if (sig.gate) {
        d[p++].set(gate.base, b * gate.sB + h * gate.sH + t0 * gate.sT,
                   {1, 1, len}, {gate.sB, gate.sH, gate.sT});
      }
      if (sig.beta) {
        const void *ptr = stateType == DType::F64
                              ? static_cast<const void *>(betaD.data())
                              : static_cast<const void *>(betaF.data());
        d[p++].set(ptr, (b * H + h) * T + t0, {1, 1, len}, {H * T, T, 1});
      }
      int64_t r0 = s.stateValueMajor ? dv : dk;
      if (args.initialState)
        d[p++].set(s0.base, n * s0.sB + h * s0.sH, {1, 1, r0, sv0},
                   {s0.sB, s0.sH, s0.sT, 1});
      else
        d[p++].set(zeros.data(), 0, {1, 1, r0, sv0},
                   {H * r0 * sv0, r0 * sv0, sv0, 1});
      if (sig.initNorm) {
        if (args.initialNormalizer)
          d[p++].set(args.initialNormalizer->data,
                     n * z0Strides[0] + h * z0Strides[1], {1, 1, dk},
                     {z0Strides[0], z0Strides[1], 1});
        else
          d[p++].set(zeroNorm.data(), 0, {1, 1, dk}, {H * dk, dk, 1});
      }
      d[p].set(out.base, b * out.sB + h * out.sH + t0 * out.sT, {1, 1, len, dv},
               {out.sB, out.sH, out.sT, 1});
      ++p;
      if (args.finalState)
        d[p++].set(s1.base, n * s1.sB + h * s1.sH, {1, 1, r0, sv0},
                   {s1.sB, s1.sH, s1.sT, 1});
      else
        d[p++].set(sScratch.data(), 0, {1, 1, r0, sv0},
                   {r0 * sv0, r0 * sv0, sv0, 1});
      if (sig.finalNorm) {
        if (args.finalNormalizer)
          d[p++].set(args.finalNormalizer->data,
                     n * z1Strides[0] + h * z1Strides[1], {1, 1, dk},
                     {z1Strides[0], z1Strides[1], 1});
        else
          d[p++].set(zScratch.data(), 0, {1, 1, dk}, {dk, dk, 1});
      }
      void *argv[14];
      for (int i = 0; i < p; ++i) {
        ptrs[i] = &d[i];
        argv[i] = &ptrs[i];
      }
      impl->entry(argv);
    }
  };
  if (threads == 1) {
    worker();
  } else {
    std::vector<std::thread> pool;
    for (int i = 0; i < threads; ++i)
      pool.emplace_back(worker);
    for (std::thread &t : pool)
      t.join();
  }
  return "";
}

//===----------------------------------------------------------------------===//
// Parsing a spec from MLIR
//===----------------------------------------------------------------------===//

std::string parseSpec(const std::string &mlirText, AttentionSpec &spec,
                      CompileOptions *options,
                      std::vector<std::vector<int64_t>> *shapes) {
  ParsedModule parsed(mlirText, /*locations=*/true);
  if (!parsed.module)
    return "invalid spec: " + parsed.diagnostics;
  mlir::linattn::AttentionOp op;
  parsed.module->walk([&](mlir::linattn::AttentionOp a) {
    if (!op)
      op = a;
  });
  if (!op)
    return "the module contains no linattn.attention op";
  using namespace mlir::linattn;
  AttentionSpec r;
  DecayAttr decay = op.getDecay();
  r.decay = static_cast<DecayKind>(static_cast<int>(decay.getKind()));
  if (auto sched = decay.getSchedule()) {
    r.schedule = static_cast<Schedule>(static_cast<int>(*sched));
    r.layer = decay.getLayer();
    r.numLayers = std::max<int64_t>(decay.getNumLayers(), 1);
  }
  if (auto list = decay.getLogDecay())
    r.logDecay.assign(list.asArrayRef().begin(), list.asArrayRef().end());
  if (auto cm = decay.getClampMin())
    r.clampMin = cm.getValueAsDouble();
  r.featureMap = static_cast<FeatureMap>(static_cast<int>(op.getFeatureMap()));
  r.normalized = op.getNormalization() == Normalization::Katharopoulos;
  r.eps = op.getEps().convertToDouble();
  if (auto sc = op.getScaleAttr())
    r.scale = sc.getValueAsDouble();
  r.causal = op.getCausal();
  r.exclusive = op.getExclusive();
  r.layout = op.getLayout() == mlir::linattn::Layout::BTHD ? Layout::BTHD
                                                           : Layout::BHTD;
  r.stateValueMajor = op.getStateLayout() == StateLayout::ValueMajor;
  auto dtypeOf = [](mlir::Type t, DType &out) {
    if (t.isF32())
      out = DType::F32;
    else if (t.isBF16())
      out = DType::BF16;
    else if (t.isF16())
      out = DType::F16;
    else if (t.isF64())
      out = DType::F64;
    else
      return false;
    return true;
  };
  auto qt = llvm::cast<mlir::RankedTensorType>(op.getQ().getType());
  auto vt = llvm::cast<mlir::RankedTensorType>(op.getV().getType());
  if (!dtypeOf(qt.getElementType(), r.dtype))
    return "unsupported element type";
  if (mlir::Value g = op.getGate())
    dtypeOf(llvm::cast<mlir::RankedTensorType>(g.getType()).getElementType(),
            r.gateDType);
  r.keyDim = qt.getShape()[3];
  r.valueDim = vt.getShape()[3];
  // q and k mapped by the same width-changing linattn.feature_map: the spec
  // names the map, and keyDim is its input width.
  auto qMap = op.getQ().getDefiningOp<FeatureMapOp>();
  auto kMap = op.getK().getDefiningOp<FeatureMapOp>();
  if (qMap && kMap && qMap.getKind() == kMap.getKind() &&
      op.getFeatureMap() == FeatureMapKind::Identity) {
    auto in = llvm::cast<mlir::RankedTensorType>(qMap.getInput().getType());
    r.featureMap = static_cast<FeatureMap>(static_cast<int>(qMap.getKind()));
    r.keyDim = in.getShape().back();
    if (mlir::Value w = qMap.getWeight()) {
      auto wt = llvm::cast<mlir::RankedTensorType>(w.getType());
      bool performer = r.featureMap == FeatureMap::Performer ||
                       r.featureMap == FeatureMap::PerformerHyperbolic;
      r.featureCount = wt.getShape()[wt.getRank() - (performer ? 2 : 1)];
    }
  }
  if (options)
    if (ChunkingAttr c = op.getChunkingAttr()) {
      options->chunkSize = c.getSize();
      if (c.getSubSize() > 0)
        options->subChunkSize = c.getSubSize();
    }
  if (shapes) {
    shapes->clear();
    for (mlir::Value v : {op.getQ(), op.getK(), op.getV()}) {
      // Shapes of the tensors the caller passes (before a feature map).
      if (auto fm = v.getDefiningOp<FeatureMapOp>();
          fm && r.featureMap != FeatureMap::Identity)
        v = fm.getInput();
      auto t = llvm::cast<mlir::RankedTensorType>(v.getType());
      std::vector<int64_t> d;
      for (int64_t x : t.getShape())
        d.push_back(mlir::ShapedType::isDynamic(x) ? -1 : x);
      shapes->push_back(d);
    }
  }
  spec = r;
  return "";
}

} // namespace linattn
