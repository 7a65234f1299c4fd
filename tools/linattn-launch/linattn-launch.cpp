//===- linattn-launch.cpp - Run an AOT linattn kernel on a GPU --*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
//
// The thin AOT launcher: no MLIR/LLVM, only the CUDA runtime (libcuda via
// dlopen), the .npy library and the fp64 reference, so it builds with one
// g++ command on GPU machines (scripts/build-launch.sh).
//
//   linattn-launch gla.json --random=2,4,1000 --check --bench --reps 50
//   linattn-launch gla.json --in q=q.npy --in k=k.npy --in v=v.npy
//       --in gate=g.npy --out results/
//
// Inputs (.npy) of any float dtype are converted to the dtype the manifest
// fixes for their position (q/k/v: spec.dtype, gate: spec.gate_dtype,
// initial_state, initial_normalizer, beta and the feature-map weights: f32),
// rounding to nearest even; offsets may be i32 or i64. Width-changing
// feature maps (a manifest with a `map` object) take q and k of width d and
// states, normalizers and vector gates of width Dphi (spec.feature_dim).
// Exit status: 0 ok, 1 error, 2 --check failed, 77 no driver or no GPU.
//
//===----------------------------------------------------------------------===//

#include "linattn/Reference/Reference.h"
#include "linattn/Runtime/CudaRuntime.h"
#include "linattn/Runtime/GPUTuner.h"
#include "linattn/Runtime/Npy.h"
#include "linattn/Runtime/TuningCache.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>

using namespace linattn;
using namespace linattn::cuda;
namespace ref = linattn::reference;

namespace {

constexpr int ExitError = 1, ExitCheckFailed = 2, ExitSkipped = 77;

const char *usage =
    "usage: linattn-launch MANIFEST.json [options]\n"
    "       linattn-launch NAME.variants.json [options]   (AOT variant set)\n"
    "  --in NAME=FILE.npy   input q, k, v, gate, initial_state, offsets,\n"
    "                       initial_normalizer (normalized kernels), beta\n"
    "                       (delta rules; f32), map_weight, map_bias,\n"
    "                       key_map_weight, key_map_bias (maps with weights;\n"
    "                       f32)\n"
    "  --random=B,H,T       random inputs (or B,Hq,Hk,Hv,T) for the rest\n"
    "  --seed N             seed of --random (default 1)\n"
    "  --no-initial-state   --random draws no initial state (nor normalizer)\n"
    "  --map-per-head       --random draws one feature map per head\n"
    "  --key-map            --random draws separate map weights for k\n"
    "  --offsets a,b,...    cu_seqlens (needs batch 1; last = T)\n"
    "  --out DIR            write DIR/o.npy and DIR/final_state.npy (and\n"
    "                       DIR/final_normalizer.npy when normalized)\n"
    "  --check              compare with the fp64 reference\n"
    "  --tol X              --check tolerance (default by dtype)\n"
    "  --bench              time the kernel (CUDA events)\n"
    "  --reps N             timed launches (default 20)\n"
    "  --warmup N           untimed launches first (default 3)\n"
    "  --peak-tbps X        HBM peak for the roofline (default 3.35, H100)\n"
    "  --device N           CUDA device ordinal (default 0)\n"
    "variant sets (linattn-run --emit-aot --aot-variants=tune):\n"
    "  --tune               tune now on this GPU and store the winner\n"
    "  --tune-mode MODE     off, use-only (default; $LINATTN_TUNE),\n"
    "                       tune-if-missing, force\n"
    "  --tune-budget S      tuning budget in seconds (default 30)\n"
    "  --tuning-cache FILE  default: $LINATTN_CACHE_DIR/tuning.json\n"
    "  --quiet, --verbose   tuning progress on stderr (default: if a tty)\n"
    "exit status: 0 ok, 1 error, 2 check failed, 77 no GPU/driver\n";

int fail(const std::string &msg) {
  std::fprintf(stderr, "linattn-launch: error: %s\n", msg.c_str());
  return ExitError;
}

struct Options {
  std::string manifest;
  std::vector<std::pair<std::string, std::string>> inputs;
  std::string outDir, random, offsets;
  uint64_t seed = 1;
  bool noInitialState = false, check = false, bench = false;
  bool mapPerHead = false, keyMap = false;
  double tol = -1, peakTBps = 3.35;
  int reps = 20, warmup = 3, device = 0;
  bool tune = false, quiet = false, verbose = false;
  std::string tuneMode, cacheFile;
  double tuneBudget = 30;
};

bool parseInt(const std::string &s, int64_t &out) {
  if (s.empty())
    return false;
  char *end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (*end)
    return false;
  out = v;
  return true;
}

bool parseList(const std::string &s, std::vector<int64_t> &out) {
  std::stringstream ss(s);
  std::string part;
  out.clear();
  while (std::getline(ss, part, ',')) {
    int64_t v;
    if (!parseInt(part, v))
      return false;
    out.push_back(v);
  }
  return !out.empty();
}

std::string parseArgs(int argc, char **argv, Options &o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i], val;
    size_t eq = a.find('=');
    std::string key = a.substr(0, eq);
    bool takes = key == "--in" || key == "--out" || key == "--random" ||
                 key == "--seed" || key == "--offsets" || key == "--tol" ||
                 key == "--reps" || key == "--warmup" || key == "--peak-tbps" ||
                 key == "--device" || key == "--tune-mode" ||
                 key == "--tune-budget" || key == "--tuning-cache";
    if (takes) {
      if (eq != std::string::npos && key != "--in")
        val = a.substr(eq + 1);
      else if (i + 1 < argc)
        val = argv[++i];
      else
        return "option " + key + " needs a value";
    }
    int64_t n;
    if (key == "--in") {
      size_t e = val.find('=');
      if (e == std::string::npos)
        return "--in expects NAME=FILE.npy, got '" + val + "'";
      o.inputs.push_back({val.substr(0, e), val.substr(e + 1)});
    } else if (key == "--out") {
      o.outDir = val;
    } else if (key == "--random") {
      o.random = val;
    } else if (key == "--offsets") {
      o.offsets = val;
    } else if (key == "--seed" || key == "--reps" || key == "--warmup" ||
               key == "--device") {
      if (!parseInt(val, n) || n < 0)
        return key + " expects a non-negative integer, got '" + val + "'";
      if (key == "--seed")
        o.seed = static_cast<uint64_t>(n);
      else if (key == "--reps")
        o.reps = static_cast<int>(std::max<int64_t>(n, 1));
      else if (key == "--warmup")
        o.warmup = static_cast<int>(n);
      else
        o.device = static_cast<int>(n);
    } else if (key == "--tol" || key == "--peak-tbps" ||
               key == "--tune-budget") {
      char *end = nullptr;
      double d = std::strtod(val.c_str(), &end);
      if (val.empty() || *end || !(d > 0))
        return key + " expects a positive number, got '" + val + "'";
      (key == "--tol"         ? o.tol
       : key == "--peak-tbps" ? o.peakTBps
                              : o.tuneBudget) = d;
    } else if (key == "--tune-mode") {
      o.tuneMode = val;
    } else if (key == "--tuning-cache") {
      o.cacheFile = val;
    } else if (a == "--tune") {
      o.tune = true;
    } else if (a == "--quiet") {
      o.quiet = true;
    } else if (a == "--verbose") {
      o.verbose = true;
    } else if (a == "--no-initial-state") {
      o.noInitialState = true;
    } else if (a == "--map-per-head") {
      o.mapPerHead = true;
    } else if (a == "--key-map") {
      o.keyMap = true;
    } else if (a == "--check") {
      o.check = true;
    } else if (a == "--bench") {
      o.bench = true;
    } else if (a == "-h" || a == "--help") {
      return "help";
    } else if (!a.empty() && a[0] == '-') {
      return "unknown option '" + a + "'";
    } else if (o.manifest.empty()) {
      o.manifest = a;
    } else {
      return "unexpected argument '" + a + "'";
    }
  }
  if (o.manifest.empty())
    return "missing MANIFEST.json";
  return "";
}

npy::DType toNpy(ElemType t) {
  return t == ElemType::BF16  ? npy::DType::BF16
         : t == ElemType::F16 ? npy::DType::F16
                              : npy::DType::F32;
}

/// A host tensor in the kernel's layout and dtype plus its fp64 logical
/// ([B, H, T, D]) copy for the reference.
struct HostTensor {
  npy::Array array;
  ref::Tensor logical;
};

/// Converts `a` to `dtype` (rounded) and records the logical view;
/// `swapHT` for bthd q/k/v/gate.
HostTensor makeHost(const ref::Tensor &values, ElemType dtype, bool swapHT) {
  HostTensor h;
  h.array = npy::fromF64(values.data, values.shape, toNpy(dtype));
  h.logical = ref::Tensor(values.shape);
  h.logical.data = npy::toF64(h.array);
  if (swapHT && h.logical.shape.size() >= 3)
    h.logical = ref::swapDims(h.logical, 1, 2);
  return h;
}

ref::Tensor fromLogical(const ref::Tensor &t, bool swapHT) {
  return swapHT && t.shape.size() >= 3 ? ref::swapDims(t, 1, 2) : t;
}

/// Everything the kernel reads, on the host.
struct Problem {
  std::map<std::string, HostTensor> in;
  std::optional<std::vector<int64_t>> offsets;
};

std::string loadInputs(const Options &o, const Manifest &m, Problem &p) {
  const KernelSpec &s = m.spec;
  for (const auto &input : o.inputs) {
    const std::string &name = input.first, &path = input.second;
    static const char *known[] = {"q",
                                  "k",
                                  "v",
                                  "gate",
                                  "beta",
                                  "initial_state",
                                  "offsets",
                                  "initial_normalizer",
                                  "map_weight",
                                  "map_bias",
                                  "key_map_weight",
                                  "key_map_bias"};
    if (std::find_if(std::begin(known), std::end(known), [&](const char *k) {
          return name == k;
        }) == std::end(known))
      return "unknown input '" + name +
             "' (q, k, v, gate, beta, initial_state, offsets, "
             "initial_normalizer, map_weight, map_bias, key_map_weight, "
             "key_map_bias)";
    npy::Array a;
    if (std::string e = npy::load(path, a); !e.empty())
      return e;
    std::vector<double> vals = npy::toF64(a);
    if (name == "offsets") {
      if (a.dtype != npy::DType::I32 && a.dtype != npy::DType::I64)
        return path + ": offsets must be i32 or i64, got " +
               npy::toString(a.dtype);
      p.offsets = std::vector<int64_t>(vals.begin(), vals.end());
      continue;
    }
    if (a.dtype == npy::DType::I32 || a.dtype == npy::DType::I64)
      return path + ": " + name + " must be a float array, got " +
             npy::toString(a.dtype);
    bool state = name == "initial_state" || name == "initial_normalizer" ||
                 name.find("map_") != std::string::npos;
    bool tokens =
        !state && !(name == "gate" && s.decay == ref::DecayKind::Constant);
    ElemType t = state || name == "beta" ? ElemType::F32
                 : name == "gate"        ? s.gateDType
                                         : s.dtype;
    ref::Tensor values(a.shape);
    values.data = std::move(vals);
    p.in[name] = makeHost(values, t, s.bthd && tokens);
  }
  if (!o.offsets.empty()) {
    std::vector<int64_t> off;
    if (!parseList(o.offsets, off))
      return "--offsets expects a comma-separated list of integers, got '" +
             o.offsets + "'";
    p.offsets = off;
  }
  return "";
}

/// States [N, H, Dphi, Dv] ([N, H, Dv, Dphi] value-major).
std::vector<int64_t> stateShape(const KernelSpec &s, int64_t n, int64_t h) {
  return s.stateValueMajor
             ? std::vector<int64_t>{n, h, s.valueDim, s.featureDim}
             : std::vector<int64_t>{n, h, s.featureDim, s.valueDim};
}

/// Random weights of a map with weights, one per head when `heads` > 0
/// (else shared): Hedgehog W ~ N(0, 1/d) [d, f] and b ~ N(0, 0.1^2) [f]
/// (HedgehogJoint: f = d), Performer W [m, d] with N(0, 1) rows and no bias
/// (`b` left empty).
void drawMapWeights(const KernelSpec &s, int64_t heads, std::mt19937_64 &rng,
                    ref::Tensor &w, ref::Tensor &b) {
  int64_t d = s.keyDim, f = s.featureCount;
  bool hedgehog = mapTakesBias(s.featureMap);
  std::vector<int64_t> ws =
      hedgehog ? std::vector<int64_t>{d, f} : std::vector<int64_t>{f, d};
  std::vector<int64_t> bs = {f};
  if (heads > 0) {
    ws.insert(ws.begin(), heads);
    bs.insert(bs.begin(), heads);
  }
  w = ref::randn(ws, rng,
                 hedgehog ? 1.0 / std::sqrt(static_cast<double>(d)) : 1.0);
  b = hedgehog ? ref::randn(bs, rng, 0.1) : ref::Tensor();
}

std::string randomInputs(const Options &o, const Manifest &m, Problem &p) {
  const KernelSpec &s = m.spec;
  ref::RandomDims rd;
  if (std::string e = ref::parseRandomDims(o.random, rd); !e.empty())
    return e;
  if ((o.mapPerHead || o.keyMap) && !mapTakesWeight(s.featureMap))
    return std::string(o.mapPerHead ? "--map-per-head" : "--key-map") +
           " needs a feature map with weights, the manifest has '" +
           ref::featureMapName(s.featureMap) + "'";
  rd.dk = s.keyDim;
  rd.dv = s.valueDim;
  ref::RandomOptions ro;
  // The width-changing maps take raw q and k; their normalized forms need
  // no positive inputs.
  ro.positive = s.normalized && !m.map;
  ro.initialState = !o.noInitialState && !p.offsets;
  ro.normalizer = s.normalized && ro.initialState;
  ref::Inputs r = ref::randomInputs(s.decay, rd, o.seed, ro);
  if (m.map) {
    // Gates, states and normalizers of width Dphi from a second draw.
    ref::RandomDims wide = rd;
    wide.dk = s.featureDim;
    ref::Inputs rw = ref::randomInputs(s.decay, wide, o.seed + 101, ro);
    r.gate = rw.gate;
    r.initialState = rw.initialState;
    r.initialNormalizer = rw.initialNormalizer;
  }
  if (mapTakesWeight(s.featureMap)) {
    std::mt19937_64 rng(o.seed * 7919 + 17);
    auto putMap = [&](const char *wn, const char *bn, int64_t heads) {
      ref::Tensor w, b;
      drawMapWeights(s, o.mapPerHead ? heads : 0, rng, w, b);
      if (!p.in.count(wn))
        p.in[wn] = makeHost(w, ElemType::F32, false);
      if (!b.shape.empty() && !p.in.count(bn))
        p.in[bn] = makeHost(b, ElemType::F32, false);
    };
    putMap("map_weight", "map_bias", rd.hq);
    if (o.keyMap)
      putMap("key_map_weight", "key_map_bias", rd.hk);
  }
  auto put = [&](const char *name, const ref::Tensor &t, ElemType dt,
                 bool swap) {
    if (!p.in.count(name))
      p.in[name] = makeHost(fromLogical(t, swap), dt, swap);
  };
  put("q", r.q, s.dtype, s.bthd);
  put("k", r.k, s.dtype, s.bthd);
  put("v", r.v, s.dtype, s.bthd);
  bool constant = s.decay == ref::DecayKind::Constant;
  if (r.gate && !(constant && (s.schedule || !s.logDecay.empty())))
    put("gate", *r.gate, constant ? ElemType::F32 : s.gateDType,
        s.bthd && !constant);
  // Delta rules: beta in (0, 1) (f32, the kernel's beta type).
  if (r.beta)
    put("beta", *r.beta, ElemType::F32, s.bthd);
  if (p.offsets && !o.noInitialState) {
    // One state per packed sequence, not per batch entry.
    std::mt19937_64 rng(o.seed + 1);
    int64_t h = std::max({rd.hq, rd.hk, rd.hv});
    int64_t n = static_cast<int64_t>(p.offsets->size()) - 1;
    put("initial_state", ref::randn(stateShape(s, n, h), rng), ElemType::F32,
        false);
  } else if (r.initialState) {
    ref::Tensor st = *r.initialState;
    if (s.stateValueMajor)
      st = ref::swapDims(st, 2, 3);
    put("initial_state", st, ElemType::F32, false);
  }
  if (s.normalized && p.offsets && !o.noInitialState) {
    // A positive normalizer per packed sequence, as randomInputs draws it.
    std::mt19937_64 rng(o.seed + 2);
    int64_t h = std::max({rd.hq, rd.hk, rd.hv});
    int64_t n = static_cast<int64_t>(p.offsets->size()) - 1;
    ref::Tensor z = ref::randn({n, h, s.featureDim}, rng);
    for (double &x : z.data)
      x = std::fabs(x) + 0.5;
    put("initial_normalizer", z, ElemType::F32, false);
  } else if (r.initialNormalizer) {
    put("initial_normalizer", *r.initialNormalizer, ElemType::F32, false);
  }
  return "";
}

/// Device buffers, freed on exit.
struct Buffers {
  Device *dev = nullptr;
  std::vector<uint64_t> ptrs;
  ~Buffers() {
    for (uint64_t p : ptrs)
      dev->free(p);
  }
  std::string upload(const void *data, size_t bytes, uint64_t &ptr) {
    if (std::string e = dev->alloc(bytes, ptr); !e.empty())
      return e;
    ptrs.push_back(ptr);
    return dev->upload(ptr, data, bytes);
  }
};

/// Runs the fp64 reference on the (rounded) inputs; returns "" or an error.
std::string reference(const Manifest &m, Problem &p, int64_t heads,
                      ref::Outputs &want) {
  const KernelSpec &s = m.spec;
  ref::Spec rs;
  rs.decay = s.decay;
  rs.normalized = s.normalized;
  rs.eps = s.eps;
  rs.scale = s.scale;
  rs.causal = s.causal;
  rs.exclusive = s.exclusive;
  rs.stateValueMajor = s.stateValueMajor;
  ref::Inputs ri;
  ri.q = p.in["q"].logical;
  ri.k = p.in["k"].logical;
  ri.v = p.in["v"].logical;
  if (s.featureMap != ref::FeatureMap::Identity) {
    auto param = [&](const char *name) -> const ref::Tensor * {
      return p.in.count(name) ? &p.in[name].logical : nullptr;
    };
    if (std::string e = ref::applyFeatureMapsQK(
            s.featureMap, ri.q, ri.k, param("map_weight"), param("map_bias"),
            param("key_map_weight"), param("key_map_bias"));
        !e.empty())
      return e;
    if (m.map) {
      // The prepass stores phi(q) and phi(k) in spec.dtype.
      for (ref::Tensor *t : {&ri.q, &ri.k})
        t->data = npy::toF64(npy::fromF64(t->data, t->shape, toNpy(s.dtype)));
    }
  }
  if (p.in.count("gate")) {
    ri.gate = p.in["gate"].logical;
  } else if (s.decay == ref::DecayKind::Constant) {
    ri.gate = ref::Tensor({heads});
    ri.gate->data =
        !s.logDecay.empty()
            ? s.logDecay
            : ref::logDecaySchedule(*s.schedule, heads, s.layer, s.numLayers);
  }
  if (ri.gate && s.clampMin)
    for (double &g : ri.gate->data)
      g = std::max(g, *s.clampMin);
  if (p.in.count("initial_state"))
    ri.initialState = p.in["initial_state"].logical;
  if (s.normalized && p.in.count("initial_normalizer"))
    ri.initialNormalizer = p.in["initial_normalizer"].logical;
  if (p.in.count("beta"))
    ri.beta = p.in["beta"].logical;
  ri.offsets = p.offsets;
  return ref::run(rs, ri, ref::Form::Chunked, want, m.launch.chunkSize);
}

std::string dirOf(const std::string &path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

/// A problem's tensors checked against the manifest and, once uploaded,
/// its device buffers.
struct Staged {
  LaunchArgs args;
  cuda::Problem prob;
  int64_t B = 0, T = 0, H = 0, N = 0;
  std::vector<int64_t> oShape;
  size_t oBytes = 0, sBytes = 0, zBytes = 0;
  /// The final normalizer of the last runOnce (normalized kernels).
  npy::Array z1;
};

/// Checks the shapes of `p` against `m` with placeholder pointers, so that
/// spec mistakes show up on machines without a GPU too.
std::string stage(const Manifest &m, Problem &p, Staged &st) {
  const KernelSpec &s = m.spec;
  for (const char *need : {"q", "k", "v"})
    if (!p.in.count(need))
      return std::string("missing input '") + need + "' (give --in " + need +
             "=FILE.npy or --random)";
  LaunchArgs &args = st.args;
  auto tensorOf = [](const HostTensor &h) {
    DeviceTensor t;
    t.ptr = 1;
    t.shape = h.array.shape;
    return t;
  };
  args.q = tensorOf(p.in["q"]);
  args.k = tensorOf(p.in["k"]);
  args.v = tensorOf(p.in["v"]);
  if (p.in.count("gate"))
    args.gate = tensorOf(p.in["gate"]);
  if (p.in.count("beta"))
    args.beta = tensorOf(p.in["beta"]);
  if (p.in.count("initial_state"))
    args.initialState = tensorOf(p.in["initial_state"]);
  if (p.in.count("initial_normalizer"))
    args.initialNormalizer = tensorOf(p.in["initial_normalizer"]);
  for (auto [name, slot] : {std::pair{"map_weight", &args.mapWeight},
                            {"map_bias", &args.mapBias},
                            {"key_map_weight", &args.keyMapWeight},
                            {"key_map_bias", &args.keyMapBias}})
    if (p.in.count(name))
      *slot = tensorOf(p.in[name]);
  st.B = args.q.shape[0];
  st.T = s.bthd ? args.q.shape[1] : args.q.shape[2];
  st.H = 0;
  for (const DeviceTensor *t : {&args.q, &args.k, &args.v})
    st.H = std::max(st.H, s.bthd ? t->shape[2] : t->shape[1]);
  st.N = p.offsets ? static_cast<int64_t>(p.offsets->size()) - 1 : st.B;
  if (p.offsets) {
    if (std::string e = validateOffsets(*p.offsets, st.T); !e.empty())
      return e;
    args.offsets = DeviceTensor{1, {st.N + 1}};
  }
  st.oShape = s.bthd ? std::vector<int64_t>{st.B, st.T, st.H, s.valueDim}
                     : std::vector<int64_t>{st.B, st.H, st.T, s.valueDim};
  args.o = DeviceTensor{1, st.oShape};
  args.finalState = DeviceTensor{1, stateShape(s, st.N, st.H)};
  st.oBytes = static_cast<size_t>(args.o.numel()) * elemTypeSize(s.dtype);
  st.sBytes = static_cast<size_t>(args.finalState->numel()) * 4;
  if (s.normalized) {
    args.finalNormalizer = DeviceTensor{1, {st.N, st.H, s.featureDim}};
    st.zBytes = static_cast<size_t>(args.finalNormalizer->numel()) * 4;
  }
  return validateArgs(m, args, st.prob);
}

/// Allocates and fills the device buffers of a staged problem.
std::string upload(Device &dev, Buffers &buf, Problem &p, Staged &st) {
  LaunchArgs &args = st.args;
  auto up = [&](const npy::Array &a, DeviceTensor &t) {
    return buf.upload(a.data.data(), a.data.size(), t.ptr);
  };
  for (auto &[name, t] :
       std::initializer_list<std::pair<const char *, DeviceTensor *>>{
           {"q", &args.q}, {"k", &args.k}, {"v", &args.v}})
    if (std::string e = up(p.in[name].array, *t); !e.empty())
      return e;
  if (args.gate)
    if (std::string e = up(p.in["gate"].array, *args.gate); !e.empty())
      return e;
  if (args.beta)
    if (std::string e = up(p.in["beta"].array, *args.beta); !e.empty())
      return e;
  for (auto [name, slot] : {std::pair{"map_weight", &args.mapWeight},
                            {"map_bias", &args.mapBias},
                            {"key_map_weight", &args.keyMapWeight},
                            {"key_map_bias", &args.keyMapBias}})
    if (*slot)
      if (std::string e = up(p.in[name].array, **slot); !e.empty())
        return e;
  if (args.initialState)
    if (std::string e = up(p.in["initial_state"].array, *args.initialState);
        !e.empty())
      return e;
  if (args.initialNormalizer)
    if (std::string e =
            up(p.in["initial_normalizer"].array, *args.initialNormalizer);
        !e.empty())
      return e;
  if (p.offsets)
    if (std::string e =
            buf.upload(p.offsets->data(), p.offsets->size() * sizeof(int64_t),
                       args.offsets->ptr);
        !e.empty())
      return e;
  std::vector<std::pair<DeviceTensor *, size_t>> outs = {
      {&args.o, st.oBytes}, {&*args.finalState, st.sBytes}};
  if (args.finalNormalizer)
    outs.push_back({&*args.finalNormalizer, st.zBytes});
  for (auto [t, bytes] : outs) {
    if (std::string e = dev.alloc(bytes, t->ptr); !e.empty())
      return e;
    buf.ptrs.push_back(t->ptr);
  }
  return "";
}

/// One launch of `mod` on a staged, uploaded problem; downloads o and the
/// final state (and the final normalizer into st.z1). Outputs start as NaN
/// (all-ones bytes) so that unwritten elements fail any comparison.
std::string runOnce(Device &dev, Module &mod, const Manifest &m, Staged &st,
                    npy::Array &o, npy::Array &s1) {
  LaunchArgs &args = st.args;
  if (std::string e = dev.memset(args.o.ptr, 0xFF, st.oBytes); !e.empty())
    return e;
  if (std::string e = dev.memset(args.finalState->ptr, 0xFF, st.sBytes);
      !e.empty())
    return e;
  if (args.finalNormalizer) {
    if (std::string e = dev.memset(args.finalNormalizer->ptr, 0xFF, st.zBytes);
        !e.empty())
      return e;
  }
  if (std::string e = mod.launch(args); !e.empty())
    return e;
  if (std::string e = dev.synchronize(); !e.empty())
    return "kernel execution: " + e;
  o = npy::fromF64({}, st.oShape, toNpy(m.spec.dtype));
  o.data.resize(st.oBytes);
  s1 = npy::fromF64({}, args.finalState->shape, npy::DType::F32);
  s1.data.resize(st.sBytes);
  if (std::string e = dev.download(o.data.data(), args.o.ptr, st.oBytes);
      !e.empty())
    return e;
  if (args.finalNormalizer) {
    st.z1 = npy::fromF64({}, args.finalNormalizer->shape, npy::DType::F32);
    st.z1.data.resize(st.zBytes);
    if (std::string e = dev.download(st.z1.data.data(),
                                     args.finalNormalizer->ptr, st.zBytes);
        !e.empty())
      return e;
  }
  return dev.download(s1.data.data(), args.finalState->ptr, st.sBytes);
}

/// Compares o, the final state and (normalized kernels) the final
/// normalizer with the fp64 reference of `p`.
std::string compareWithReference(const Manifest &m, Problem &p,
                                 const Staged &st, const npy::Array &o,
                                 const npy::Array &s1, double tol, bool &ok,
                                 std::string &report) {
  ref::Outputs want;
  if (std::string e = reference(m, p, st.H, want); !e.empty())
    return "reference: " + e;
  ref::Tensor got(o.shape), gotS(s1.shape);
  got.data = npy::toF64(o);
  gotS.data = npy::toF64(s1);
  double ro = ref::ratio(fromLogical(got, m.spec.bthd), want.o);
  double rs = ref::ratio(gotS, want.finalState);
  ok = ro <= tol && rs <= tol;
  char buf[240];
  std::snprintf(buf, sizeof(buf), "output ratio %.3g, final state ratio %.3g",
                ro, rs);
  report = buf;
  if (m.spec.normalized) {
    ref::Tensor gotZ(st.z1.shape);
    gotZ.data = npy::toF64(st.z1);
    double rz = ref::ratio(gotZ, want.finalNormalizer);
    ok = ok && rz <= tol;
    std::snprintf(buf, sizeof(buf), ", final normalizer ratio %.3g", rz);
    report += buf;
  }
  std::snprintf(buf, sizeof(buf), " (tolerance %.0e for %s)", tol,
                elemTypeName(m.spec.dtype));
  report += buf;
  return "";
}

/// The kernels named by MANIFEST.json: one, or every variant of an index.
struct Kernels {
  std::optional<VariantIndex> index;
  std::vector<Manifest> manifests;
  std::vector<std::string> ptxPaths;
  size_t chosen = 0;
};

std::string loadKernels(const std::string &path, Kernels &k) {
  std::string text;
  if (std::string e = readWholeFile(path, text); !e.empty())
    return e;
  std::vector<std::string> files;
  std::string dir = dirOf(path);
  if (isVariantIndex(text)) {
    VariantIndex index;
    if (std::string e = parseVariantIndex(text, index); !e.empty())
      return path + ": " + e;
    for (const AOTVariant &v : index.variants)
      files.push_back(v.manifest[0] == '/' ? v.manifest
                                           : dir + "/" + v.manifest);
    k.chosen = index.defaultIndex;
    k.index = std::move(index);
  } else {
    files.push_back(path);
  }
  for (const std::string &f : files) {
    Manifest m;
    if (std::string e = loadManifest(f, m); !e.empty())
      return e;
    k.ptxPaths.push_back(m.ptx[0] == '/' ? m.ptx : dirOf(f) + "/" + m.ptx);
    k.manifests.push_back(std::move(m));
  }
  return "";
}

double toleranceFor(const Options &opt, const KernelSpec &s) {
  return opt.tol > 0 ? opt.tol : gpuTolerance(elemTypeName(s.dtype));
}

int run(const Options &opt) {
  Kernels kernels;
  if (std::string e = loadKernels(opt.manifest, kernels); !e.empty())
    return fail(e);
  if (!kernels.index && (opt.tune || !opt.tuneMode.empty()))
    return fail("--tune and --tune-mode need a variant index (linattn-run "
                "--emit-aot=DIR --aot-variants=tune writes "
                "DIR/NAME.variants.json), got the kernel manifest '" +
                opt.manifest + "'");
  std::optional<TuneMode> mode;
  if (kernels.index) {
    mode =
        opt.tune ? TuneMode::Force : tuneModeFromEnvironment(TuneMode::UseOnly);
    if (!opt.tuneMode.empty()) {
      mode = parseTuneMode(opt.tuneMode);
      if (!mode)
        return fail("--tune-mode expects off, use-only, tune-if-missing or "
                    "force, got '" +
                    opt.tuneMode + "'");
    }
  }

  Problem p;
  // Every variant has the default's spec, so the default checks the inputs.
  const Manifest &m0 = kernels.manifests[kernels.chosen];
  if (std::string e = loadInputs(opt, m0, p); !e.empty())
    return fail(e);
  if (!opt.random.empty())
    if (std::string e = randomInputs(opt, m0, p); !e.empty())
      return fail(e);
  Staged st;
  if (std::string e = stage(m0, p, st); !e.empty())
    return fail(e);

  std::string err;
  OpenError kind = OpenError::None;
  std::unique_ptr<Device> dev = Device::open(opt.device, &err, &kind);
  if (!dev) {
    if (kind == OpenError::Unavailable) {
      std::fprintf(stderr, "linattn-launch: skipped: %s\n", err.c_str());
      return ExitSkipped;
    }
    return fail(err);
  }
  const DeviceInfo &info = dev->info();
  std::vector<std::unique_ptr<Module>> modules(kernels.manifests.size());
  auto moduleOf = [&](size_t i, std::string &e) -> Module * {
    if (!modules[i]) {
      std::string ptx;
      if (std::string re = readWholeFile(kernels.ptxPaths[i], ptx);
          !re.empty()) {
        e = re + " (the manifest's ptx)";
        return nullptr;
      }
      modules[i] = dev->loadModule(ptx, kernels.manifests[i], &e);
      if (!modules[i])
        e = kernels.ptxPaths[i] + ": " + e;
    }
    return modules[i].get();
  };

  Buffers buf;
  buf.dev = dev.get();
  if (std::string e = upload(*dev, buf, p, st); !e.empty())
    return fail(e);

  // Which variant: the tuning cache, or a tuning run now.
  if (kernels.index && *mode != TuneMode::Off) {
    const VariantIndex &index = *kernels.index;
    Verbosity verbosity = opt.quiet     ? Verbosity::Quiet
                          : opt.verbose ? Verbosity::Verbose
                                        : Verbosity::Auto;
    std::string file =
        opt.cacheFile.empty() ? defaultTuningCacheFile() : opt.cacheFile;
    std::string device = info.fingerprint();
    int64_t perSeq = p.offsets ? st.T / std::max<int64_t>(st.N, 1) : st.T;
    std::string shape = shapeClassOf(perSeq, st.N * st.H, 0);
    std::string key = tuningKey(device, index.specKey, shape);
    bool found = false;
    if (*mode != TuneMode::Force && !file.empty()) {
      std::string problem;
      auto entries = readTuningCacheFile(file, index.compiler, &problem);
      auto it = entries.find(key);
      if (it != entries.end() && it->second.config.backend == "gpu") {
        int v = findVariant(index, it->second.config);
        if (v >= 0) {
          kernels.chosen = static_cast<size_t>(v);
          found = true;
          std::printf("tuning (%s, %s): cached result %s\n",
                      tuneModeName(*mode), shape.c_str(),
                      index.variants[v].config.describe().c_str());
        }
      }
    }
    if (!found &&
        (*mode == TuneMode::TuneIfMissing || *mode == TuneMode::Force)) {
      VariantTuneHooks hooks;
      hooks.run = [&](size_t i, VariantOutput &out) -> std::string {
        std::string e;
        Module *mod = moduleOf(i, e);
        if (!mod)
          return e;
        npy::Array o, s1;
        if (std::string re =
                runOnce(*dev, *mod, kernels.manifests[i], st, o, s1);
            !re.empty())
          return re;
        out.o = ref::Tensor(o.shape);
        out.o.data = npy::toF64(o);
        out.state = ref::Tensor(s1.shape);
        out.state.data = npy::toF64(s1);
        return "";
      };
      hooks.time = [&](size_t i, double &ms) -> std::string {
        std::string e;
        Module *mod = moduleOf(i, e);
        if (!mod)
          return e;
        std::vector<double> v;
        if (std::string te =
                mod->timeLaunches(st.args, opt.warmup, opt.reps, v);
            !te.empty())
          return te;
        std::sort(v.begin(), v.end());
        ms = v[v.size() / 2];
        return "";
      };
      // The reference check runs the default on a short random problem of
      // the same spec (the fp64 reference of the full shape can take
      // minutes on the host).
      hooks.checkDefault = [&]() -> std::string {
        size_t d = index.defaultIndex;
        std::string e;
        Module *mod = moduleOf(d, e);
        if (!mod)
          return e;
        Options small = opt;
        small.inputs.clear();
        small.offsets.clear();
        small.random = "1," + std::to_string(std::min<int64_t>(st.H, 2)) + "," +
                       std::to_string(std::min<int64_t>(st.T, 256));
        Problem sp;
        if (std::string re = randomInputs(small, kernels.manifests[d], sp);
            !re.empty())
          return re;
        Staged ss;
        if (std::string re = stage(kernels.manifests[d], sp, ss); !re.empty())
          return re;
        Buffers sbuf;
        sbuf.dev = dev.get();
        if (std::string re = upload(*dev, sbuf, sp, ss); !re.empty())
          return re;
        npy::Array o, s1;
        if (std::string re =
                runOnce(*dev, *mod, kernels.manifests[d], ss, o, s1);
            !re.empty())
          return re;
        bool ok = false;
        std::string report;
        if (std::string re = compareWithReference(
                kernels.manifests[d], sp, ss, o, s1,
                toleranceFor(opt, kernels.manifests[d].spec), ok, report);
            !re.empty())
          return re;
        return ok ? "" : report;
      };
      VariantTuneOptions to;
      to.budgetSeconds = opt.tuneBudget;
      to.tolerance = toleranceFor(opt, m0.spec);
      to.verbosity = verbosity;
      VariantTuneResult r;
      if (std::string e = tuneVariants(index, hooks, to, r); !e.empty())
        return fail(e);
      kernels.chosen = r.best;
      std::printf("tuning (%s, %s): tuned in %.3f s, %d variants (%d "
                  "dropped%s): %s at %.4f ms, default %s at %.4f ms\n",
                  tuneModeName(*mode), shape.c_str(), r.seconds, r.tried,
                  r.dropped, r.budgetReached ? ", budget reached" : "",
                  index.variants[r.best].config.describe().c_str(), r.bestMs,
                  index.variants[index.defaultIndex].config.describe().c_str(),
                  r.defaultMs);
      if (!file.empty()) {
        TuningEntry e;
        e.device = device;
        e.spec = index.specKey;
        e.shape = shape;
        e.config = index.variants[r.best].config;
        e.ms = r.bestMs;
        e.defaultMs = r.defaultMs;
        e.tuneSeconds = r.seconds;
        if (std::string se =
                storeTuningCacheEntries(file, index.compiler, {{key, e}});
            !se.empty())
          std::fprintf(stderr,
                       "linattn-launch: warning: could not store the tuning "
                       "result: %s\n",
                       se.c_str());
      }
    } else if (!found) {
      std::printf("tuning (%s, %s): no cached result, default %s\n",
                  tuneModeName(*mode), shape.c_str(),
                  index.variants[index.defaultIndex].config.describe().c_str());
    }
  }

  const Manifest &m = kernels.manifests[kernels.chosen];
  const KernelSpec &s = m.spec;
  Module *mod = moduleOf(kernels.chosen, err);
  if (!mod)
    return fail(err);
  npy::Array o, s1;
  if (std::string e = runOnce(*dev, *mod, m, st, o, s1); !e.empty())
    return fail(e);
  std::string mapInfo;
  if (m.map)
    mapInfo = std::string(" +") + m.map->entry + "(" +
              ref::featureMapName(s.featureMap) +
              ", Dphi=" + std::to_string(s.featureDim) +
              (st.args.mapWeight && st.args.mapWeight->shape.size() == 3
                   ? ", per head"
                   : "") +
              (st.args.keyMapWeight ? ", key map" : "") + ")";
  std::printf("%s on %s (%s, driver %d): B=%lld T=%lld Hq=%lld Hk=%lld "
              "Hv=%lld N=%lld%s%s%s%s\n",
              m.entry.c_str(), info.name.c_str(), info.chip().c_str(),
              info.driverVersion, (long long)st.B, (long long)st.T,
              (long long)st.prob.hq, (long long)st.prob.hk,
              (long long)st.prob.hv, (long long)st.N,
              st.args.initialState ? " +initial_state" : "",
              st.args.initialNormalizer ? " +initial_normalizer" : "",
              p.offsets ? " +offsets" : "", mapInfo.c_str());
  if (kernels.index)
    std::printf(
        "variant: %s (%s)\n",
        kernels.index->variants[kernels.chosen].manifest.c_str(),
        kernels.index->variants[kernels.chosen].config.describe().c_str());

  int status = 0;
  if (opt.check) {
    bool ok = false;
    std::string report;
    if (std::string e = compareWithReference(m, p, st, o, s1,
                                             toleranceFor(opt, s), ok, report);
        !e.empty())
      return fail(e);
    std::printf("check: %s -> %s\n", report.c_str(), ok ? "PASS" : "FAIL");
    if (!ok)
      status = ExitCheckFailed;
  }
  if (opt.bench) {
    LaunchArgs &args = st.args;
    std::vector<double> ms;
    if (std::string e = mod->timeLaunches(args, opt.warmup, opt.reps, ms);
        !e.empty())
      return fail(e);
    std::sort(ms.begin(), ms.end());
    double median = ms[ms.size() / 2];
    // Bytes every implementation must move at least once.
    double bytes = 0;
    for (const DeviceTensor *t : {&args.q, &args.k, &args.v, &args.o})
      bytes += static_cast<double>(t->numel()) * elemTypeSize(s.dtype);
    if (args.gate)
      bytes +=
          static_cast<double>(args.gate->numel()) *
          (s.decay == ref::DecayKind::Constant ? 4 : elemTypeSize(s.gateDType));
    if (args.initialState)
      bytes += static_cast<double>(args.initialState->numel()) * 4;
    for (const auto *w :
         {&args.mapWeight, &args.mapBias, &args.keyMapWeight, &args.keyMapBias})
      if (*w)
        bytes += static_cast<double>((*w)->numel()) * 4;
    bytes += static_cast<double>(st.sBytes);
    double tbps = bytes / (median * 1e-3) / 1e12;
    std::printf("bench: median %.4f ms, min %.4f ms over %d runs; %.1f MB "
                "moved -> %.3f TB/s = %.1f%% of %.2f TB/s HBM\n",
                median, ms.front(), (int)ms.size(), bytes / 1e6, tbps,
                100.0 * tbps / opt.peakTBps, opt.peakTBps);
  }
  if (!opt.outDir.empty()) {
    if (std::string e = npy::save(opt.outDir + "/o.npy", o); !e.empty())
      return fail(e);
    if (std::string e = npy::save(opt.outDir + "/final_state.npy", s1);
        !e.empty())
      return fail(e);
    if (s.normalized)
      if (std::string e =
              npy::save(opt.outDir + "/final_normalizer.npy", st.z1);
          !e.empty())
        return fail(e);
  }
  return status;
}

} // namespace

int main(int argc, char **argv) {
  Options o;
  if (std::string e = parseArgs(argc, argv, o); !e.empty()) {
    if (e == "help") {
      std::fputs(usage, stdout);
      return 0;
    }
    std::fprintf(stderr, "linattn-launch: error: %s\n%s", e.c_str(), usage);
    return ExitError;
  }
  return run(o);
}
