//===- Passes.h - linattn transformation passes ----------------*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//

#ifndef LINATTN_TRANSFORMS_PASSES_H
#define LINATTN_TRANSFORMS_PASSES_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir::linattn {

#define GEN_PASS_DECL
#include "linattn/Transforms/Passes.h.inc"

/// Options of the whole CPU pipeline (`--linattn-to-cpu`).
struct CPUPipelineOptions {
  int64_t chunkSize = 0;
  int64_t subChunkSize = 0;
  int64_t tileM = 6;
  int64_t tileN = 16;
  int64_t vectorWidth = 8;
};

/// Adds chunking, bufferization, micro-kernel vectorization and the
/// lowering to the LLVM dialect to `pm`.
void buildCPUPipeline(OpPassManager &pm, const CPUPipelineOptions &options);

/// Options of the GPU pipeline (see --convert-linattn-to-gpu). Zero means
/// "pick the default for the chip and shape".
struct PTXPipelineOptions {
  std::string chip = "sm_80";
  /// "auto" (wgmma on sm_90/sm_90a where the shape allows), "sync" or
  /// "wgmma".
  std::string mma = "auto";
  int64_t chunkSize = 0;
  int64_t blockV = 0;
  int64_t warps = 0;
  /// Chunks in flight: 1 loads each chunk when it starts; S > 1 keeps a
  /// ring of S shared-memory buffers that cp.async fills S - 1 chunks ahead.
  int64_t stages = 0;
};

/// linattn.attention -> gpu.module -> NVVM -> gpu.binary holding PTX
/// (gpu-module-to-binary format=isa; no CUDA toolkit needed).
void buildPTXPipeline(OpPassManager &pm, const PTXPipelineOptions &options);

/// The same kernels as buildPTXPipeline, ending in host LLVM-dialect code
/// for the CPU emulator of the CUDA driver (linattn-gpu-to-emulation)
/// instead of PTX.
void buildEmulationPipeline(OpPassManager &pm,
                            const PTXPipelineOptions &options,
                            bool checkMemory = true);

/// The resolved form of a GPU kernel's options for one problem shape.
struct GpuKernelPlan {
  /// wgmma.mma_async (Hopper, needs the arch-specific target sm_90a)
  /// instead of mma.sync.
  bool wgmma = false;
  /// The chip the PTX targets: `chip`, or sm_90a for wgmma.
  std::string targetChip;
  int64_t chunkSize = 0, blockV = 0, warps = 0, threads = 0, stages = 1;
  /// Dynamic shared memory per block, in bytes.
  int64_t sharedBytes = 0;
  /// The kernel's key dim: the one planned for, padded to a multiple of 16
  /// when a feature-map prepass writes q and k (GpuKernelForm::prepassMap).
  int64_t keyDim = 0;
  /// The feature-map prepass `linattn_map` of width-changing maps: one
  /// warp per row, this many rows per block (no shared memory).
  static constexpr int64_t kMapRowsPerBlock = 4;
  static constexpr int64_t kMapThreads = 32 * kMapRowsPerBlock;
};

/// The attention form a GPU kernel computes, as far as the plan cares: the
/// forms the wgmma kernel lacks run on mma.sync (mma=auto falls back,
/// mma=wgmma is an error). Exclusive reads work on both kernels.
struct GpuKernelForm {
  /// Per-key (GLA) gates.
  bool vectorGates = false;
  /// false: bidirectional attention (two passes over the chunks).
  bool causal = true;
  /// Katharopoulos normalization: a normalizer z in shared memory.
  bool normalized = false;
  /// The (gated) delta rule: per-token beta, the WY/UT chunk form with
  /// (I + A)^{-1} solved in shared memory.
  bool delta = false;
  /// Per-token gates (scalar, constant, or the gated delta rule's).
  bool tokenGates = false;
  /// Per-row scalars staged one chunk row per thread: per-token gates or
  /// the delta rule's beta (the mma.sync kernel then needs at least as many
  /// threads as chunk rows).
  bool rowScalars() const { return tokenGates || delta; }
  /// The width-changing feature map whose prepass writes q and k (empty:
  /// none). The key dim to plan for is then its width Dφ, which the
  /// prepass pads with zero features to a multiple of 16.
  std::string prepassMap;
};

/// Applies the defaults to `options` for keys of width `keyDim`, values of
/// width `valueDim`, `elementBytes`-byte inputs and the attention `form`,
/// and checks the combination (tile divisibility, registers, the chip's
/// shared memory). Returns "" and fills `plan`, or the reason the
/// combination is illegal.
std::string planGpuKernel(const PTXPipelineOptions &options, int64_t keyDim,
                          int64_t valueDim, int64_t elementBytes,
                          const GpuKernelForm &form, GpuKernelPlan &plan);
/// The causal, un-normalized form, with or without `vectorGates`.
std::string planGpuKernel(const PTXPipelineOptions &options, int64_t keyDim,
                          int64_t valueDim, int64_t elementBytes,
                          bool vectorGates, GpuKernelPlan &plan);

/// Largest dynamic shared memory per block on `chip` (opt-in), or 0 for an
/// unknown chip.
int64_t gpuSharedLimit(llvm::StringRef chip);

/// Registers the linattn passes and the `linattn-to-cpu` pipeline.
void registerTransformsPasses();

#define GEN_PASS_REGISTRATION
#include "linattn/Transforms/Passes.h.inc"

} // namespace mlir::linattn

#endif // LINATTN_TRANSFORMS_PASSES_H
