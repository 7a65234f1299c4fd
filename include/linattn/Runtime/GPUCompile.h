//===- GPUCompile.h - Compile a spec to a PTX kernel + manifest -*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
///
/// \file
/// Ahead-of-time GPU compilation: an AttentionSpec becomes PTX for one chip
/// (through --linattn-to-ptx, no CUDA toolkit needed) plus the JSON manifest
/// of docs/gpu-kernel-abi.md that the thin CUDA runtime and `linattn-launch`
/// read. Like Runtime.h, this header needs no MLIR/LLVM headers.
///
//===----------------------------------------------------------------------===//

#ifndef LINATTN_RUNTIME_GPUCOMPILE_H
#define LINATTN_RUNTIME_GPUCOMPILE_H

#include "linattn/Runtime/Runtime.h"
#include "linattn/Runtime/TuningCache.h"

#include <cstdint>
#include <string>
#include <vector>

namespace linattn {

/// Tunable options of the GPU kernel (see --convert-linattn-to-gpu); 0
/// picks the default for the chip and shape.
struct GPUCompileOptions {
  /// sm_80, sm_86, sm_87, sm_89, sm_90 or sm_90a.
  std::string chip = "sm_80";
  /// "auto" (wgmma on sm_90 where the shape allows), "sync" or "wgmma".
  std::string mma = "auto";
  int64_t chunkSize = 0;
  /// Value columns per thread block (clamped to the value dim).
  int64_t blockV = 0;
  int64_t warps = 0;
  /// Pipeline stages: chunks in flight through cp.async (0: default, 1).
  int64_t stages = 0;
};

/// A compiled GPU kernel.
struct GPUKernelImage {
  std::string ptx;
  /// The manifest (JSON text); its "ptx" field is `<name>.ptx`.
  std::string manifest;
  std::string entry = "linattn_fwd";
  /// The chip the PTX targets (sm_90a for wgmma kernels).
  std::string chip;
  bool wgmma = false;
  int64_t chunkSize = 0;
  int64_t threads = 0;
  int64_t blockV = 0;
  int64_t stages = 1;
  int64_t sharedBytes = 0;
  /// The feature-map prepass entry of a width-changing map and its launch
  /// shape (the manifest's `map` object; one warp per row).
  std::string mapEntry = "linattn_map";
  int64_t mapThreads = 128;
  int64_t mapRowsPerBlock = 4;
};

/// The manifest JSON (docs/gpu-kernel-abi.md) of `image`, compiled from
/// `spec`, naming `<name>.ptx`; with `feature_count`, `feature_dim` and, for
/// width-changing maps, the `map` object of the prepass.
std::string gpuManifestJSON(const AttentionSpec &spec,
                            const GPUKernelImage &image,
                            const std::string &name);

/// Compiles `spec` to PTX. Returns "" on success or the diagnostics.
/// Results are cached like CPU kernels (kernelCacheMode()): in memory, and
/// under cacheDirectory()/kernels as `gpu-<key>.ptxc`, keyed by the kernel
/// source (spec), the options, the chip and the compiler build, so that a
/// second process (or a second --emit-aot) loads instead of compiling.
std::string compileGPU(const AttentionSpec &spec,
                       const GPUCompileOptions &options,
                       const std::string &name, GPUKernelImage &image);

/// Process-wide counters of compileGPU().
struct GPUKernelCacheStats {
  int64_t compiled = 0;     ///< successful full compilations
  int64_t memoryHits = 0;   ///< images reused within this process
  int64_t diskHits = 0;     ///< images loaded from the disk cache
  int64_t diskWrites = 0;   ///< images written to the disk cache
  int64_t diskRejected = 0; ///< corrupt files ignored (and rewritten)
};
GPUKernelCacheStats gpuKernelCacheStats();

/// The tunable options as backend "gpu" tuning parameters ("chunk",
/// "block_v", "warps", "stages", and "wgmma" 1/0 when mma is "wgmma" or
/// "sync"); the chip is not a parameter (it is fixed per AOT set and part
/// of the device fingerprint).
TuneConfig gpuTuneConfig(const GPUCompileOptions &options);
/// Applies the parameters of `config` to `base` (unknown names ignored).
GPUCompileOptions gpuOptionsFromConfig(const TuneConfig &config,
                                       const GPUCompileOptions &base);

/// The candidate family of the GPU tuner around `base` (same chip): every
/// combination of chunk {32, 64, 128}, block_v {16, 32, 64}, warps
/// {2, 4, 8} and stages {1, 2}, on sm_90 with mma=auto each also as the
/// mma.sync kernel ("wgmma": 0), `base` first. Legality is decided by
/// compiling.
std::vector<GPUCompileOptions>
gpuTuningCandidates(const GPUCompileOptions &base);

/// Compiles every candidate that compiles and writes the AOT set: the
/// default (`base`) as `<dir>/<name>.{ptx,json}`, the others as
/// `<name>.<params>.{ptx,json}`, and the index `<name>.variants.json`
/// (GPUTuner.h). Candidates that fail to compile (shared memory, chunk and
/// warp rules of the pass) are skipped and counted in `*skipped`; failure of
/// the default is an error. Returns "" or an error; `*written` gets the
/// number of variants. With `emulation`, each variant also gets its
/// `.emu.so` (writeEmulation).
std::string emitAOTVariants(const AttentionSpec &spec,
                            const GPUCompileOptions &base,
                            const std::string &dir, const std::string &name,
                            int *written = nullptr, int *skipped = nullptr,
                            bool emulation = false);

/// Compiles `spec` like compileGPU, but to host LLVM IR for the CUDA driver
/// emulator (docs/gpu-emulator.md) instead of PTX: the same kernels, each
/// with an entry `__emu_entry_<name>`. With `checkMemory`, every load and
/// store is checked against the live allocations. Not cached. Returns ""
/// or the diagnostics.
std::string compileGPUEmulation(const AttentionSpec &spec,
                                const GPUCompileOptions &options,
                                std::string &llvmIR, bool checkMemory = true);

/// compileGPUEmulation, then writes `<dir>/<name>.emu.ll` and builds it into
/// `<dir>/<name>.emu.so` with clang (LINATTN_CLANG, else clang-22 or clang
/// on PATH). Returns "" or an error.
std::string writeEmulation(const AttentionSpec &spec,
                           const GPUCompileOptions &options,
                           const std::string &dir, const std::string &name,
                           bool checkMemory = true);

/// Writes `<dir>/<name>.ptx` and `<dir>/<name>.json`. Returns "" or an error.
std::string writeAOT(const GPUKernelImage &image, const std::string &dir,
                     const std::string &name);

} // namespace linattn

#endif // LINATTN_RUNTIME_GPUCOMPILE_H
