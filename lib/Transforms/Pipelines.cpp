//===- Pipelines.cpp - Named linattn pipelines -----------------*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//

#include "linattn/Transforms/Passes.h"

#include "mlir/Conversion/AffineToStandard/AffineToStandard.h"
#include "mlir/Conversion/ArithToLLVM/ArithToLLVM.h"
#include "mlir/Conversion/ControlFlowToLLVM/ControlFlowToLLVM.h"
#include "mlir/Conversion/FuncToLLVM/ConvertFuncToLLVMPass.h"
#include "mlir/Conversion/GPUToNVVM/GPUToNVVMPass.h"
#include "mlir/Conversion/IndexToLLVM/IndexToLLVM.h"
#include "mlir/Conversion/MathToLLVM/MathToLLVM.h"
#include "mlir/Conversion/MemRefToLLVM/MemRefToLLVM.h"
#include "mlir/Conversion/NVGPUToNVVM/NVGPUToNVVM.h"
#include "mlir/Conversion/NVVMToLLVM/NVVMToLLVM.h"
#include "mlir/Conversion/ReconcileUnrealizedCasts/ReconcileUnrealizedCasts.h"
#include "mlir/Conversion/SCFToControlFlow/SCFToControlFlow.h"
#include "mlir/Conversion/VectorToLLVM/ConvertVectorToLLVMPass.h"
#include "mlir/Dialect/Arith/Transforms/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;
using namespace mlir::linattn;

void mlir::linattn::buildCPUPipeline(OpPassManager &pm,
                                     const CPUPipelineOptions &options) {
  // Width-changing maps become tensor code the chunk pass reads like any
  // other query/key operand.
  pm.addPass(createLinAttnLowerFeatureMap());
  LinAttnChunkOptions chunk;
  chunk.chunkSize = options.chunkSize;
  chunk.subChunkSize = options.subChunkSize;
  pm.addPass(createLinAttnChunk(chunk));
  pm.addPass(createCanonicalizerPass());

  bufferization::OneShotBufferizePassOptions bufferize;
  bufferize.bufferizeFunctionBoundaries = true;
  bufferize.functionBoundaryTypeConversion =
      bufferization::LayoutMapOption::IdentityLayoutMap;
  pm.addPass(bufferization::createOneShotBufferizePass(bufferize));
  pm.addPass(createLinAttnFreeTemporaries());

  LinAttnCPUVectorizeOptions vec;
  vec.tileM = options.tileM;
  vec.tileN = options.tileN;
  vec.vectorWidth = options.vectorWidth;
  pm.addPass(createLinAttnCPUVectorize(vec));
  pm.addPass(createConvertLinalgToLoopsPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  pm.addPass(createLoopInvariantCodeMotionPass());

  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createLowerAffinePass());
  arith::ArithExpandOpsPassOptions expand;
  expand.includeBf16 = true;
  pm.addPass(arith::createArithExpandOpsPass(expand));
  pm.addPass(createSCFToControlFlowPass());
  pm.addPass(createConvertVectorToLLVMPass());
  pm.addPass(createFinalizeMemRefToLLVMConversionPass());
  pm.addPass(createConvertMathToLLVMPass());
  pm.addPass(createArithToLLVMConversionPass());
  pm.addPass(createConvertFuncToLLVMPass());
  pm.addPass(createConvertControlFlowToLLVMPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
}

/// The GPU kernels down to the NVVM level, shared by PTX and the emulator.
static void buildNVVMKernels(OpPassManager &pm,
                             const PTXPipelineOptions &options) {
  LinAttnToGPUOptions gpu;
  gpu.chip = options.chip;
  gpu.mma = options.mma;
  gpu.chunkSize = options.chunkSize;
  gpu.blockV = options.blockV;
  gpu.warps = options.warps;
  gpu.stages = options.stages;
  pm.addPass(createLinAttnToGPU(gpu));

  OpPassManager &kernels = pm.nest<gpu::GPUModuleOp>();
  kernels.addPass(createCanonicalizerPass());
  kernels.addPass(createCSEPass());
  kernels.addPass(createLoopInvariantCodeMotionPass());
  kernels.addPass(createSCFToControlFlowPass());
  ConvertGpuOpsToNVVMOpsOptions nvvm;
  nvvm.indexBitwidth = 64;
  kernels.addPass(createConvertGpuOpsToNVVMOps(nvvm));
  // cp.async copies of the pipeline stages.
  kernels.addPass(createConvertNVGPUToNVVMPass());
  kernels.addPass(createConvertVectorToLLVMPass());
  kernels.addPass(createArithToLLVMConversionPass());
  kernels.addPass(createConvertIndexToLLVMPass());
  // Module-anchored; converts the memref ops left inside the gpu.module.
  pm.addPass(createFinalizeMemRefToLLVMConversionPass());
}

void mlir::linattn::buildPTXPipeline(OpPassManager &pm,
                                     const PTXPipelineOptions &options) {
  buildNVVMKernels(pm, options);
  OpPassManager &llvmKernels = pm.nest<gpu::GPUModuleOp>();
  llvmKernels.addPass(createConvertNVVMToLLVMPass());
  llvmKernels.addPass(createReconcileUnrealizedCastsPass());
  llvmKernels.addPass(createLinAttnExternDynamicShared());
  llvmKernels.addPass(createCanonicalizerPass());

  GpuModuleToBinaryPassOptions binary;
  binary.compilationTarget = "isa";
  pm.addPass(createGpuModuleToBinaryPass(binary));
}

void mlir::linattn::buildEmulationPipeline(OpPassManager &pm,
                                           const PTXPipelineOptions &options,
                                           bool checkMemory) {
  buildNVVMKernels(pm, options);
  pm.nest<gpu::GPUModuleOp>().addPass(createReconcileUnrealizedCastsPass());
  LinAttnGPUToEmulationOptions emu;
  emu.checkMemory = checkMemory;
  pm.addPass(createLinAttnGPUToEmulation(emu));
  pm.addPass(createCanonicalizerPass());
}

namespace {
struct PTXPipelineCLOptions : public PassPipelineOptions<PTXPipelineCLOptions> {
  Option<std::string> chip{
      *this, "chip",
      llvm::cl::desc("sm_80, sm_86, sm_87, sm_89, sm_90 or sm_90a"),
      llvm::cl::init("sm_80")};
  Option<std::string> mma{
      *this, "mma",
      llvm::cl::desc("auto (wgmma on sm_90 where possible), sync or wgmma"),
      llvm::cl::init("auto")};
  Option<int64_t> chunkSize{*this, "chunk-size",
                            llvm::cl::desc("Chunk size (0: default)"),
                            llvm::cl::init(0)};
  Option<int64_t> blockV{
      *this, "block-v",
      llvm::cl::desc("Value columns per thread block (0: default)"),
      llvm::cl::init(0)};
  Option<int64_t> warps{*this, "warps",
                        llvm::cl::desc("Warps per block (0: default)"),
                        llvm::cl::init(0)};
  Option<int64_t> stages{
      *this, "stages",
      llvm::cl::desc("Pipeline stages, chunks in flight (0: default, 1)"),
      llvm::cl::init(0)};
};

PTXPipelineOptions fromCL(const PTXPipelineCLOptions &cl) {
  PTXPipelineOptions o;
  o.chip = cl.chip;
  o.chunkSize = cl.chunkSize;
  o.blockV = cl.blockV;
  o.warps = cl.warps;
  o.stages = cl.stages;
  o.mma = cl.mma;
  return o;
}

struct CPUPipelineCLOptions : public PassPipelineOptions<CPUPipelineCLOptions> {
  Option<int64_t> chunkSize{*this, "chunk-size",
                            llvm::cl::desc("Chunk size C (0: op hint or 64)"),
                            llvm::cl::init(0)};
  Option<int64_t> subChunkSize{
      *this, "sub-chunk-size",
      llvm::cl::desc("Secondary chunk size for vector gates (0: 16)"),
      llvm::cl::init(0)};
  Option<int64_t> tileM{*this, "tile-m", llvm::cl::desc("Register block rows"),
                        llvm::cl::init(6)};
  Option<int64_t> tileN{*this, "tile-n",
                        llvm::cl::desc("Register block columns"),
                        llvm::cl::init(16)};
  Option<int64_t> vectorWidth{*this, "vector-width",
                              llvm::cl::desc("f32 lanes per vector"),
                              llvm::cl::init(8)};
};
} // namespace

void mlir::linattn::registerTransformsPasses() {
  registerLinAttnTransformsPasses();
  PassPipelineRegistration<CPUPipelineCLOptions>(
      "linattn-to-cpu",
      "Chunk, bufferize, vectorize and lower linattn to the LLVM dialect",
      [](OpPassManager &pm, const CPUPipelineCLOptions &cl) {
        CPUPipelineOptions o;
        o.chunkSize = cl.chunkSize;
        o.subChunkSize = cl.subChunkSize;
        o.tileM = cl.tileM;
        o.tileN = cl.tileN;
        o.vectorWidth = cl.vectorWidth;
        buildCPUPipeline(pm, o);
      });
  PassPipelineRegistration<PTXPipelineCLOptions>(
      "linattn-to-ptx",
      "Generate the tensor-core GPU kernel and compile it to PTX",
      [](OpPassManager &pm, const PTXPipelineCLOptions &cl) {
        buildPTXPipeline(pm, fromCL(cl));
      });
  PassPipelineRegistration<PTXPipelineCLOptions>(
      "linattn-to-emulation",
      "Generate the GPU kernel as host code for the CUDA driver emulator",
      [](OpPassManager &pm, const PTXPipelineCLOptions &cl) {
        buildEmulationPipeline(pm, fromCL(cl));
      });
}
