//===- Tuning.h - autotuner, tuning cache and kernel cache -----*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
///
/// \file
/// Picking code-generation options per device and caching what was picked
/// and compiled:
///
///  - tune() measures legal candidate configurations (chunk size, register
///    tiles, vector-gate sub-chunk) on random inputs of the requested shape,
///    verifies each against the reference-checked default, and returns the
///    fastest (never slower than the default beyond noise: the default is a
///    candidate and the winner is re-measured against it).
///  - The tuning cache (`tuning.json` under cacheDirectory()) stores the
///    winner per device fingerprint, spec and shape class. tunedOptions() and
///    compileTuned() consult it according to a TuneMode.
///  - The kernel cache shares compiled code between Kernel objects of the
///    same source and options in a process, and keeps object files under
///    `kernels/` so that another process loads instead of compiling.
///
/// Configurations are stored as named integer parameters under a backend
/// name ("cpu" here; "gpu" from linattn-launch --tune, see GPUTuner.h) in
/// the file format of TuningCache.h.
///
/// Standard C++ only, like Runtime.h.
///
//===----------------------------------------------------------------------===//

#ifndef LINATTN_RUNTIME_TUNING_H
#define LINATTN_RUNTIME_TUNING_H

#include "linattn/Runtime/Runtime.h"
#include "linattn/Runtime/TuningCache.h"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace linattn {

//===----------------------------------------------------------------------===//
// Identities and keys
//===----------------------------------------------------------------------===//

/// "linattn <version> (LLVM <version>)". Cache files written by another
/// version are ignored.
std::string compilerVersion();

/// Device fingerprint of the host CPU: "cpu: <model name> (<LLVM CPU name>
/// +<vector ISA flags>)".
std::string deviceFingerprint();

/// The logical problem size a kernel is tuned for.
struct ProblemShape {
  int64_t batch = 1;
  /// H = max(Hq, Hk, Hv).
  int64_t heads = 1;
  int64_t seqLen = 1;
};

/// A canonical text of every field of `spec` (two specs compile to the same
/// kernel iff their keys are equal).
std::string specKey(const AttentionSpec &spec);

/// The CPU shape class: T and B*H rounded up to powers of two and the
/// thread count ("T4096.BH8.t1"), so nearby shapes share a tuning result.
/// (Dk and Dv are in the spec key.) See shapeClassOf().
std::string shapeClass(const ProblemShape &shape, int threads = 1);

//===----------------------------------------------------------------------===//
// Autotuner
//===----------------------------------------------------------------------===//

struct TuneOptions {
  /// Wall-clock budget of one tune() call; candidates that would not fit
  /// (estimated from the ones before) are skipped.
  double budgetSeconds = 30;
  /// Timed runs per candidate (median).
  int reps = 5;
  /// Threads of the timed runs.
  int numThreads = 1;
  /// At most this many (sequence, head) items in the timing problem; the
  /// kernel is per item, so more only makes tuning slower.
  int64_t maxItems = 4;
  uint64_t seed = 1;
  Verbosity verbosity = Verbosity::Auto;
  /// Tuning cache file; "" means cacheDirectory()/tuning.json.
  std::string cacheFile;
};

struct TuneResult {
  CompileOptions options;
  /// Median milliseconds of one run of the timing problem, winner vs the
  /// default configuration, measured interleaved at the end.
  double bestMs = 0, defaultMs = 0;
  /// Seconds tune() took (0 for a cache hit).
  double seconds = 0;
  int tried = 0, failed = 0;
  bool fromCache = false;
};

/// Tunes `spec` for `shape` on this machine. Does not touch the cache.
std::optional<TuneResult> tune(const AttentionSpec &spec,
                               const ProblemShape &shape,
                               const TuneOptions &options, std::string *error);

/// Options for `spec` at `shape` according to `mode` (see TuneMode); cache
/// problems never fail the call. `result`, when given, tells where the
/// options came from.
std::optional<CompileOptions>
tunedOptions(const AttentionSpec &spec, const ProblemShape &shape,
             TuneMode mode, const TuneOptions &options, std::string *error,
             TuneResult *result = nullptr);

/// tunedOptions() + Kernel::compile (through the kernel cache). Falls back to
/// the default options if the cached ones do not compile.
std::unique_ptr<Kernel> compileTuned(const AttentionSpec &spec,
                                     const ProblemShape &shape, TuneMode mode,
                                     const TuneOptions &options,
                                     std::string *error,
                                     TuneResult *result = nullptr);

//===----------------------------------------------------------------------===//
// Tuning cache file
//===----------------------------------------------------------------------===//

/// Reads the entries of `file`. A missing, corrupt or stale (other
/// compilerVersion()) file yields no entries and, in `*problem`, why.
std::map<std::string, TuningEntry> readTuningFile(const std::string &file,
                                                  std::string *problem);

/// Merges `entries` into `file` (theirs win), under a lock file, writing a
/// temporary file and renaming it over the old one. Returns "" or an error.
std::string storeTuningEntries(const std::string &file,
                               const std::map<std::string, TuningEntry> &e);

/// Copies every entry of the cache to `outFile` (a file an application can
/// ship). Returns "" or an error; `*count` gets the number of entries.
std::string exportTuning(const std::string &outFile,
                         const std::string &cacheFile = "",
                         int *count = nullptr);

/// Merges the entries of `inFile` into the cache. An unreadable file or one
/// written by another compiler version is an error naming the file.
std::string importTuning(const std::string &inFile,
                         const std::string &cacheFile = "",
                         int *count = nullptr);

//===----------------------------------------------------------------------===//
// Kernel cache
//===----------------------------------------------------------------------===//

enum class KernelCacheMode {
  Off,    ///< Every compile() compiles.
  Memory, ///< Share code between live kernels of this process.
  Disk    ///< Also keep object files under cacheDirectory()/kernels.
};
/// setKernelCacheMode()'s value, else $LINATTN_KERNEL_CACHE (off|memory|
/// disk), else Disk.
KernelCacheMode kernelCacheMode();
void setKernelCacheMode(KernelCacheMode mode);

/// Process-wide counters.
struct KernelCacheStats {
  int64_t compiled = 0;     ///< full compilations (passes + LLVM)
  int64_t memoryHits = 0;   ///< code shared with a live kernel
  int64_t diskHits = 0;     ///< object files loaded
  int64_t diskWrites = 0;   ///< object files written
  int64_t diskRejected = 0; ///< corrupt/unloadable files dropped
};
KernelCacheStats kernelCacheStats();

/// While alive, kernels compiled on this thread are not written to disk
/// (the tuner compiles many candidates and keeps one).
class ScopedNoKernelDiskWrites {
public:
  ScopedNoKernelDiskWrites();
  ~ScopedNoKernelDiskWrites();
  ScopedNoKernelDiskWrites(const ScopedNoKernelDiskWrites &) = delete;
  ScopedNoKernelDiskWrites &
  operator=(const ScopedNoKernelDiskWrites &) = delete;

private:
  bool previous;
};

} // namespace linattn

#endif // LINATTN_RUNTIME_TUNING_H
