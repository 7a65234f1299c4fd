//===- GPUTuner.h - choose among AOT kernel variants on a GPU ---*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
///
/// \file
/// GPU autotuning over ahead-of-time kernels. `linattn-run --emit-aot=DIR
/// --aot-variants=tune` compiles the legal (chunk, block_v, warps, ...)
/// family of a spec for one chip and writes a variant index next to the
/// kernels; `linattn-launch INDEX --tune` runs them on the GPU:
///
///  1. the default variant is checked against the fp64 reference,
///  2. every other variant must reproduce the default's output (ratio
///     within the dtype tolerance of MATH.md 9.7) before it is timed,
///  3. candidates that would not fit the time budget are skipped,
///  4. the winner is timed again against the default and kept only if it
///     is faster,
///
/// and the result goes into the tuning cache (TuningCache.h) with backend
/// "gpu" under the GPU's fingerprint. Standard C++ only (built by
/// scripts/build-launch.sh); the GPU work is behind callbacks so that the
/// selection logic is tested without a GPU.
///
/// Variant index format (`<name>.variants.json`):
///   {"format": "linattn-aot-variants", "version": 1, "name": ...,
///    "chip": "sm_90", "compiler": "<compilerVersion()>", "spec_key": ...,
///    "default": 0, "variants": [{"manifest": "x.json",
///                                "params": {"chunk": 64, ...}}, ...]}
///
//===----------------------------------------------------------------------===//

#ifndef LINATTN_RUNTIME_GPUTUNER_H
#define LINATTN_RUNTIME_GPUTUNER_H

#include "linattn/Reference/Reference.h"
#include "linattn/Runtime/TuningCache.h"

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace linattn::cuda {

/// "gpu: <name> (sm_XY, driver <major>.<minor>)" from what the driver
/// reports (cuDeviceGetName, compute capability, cuDriverGetVersion).
std::string gpuFingerprint(const std::string &name, int sm, int driverVersion);

/// One AOT kernel of a variant set.
struct AOTVariant {
  /// Manifest file name, relative to the index's directory.
  std::string manifest;
  /// Backend "gpu" parameters the kernel was compiled with.
  TuneConfig config;
};

/// A parsed variant index.
struct VariantIndex {
  std::string name, chip, compiler, specKey;
  size_t defaultIndex = 0;
  std::vector<AOTVariant> variants;
};

/// The index as JSON text.
std::string variantIndexJSON(const VariantIndex &index);
/// Parses index JSON text; the error names the bad field ("variant index:
/// ..."). `out` is untouched on error.
std::string parseVariantIndex(const std::string &json, VariantIndex &out);
/// Whether `json` is a variant index (format "linattn-aot-variants") rather
/// than a kernel manifest.
bool isVariantIndex(const std::string &json);

/// The variant whose parameters equal `config`'s, or -1.
int findVariant(const VariantIndex &index, const TuneConfig &config);

/// Outputs of one launch, in the kernel's layout (compared as a whole).
struct VariantOutput {
  reference::Tensor o, state;
};

/// The GPU work of tuneVariants().
struct VariantTuneHooks {
  /// Launches variant `i` on the tuning inputs and returns its outputs.
  std::function<std::string(size_t i, VariantOutput &out)> run;
  /// Times variant `i` on the tuning inputs: median milliseconds.
  std::function<std::string(size_t i, double &ms)> time;
  /// Checks the default variant against the fp64 reference ("" = pass).
  std::function<std::string()> checkDefault;
  /// Monotonic seconds (steady_clock when empty; tests inject a clock).
  std::function<double()> now;
  /// Receives progress lines (stderr when empty).
  std::function<void(const std::string &)> progress;
};

struct VariantTuneOptions {
  /// Wall-clock budget; a candidate whose estimated cost (the slowest one
  /// so far) would overrun it is skipped, with every later one.
  double budgetSeconds = 30;
  /// Largest ratio (MATH.md 9.7) of a variant's output to the default's.
  double tolerance = 5e-3;
  Verbosity verbosity = Verbosity::Auto;
};

struct VariantTuneResult {
  size_t best = 0;
  double bestMs = 0, defaultMs = 0, seconds = 0;
  /// Variants run (including the default) and dropped (failed to run or
  /// differed from the default).
  int tried = 0, dropped = 0;
  bool budgetReached = false;
};

/// Tunes over `index.variants` (see the file comment). Returns "" or an
/// error when the default itself fails; a failing candidate is dropped.
std::string tuneVariants(const VariantIndex &index,
                         const VariantTuneHooks &hooks,
                         const VariantTuneOptions &options,
                         VariantTuneResult &result);

/// The MATH.md 9.7 forward tolerance for a kernel dtype name ("bf16" 5e-3,
/// "f16" 1e-3, "f32" 1e-5).
double gpuTolerance(const std::string &dtype);

} // namespace linattn::cuda

#endif // LINATTN_RUNTIME_GPUTUNER_H
