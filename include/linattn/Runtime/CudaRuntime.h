//===- CudaRuntime.h - Load and launch linattn AOT kernels on CUDA -*- C++ -*-//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
///
/// \file
/// The thin GPU runtime of linattn. It reads an AOT manifest (format
/// `linattn-aot`, docs/gpu-kernel-abi.md), loads the PTX next to it through
/// the CUDA driver API, checks tensor shapes against the manifest's spec,
/// packs the kernel parameters (memref descriptors expanded to five PTX
/// parameters each) and launches the kernel.
///
/// The library depends on the C++17 standard library, dlopen and the fp64
/// reference's schedules only: no MLIR, LLVM or CUDA headers. libcuda is
/// loaded at run time (`dlopen("libcuda.so.1")`, or the file named by the
/// environment variable LINATTN_LIBCUDA), so programs linking it build and
/// run on machines without a driver or GPU and get a clear error instead of
/// a crash. Nothing throws; errors are non-empty strings naming what failed.
///
/// Two interfaces: the C++ one in namespace linattn::cuda, and a plain C API
/// (`linattnRt…`, at the end of this file) for other languages.
///
//===----------------------------------------------------------------------===//

#ifndef LINATTN_RUNTIME_CUDARUNTIME_H
#define LINATTN_RUNTIME_CUDARUNTIME_H

#include <stddef.h>
#include <stdint.h>

/// Version of the C API below; bumped on every incompatible change.
#define LINATTN_RT_API_VERSION 1
/// Newest manifest version (`"version"` of format `linattn-aot`) this
/// runtime reads.
#define LINATTN_RT_MANIFEST_VERSION 1

#if defined(_WIN32)
#define LINATTN_RT_EXPORT __declspec(dllexport)
#else
#define LINATTN_RT_EXPORT __attribute__((visibility("default")))
#endif

#ifdef __cplusplus

#include "linattn/Reference/Reference.h"

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace linattn::cuda {

//===----------------------------------------------------------------------===//
// Manifest
//===----------------------------------------------------------------------===//

/// Element types of tensors in the GPU ABI.
enum class ElemType { F32, BF16, F16 };
/// "f32", "bf16", "f16".
const char *elemTypeName(ElemType t);
/// Bytes per element.
size_t elemTypeSize(ElemType t);

/// The `spec` object of a manifest: the attention variant the kernel was
/// generated for.
struct KernelSpec {
  reference::DecayKind decay = reference::DecayKind::None;
  reference::FeatureMap featureMap = reference::FeatureMap::Identity;
  /// true: q/k/v/o/gate are [B, T, H, D]; false: [B, H, T, D].
  bool bthd = false;
  ElemType dtype = ElemType::F32;
  /// Dtype of a scalar/vector gate (f32 for constant decay).
  ElemType gateDType = ElemType::F32;
  int64_t keyDim = 0;
  int64_t valueDim = 0;
  double scale = 1.0;
  bool causal = true;
  bool exclusive = false;
  bool normalized = false;
  /// Optional key `eps` (manifests from before the GPU normalized form have
  /// none): the normalized form's denominator epsilon, compiled into the
  /// kernel; only used by reference checks.
  double eps = 1e-6;
  bool stateValueMajor = false;
  std::optional<reference::Schedule> schedule;
  int64_t layer = 0;
  int64_t numLayers = 1;
  std::vector<double> logDecay;
  std::optional<double> clampMin;
  /// Optional key `feature_count`: f of a map with weights (Hedgehog f,
  /// Performer m, HedgehogJoint d); 0 for maps without weights.
  int64_t featureCount = 0;
  /// Optional key `feature_dim`: Dphi = reference::featureMapWidth(
  /// featureMap, keyDim, featureCount), the key width of the states,
  /// normalizers and vector gates (keyDim for the elementwise maps).
  int64_t featureDim = 0;
};

/// Whether `m` runs as the `linattn_map` prepass on the GPU: the
/// width-changing maps (everything but identity, elu_plus_one and relu).
bool needsMapPrepass(reference::FeatureMap m);
/// Whether `m` takes a weight (hedgehog, hedgehog_joint, performer,
/// performer_hyperbolic).
bool mapTakesWeight(reference::FeatureMap m);
/// Whether `m` takes an optional bias (hedgehog, hedgehog_joint).
bool mapTakesBias(reference::FeatureMap m);
/// Dp: `featureDim` rounded up to a multiple of 16, the row width of the
/// prepass's workspace.
int64_t paddedFeatureDim(int64_t featureDim);

/// The `launch` object of a manifest.
struct LaunchConfig {
  int64_t threads = 0;
  int64_t blockV = 0;
  int64_t chunkSize = 0;
  int64_t sharedBytes = 0;
};

/// The top-level `map` object of a manifest with a width-changing feature
/// map: the second entry that writes phi(q) and phi(k) into a workspace
/// before `entry` runs (docs/gpu-kernel-abi.md, "The feature-map prepass").
struct MapLaunch {
  /// PTX entry name ("linattn_map").
  std::string entry;
  /// Threads per block and rows of x per block.
  int64_t threads = 0;
  int64_t rowsPerBlock = 0;
  /// Dp, the workspace row width (spec.featureDim rounded up to 16).
  int64_t paddedDim = 0;
};

/// A parsed and checked manifest.
struct Manifest {
  int64_t version = 0;
  std::string entry;
  /// PTX file name, relative to the manifest's directory.
  std::string ptx;
  /// "sm_80", "sm_90", "sm_90a", ...
  std::string chip;
  std::string compiler;
  KernelSpec spec;
  LaunchConfig launch;
  /// Set exactly when needsMapPrepass(spec.featureMap).
  std::optional<MapLaunch> map;
};

/// Parses manifest JSON text. Returns "" or an error starting with
/// "manifest: " that names the bad field, e.g. "manifest: missing field
/// 'launch.threads'" (`out` untouched on error). Unknown keys are ignored.
std::string parseManifest(const std::string &json, Manifest &out);

/// Reads and parses the manifest file at `path`; the error names the file.
std::string loadManifest(const std::string &path, Manifest &out);

/// Parses a chip name "sm_XY" / "sm_XYa" into the compute capability
/// (major * 10 + minor) and whether it is architecture-specific ("a").
bool parseChip(const std::string &chip, int &sm, bool &archSpecific);

/// Returns "" if PTX for `chip` can run on a device of compute capability
/// `deviceSm` (major * 10 + minor): PTX for sm_XY is JIT-compiled for any
/// newer device, sm_XYa only runs on exactly XY.
std::string checkChip(const std::string &chip, int deviceSm,
                      const std::string &deviceName);

//===----------------------------------------------------------------------===//
// Arguments, validation and parameter packing (no driver needed)
//===----------------------------------------------------------------------===//

/// A contiguous row-major tensor in device memory; the element type is the
/// one the ABI fixes for its position (see docs/gpu-kernel-abi.md).
struct DeviceTensor {
  uint64_t ptr = 0;
  std::vector<int64_t> shape;
  int64_t numel() const;
};

/// Tensors of one launch, shapes as in the manifest's layout. Dk below is
/// spec.featureDim (Dphi): the key dim for the elementwise feature maps, the
/// mapped width for the width-changing ones, whose q and k keep the raw
/// width d = spec.keyDim.
struct LaunchArgs {
  DeviceTensor q, k, v;
  /// Constant decay: [H] f32 ln(lambda); when absent the runtime uploads
  /// the manifest's `log_decay` or `schedule`. Scalar [B, T, H] (bthd) /
  /// [B, H, T]; vector with a trailing Dk.
  std::optional<DeviceTensor> gate;
  std::optional<DeviceTensor> initialState;
  DeviceTensor o;
  std::optional<DeviceTensor> finalState;
  /// [N + 1] i64 cu_seqlens in device memory (B must be 1). The values are
  /// not read back; check them on the host with validateOffsets().
  std::optional<DeviceTensor> offsets;
  /// Normalized kernels only: [N, H, Dk] f32 initial and final normalizer z.
  std::optional<DeviceTensor> initialNormalizer;
  std::optional<DeviceTensor> finalNormalizer;
  /// Delta rules only: [B, T, H] (bthd) / [B, H, T] f32 beta.
  std::optional<DeviceTensor> beta;
  /// Feature maps with weights only (f32, as linattn::Arguments): the map
  /// of q and, unless keyMapWeight is given, of k. Hedgehog [d, f] with an
  /// optional bias [f], HedgehogJoint [d, d] and bias [d], Performer
  /// (hyperbolic) [m, d] without bias. A leading head dim ([Hq, d, f], bias
  /// [Hq, f]) gives each q head its own map; weight and bias then both
  /// carry it (the prepass has one per-head flag).
  std::optional<DeviceTensor> mapWeight;
  std::optional<DeviceTensor> mapBias;
  /// k's own map ([Hk, ...] when per head); keyMapBias needs keyMapWeight.
  std::optional<DeviceTensor> keyMapWeight;
  std::optional<DeviceTensor> keyMapBias;
};

/// Problem sizes derived from the arguments.
struct Problem {
  int64_t batch = 0, seqLen = 0;
  int64_t hq = 0, hk = 0, hv = 0, heads = 0;
  /// Sequences: batch, or offsets.size() - 1.
  int64_t numSeqs = 0;
};

/// Checks every shape against the manifest and fills `out`. Returns "" or an
/// error naming the tensor, e.g. "v: expected value dim 64 (manifest), got
/// shape [2, 17, 4, 32]". A constant gate may be absent (see LaunchArgs).
/// The feature-map weights are checked too, e.g. "map_weight: expected
/// shape [16, 32] or [4, 16, 32] (hedgehog, d = 16, f = 32), got [16, 8]".
std::string validateArgs(const Manifest &m, const LaunchArgs &args,
                         Problem &out);

/// Checks host cu_seqlens for `seqLen` total tokens.
std::string validateOffsets(const std::vector<int64_t> &offsets,
                            int64_t seqLen);

/// Launch geometry of the ABI.
struct Geometry {
  unsigned grid[3] = {0, 0, 0};
  unsigned block[3] = {0, 0, 0};
  unsigned sharedBytes = 0;
};

/// grid (ceil(Dv / block_v), H, N), block (threads, 1, 1), dynamic shared
/// memory shared_bytes. Returns "" or an error if a dimension exceeds the
/// CUDA limits (grid y/z 65535).
std::string computeGeometry(const Manifest &m, const Problem &p, Geometry &out);

/// The kernel parameter buffer: every PTX parameter of the ABI is 8 bytes
/// (u64 pointer or i64), so `slots` holds them in order (8 tensors x 5,
/// then 8 scalars; normalized kernels then 2 tensors x 5 and 2 scalars) and
/// `params[i]` points at `slots[i]` (cuLaunchKernel's kernelParams).
struct PackedParams {
  static constexpr int NumTensors = 8;
  static constexpr int NumScalars = 8;
  /// Every kernel's parameters.
  static constexpr int NumBaseSlots = NumTensors * 5 + NumScalars;
  /// The normalized form's extra tensors and flags.
  static constexpr int NumNormalizerSlots = 2 * 5 + 2;
  static constexpr int NumSlots = NumBaseSlots + NumNormalizerSlots;
  uint64_t slots[NumSlots] = {};
  void *params[NumSlots] = {};
  /// The slots the kernel takes: NumBaseSlots, NumSlots when normalized,
  /// NumBaseSlots + 5 for the delta rules (beta).
  int size = NumBaseSlots;

  PackedParams();
  PackedParams(const PackedParams &other);
  PackedParams &operator=(const PackedParams &other);
};

/// Packs validated arguments (see validateArgs) into `out`. `gate` replaces
/// args.gate when set (the runtime's uploaded constant log-decays).
/// `normalized` appends the normalizer parameters (the manifest's
/// spec.normalized), `delta` the beta tensor (delta rules).
void packParams(const LaunchArgs &args, const Problem &p, PackedParams &out,
                const DeviceTensor *gate = nullptr, bool normalized = false,
                bool delta = false);

/// The device workspace of the feature-map prepass: phi(q) at byte 0, then
/// phi(k) at `kOffset`, each a contiguous [B, T, Hx, Dp] / [B, Hx, T, Dp]
/// tensor of spec.dtype.
struct MapWorkspace {
  /// Rows of q and k: B * T * Hq and B * T * Hk.
  int64_t rowsQ = 0, rowsK = 0;
  /// Dp (manifest map.padded_dim).
  int64_t paddedDim = 0;
  /// Bytes of phi(q) and phi(k); phi(k) starts at kOffset (qBytes rounded
  /// up to 256 bytes); `bytes` is the whole buffer.
  size_t qBytes = 0, kBytes = 0, kOffset = 0, bytes = 0;
};

/// Sizes the workspace of a mapped manifest (m.map set) for a validated
/// problem.
MapWorkspace mapWorkspace(const Manifest &m, const Problem &p);

/// The workspace tensors of `ws` at device address `base`, in the
/// manifest's layout: {phi(q), phi(k)}; they replace q and k in the
/// linattn_fwd launch.
std::pair<DeviceTensor, DeviceTensor>
mapWorkspaceTensors(const Manifest &m, const Problem &p, const MapWorkspace &ws,
                    uint64_t base);

/// The 9 parameters of `linattn_map` (4 tensors x 5 slots, then rows,
/// seq_len, heads, per_head, has_bias), laid out like PackedParams.
struct PackedMapParams {
  static constexpr int NumSlots = 4 * 5 + 5;
  uint64_t slots[NumSlots] = {};
  void *params[NumSlots] = {};

  PackedMapParams();
  PackedMapParams(const PackedMapParams &other);
  PackedMapParams &operator=(const PackedMapParams &other);
};

/// Packs the `linattn_map` launch of q (`key` false) or k (`key` true) of
/// validated arguments, writing into `out` (the side's workspace tensor).
/// k uses keyMapWeight/keyMapBias when keyMapWeight is given, else
/// mapWeight/mapBias.
void packMapParams(const LaunchArgs &args, const Problem &p, bool key,
                   const DeviceTensor &out, PackedMapParams &pp);

/// grid (ceil(rows / map.rows_per_block), 1, 1), block (map.threads, 1, 1),
/// no dynamic shared memory. Returns "" or an error past the grid x limit.
std::string computeMapGeometry(const Manifest &m, int64_t rows, Geometry &out);

//===----------------------------------------------------------------------===//
// Device and module (need the driver)
//===----------------------------------------------------------------------===//

/// What the driver says about a device (a fingerprint for caches and
/// benchmark reports).
struct DeviceInfo {
  int ordinal = 0;
  std::string name;
  /// Compute capability major * 10 + minor (90 for H100).
  int sm = 0;
  /// cuDriverGetVersion, e.g. 12080 for CUDA 12.8.
  int driverVersion = 0;
  int multiprocessors = 0;
  /// CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN in bytes.
  int sharedPerBlockOptin = 0;
  size_t totalMemory = 0;
  /// "sm_90".
  std::string chip() const;
  /// "gpu: <name> (sm_90, driver 12.8)": the device key of tuning cache
  /// entries (see gpuFingerprint() in GPUTuner.h).
  std::string fingerprint() const;
};

/// Why Device::open failed.
enum class OpenError {
  None,
  /// No driver library, a stub library, or no device: callers that only
  /// want to test something may report "skipped".
  Unavailable,
  /// Anything else (a driver call failed on a present device).
  Failed
};

class Module;
struct DeviceImpl;

/// One GPU with its primary context, made current on the calling thread by
/// every method.
class Device {
public:
  ~Device();
  Device(const Device &) = delete;
  Device &operator=(const Device &) = delete;

  /// Loads the driver and opens device `ordinal`. On failure returns nullptr,
  /// sets `*error` (e.g. "CUDA driver not found: dlopen(libcuda.so.1): ...",
  /// "no CUDA device") and `*kind`.
  static std::unique_ptr<Device> open(int ordinal, std::string *error,
                                      OpenError *kind = nullptr);

  const DeviceInfo &info() const;

  /// Device memory; every call returns "" or an error naming the call.
  std::string alloc(size_t bytes, uint64_t &ptr);
  std::string free(uint64_t ptr);
  std::string upload(uint64_t dst, const void *src, size_t bytes);
  std::string download(void *dst, uint64_t src, size_t bytes);
  std::string memset(uint64_t dst, unsigned char value, size_t bytes);
  std::string synchronize();

  /// Loads PTX text for manifest `m`: checks the chip against the device,
  /// JIT-loads the module, finds the entry (and the map entry of a mapped
  /// manifest) and raises the dynamic shared memory limit when shared_bytes
  /// > 48 KiB.
  std::unique_ptr<Module> loadModule(const std::string &ptx, const Manifest &m,
                                     std::string *error);

private:
  Device();
  std::unique_ptr<DeviceImpl> impl;
  friend class Module;
};

struct ModuleImpl;

/// A loaded kernel. Must not outlive its Device.
class Module {
public:
  ~Module();
  Module(const Module &) = delete;
  Module &operator=(const Module &) = delete;

  const Manifest &manifest() const;

  /// Validates, packs and launches on the default stream (asynchronous; call
  /// Device::synchronize or timeLaunches). Returns "" or an error; nothing
  /// is launched when validation fails. A mapped manifest (manifest().map)
  /// first runs the map entry on q, then on k, into a grow-only workspace
  /// owned by the module, and then the entry with q and k replaced by it.
  std::string launch(const LaunchArgs &args);

  /// Runs `warmup` untimed and `reps` timed launches, each timed with CUDA
  /// events; `ms` receives the per-launch times in milliseconds (the map
  /// prepass included).
  std::string timeLaunches(const LaunchArgs &args, int warmup, int reps,
                           std::vector<double> &ms);

private:
  Module();
  std::unique_ptr<ModuleImpl> impl;
  friend class Device;
};

} // namespace linattn::cuda

extern "C" {
#endif // __cplusplus

//===----------------------------------------------------------------------===//
// C API
//===----------------------------------------------------------------------===//
//
// Every function returning int returns 0 on success, 1 on an error and 77
// when no driver or GPU is present; on failure it writes a NUL-terminated
// message into `err` (at most `errSize` bytes) when `err` is not NULL.

typedef struct LinattnRtDevice LinattnRtDevice;
typedef struct LinattnRtModule LinattnRtModule;

/// A device tensor: pointer, rank (0 = absent) and extents.
typedef struct LinattnRtTensor {
  uint64_t ptr;
  int32_t rank;
  int64_t shape[4];
} LinattnRtTensor;

/// Tensors of one launch (see linattn::cuda::LaunchArgs); absent optional
/// tensors have rank 0.
typedef struct LinattnRtArgs {
  LinattnRtTensor q, k, v, gate, initialState, o, finalState, offsets;
} LinattnRtArgs;

/// LINATTN_RT_API_VERSION of the library (compare with the header's).
LINATTN_RT_EXPORT int linattnRtApiVersion(void);
LINATTN_RT_EXPORT int linattnRtDeviceOpen(int ordinal, LinattnRtDevice **out,
                                          char *err, size_t errSize);
LINATTN_RT_EXPORT void linattnRtDeviceClose(LinattnRtDevice *device);
/// Writes the device name and compute capability (major * 10 + minor).
LINATTN_RT_EXPORT int linattnRtDeviceInfo(LinattnRtDevice *device, char *name,
                                          size_t nameSize, int *sm,
                                          int *driverVersion);
LINATTN_RT_EXPORT int linattnRtMalloc(LinattnRtDevice *device, size_t bytes,
                                      uint64_t *ptr, char *err, size_t errSize);
LINATTN_RT_EXPORT int linattnRtFree(LinattnRtDevice *device, uint64_t ptr);
LINATTN_RT_EXPORT int linattnRtMemcpyHtoD(LinattnRtDevice *device, uint64_t dst,
                                          const void *src, size_t bytes,
                                          char *err, size_t errSize);
LINATTN_RT_EXPORT int linattnRtMemcpyDtoH(LinattnRtDevice *device, void *dst,
                                          uint64_t src, size_t bytes, char *err,
                                          size_t errSize);
/// Loads a module from PTX text and manifest JSON text (both in memory).
LINATTN_RT_EXPORT int linattnRtModuleLoad(LinattnRtDevice *device,
                                          const char *ptx,
                                          const char *manifestJson,
                                          LinattnRtModule **out, char *err,
                                          size_t errSize);
LINATTN_RT_EXPORT void linattnRtModuleUnload(LinattnRtModule *module);
/// Validates, launches and synchronizes.
LINATTN_RT_EXPORT int linattnRtLaunch(LinattnRtModule *module,
                                      const LinattnRtArgs *args, char *err,
                                      size_t errSize);
/// linattnRtLaunch for normalized kernels: also the [N, H, Dk] f32 initial
/// and final normalizer (NULL or rank 0 when absent).
LINATTN_RT_EXPORT int
linattnRtLaunchNormalized(LinattnRtModule *module, const LinattnRtArgs *args,
                          const LinattnRtTensor *initialNormalizer,
                          const LinattnRtTensor *finalNormalizer, char *err,
                          size_t errSize);
/// linattnRtLaunch for the delta rules: also the f32 beta, [B, T, H] (bthd)
/// or [B, H, T].
LINATTN_RT_EXPORT int linattnRtLaunchDelta(LinattnRtModule *module,
                                           const LinattnRtArgs *args,
                                           const LinattnRtTensor *beta,
                                           char *err, size_t errSize);
/// linattnRtLaunch for feature maps with weights (hedgehog, hedgehog_joint,
/// performer, performer_hyperbolic): the f32 map weights and biases of q and
/// k (NULL or rank 0 when absent; see linattn::cuda::LaunchArgs). Weights
/// have rank 2 or, per head, 3 (biases 1 or 2). Taylor maps take none and
/// use linattnRtLaunch.
LINATTN_RT_EXPORT int linattnRtLaunchMapped(LinattnRtModule *module,
                                            const LinattnRtArgs *args,
                                            const LinattnRtTensor *mapWeight,
                                            const LinattnRtTensor *mapBias,
                                            const LinattnRtTensor *keyMapWeight,
                                            const LinattnRtTensor *keyMapBias,
                                            char *err, size_t errSize);

/// Every optional tensor beyond LinattnRtArgs, for linattnRtLaunchEx (e.g.
/// a normalized kernel with a Hedgehog map). Absent tensors have rank 0
/// (zero-initialize the struct). `size` must be set to
/// sizeof(LinattnRtExtraArgs) by the caller: fields added at the end in
/// later versions are then read only from callers that know them.
typedef struct LinattnRtExtraArgs {
  size_t size;
  LinattnRtTensor initialNormalizer, finalNormalizer, beta;
  LinattnRtTensor mapWeight, mapBias, keyMapWeight, keyMapBias;
} LinattnRtExtraArgs;

/// The general launch: LinattnRtArgs plus `extra` (NULL: none). Validates,
/// launches and synchronizes like linattnRtLaunch.
LINATTN_RT_EXPORT int linattnRtLaunchEx(LinattnRtModule *module,
                                        const LinattnRtArgs *args,
                                        const LinattnRtExtraArgs *extra,
                                        char *err, size_t errSize);

#ifdef __cplusplus
} // extern "C"
#endif

#endif // LINATTN_RUNTIME_CUDARUNTIME_H
