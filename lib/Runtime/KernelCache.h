//===- KernelCache.h - compiled-kernel cache (internal) --------*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
///
/// \file
/// Internal interface between Kernel::compile and the compiled-kernel cache.
/// The code of a kernel lives in a CompiledCode object shared by every Kernel
/// compiled from the same source and options (in-memory cache of the most
/// recent ones, never destroyed) and, for the CPU, as a relocatable object file
/// under
/// `<cache dir>/kernels/` that a later process loads with an ORC LLJIT
/// instead of running the passes and LLVM again (disk cache).
///
//===----------------------------------------------------------------------===//

#ifndef LINATTN_LIB_RUNTIME_KERNELCACHE_H
#define LINATTN_LIB_RUNTIME_KERNELCACHE_H

#include "linattn/Runtime/Runtime.h"
#include "linattn/Runtime/Tuning.h"

#include <memory>
#include <string>

namespace llvm {
class TargetMachine;
namespace orc {
class LLJIT;
} // namespace orc
} // namespace llvm

namespace mlir {
class ExecutionEngine;
} // namespace mlir

namespace linattn::detail {

/// Executable code of one kernel: either a freshly JIT-compiled engine or an
/// LLJIT holding a cached object file.
struct CompiledCode {
  /// Declared before the engine so that it outlives it (the engine's IR
  /// transformer keeps a raw pointer to it).
  std::unique_ptr<llvm::TargetMachine> optimizerTM;
  std::unique_ptr<mlir::ExecutionEngine> engine;
  std::unique_ptr<llvm::orc::LLJIT> jit;
  void (*entry)(void **) = nullptr;
  /// The object file is in the disk cache.
  bool onDisk = false;
  CompiledCode();
  ~CompiledCode();
};

/// The cache key of a kernel: a digest of its linattn source, the
/// code-generation options, the host target (triple, CPU, features) and the
/// compiler build.
std::string kernelCodeKey(const std::string &source,
                          const CompileOptions &options);

/// Looks `key` up in memory, then on disk. Returns null on a miss (a
/// corrupt or unloadable file counts as a miss and is removed).
std::shared_ptr<CompiledCode> findKernelCode(const std::string &key,
                                             CodeOrigin &origin);

/// Whether freshly compiled engines should keep their object code so that
/// it can be written to disk (now or on a later cache hit).
bool kernelDiskCacheEnabled();

/// Registers freshly compiled code in memory and writes its object file to
/// the disk cache (atomically; failures are ignored: the cache is optional).
void publishKernelCode(const std::string &key,
                       const std::shared_ptr<CompiledCode> &code);

/// The compiler build: compilerVersion() plus the size and modification
/// time of the binary holding the code generator (GPU kernel cache key).
std::string kernelBuildIdentity();

/// Counts one full compilation.
void noteKernelCompiled();

} // namespace linattn::detail

#endif // LINATTN_LIB_RUNTIME_KERNELCACHE_H
