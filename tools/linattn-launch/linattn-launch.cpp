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
// initial_state: f32), rounding to nearest even; offsets may be i32 or i64.
// Exit status: 0 ok, 1 error, 2 --check failed, 77 no driver or no GPU.
//
//===----------------------------------------------------------------------===//

#include "linattn/Reference/Reference.h"
#include "linattn/Runtime/CudaRuntime.h"
#include "linattn/Runtime/Npy.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

using namespace linattn;
using namespace linattn::cuda;
namespace ref = linattn::reference;

namespace {

constexpr int ExitError = 1, ExitCheckFailed = 2, ExitSkipped = 77;

const char *usage =
    "usage: linattn-launch MANIFEST.json [options]\n"
    "  --in NAME=FILE.npy   input q, k, v, gate, initial_state, offsets\n"
    "  --random=B,H,T       random inputs (or B,Hq,Hk,Hv,T) for the rest\n"
    "  --seed N             seed of --random (default 1)\n"
    "  --no-initial-state   --random draws no initial state\n"
    "  --offsets a,b,...    cu_seqlens (needs batch 1; last = T)\n"
    "  --out DIR            write DIR/o.npy and DIR/final_state.npy\n"
    "  --check              compare with the fp64 reference\n"
    "  --tol X              --check tolerance (default by dtype)\n"
    "  --bench              time the kernel (CUDA events)\n"
    "  --reps N             timed launches (default 20)\n"
    "  --warmup N           untimed launches first (default 3)\n"
    "  --peak-tbps X        HBM peak for the roofline (default 3.35, H100)\n"
    "  --device N           CUDA device ordinal (default 0)\n"
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
  double tol = -1, peakTBps = 3.35;
  int reps = 20, warmup = 3, device = 0;
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
                 key == "--device";
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
    } else if (key == "--tol" || key == "--peak-tbps") {
      char *end = nullptr;
      double d = std::strtod(val.c_str(), &end);
      if (val.empty() || *end || !(d > 0))
        return key + " expects a positive number, got '" + val + "'";
      (key == "--tol" ? o.tol : o.peakTBps) = d;
    } else if (a == "--no-initial-state") {
      o.noInitialState = true;
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
    static const char *known[] = {"q",      "k", "v", "gate", "initial_state",
                                  "offsets"};
    if (std::find_if(std::begin(known), std::end(known), [&](const char *k) {
          return name == k;
        }) == std::end(known))
      return "unknown input '" + name +
             "' (q, k, v, gate, initial_state, offsets)";
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
    bool tokens = name != "initial_state" &&
                  !(name == "gate" && s.decay == ref::DecayKind::Constant);
    ElemType t = name == "initial_state" ? ElemType::F32
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

std::string randomInputs(const Options &o, const Manifest &m, Problem &p) {
  const KernelSpec &s = m.spec;
  std::vector<int64_t> d;
  if (!parseList(o.random, d) || (d.size() != 3 && d.size() != 5) ||
      std::any_of(d.begin(), d.end(), [](int64_t x) { return x < 0; }))
    return "--random expects B,H,T or B,Hq,Hk,Hv,T, got '" + o.random + "'";
  ref::RandomDims rd;
  rd.batch = d[0];
  rd.hq = d[1];
  rd.hk = d.size() == 5 ? d[2] : d[1];
  rd.hv = d.size() == 5 ? d[3] : d[1];
  rd.seqLen = d.back();
  rd.dk = s.keyDim;
  rd.dv = s.valueDim;
  ref::RandomOptions ro;
  ro.positive = s.normalized;
  ro.initialState = !o.noInitialState && !p.offsets;
  ref::Inputs r = ref::randomInputs(s.decay, rd, o.seed, ro);
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
  if (p.offsets && !o.noInitialState) {
    // One state per packed sequence, not per batch entry.
    std::mt19937_64 rng(o.seed + 1);
    int64_t h = std::max({rd.hq, rd.hk, rd.hv});
    int64_t n = static_cast<int64_t>(p.offsets->size()) - 1;
    put("initial_state",
        ref::randn(s.stateValueMajor
                       ? std::vector<int64_t>{n, h, s.valueDim, s.keyDim}
                       : std::vector<int64_t>{n, h, s.keyDim, s.valueDim},
                   rng),
        ElemType::F32, false);
  } else if (r.initialState) {
    ref::Tensor st = *r.initialState;
    if (s.stateValueMajor)
      st = ref::swapDims(st, 2, 3);
    put("initial_state", st, ElemType::F32, false);
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

std::vector<int64_t> stateShape(const KernelSpec &s, int64_t n, int64_t h) {
  return s.stateValueMajor ? std::vector<int64_t>{n, h, s.valueDim, s.keyDim}
                           : std::vector<int64_t>{n, h, s.keyDim, s.valueDim};
}

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
    ref::Tensor mq, mk;
    if (std::string e = ref::applyFeatureMap(s.featureMap, ri.q, mq);
        !e.empty())
      return e;
    if (std::string e = ref::applyFeatureMap(s.featureMap, ri.k, mk);
        !e.empty())
      return e;
    ri.q = mq;
    ri.k = mk;
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
  ri.offsets = p.offsets;
  return ref::run(rs, ri, ref::Form::Chunked, want, m.launch.chunkSize);
}

std::string dirOf(const std::string &path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

std::string readFile(const std::string &path, std::string &out) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return "cannot read '" + path + "'";
  std::ostringstream buf;
  buf << in.rdbuf();
  out = buf.str();
  return "";
}

int run(const Options &opt) {
  Manifest m;
  if (std::string e = loadManifest(opt.manifest, m); !e.empty())
    return fail(e);
  const KernelSpec &s = m.spec;
  std::string ptxPath =
      m.ptx[0] == '/' ? m.ptx : dirOf(opt.manifest) + "/" + m.ptx;
  std::string ptx;
  if (std::string e = readFile(ptxPath, ptx); !e.empty())
    return fail(e + " (the manifest's ptx)");

  Problem p;
  if (std::string e = loadInputs(opt, m, p); !e.empty())
    return fail(e);
  if (!opt.random.empty())
    if (std::string e = randomInputs(opt, m, p); !e.empty())
      return fail(e);
  for (const char *need : {"q", "k", "v"})
    if (!p.in.count(need))
      return fail(std::string("missing input '") + need + "' (give --in " +
                  need + "=FILE.npy or --random)");

  // Shapes are checked before any device work (with placeholder pointers),
  // so spec mistakes show up on machines without a GPU too.
  LaunchArgs args;
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
  if (p.in.count("initial_state"))
    args.initialState = tensorOf(p.in["initial_state"]);
  int64_t B = args.q.shape[0], T = s.bthd ? args.q.shape[1] : args.q.shape[2];
  int64_t H = 0;
  for (const DeviceTensor *t : {&args.q, &args.k, &args.v})
    H = std::max(H, s.bthd ? t->shape[2] : t->shape[1]);
  int64_t N = p.offsets ? static_cast<int64_t>(p.offsets->size()) - 1 : B;
  if (p.offsets) {
    if (std::string e = validateOffsets(*p.offsets, T); !e.empty())
      return fail(e);
    args.offsets = DeviceTensor{1, {N + 1}};
  }
  std::vector<int64_t> oShape = s.bthd
                                    ? std::vector<int64_t>{B, T, H, s.valueDim}
                                    : std::vector<int64_t>{B, H, T, s.valueDim};
  args.o = DeviceTensor{1, oShape};
  args.finalState = DeviceTensor{1, stateShape(s, N, H)};
  cuda::Problem prob;
  if (std::string e = validateArgs(m, args, prob); !e.empty())
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
  std::unique_ptr<Module> mod = dev->loadModule(ptx, m, &err);
  if (!mod)
    return fail(ptxPath + ": " + err);

  Buffers buf;
  buf.dev = dev.get();
  auto up = [&](const npy::Array &a, DeviceTensor &t) {
    return buf.upload(a.data.data(), a.data.size(), t.ptr);
  };
  for (auto &[name, t] :
       std::initializer_list<std::pair<const char *, DeviceTensor *>>{
           {"q", &args.q}, {"k", &args.k}, {"v", &args.v}})
    if (std::string e = up(p.in[name].array, *t); !e.empty())
      return fail(e);
  if (args.gate)
    if (std::string e = up(p.in["gate"].array, *args.gate); !e.empty())
      return fail(e);
  if (args.initialState)
    if (std::string e = up(p.in["initial_state"].array, *args.initialState);
        !e.empty())
      return fail(e);
  if (p.offsets)
    if (std::string e =
            buf.upload(p.offsets->data(), p.offsets->size() * sizeof(int64_t),
                       args.offsets->ptr);
        !e.empty())
      return fail(e);
  // Outputs start as NaN (all-ones bytes) so unwritten elements fail --check.
  size_t oBytes = static_cast<size_t>(args.o.numel()) * elemTypeSize(s.dtype);
  size_t sBytes = static_cast<size_t>(args.finalState->numel()) * 4;
  for (auto [t, bytes] :
       {std::pair{&args.o, oBytes}, std::pair{&*args.finalState, sBytes}}) {
    if (std::string e = dev->alloc(bytes, t->ptr); !e.empty())
      return fail(e);
    buf.ptrs.push_back(t->ptr);
    if (std::string e = dev->memset(t->ptr, 0xFF, bytes); !e.empty())
      return fail(e);
  }

  if (std::string e = mod->launch(args); !e.empty())
    return fail(e);
  if (std::string e = dev->synchronize(); !e.empty())
    return fail("kernel execution: " + e);
  npy::Array o = npy::fromF64({}, oShape, toNpy(s.dtype));
  o.data.resize(oBytes);
  npy::Array s1 = npy::fromF64({}, args.finalState->shape, npy::DType::F32);
  s1.data.resize(sBytes);
  if (std::string e = dev->download(o.data.data(), args.o.ptr, oBytes);
      !e.empty())
    return fail(e);
  if (std::string e =
          dev->download(s1.data.data(), args.finalState->ptr, sBytes);
      !e.empty())
    return fail(e);
  std::printf("%s on %s (%s, driver %d): B=%lld T=%lld Hq=%lld Hk=%lld "
              "Hv=%lld N=%lld%s%s\n",
              m.entry.c_str(), info.name.c_str(), info.chip().c_str(),
              info.driverVersion, (long long)B, (long long)T,
              (long long)prob.hq, (long long)prob.hk, (long long)prob.hv,
              (long long)N, args.initialState ? " +initial_state" : "",
              p.offsets ? " +offsets" : "");

  int status = 0;
  if (opt.check) {
    ref::Outputs want;
    if (std::string e = reference(m, p, H, want); !e.empty())
      return fail("reference: " + e);
    ref::Tensor got(o.shape), gotS(s1.shape);
    got.data = npy::toF64(o);
    gotS.data = npy::toF64(s1);
    double tol = opt.tol > 0                ? opt.tol
                 : s.dtype == ElemType::F32 ? 1e-5
                 : s.dtype == ElemType::F16 ? 1e-3
                                            : 5e-3;
    double ro = ref::ratio(fromLogical(got, s.bthd), want.o);
    double rs = ref::ratio(gotS, want.finalState);
    bool ok = ro <= tol && rs <= tol;
    std::printf("check: output ratio %.3g, final state ratio %.3g "
                "(tolerance %.0e for %s) -> %s\n",
                ro, rs, tol, elemTypeName(s.dtype), ok ? "PASS" : "FAIL");
    if (!ok)
      status = ExitCheckFailed;
  }
  if (opt.bench) {
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
    bytes += static_cast<double>(sBytes);
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
