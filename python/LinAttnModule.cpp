//===- LinAttnModule.cpp - Python bindings of the linattn JIT --*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
//
// The `linattn._linattn` extension: the C++ host API of
// include/linattn/Runtime/Runtime.h (AttentionSpec, CompileOptions,
// Kernel::compile/run), the GPU compiler of GPUCompile.h (spec -> PTX +
// manifest text, which linattn.gpu loads through linattn.aot) and the fp64
// C++ reference (for cross-checking the pure-numpy one). The Debian MLIR has no
// Python bindings, so this binds our compile/run API rather than IR objects
// (STYLE.md 5).
//
// Tensors arrive as nanobind ndarrays: NumPy arrays (buffer protocol) or any
// DLPack producer. They are handed to the runtime as pointer + shape +
// strides, so views with a contiguous innermost dim are used in place. The
// high-level API (allocation of outputs in the caller's array library, FLA
// argument names) is Python code in linattn/runtime.py and linattn/ops.py.
//
//===----------------------------------------------------------------------===//

#include "linattn/Reference/Reference.h"
#include "linattn/Runtime/GPUCompile.h"
#include "linattn/Runtime/Runtime.h"

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/unique_ptr.h>
#include <nanobind/stl/vector.h>

#include <cstring>
#include <type_traits>
#include <utility>

namespace nb = nanobind;
using namespace nb::literals;

namespace {

using linattn::DType;
using linattn::TensorView;

/// An input tensor (read-only views are fine) and an output tensor.
using InArray = nb::ndarray<nb::ro>;
using OutArray = nb::ndarray<>;

//===----------------------------------------------------------------------===//
// Tensor conversion
//===----------------------------------------------------------------------===//

/// DLPack device names as PyTorch prints them.
const char *deviceName(int type) {
  switch (type) {
  case nb::device::cpu::value:
    return "cpu";
  case nb::device::cuda::value:
    return "cuda";
  case nb::device::cuda_host::value:
    return "cuda_host";
  case nb::device::cuda_managed::value:
    return "cuda_managed";
  case nb::device::rocm::value:
    return "rocm";
  case nb::device::metal::value:
    return "metal";
  case nb::device::vulkan::value:
    return "vulkan";
  case nb::device::opencl::value:
    return "opencl";
  case nb::device::oneapi::value:
    return "oneapi";
  default:
    return "unknown";
  }
}

/// Name of a DLPack dtype ("float32", "int64", "bfloat16", ...).
std::string dtypeString(nb::dlpack::dtype t) {
  const char *kind = "?";
  switch (static_cast<nb::dlpack::dtype_code>(t.code)) {
  case nb::dlpack::dtype_code::Int:
    kind = "int";
    break;
  case nb::dlpack::dtype_code::UInt:
    kind = "uint";
    break;
  case nb::dlpack::dtype_code::Float:
    kind = "float";
    break;
  case nb::dlpack::dtype_code::Bfloat:
    kind = "bfloat";
    break;
  case nb::dlpack::dtype_code::Complex:
    kind = "complex";
    break;
  case nb::dlpack::dtype_code::Bool:
    kind = "bool";
    break;
  default:
    break;
  }
  return std::string(kind) + std::to_string(t.bits);
}

/// Maps a DLPack dtype to a runtime dtype. uint16 carries raw bfloat16 bits
/// (how linattn.runtime passes ml_dtypes.bfloat16 NumPy arrays, which have
/// no DLPack code of their own).
std::optional<DType> runtimeDType(nb::dlpack::dtype t) {
  if (t.lanes != 1)
    return std::nullopt;
  auto code = static_cast<nb::dlpack::dtype_code>(t.code);
  if (code == nb::dlpack::dtype_code::Float && t.bits == 32)
    return DType::F32;
  if (code == nb::dlpack::dtype_code::Float && t.bits == 64)
    return DType::F64;
  if (code == nb::dlpack::dtype_code::Float && t.bits == 16)
    return DType::F16;
  if (code == nb::dlpack::dtype_code::Bfloat && t.bits == 16)
    return DType::BF16;
  if (code == nb::dlpack::dtype_code::UInt && t.bits == 16)
    return DType::BF16;
  return std::nullopt;
}

template <typename Array> TensorView toView(const char *name, const Array &a) {
  if (a.device_type() != nb::device::cpu::value)
    throw nb::value_error((std::string("linattn: tensor '") + name +
                           "' is on device " + deviceName(a.device_type()) +
                           ":" + std::to_string(a.device_id()) +
                           "; only CPU tensors are supported in this build")
                              .c_str());
  std::optional<DType> dtype = runtimeDType(a.dtype());
  if (!dtype)
    throw nb::type_error((std::string("linattn: tensor '") + name +
                          "' has dtype " + dtypeString(a.dtype()) +
                          "; expected float32, float64, float16 or bfloat16")
                             .c_str());
  TensorView v;
  v.data = const_cast<void *>(static_cast<const void *>(a.data()));
  v.dtype = *dtype;
  for (size_t i = 0; i < a.ndim(); ++i) {
    v.shape.push_back(static_cast<int64_t>(a.shape(i)));
    v.strides.push_back(static_cast<int64_t>(a.stride(i)));
  }
  return v;
}

template <typename Array>
std::optional<TensorView> toView(const char *name,
                                 const std::optional<Array> &a) {
  if (!a)
    return std::nullopt;
  return toView(name, *a);
}

//===----------------------------------------------------------------------===//
// Kernel
//===----------------------------------------------------------------------===//

/// Spells the runtime's names of the feature-map arguments (mapWeight, ...)
/// as the keyword arguments of Kernel.run (map_weight, ...), so that an
/// error names what the caller passed.
std::string pythonArgumentNames(std::string msg) {
  static const std::pair<const char *, const char *> names[] = {
      {"keyMapWeight", "key_map_weight"},
      {"keyMapBias", "key_map_bias"},
      {"mapWeight", "map_weight"},
      {"mapBias", "map_bias"}};
  for (const auto &[from, to] : names) {
    size_t n = std::strlen(from);
    for (size_t pos = msg.find(from); pos != std::string::npos;
         pos = msg.find(from, pos + std::strlen(to)))
      msg.replace(pos, n, to);
  }
  return msg;
}

std::unique_ptr<linattn::Kernel>
compileKernel(const linattn::AttentionSpec &spec,
              const linattn::CompileOptions &options) {
  std::string error;
  std::unique_ptr<linattn::Kernel> kernel;
  {
    // Compiling takes about a second; other Python threads may run.
    nb::gil_scoped_release release;
    kernel = linattn::Kernel::compile(spec, options, &error);
  }
  if (!kernel) {
    std::string msg = "linattn: " + error;
    if (error.find("does not support") != std::string::npos) {
      PyErr_SetString(PyExc_NotImplementedError, msg.c_str());
      throw nb::python_error();
    }
    throw nb::value_error(msg.c_str());
  }
  return kernel;
}

void runKernel(const linattn::Kernel &kernel, const InArray &q,
               const InArray &k, const InArray &v, const OutArray &output,
               const std::optional<InArray> &gate,
               const std::optional<InArray> &beta,
               const std::optional<InArray> &mapWeight,
               const std::optional<InArray> &mapBias,
               const std::optional<InArray> &keyMapWeight,
               const std::optional<InArray> &keyMapBias,
               const std::optional<InArray> &initialState,
               const std::optional<InArray> &initialNormalizer,
               const std::optional<OutArray> &finalState,
               const std::optional<OutArray> &finalNormalizer,
               const std::optional<std::vector<int64_t>> &offsets,
               int numThreads, bool checkGateValues) {
  linattn::Arguments a;
  a.q = toView("q", q);
  a.k = toView("k", k);
  a.v = toView("v", v);
  a.output = toView("output", output);
  a.gate = toView("gate", gate);
  a.initialState = toView("initial_state", initialState);
  a.initialNormalizer = toView("initial_normalizer", initialNormalizer);
  a.finalState = toView("final_state", finalState);
  a.finalNormalizer = toView("final_normalizer", finalNormalizer);
  a.offsets = offsets;
  a.numThreads = numThreads;
  a.checkGateValues = checkGateValues;
  a.beta = toView("beta", beta);
  a.mapWeight = toView("map_weight", mapWeight);
  a.mapBias = toView("map_bias", mapBias);
  a.keyMapWeight = toView("key_map_weight", keyMapWeight);
  a.keyMapBias = toView("key_map_bias", keyMapBias);
  std::string error;
  {
    nb::gil_scoped_release release;
    error = kernel.run(a);
  }
  if (!error.empty())
    throw nb::value_error(("linattn: " + pythonArgumentNames(error)).c_str());
}

//===----------------------------------------------------------------------===//
// GPU kernels (PTX + manifest; loading and launching is linattn.aot's)
//===----------------------------------------------------------------------===//

std::tuple<std::string, std::string>
compileGPUKernel(const linattn::AttentionSpec &spec, const std::string &chip,
                 const std::string &mma, int64_t chunkSize, int64_t blockV,
                 int64_t warps, int64_t stages) {
  linattn::GPUCompileOptions options;
  options.chip = chip;
  options.mma = mma;
  options.chunkSize = chunkSize;
  options.blockV = blockV;
  options.warps = warps;
  options.stages = stages;
  linattn::GPUKernelImage image;
  std::string error;
  {
    // A compilation takes about a second; a cache hit is quick either way.
    nb::gil_scoped_release release;
    error = linattn::compileGPU(spec, options, "kernel", image);
  }
  if (!error.empty())
    throw nb::value_error(("linattn: " + error).c_str());
  return {std::move(image.ptx), std::move(image.manifest)};
}

nb::dict gpuCacheStats() {
  linattn::GPUKernelCacheStats s = linattn::gpuKernelCacheStats();
  nb::dict d;
  d["compiled"] = s.compiled;
  d["memory_hits"] = s.memoryHits;
  d["disk_hits"] = s.diskHits;
  d["disk_writes"] = s.diskWrites;
  d["disk_rejected"] = s.diskRejected;
  return d;
}

//===----------------------------------------------------------------------===//
// The C++ fp64 reference (for tests of linattn.reference)
//===----------------------------------------------------------------------===//

namespace ref = linattn::reference;
using F64In = nb::ndarray<nb::ro, double, nb::c_contig, nb::device::cpu>;
using F64Out = nb::ndarray<nb::numpy, double>;

ref::Tensor toTensor(const F64In &a) {
  ref::Tensor t;
  for (size_t i = 0; i < a.ndim(); ++i)
    t.shape.push_back(static_cast<int64_t>(a.shape(i)));
  t.data.assign(a.data(), a.data() + a.size());
  return t;
}

std::optional<ref::Tensor> toTensor(const std::optional<F64In> &a) {
  if (!a)
    return std::nullopt;
  return toTensor(*a);
}

F64Out toNumpy(ref::Tensor &&t) {
  auto *owned = new std::vector<double>(std::move(t.data));
  nb::capsule deleter(owned, [](void *p) noexcept {
    delete static_cast<std::vector<double> *>(p);
  });
  std::vector<size_t> shape(t.shape.begin(), t.shape.end());
  return F64Out(owned->data(), shape.size(), shape.data(), deleter);
}

std::tuple<F64Out, F64Out, std::optional<F64Out>>
referenceRun(ref::DecayKind decay, const F64In &q, const F64In &k,
             const F64In &v, const std::optional<F64In> &gate,
             const std::optional<F64In> &beta,
             const std::optional<F64In> &initialState,
             const std::optional<F64In> &initialNormalizer,
             const std::optional<std::vector<int64_t>> &offsets, double scale,
             bool normalized, double eps, bool causal, bool exclusive,
             bool stateValueMajor, ref::Form form, int64_t chunkSize) {
  ref::Spec spec;
  spec.decay = decay;
  spec.scale = scale;
  spec.normalized = normalized;
  spec.eps = eps;
  spec.causal = causal;
  spec.exclusive = exclusive;
  spec.stateValueMajor = stateValueMajor;
  ref::Inputs in;
  in.q = toTensor(q);
  in.k = toTensor(k);
  in.v = toTensor(v);
  in.gate = toTensor(gate);
  in.beta = toTensor(beta);
  in.initialState = toTensor(initialState);
  in.initialNormalizer = toTensor(initialNormalizer);
  in.offsets = offsets;
  ref::Outputs out;
  if (std::string err = ref::run(spec, in, form, out, chunkSize); !err.empty())
    throw nb::value_error(("linattn: " + err).c_str());
  std::optional<F64Out> z;
  if (normalized)
    z = toNumpy(std::move(out.finalNormalizer));
  return {toNumpy(std::move(out.o)), toNumpy(std::move(out.finalState)), z};
}

F64Out referenceFeatureMap(ref::FeatureMap map, const F64In &x,
                           const std::optional<F64In> &weight,
                           const std::optional<F64In> &bias) {
  std::optional<ref::Tensor> w = toTensor(weight), b = toTensor(bias);
  ref::Tensor out;
  if (std::string err = ref::applyFeatureMapPerHead(
          map, toTensor(x), out, w ? &*w : nullptr, b ? &*b : nullptr);
      !err.empty())
    throw nb::value_error(("linattn: " + err).c_str());
  return toNumpy(std::move(out));
}

//===----------------------------------------------------------------------===//
// Module
//===----------------------------------------------------------------------===//

void initEnums(nb::module_ &m) {
  nb::enum_<DType>(m, "DType")
      .value("f32", DType::F32)
      .value("bf16", DType::BF16)
      .value("f16", DType::F16)
      .value("f64", DType::F64);
  nb::enum_<linattn::Layout>(m, "Layout")
      .value("bhtd", linattn::Layout::BHTD)
      .value("bthd", linattn::Layout::BTHD);
  nb::enum_<ref::DecayKind>(m, "DecayKind")
      .value("none", ref::DecayKind::None)
      .value("constant", ref::DecayKind::Constant)
      .value("scalar", ref::DecayKind::Scalar)
      .value("vector", ref::DecayKind::Vector)
      .value("delta", ref::DecayKind::Delta)
      .value("gated_delta", ref::DecayKind::GatedDelta);
  nb::enum_<ref::FeatureMap>(m, "FeatureMap")
      .value("identity", ref::FeatureMap::Identity)
      .value("elu_plus_one", ref::FeatureMap::EluPlusOne)
      .value("relu", ref::FeatureMap::Relu)
      .value("taylor2", ref::FeatureMap::Taylor2)
      .value("taylor2_symmetric", ref::FeatureMap::Taylor2Symmetric)
      .value("hedgehog", ref::FeatureMap::Hedgehog)
      .value("hedgehog_joint", ref::FeatureMap::HedgehogJoint)
      .value("performer", ref::FeatureMap::Performer)
      .value("performer_hyperbolic", ref::FeatureMap::PerformerHyperbolic);
  nb::enum_<ref::Schedule>(m, "Schedule")
      .value("retnet", ref::Schedule::RetNet)
      .value("retnet_linspace", ref::Schedule::RetNetLinspace)
      .value("transnormer", ref::Schedule::TransNormer)
      .value("lightning", ref::Schedule::Lightning);
  nb::enum_<ref::Form>(m, "Form")
      .value("recurrent", ref::Form::Recurrent)
      .value("parallel", ref::Form::Parallel)
      .value("chunked", ref::Form::Chunked);
}

void initRuntime(nb::module_ &m) {
  using linattn::AttentionSpec;
  using linattn::CompileOptions;
  nb::class_<AttentionSpec>(m, "AttentionSpec")
      .def(nb::init<>())
      .def_rw("decay", &AttentionSpec::decay)
      .def_rw("feature_map", &AttentionSpec::featureMap)
      .def_rw("feature_count", &AttentionSpec::featureCount)
      .def_rw("schedule", &AttentionSpec::schedule)
      .def_rw("layer", &AttentionSpec::layer)
      .def_rw("num_layers", &AttentionSpec::numLayers)
      .def_rw("log_decay", &AttentionSpec::logDecay)
      .def_rw("clamp_min", &AttentionSpec::clampMin)
      .def_rw("normalized", &AttentionSpec::normalized)
      .def_rw("eps", &AttentionSpec::eps)
      .def_rw("scale", &AttentionSpec::scale)
      .def_rw("causal", &AttentionSpec::causal)
      .def_rw("exclusive", &AttentionSpec::exclusive)
      .def_rw("layout", &AttentionSpec::layout)
      .def_rw("state_value_major", &AttentionSpec::stateValueMajor)
      .def_rw("dtype", &AttentionSpec::dtype)
      .def_rw("gate_dtype", &AttentionSpec::gateDType)
      .def_rw("key_dim", &AttentionSpec::keyDim)
      .def_rw("value_dim", &AttentionSpec::valueDim);
  nb::class_<CompileOptions>(m, "CompileOptions")
      .def(nb::init<>())
      .def_rw("chunk_size", &CompileOptions::chunkSize)
      .def_rw("sub_chunk_size", &CompileOptions::subChunkSize)
      .def_rw("tile_m", &CompileOptions::tileM)
      .def_rw("tile_n", &CompileOptions::tileN)
      .def_rw("vector_width", &CompileOptions::vectorWidth)
      .def_rw("opt_level", &CompileOptions::optLevel);
  nb::class_<linattn::Kernel>(m, "Kernel")
      .def_static("compile", &compileKernel, "spec"_a, "options"_a,
                  "Compiles a spec for this CPU (about a second).")
      .def("run", &runKernel, "q"_a, "k"_a, "v"_a, "output"_a,
           "gate"_a = nb::none(), "beta"_a = nb::none(),
           "map_weight"_a = nb::none(), "map_bias"_a = nb::none(),
           "key_map_weight"_a = nb::none(), "key_map_bias"_a = nb::none(),
           "initial_state"_a = nb::none(), "initial_normalizer"_a = nb::none(),
           "final_state"_a = nb::none(), "final_normalizer"_a = nb::none(),
           "offsets"_a = nb::none(), "num_threads"_a = 0,
           "check_gate_values"_a = true,
           "Runs the kernel on CPU tensors (GIL released); validates every "
           "argument first and writes nothing on error.")
      .def_prop_ro("source_ir", &linattn::Kernel::sourceIR)
      .def_prop_ro("compile_seconds", &linattn::Kernel::compileSeconds);
  m.def("compile_gpu", &compileGPUKernel, "spec"_a, "chip"_a, "mma"_a = "auto",
        "chunk_size"_a = 0, "block_v"_a = 0, "warps"_a = 0, "stages"_a = 0,
        "Compiles a spec to PTX for `chip` (sm_80 ... sm_90; wgmma kernels "
        "target sm_90a) and returns (ptx, manifest_json) (GIL released; "
        "cached in memory and on disk like CPU kernels). 0 picks an "
        "option's default; ValueError carries the compiler's message.");
  m.def("gpu_kernel_cache_stats", &gpuCacheStats,
        "Process-wide counters of compile_gpu: compiled, memory_hits, "
        "disk_hits, disk_writes, disk_rejected.");
  m.def("host_description", &linattn::hostDescription);
  m.def("feature_dim", &linattn::featureDim, "spec"_a,
        "D_phi: the key width of the states, normalizers and vector gates.");
  m.def("feature_map_name",
        [](ref::FeatureMap m) { return std::string(ref::featureMapName(m)); });
}

} // namespace

NB_MODULE(_linattn, m) {
  m.doc() = "linattn C++ JIT runtime (use the linattn package, not this)";
  // Kernels still referenced at interpreter exit are freed by Python's
  // teardown; there is nothing to report about them.
  nb::set_leak_warnings(false);
  initEnums(m);
  initRuntime(m);
  nb::module_ cref = m.def_submodule("cref", "the C++ fp64 reference");
  cref.def("run", &referenceRun, "decay"_a, "q"_a, "k"_a, "v"_a,
           "gate"_a = nb::none(), "beta"_a = nb::none(),
           "initial_state"_a = nb::none(), "initial_normalizer"_a = nb::none(),
           "offsets"_a = nb::none(), "scale"_a = 1.0, "normalized"_a = false,
           "eps"_a = 1e-10, "causal"_a = true, "exclusive"_a = false,
           "state_value_major"_a = false, "form"_a = ref::Form::Recurrent,
           "chunk_size"_a = 64,
           "Runs the C++ fp64 reference on [B, H, T, D] float64 arrays; "
           "returns (o, final_state, final_normalizer or None).");
  cref.def("feature_map", &referenceFeatureMap, "map"_a, "x"_a,
           "weight"_a = nb::none(), "bias"_a = nb::none(),
           "Applies a feature map to the last dim of a float64 array (per-head "
           "weights need x [B, H, T, d]).");
}
