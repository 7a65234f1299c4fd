//===- TuningCache.h - tuning cache file, shared by CPU and GPU -*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
///
/// \file
/// The tuning cache file (`tuning.json`) and its keys, in standard C++ only:
/// the CPU tuner (Tuning.h, with MLIR/LLVM) and the GPU launcher
/// (`linattn-launch`, built with one g++ command and no LLVM) read and write
/// the same file. An entry holds the winner of one tuning run per device
/// fingerprint, spec key and shape class, as named integer parameters under
/// a backend name ("cpu" or "gpu"); every reader keeps entries of the other
/// backend when it merges.
///
/// File format:
///   {"format": 1, "compiler": "<compilerVersion()>",
///    "entries": {"<key>": {"device": ..., "spec": ..., "shape": ...,
///                          "backend": "cpu" | "gpu", "params": {...},
///                          "ms": ..., "default_ms": ..., "tune_seconds":
///                          ...}}}
/// A file written by another compiler version is ignored as a whole.
///
//===----------------------------------------------------------------------===//

#ifndef LINATTN_RUNTIME_TUNINGCACHE_H
#define LINATTN_RUNTIME_TUNINGCACHE_H

#include "linattn/Runtime/Runtime.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace linattn {

/// The cache directory: $LINATTN_CACHE_DIR, else $XDG_CACHE_HOME/linattn,
/// else $HOME/.cache/linattn; "" when none of these is set (caches off).
std::string cacheDirectory();

/// Reads the whole file at `path` into `out`. Returns "" or
/// "cannot read '<path>'".
std::string readWholeFile(const std::string &path, std::string &out);

/// The default cache file, or "" when there is no cache directory.
std::string defaultTuningCacheFile();

/// The shape class: T and the number of (sequence, head) items rounded up to
/// powers of two, plus the thread count when it is positive (CPU):
/// "T4096.BH8.t1" (CPU), "T4096.BH64" (GPU). Nearby shapes share a result.
std::string shapeClassOf(int64_t seqLen, int64_t batchHeads, int threads);

/// A configuration as named parameters of a backend. The CPU backend uses
/// "chunk", "sub_chunk", "tile_m", "tile_n", "vector_width"; the GPU backend
/// "chunk", "block_v", "warps" and any further options of GPUCompileOptions
/// (e.g. "stages").
struct TuneConfig {
  std::string backend = "cpu";
  std::map<std::string, int64_t> params;

  /// CPU parameters of `options` (defined in LinAttnRuntime).
  static TuneConfig fromOptions(const CompileOptions &options);
  /// Applies the CPU parameters to `base` (unknown names are ignored;
  /// defined in LinAttnRuntime).
  CompileOptions toOptions(const CompileOptions &base = {}) const;
  /// CPU: "C=64 sub=16 tile=6x16"; GPU: "C=64 bv=32 warps=4" followed by
  /// any other parameter as "name=value".
  std::string describe() const;
};

/// How the tuning cache is used.
enum class TuneMode {
  Off,           ///< Default options; the cache is not read.
  UseOnly,       ///< A cached result if any, else the defaults; never tunes.
  TuneIfMissing, ///< A cached result, else tune now and store the result.
  Force          ///< Always tune and overwrite the cached result.
};
/// "off", "use-only", "tune-if-missing", "force".
const char *tuneModeName(TuneMode mode);
std::optional<TuneMode> parseTuneMode(const std::string &name);
/// $LINATTN_TUNE if set to a valid mode name, else `fallback`.
TuneMode tuneModeFromEnvironment(TuneMode fallback);

enum class Verbosity {
  Quiet,  ///< No progress output.
  Auto,   ///< Progress on stderr when stderr is a terminal.
  Verbose ///< Progress on stderr always.
};
/// Whether progress lines should be printed for `v`.
bool progressEnabled(Verbosity v);

/// One stored result.
struct TuningEntry {
  std::string device, spec, shape;
  TuneConfig config;
  double ms = 0, defaultMs = 0, tuneSeconds = 0;
};

/// Key of an entry: device, spec and shape class joined.
std::string tuningKey(const std::string &device, const std::string &spec,
                      const std::string &shape);

/// Reads the entries of `file`. A missing, corrupt or stale (written by a
/// compiler other than `compiler`) file yields no entries and, in
/// `*problem`, why.
std::map<std::string, TuningEntry>
readTuningCacheFile(const std::string &file, const std::string &compiler,
                    std::string *problem);

/// Writes `entries` to `file` (replacing it) through a unique temporary file
/// and a rename. Returns "" or an error.
std::string
writeTuningCacheFile(const std::string &file, const std::string &compiler,
                     const std::map<std::string, TuningEntry> &entries);

/// Merges `entries` into `file` (theirs win) under an exclusive lock on
/// `file`.lock, re-reading the file under the lock so that concurrent
/// writers keep each other's entries. A corrupt or stale file starts over.
std::string
storeTuningCacheEntries(const std::string &file, const std::string &compiler,
                        const std::map<std::string, TuningEntry> &entries);

} // namespace linattn

#endif // LINATTN_RUNTIME_TUNINGCACHE_H
