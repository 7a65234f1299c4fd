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

#include <cstdint>
#include <string>

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
  int64_t sharedBytes = 0;
};

/// Compiles `spec` to PTX. Returns "" on success or the diagnostics.
std::string compileGPU(const AttentionSpec &spec,
                       const GPUCompileOptions &options,
                       const std::string &name, GPUKernelImage &image);

/// Writes `<dir>/<name>.ptx` and `<dir>/<name>.json`. Returns "" or an error.
std::string writeAOT(const GPUKernelImage &image, const std::string &dir,
                     const std::string &name);

} // namespace linattn

#endif // LINATTN_RUNTIME_GPUCOMPILE_H
