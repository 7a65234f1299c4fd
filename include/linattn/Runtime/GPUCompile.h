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

/// Tunable options of the GPU kernel (see --convert-linattn-to-gpu).
struct GPUCompileOptions {
  /// sm_80, sm_86, sm_87, sm_89, sm_90 or sm_90a.
  std::string chip = "sm_80";
  int64_t chunkSize = 64;
  /// Value columns per thread block (clamped to the value dim).
  int64_t blockV = 32;
  int64_t warps = 4;
};

/// A compiled GPU kernel.
struct GPUKernelImage {
  std::string ptx;
  /// The manifest (JSON text); its "ptx" field is `<name>.ptx`.
  std::string manifest;
  std::string entry = "linattn_fwd";
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
