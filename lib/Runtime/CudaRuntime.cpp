//===- CudaRuntime.cpp - CUDA driver backend loaded with dlopen -*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
//
// libcuda is opened at run time and the few driver entry points the runtime
// needs are declared here, so nothing includes cuda.h and builds and CPU
// tests work on machines without the driver. The `_v2` symbol names are the
// ones cuda.h maps the plain names to since CUDA 3.2/4.0 (64-bit sizes and
// pointers); the unversioned ones are the old 32-bit ABI.
//
//===----------------------------------------------------------------------===//

#include "linattn/Runtime/CudaRuntime.h"
#include "linattn/Runtime/GPUTuner.h"

#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <mutex>

using namespace linattn;
using namespace linattn::cuda;

static_assert(LINATTN_RT_API_VERSION == 1,
              "update linattnRtApiVersion's callers when the C API changes");
static_assert(sizeof(void *) == 8, "the GPU ABI packs 64-bit pointers");

//===----------------------------------------------------------------------===//
// Driver API declarations (the subset we use)
//===----------------------------------------------------------------------===//

namespace {

using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;
struct CUctx_st;
struct CUmod_st;
struct CUfunc_st;
struct CUevent_st;
struct CUstream_st;
using CUcontext = CUctx_st *;
using CUmodule = CUmod_st *;
using CUfunction = CUfunc_st *;
using CUevent = CUevent_st *;
using CUstream = CUstream_st *;

// Values from the driver API reference (cuda.h); they are part of the stable
// ABI.
constexpr CUresult CUDA_SUCCESS = 0;
constexpr CUresult CUDA_ERROR_STUB_LIBRARY = 34;
constexpr CUresult CUDA_ERROR_NO_DEVICE = 100;
constexpr CUresult CUDA_ERROR_INVALID_DEVICE = 101;
constexpr CUresult CUDA_ERROR_INSUFFICIENT_DRIVER = 35;
constexpr int CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16;
constexpr int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
constexpr int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;
constexpr int CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97;
constexpr int CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;
constexpr int CU_JIT_INFO_LOG_BUFFER = 3;
constexpr int CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES = 4;
constexpr int CU_JIT_ERROR_LOG_BUFFER = 5;
constexpr int CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6;

/// The driver entry points, resolved with dlsym.
struct DriverApi {
  void *handle = nullptr;
  CUresult (*cuInit)(unsigned) = nullptr;
  CUresult (*cuDriverGetVersion)(int *) = nullptr;
  CUresult (*cuDeviceGetCount)(int *) = nullptr;
  CUresult (*cuDeviceGet)(CUdevice *, int) = nullptr;
  CUresult (*cuDeviceGetAttribute)(int *, int, CUdevice) = nullptr;
  CUresult (*cuDeviceGetName)(char *, int, CUdevice) = nullptr;
  CUresult (*cuDeviceTotalMem_v2)(size_t *, CUdevice) = nullptr;
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *, CUdevice) = nullptr;
  CUresult (*cuDevicePrimaryCtxRelease_v2)(CUdevice) = nullptr;
  CUresult (*cuCtxSetCurrent)(CUcontext) = nullptr;
  CUresult (*cuCtxSynchronize)() = nullptr;
  CUresult (*cuModuleLoadDataEx)(CUmodule *, const void *, unsigned, int *,
                                 void **) = nullptr;
  CUresult (*cuModuleUnload)(CUmodule) = nullptr;
  CUresult (*cuModuleGetFunction)(CUfunction *, CUmodule,
                                  const char *) = nullptr;
  CUresult (*cuFuncSetAttribute)(CUfunction, int, int) = nullptr;
  CUresult (*cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned,
                             unsigned, unsigned, unsigned, CUstream, void **,
                             void **) = nullptr;
  CUresult (*cuMemAlloc_v2)(CUdeviceptr *, size_t) = nullptr;
  CUresult (*cuMemFree_v2)(CUdeviceptr) = nullptr;
  CUresult (*cuMemcpyHtoD_v2)(CUdeviceptr, const void *, size_t) = nullptr;
  CUresult (*cuMemcpyDtoH_v2)(void *, CUdeviceptr, size_t) = nullptr;
  CUresult (*cuMemsetD8_v2)(CUdeviceptr, unsigned char, size_t) = nullptr;
  CUresult (*cuEventCreate)(CUevent *, unsigned) = nullptr;
  CUresult (*cuEventRecord)(CUevent, CUstream) = nullptr;
  CUresult (*cuEventSynchronize)(CUevent) = nullptr;
  CUresult (*cuEventElapsedTime)(float *, CUevent, CUevent) = nullptr;
  CUresult (*cuEventDestroy_v2)(CUevent) = nullptr;
  CUresult (*cuGetErrorName)(CUresult, const char **) = nullptr;
  CUresult (*cuGetErrorString)(CUresult, const char **) = nullptr;
};

/// Loads the driver; a success is kept for the process, a failure is retried
/// on the next call (so LINATTN_LIBCUDA may change in between, e.g. in
/// tests).
const DriverApi *loadDriver(std::string &error) {
  static std::mutex mutex;
  static DriverApi api;
  std::lock_guard<std::mutex> lock(mutex);
  if (api.handle)
    return &api;
  const char *env = std::getenv("LINATTN_LIBCUDA");
  std::string name = env && *env ? env : "libcuda.so.1";
  void *h = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char *e = dlerror();
    error = "CUDA driver not found: dlopen(" + name +
            "): " + (e ? e : "unknown error");
    return nullptr;
  }
  DriverApi loaded;
  std::string missing;
  auto sym = [&](auto &fn, const char *symbol) {
    void *p = dlsym(h, symbol);
    if (!p && missing.empty())
      missing = symbol;
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(p);
  };
#define LINATTN_SYM(n) sym(loaded.n, #n)
  LINATTN_SYM(cuInit);
  LINATTN_SYM(cuDriverGetVersion);
  LINATTN_SYM(cuDeviceGetCount);
  LINATTN_SYM(cuDeviceGet);
  LINATTN_SYM(cuDeviceGetAttribute);
  LINATTN_SYM(cuDeviceGetName);
  LINATTN_SYM(cuDeviceTotalMem_v2);
  LINATTN_SYM(cuDevicePrimaryCtxRetain);
  LINATTN_SYM(cuDevicePrimaryCtxRelease_v2);
  LINATTN_SYM(cuCtxSetCurrent);
  LINATTN_SYM(cuCtxSynchronize);
  LINATTN_SYM(cuModuleLoadDataEx);
  LINATTN_SYM(cuModuleUnload);
  LINATTN_SYM(cuModuleGetFunction);
  LINATTN_SYM(cuFuncSetAttribute);
  LINATTN_SYM(cuLaunchKernel);
  LINATTN_SYM(cuMemAlloc_v2);
  LINATTN_SYM(cuMemFree_v2);
  LINATTN_SYM(cuMemcpyHtoD_v2);
  LINATTN_SYM(cuMemcpyDtoH_v2);
  LINATTN_SYM(cuMemsetD8_v2);
  LINATTN_SYM(cuEventCreate);
  LINATTN_SYM(cuEventRecord);
  LINATTN_SYM(cuEventSynchronize);
  LINATTN_SYM(cuEventElapsedTime);
  LINATTN_SYM(cuEventDestroy_v2);
  LINATTN_SYM(cuGetErrorName);
  LINATTN_SYM(cuGetErrorString);
#undef LINATTN_SYM
  if (!missing.empty()) {
    dlclose(h);
    error = "CUDA driver " + name + " lacks the symbol " + missing +
            " (driver too old?)";
    return nullptr;
  }
  loaded.handle = h;
  api = loaded;
  return &api;
}

/// "cuMemAlloc failed: CUDA_ERROR_OUT_OF_MEMORY: out of memory".
std::string cuError(const DriverApi &api, const char *call, CUresult r) {
  const char *name = nullptr, *text = nullptr;
  if (api.cuGetErrorName(r, &name) != CUDA_SUCCESS || !name)
    name = nullptr;
  if (api.cuGetErrorString(r, &text) != CUDA_SUCCESS || !text)
    text = nullptr;
  std::string s = std::string(call) + " failed: ";
  s += name ? name : "CUDA error " + std::to_string(r);
  if (text)
    s += std::string(": ") + text;
  return s;
}

} // namespace

//===----------------------------------------------------------------------===//
// Device
//===----------------------------------------------------------------------===//

std::string DeviceInfo::chip() const { return "sm_" + std::to_string(sm); }

std::string DeviceInfo::fingerprint() const {
  return gpuFingerprint(name, sm, driverVersion);
}

struct cuda::DeviceImpl {
  const DriverApi *api = nullptr;
  CUdevice device = 0;
  CUcontext context = nullptr;
  DeviceInfo info;

  /// Makes the primary context current on the calling thread.
  std::string bind(const char *what) {
    if (CUresult r = api->cuCtxSetCurrent(context))
      return cuError(*api, what, r);
    return "";
  }
};

Device::Device() : impl(std::make_unique<DeviceImpl>()) {}

Device::~Device() {
  if (impl->context)
    impl->api->cuDevicePrimaryCtxRelease_v2(impl->device);
}

std::unique_ptr<Device> Device::open(int ordinal, std::string *error,
                                     OpenError *kind) {
  auto fail = [&](const std::string &msg, OpenError k) {
    if (error)
      *error = msg;
    if (kind)
      *kind = k;
    return nullptr;
  };
  std::string e;
  const DriverApi *api = loadDriver(e);
  if (!api)
    return fail(e, OpenError::Unavailable);
  if (CUresult r = api->cuInit(0)) {
    // The toolkit's stub libcuda (no driver installed) and a machine with a
    // driver but no GPU both land here.
    bool absent = r == CUDA_ERROR_STUB_LIBRARY || r == CUDA_ERROR_NO_DEVICE ||
                  r == CUDA_ERROR_INSUFFICIENT_DRIVER;
    std::string msg = r == CUDA_ERROR_NO_DEVICE ? "no CUDA device"
                      : r == CUDA_ERROR_STUB_LIBRARY
                          ? "CUDA driver not found: the loaded libcuda is the "
                            "toolkit's stub library (cuInit: "
                            "CUDA_ERROR_STUB_LIBRARY)"
                          : cuError(*api, "cuInit", r);
    return fail(msg, absent ? OpenError::Unavailable : OpenError::Failed);
  }
  int count = 0;
  if (CUresult r = api->cuDeviceGetCount(&count))
    return fail(cuError(*api, "cuDeviceGetCount", r), OpenError::Failed);
  if (count == 0)
    return fail("no CUDA device", OpenError::Unavailable);
  if (ordinal < 0 || ordinal >= count)
    return fail("CUDA device " + std::to_string(ordinal) +
                    " does not exist (this machine has " +
                    std::to_string(count) + ")",
                OpenError::Failed);

  std::unique_ptr<Device> d(new Device());
  DeviceImpl &m = *d->impl;
  m.api = api;
  DeviceInfo &info = m.info;
  info.ordinal = ordinal;
  int major = 0, minor = 0;
  char name[256] = {};
  CUresult r;
  if ((r = api->cuDeviceGet(&m.device, ordinal)))
    return fail(cuError(*api, "cuDeviceGet", r), OpenError::Failed);
  if ((r = api->cuDeviceGetName(name, sizeof(name) - 1, m.device)) ||
      (r = api->cuDeviceGetAttribute(
           &major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, m.device)) ||
      (r = api->cuDeviceGetAttribute(
           &minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, m.device)) ||
      (r = api->cuDeviceGetAttribute(&info.multiprocessors,
                                     CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT,
                                     m.device)) ||
      (r = api->cuDeviceGetAttribute(
           &info.sharedPerBlockOptin,
           CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, m.device)) ||
      (r = api->cuDeviceTotalMem_v2(&info.totalMemory, m.device)) ||
      (r = api->cuDriverGetVersion(&info.driverVersion)))
    return fail(cuError(*api, "querying the CUDA device", r),
                OpenError::Failed);
  info.name = name;
  info.sm = major * 10 + minor;
  if ((r = api->cuDevicePrimaryCtxRetain(&m.context, m.device)))
    return fail(cuError(*api, "cuDevicePrimaryCtxRetain", r),
                r == CUDA_ERROR_INVALID_DEVICE ? OpenError::Unavailable
                                               : OpenError::Failed);
  if (std::string b = m.bind("cuCtxSetCurrent"); !b.empty())
    return fail(b, OpenError::Failed);
  if (kind)
    *kind = OpenError::None;
  return d;
}

const DeviceInfo &Device::info() const { return impl->info; }

#define LINATTN_CU(call, name)                                                 \
  do {                                                                         \
    if (std::string b = impl->bind(name); !b.empty())                          \
      return b;                                                                \
    if (CUresult r = (call))                                                   \
      return cuError(*impl->api, name, r);                                     \
  } while (0)

std::string Device::alloc(size_t bytes, uint64_t &ptr) {
  CUdeviceptr p = 0;
  // cuMemAlloc rejects 0 bytes; absent tensors are null pointers anyway.
  LINATTN_CU(impl->api->cuMemAlloc_v2(&p, bytes ? bytes : 1), "cuMemAlloc");
  ptr = p;
  return "";
}

std::string Device::free(uint64_t ptr) {
  if (!ptr)
    return "";
  LINATTN_CU(impl->api->cuMemFree_v2(ptr), "cuMemFree");
  return "";
}

std::string Device::upload(uint64_t dst, const void *src, size_t bytes) {
  if (!bytes)
    return "";
  LINATTN_CU(impl->api->cuMemcpyHtoD_v2(dst, src, bytes), "cuMemcpyHtoD");
  return "";
}

std::string Device::download(void *dst, uint64_t src, size_t bytes) {
  if (!bytes)
    return "";
  LINATTN_CU(impl->api->cuMemcpyDtoH_v2(dst, src, bytes), "cuMemcpyDtoH");
  return "";
}

std::string Device::memset(uint64_t dst, unsigned char value, size_t bytes) {
  if (!bytes)
    return "";
  LINATTN_CU(impl->api->cuMemsetD8_v2(dst, value, bytes), "cuMemsetD8");
  return "";
}

std::string Device::synchronize() {
  LINATTN_CU(impl->api->cuCtxSynchronize(), "cuCtxSynchronize");
  return "";
}

//===----------------------------------------------------------------------===//
// Module
//===----------------------------------------------------------------------===//

struct cuda::ModuleImpl {
  Device *device = nullptr;
  /// The device's driver state (Device::impl is private to Device/Module).
  DeviceImpl *driver = nullptr;
  CUmodule module = nullptr;
  CUfunction function = nullptr;
  Manifest manifest;
  /// Uploaded constant log-decays (when the caller passes no gate) and the
  /// head count they were computed for.
  uint64_t constGate = 0;
  int64_t constGateHeads = -1;
  /// Mapped manifests: the map entry and the grow-only workspace of phi(q)
  /// and phi(k).
  CUfunction mapFunction = nullptr;
  uint64_t workspace = 0;
  size_t workspaceBytes = 0;
};

Module::Module() : impl(std::make_unique<ModuleImpl>()) {}

Module::~Module() {
  DeviceImpl &d = *impl->device->impl;
  d.bind("cuCtxSetCurrent");
  if (impl->constGate)
    d.api->cuMemFree_v2(impl->constGate);
  if (impl->workspace)
    d.api->cuMemFree_v2(impl->workspace);
  if (impl->module)
    d.api->cuModuleUnload(impl->module);
}

const Manifest &Module::manifest() const { return impl->manifest; }

std::unique_ptr<Module> Device::loadModule(const std::string &ptx,
                                           const Manifest &m,
                                           std::string *error) {
  auto fail = [&](const std::string &msg) {
    if (error)
      *error = msg;
    return nullptr;
  };
  const DeviceInfo &info = impl->info;
  if (std::string e = checkChip(m.chip, info.sm, info.name); !e.empty())
    return fail(e);
  if (m.launch.sharedBytes > info.sharedPerBlockOptin)
    return fail("kernel needs " + std::to_string(m.launch.sharedBytes) +
                " bytes of shared memory per block (manifest shared_bytes), "
                "device " +
                info.name + " allows " +
                std::to_string(info.sharedPerBlockOptin));
  if (std::string b = impl->bind("cuCtxSetCurrent"); !b.empty())
    return fail(b);
  std::unique_ptr<Module> mod(new Module());
  mod->impl->device = this;
  mod->impl->driver = impl.get();
  mod->impl->manifest = m;
  // The JIT's error log says which PTX line failed; keep it for the message.
  char errLog[8192] = {}, infoLog[4096] = {};
  int opts[] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES,
                CU_JIT_INFO_LOG_BUFFER, CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES};
  void *vals[] = {errLog, reinterpret_cast<void *>(sizeof(errLog) - 1), infoLog,
                  reinterpret_cast<void *>(sizeof(infoLog) - 1)};
  if (CUresult r = impl->api->cuModuleLoadDataEx(&mod->impl->module,
                                                 ptx.c_str(), 4, opts, vals)) {
    std::string msg = cuError(*impl->api, "cuModuleLoadData", r) + " (chip " +
                      m.chip + " in manifest, device is " + info.chip() + ")";
    if (errLog[0])
      msg += "\n" + std::string(errLog);
    mod->impl->module = nullptr;
    return fail(msg);
  }
  if (CUresult r = impl->api->cuModuleGetFunction(
          &mod->impl->function, mod->impl->module, m.entry.c_str()))
    return fail(cuError(*impl->api, "cuModuleGetFunction", r) + " (entry '" +
                m.entry + "' from the manifest)");
  if (m.map)
    if (CUresult r = impl->api->cuModuleGetFunction(
            &mod->impl->mapFunction, mod->impl->module, m.map->entry.c_str()))
      return fail(cuError(*impl->api, "cuModuleGetFunction", r) +
                  " (map entry '" + m.map->entry +
                  "' from the manifest; feature map '" +
                  reference::featureMapName(m.spec.featureMap) + "')");
  if (m.launch.sharedBytes > 48 * 1024)
    if (CUresult r = impl->api->cuFuncSetAttribute(
            mod->impl->function,
            CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
            static_cast<int>(m.launch.sharedBytes)))
      return fail(cuError(*impl->api, "cuFuncSetAttribute", r) +
                  " (max dynamic shared memory " +
                  std::to_string(m.launch.sharedBytes) + " bytes)");
  return mod;
}

namespace {
/// Everything one launch() runs, packed: the map prepass of q and k (mapped
/// manifests only), then the attention kernel.
struct LaunchPlan {
  bool mapped = false;
  PackedMapParams mapQ, mapK;
  Geometry mapQGeo, mapKGeo;
  PackedParams params;
  Geometry geo;
};
} // namespace

/// Grows the module's workspace to at least `bytes` (grow-only).
static std::string reserveWorkspace(ModuleImpl &m, size_t bytes) {
  if (m.workspace && m.workspaceBytes >= bytes)
    return "";
  Device &d = *m.device;
  if (m.workspace) {
    // Earlier launches may still read the old buffer.
    if (std::string e = d.synchronize(); !e.empty())
      return e;
    d.free(m.workspace);
    m.workspace = 0;
    m.workspaceBytes = 0;
  }
  if (std::string e = d.alloc(bytes, m.workspace); !e.empty())
    return "map workspace (" + std::to_string(bytes) + " bytes): " + e;
  m.workspaceBytes = bytes;
  return "";
}

/// Validates and packs; uploads the constant log-decays and sizes the map
/// workspace when needed. Launches nothing.
static std::string prepare(ModuleImpl &m, const LaunchArgs &args,
                           LaunchPlan &plan) {
  Problem p;
  if (std::string e = validateArgs(m.manifest, args, p); !e.empty())
    return e;
  if (std::string e = computeGeometry(m.manifest, p, plan.geo); !e.empty())
    return e;
  LaunchArgs mappedArgs;
  plan.mapped = m.manifest.map.has_value();
  if (plan.mapped) {
    MapWorkspace ws = mapWorkspace(m.manifest, p);
    if (std::string e = computeMapGeometry(m.manifest, ws.rowsQ, plan.mapQGeo);
        !e.empty())
      return e;
    if (std::string e = computeMapGeometry(m.manifest, ws.rowsK, plan.mapKGeo);
        !e.empty())
      return e;
    if (std::string e = reserveWorkspace(m, ws.bytes); !e.empty())
      return e;
    auto [phiQ, phiK] = mapWorkspaceTensors(m.manifest, p, ws, m.workspace);
    packMapParams(args, p, /*key=*/false, phiQ, plan.mapQ);
    packMapParams(args, p, /*key=*/true, phiK, plan.mapK);
    mappedArgs = args;
    mappedArgs.q = phiQ;
    mappedArgs.k = phiK;
  }
  const LaunchArgs &fwdArgs = plan.mapped ? mappedArgs : args;
  PackedParams &params = plan.params;
  const KernelSpec &s = m.manifest.spec;
  DeviceTensor constGate;
  bool useConst = s.decay == reference::DecayKind::Constant && !args.gate;
  if (useConst) {
    if (m.constGateHeads != p.heads) {
      std::vector<double> logs =
          !s.logDecay.empty() ? s.logDecay
                              : reference::logDecaySchedule(
                                    *s.schedule, p.heads, s.layer, s.numLayers);
      std::vector<float> f(logs.begin(), logs.end());
      Device &d = *m.device;
      if (m.constGate)
        d.free(m.constGate);
      m.constGate = 0;
      m.constGateHeads = -1;
      if (std::string e = d.alloc(f.size() * sizeof(float), m.constGate);
          !e.empty())
        return e;
      if (std::string e = d.upload(m.constGate, f.data(), f.size() * 4);
          !e.empty())
        return e;
      m.constGateHeads = p.heads;
    }
    constGate.ptr = m.constGate;
    constGate.shape = {p.heads};
  }
  packParams(fwdArgs, p, params, useConst ? &constGate : nullptr, s.normalized,
             s.decay == reference::DecayKind::Delta ||
                 s.decay == reference::DecayKind::GatedDelta);
  return "";
}

static std::string launchKernel(ModuleImpl &m, CUfunction f, void **params,
                                const Geometry &g, const char *what) {
  const DriverApi &api = *m.driver->api;
  if (g.grid[0] == 0 || g.grid[1] == 0 || g.grid[2] == 0)
    return ""; // nothing to do (no rows, heads or sequences)
  if (CUresult r = api.cuLaunchKernel(f, g.grid[0], g.grid[1], g.grid[2],
                                      g.block[0], g.block[1], g.block[2],
                                      g.sharedBytes, nullptr, params, nullptr))
    return cuError(api, what, r);
  return "";
}

/// Launches a prepared plan: map(q), map(k), then the attention kernel, in
/// order on the default stream.
static std::string launchPlanned(ModuleImpl &m, LaunchPlan &plan) {
  if (plan.mapped) {
    if (std::string e = launchKernel(m, m.mapFunction, plan.mapQ.params,
                                     plan.mapQGeo, "cuLaunchKernel (map q)");
        !e.empty())
      return e;
    if (std::string e = launchKernel(m, m.mapFunction, plan.mapK.params,
                                     plan.mapKGeo, "cuLaunchKernel (map k)");
        !e.empty())
      return e;
  }
  return launchKernel(m, m.function, plan.params.params, plan.geo,
                      "cuLaunchKernel");
}

std::string Module::launch(const LaunchArgs &args) {
  if (std::string b = impl->device->impl->bind("cuCtxSetCurrent"); !b.empty())
    return b;
  LaunchPlan plan;
  if (std::string e = prepare(*impl, args, plan); !e.empty())
    return e;
  return launchPlanned(*impl, plan);
}

std::string Module::timeLaunches(const LaunchArgs &args, int warmup, int reps,
                                 std::vector<double> &ms) {
  DeviceImpl &d = *impl->device->impl;
  if (std::string b = d.bind("cuCtxSetCurrent"); !b.empty())
    return b;
  LaunchPlan plan;
  if (std::string e = prepare(*impl, args, plan); !e.empty())
    return e;
  const DriverApi &api = *d.api;
  CUevent start = nullptr, stop = nullptr;
  if (CUresult r = api.cuEventCreate(&start, 0))
    return cuError(api, "cuEventCreate", r);
  if (CUresult r = api.cuEventCreate(&stop, 0)) {
    api.cuEventDestroy_v2(start);
    return cuError(api, "cuEventCreate", r);
  }
  std::string err;
  std::vector<double> times;
  for (int i = 0; i < warmup + reps && err.empty(); ++i) {
    CUresult r;
    if ((r = api.cuEventRecord(start, nullptr))) {
      err = cuError(api, "cuEventRecord", r);
      break;
    }
    if (!(err = launchPlanned(*impl, plan)).empty())
      break;
    float t = 0;
    if ((r = api.cuEventRecord(stop, nullptr)) ||
        (r = api.cuEventSynchronize(stop)) ||
        (r = api.cuEventElapsedTime(&t, start, stop))) {
      err = cuError(api, "timing with CUDA events", r);
      break;
    }
    if (i >= warmup)
      times.push_back(t);
  }
  api.cuEventDestroy_v2(start);
  api.cuEventDestroy_v2(stop);
  if (!err.empty())
    return err;
  ms = std::move(times);
  return "";
}

//===----------------------------------------------------------------------===//
// C API
//===----------------------------------------------------------------------===//

struct LinattnRtDevice {
  std::unique_ptr<Device> device;
};
struct LinattnRtModule {
  std::unique_ptr<Module> module;
  Device *device = nullptr;
};

static int setError(char *err, size_t size, const std::string &msg,
                    int code = 1) {
  if (err && size) {
    size_t n = std::min(size - 1, msg.size());
    std::memcpy(err, msg.data(), n);
    err[n] = '\0';
  }
  return code;
}

static std::optional<DeviceTensor> fromC(const LinattnRtTensor &t) {
  if (t.rank <= 0)
    return std::nullopt;
  DeviceTensor d;
  d.ptr = t.ptr;
  d.shape.assign(t.shape, t.shape + std::min(t.rank, 4));
  return d;
}

extern "C" {

int linattnRtApiVersion(void) { return LINATTN_RT_API_VERSION; }

int linattnRtDeviceOpen(int ordinal, LinattnRtDevice **out, char *err,
                        size_t errSize) {
  std::string e;
  OpenError kind = OpenError::None;
  std::unique_ptr<Device> d = Device::open(ordinal, &e, &kind);
  if (!d)
    return setError(err, errSize, e, kind == OpenError::Unavailable ? 77 : 1);
  *out = new LinattnRtDevice{std::move(d)};
  return 0;
}

void linattnRtDeviceClose(LinattnRtDevice *device) { delete device; }

int linattnRtDeviceInfo(LinattnRtDevice *device, char *name, size_t nameSize,
                        int *sm, int *driverVersion) {
  const DeviceInfo &i = device->device->info();
  setError(name, nameSize, i.name);
  if (sm)
    *sm = i.sm;
  if (driverVersion)
    *driverVersion = i.driverVersion;
  return 0;
}

int linattnRtMalloc(LinattnRtDevice *device, size_t bytes, uint64_t *ptr,
                    char *err, size_t errSize) {
  std::string e = device->device->alloc(bytes, *ptr);
  return e.empty() ? 0 : setError(err, errSize, e);
}

int linattnRtFree(LinattnRtDevice *device, uint64_t ptr) {
  return device->device->free(ptr).empty() ? 0 : 1;
}

int linattnRtMemcpyHtoD(LinattnRtDevice *device, uint64_t dst, const void *src,
                        size_t bytes, char *err, size_t errSize) {
  std::string e = device->device->upload(dst, src, bytes);
  return e.empty() ? 0 : setError(err, errSize, e);
}

int linattnRtMemcpyDtoH(LinattnRtDevice *device, void *dst, uint64_t src,
                        size_t bytes, char *err, size_t errSize) {
  std::string e = device->device->download(dst, src, bytes);
  return e.empty() ? 0 : setError(err, errSize, e);
}

int linattnRtModuleLoad(LinattnRtDevice *device, const char *ptx,
                        const char *manifestJson, LinattnRtModule **out,
                        char *err, size_t errSize) {
  Manifest m;
  if (std::string e = parseManifest(manifestJson ? manifestJson : "", m);
      !e.empty())
    return setError(err, errSize, e);
  std::string e;
  std::unique_ptr<Module> mod =
      device->device->loadModule(ptx ? ptx : "", m, &e);
  if (!mod)
    return setError(err, errSize, e);
  *out = new LinattnRtModule{std::move(mod), device->device.get()};
  return 0;
}

void linattnRtModuleUnload(LinattnRtModule *module) { delete module; }

int linattnRtLaunch(LinattnRtModule *module, const LinattnRtArgs *a, char *err,
                    size_t errSize) {
  return linattnRtLaunchNormalized(module, a, nullptr, nullptr, err, errSize);
}

/// The launch of every C entry point: the base arguments and the optional
/// tensors of `extra` (NULL: none).
static int launchC(LinattnRtModule *module, const LinattnRtArgs *a,
                   const LinattnRtExtraArgs *extra, char *err, size_t errSize) {
  LaunchArgs args;
  auto req = [](const LinattnRtTensor &t) {
    return fromC(t).value_or(DeviceTensor());
  };
  args.q = req(a->q);
  args.k = req(a->k);
  args.v = req(a->v);
  args.gate = fromC(a->gate);
  args.initialState = fromC(a->initialState);
  args.o = req(a->o);
  args.finalState = fromC(a->finalState);
  args.offsets = fromC(a->offsets);
  if (extra) {
    // Read only the fields the caller's struct has (see `size`).
    LinattnRtExtraArgs x = {};
    std::memcpy(&x, extra, std::min(extra->size, sizeof(x)));
    args.initialNormalizer = fromC(x.initialNormalizer);
    args.finalNormalizer = fromC(x.finalNormalizer);
    args.beta = fromC(x.beta);
    args.mapWeight = fromC(x.mapWeight);
    args.mapBias = fromC(x.mapBias);
    args.keyMapWeight = fromC(x.keyMapWeight);
    args.keyMapBias = fromC(x.keyMapBias);
  }
  std::string e = module->module->launch(args);
  if (e.empty())
    e = module->device->synchronize();
  return e.empty() ? 0 : setError(err, errSize, e);
}

/// `*t`, or an absent tensor for NULL.
static LinattnRtTensor orAbsent(const LinattnRtTensor *t) {
  LinattnRtTensor none = {};
  return t ? *t : none;
}

int linattnRtLaunchNormalized(LinattnRtModule *module, const LinattnRtArgs *a,
                              const LinattnRtTensor *initialNormalizer,
                              const LinattnRtTensor *finalNormalizer, char *err,
                              size_t errSize) {
  LinattnRtExtraArgs x = {};
  x.size = sizeof(x);
  x.initialNormalizer = orAbsent(initialNormalizer);
  x.finalNormalizer = orAbsent(finalNormalizer);
  return launchC(module, a, &x, err, errSize);
}

int linattnRtLaunchDelta(LinattnRtModule *module, const LinattnRtArgs *a,
                         const LinattnRtTensor *beta, char *err,
                         size_t errSize) {
  LinattnRtExtraArgs x = {};
  x.size = sizeof(x);
  x.beta = orAbsent(beta);
  return launchC(module, a, &x, err, errSize);
}

int linattnRtLaunchMapped(LinattnRtModule *module, const LinattnRtArgs *a,
                          const LinattnRtTensor *mapWeight,
                          const LinattnRtTensor *mapBias,
                          const LinattnRtTensor *keyMapWeight,
                          const LinattnRtTensor *keyMapBias, char *err,
                          size_t errSize) {
  LinattnRtExtraArgs x = {};
  x.size = sizeof(x);
  x.mapWeight = orAbsent(mapWeight);
  x.mapBias = orAbsent(mapBias);
  x.keyMapWeight = orAbsent(keyMapWeight);
  x.keyMapBias = orAbsent(keyMapBias);
  return launchC(module, a, &x, err, errSize);
}

int linattnRtLaunchEx(LinattnRtModule *module, const LinattnRtArgs *a,
                      const LinattnRtExtraArgs *extra, char *err,
                      size_t errSize) {
  if (extra && extra->size < sizeof(size_t))
    return setError(err, errSize,
                    "linattnRtLaunchEx: extra->size is " +
                        std::to_string(extra->size) +
                        "; set it to sizeof(LinattnRtExtraArgs)");
  return launchC(module, a, extra, err, errSize);
}

} // extern "C"
