//===- GPUCompile.cpp - Compile a spec to a PTX kernel + manifest -*- C++
//-*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//

#include "linattn/Runtime/GPUCompile.h"

#include "KernelSource.h"

#include "linattn/InitAll.h"
#include "linattn/Transforms/Passes.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Config/llvm-config.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

namespace linattn {

static const char *layoutName(Layout l) {
  return l == Layout::BTHD ? "bthd" : "bhtd";
}

static const char *scheduleName(Schedule s) {
  switch (s) {
  case Schedule::RetNet:
    return "retnet";
  case Schedule::RetNetLinspace:
    return "retnet_linspace";
  case Schedule::TransNormer:
    return "transnormer";
  case Schedule::Lightning:
    return "lightning";
  }
  return "retnet";
}

/// The manifest of docs/gpu-kernel-abi.md.
static std::string manifestJSON(const AttentionSpec &s,
                                const GPUCompileOptions &o,
                                const GPUKernelImage &img,
                                const std::string &name) {
  double scale = s.scale ? *s.scale : 1.0 / std::sqrt(double(s.keyDim));
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
      {"state_value_major", s.stateValueMajor},
      {"schedule", s.schedule ? llvm::json::Value(scheduleName(*s.schedule))
                              : llvm::json::Value(nullptr)},
      {"layer", s.layer},
      {"num_layers", s.numLayers},
      {"log_decay", std::move(logDecay)},
      {"clamp_min", s.clampMin ? llvm::json::Value(*s.clampMin)
                               : llvm::json::Value(nullptr)}};
  llvm::json::Object launch{{"threads", img.threads},
                            {"block_v", img.blockV},
                            {"chunk_size", o.chunkSize},
                            {"shared_bytes", img.sharedBytes}};
  llvm::json::Object root{{"format", "linattn-aot"},
                          {"version", 1},
                          {"entry", img.entry},
                          {"ptx", name + ".ptx"},
                          {"chip", o.chip},
                          {"compiler", std::string("linattn 0.1 (LLVM ") +
                                           LLVM_VERSION_STRING + ")"},
                          {"spec", std::move(spec)},
                          {"launch", std::move(launch)}};
  std::string out;
  llvm::raw_string_ostream os(out);
  os << llvm::formatv("{0:2}", llvm::json::Value(std::move(root))) << "\n";
  return out;
}

std::string compileGPU(const AttentionSpec &spec,
                       const GPUCompileOptions &options,
                       const std::string &name, GPUKernelImage &image) {
  if (spec.keyDim <= 0 || spec.valueDim <= 0)
    return "spec: key and value dims must be set (got " +
           std::to_string(spec.keyDim) + ", " + std::to_string(spec.valueDim) +
           ")";
  if (spec.dtype != DType::BF16 && spec.dtype != DType::F16)
    return std::string(
               "spec.dtype: GPU kernels take bf16 or f16 inputs, got ") +
           dtypeName(spec.dtype);
  if (isWidthChangingMap(spec.featureMap))
    return std::string("spec.featureMap: '") +
           reference::featureMapName(spec.featureMap) +
           "' is applied in the kernel on the CPU only; GPU kernels take the "
           "elementwise maps";
  std::string source = kernelSource(spec, CompileOptions());

  mlir::DialectRegistry registry;
  mlir::linattn::registerAllDialects(registry);
  mlir::MLIRContext context(registry);
  context.disableMultithreading();
  std::string diagnostics;
  llvm::raw_string_ostream diagOS(diagnostics);
  mlir::ScopedDiagnosticHandler handler(&context, [&](mlir::Diagnostic &d) {
    diagOS << d << "\n";
    return mlir::success();
  });
  mlir::OwningOpRef<mlir::ModuleOp> module =
      mlir::parseSourceString<mlir::ModuleOp>(source, &context);
  if (!module)
    return "internal error: generated kernel does not parse: " + diagnostics;

  mlir::PassManager pm(&context);
  mlir::linattn::PTXPipelineOptions po;
  po.chip = options.chip;
  po.chunkSize = options.chunkSize;
  po.blockV = options.blockV;
  po.warps = options.warps;
  mlir::linattn::buildPTXPipeline(pm, po);
  if (mlir::failed(pm.run(*module)))
    return "GPU kernel generation failed: " + diagnostics;

  std::string ptx;
  module->walk([&](mlir::gpu::BinaryOp binary) {
    for (mlir::Attribute a : binary.getObjects())
      if (auto obj = llvm::dyn_cast<mlir::gpu::ObjectAttr>(a))
        ptx = obj.getObject().getValue().str();
  });
  if (ptx.empty())
    return "internal error: the GPU pipeline produced no PTX";

  image.ptx = std::move(ptx);
  image.threads = 32 * options.warps;
  image.blockV = std::min(options.blockV, spec.valueDim);
  image.sharedBytes = mlir::linattn::gpuSharedBytes(
      spec.keyDim, options.chunkSize, image.blockV, dtypeSize(spec.dtype));
  image.manifest = manifestJSON(spec, options, image, name);
  return "";
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

} // namespace linattn
