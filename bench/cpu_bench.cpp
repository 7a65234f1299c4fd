// CPU benchmark driver for fp32 causal linear attention with decay (lightning /
// gla). See bench/README.md. Implementations are registered in a table
// (impls.h):
//   recurrent, openblas_chunked (baselines.cpp), ggml_gla (ggml_gla.cpp,
//   optional), plus whatever registerExtraImpls() adds (HOOK for the linattn
//   JIT kernel).
#include "impls.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace linattn_bench {
#ifndef LINATTN_BENCH_WITH_GGML
void registerGgmlImpls(std::vector<Impl> &) {}
#endif
#ifndef LINATTN_BENCH_WITH_JIT
// HOOK: default no-op. Define registerExtraImpls() in an extra .cpp (e.g.
// bench/linattn_impl.cpp) and compile with -DLINATTN_BENCH_WITH_JIT to add the
// linattn JIT kernel, for example:
//   void registerExtraImpls(std::vector<Impl> &impls) {
//     Impl im; im.name = "linattn";
//     im.prepare = [](const Problem &p, Output &out, int threads) -> Prepared {
//       /* build the linattn.attention spec for p, JIT-compile (untimed) */
//       return Prepared{/*compute*/ [=, &p, &out] { /* call kernel */ },
//       /*finish*/ {}};
//     };
//     impls.push_back(im);
//   }
void registerExtraImpls(std::vector<Impl> &) {}
#endif
} // namespace linattn_bench

using namespace linattn_bench;

namespace {

using Clock = std::chrono::steady_clock;
double secondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Shape {
  int B, H, T, Dk, Dv;
  std::string str() const {
    std::ostringstream s;
    s << B << "x" << H << "x" << T << "x" << Dk;
    if (Dv != Dk)
      s << "x" << Dv;
    return s.str();
  }
};

struct Options {
  std::vector<Shape> shapes;
  std::vector<Decay> decays{Decay::Lightning, Decay::Gla};
  std::vector<int> threads{1, 2};
  std::vector<std::string> implFilter; // empty: all
  int chunk = 64, subChunk = 16;
  bool quick = false;
  int reps = 0; // fixed repetitions (0: automatic from the time budget)
  int warmup = 1;
  int minReps = 5, maxReps = 10;
  double budget =
      3.0; // seconds of timed repetitions per measurement (automatic reps)
  std::string ref64 = "auto";
  double ref64Limit = 6e8; // auto: fp64 reference when B*H*T*Dk*Dv <= this
  double glaTau = 16.0;    // GLA gate: g = logsigmoid(x) / tau, x ~ U(-4, 4)
  uint64_t seed = 1234;
  bool initState = false; // non-zero initial state s0 (default: zero)
  std::string mdFile;
  bool listImpls = false;
  // Time the implementations of one (shape, decay, threads) round-robin, one
  // repetition each in turn, so load from other processes hits all alike.
  bool interleave = false;
};

[[noreturn]] void usage(int rc) {
  std::printf("usage: cpu_bench [options]\n"
              "  --shapes=BxHxTxD[xDv],...  (default "
              "1x8x4096x128,4x16x4096x128,1x8x16384x64,"
              "4x16x16384x128)\n"
              "  --decays=lightning,gla[,delta] --threads=1,2  "
              "--impls=NAME[,NAME] (prefix match)\n"
              "  --quick                    small shapes (unless --shapes), "
              "short time budget\n"
              "  --chunk=64 --subchunk=16   chunk sizes of the chunked "
              "implementations\n"
              "  --reps=N                   fixed timed repetitions (default: "
              "from --budget)\n"
              "  --warmup=N (1)  --budget=SEC (3.0)  --min-reps=N (5)  "
              "--max-reps=N (10)\n"
              "  --ref64=auto|on|off        fp64 recurrent reference for the "
              "error check (auto: small\n"
              "                             problems; otherwise the first impl "
              "is the reference)\n"
              "  --gla-tau=16               GLA gate g = logsigmoid(x)/tau, x "
              "~ U(-4,4)\n"
              "  --s0                       random non-zero initial state "
              "(default: zero)\n"
              "  --seed=N  --md=FILE (also write the markdown tables to FILE)  "
              "--list-impls\n"
              "  --interleave               time the implementations "
              "round-robin, one rep each in turn\n");
  std::exit(rc);
}

std::vector<std::string> split(const std::string &s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream is(s);
  while (std::getline(is, cur, sep))
    if (!cur.empty())
      out.push_back(cur);
  return out;
}

Shape parseShape(const std::string &s) {
  std::vector<std::string> f = split(s, 'x');
  if (f.size() != 4 && f.size() != 5)
    throw std::runtime_error("bad shape '" + s +
                             "' (want BxHxTxD or BxHxTxDkxDv)");
  Shape sh{std::stoi(f[0]), std::stoi(f[1]), std::stoi(f[2]), std::stoi(f[3]),
           0};
  sh.Dv = f.size() == 5 ? std::stoi(f[4]) : sh.Dk;
  return sh;
}

Options parseArgs(int argc, char **argv) {
  Options o;
  bool shapesGiven = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i], key = a, val;
    size_t eq = a.find('=');
    if (eq != std::string::npos) {
      key = a.substr(0, eq);
      val = a.substr(eq + 1);
    }
    auto need = [&]() -> const std::string & {
      if (val.empty())
        throw std::runtime_error("option " + key + " needs =VALUE");
      return val;
    };
    if (key == "-h" || key == "--help")
      usage(0);
    else if (key == "--quick")
      o.quick = true;
    else if (key == "--list-impls")
      o.listImpls = true;
    else if (key == "--s0")
      o.initState = true;
    else if (key == "--shapes") {
      for (auto &s : split(need(), ','))
        o.shapes.push_back(parseShape(s));
      shapesGiven = true;
    } else if (key == "--decays") {
      o.decays.clear();
      for (auto &s : split(need(), ',')) {
        if (s == "lightning")
          o.decays.push_back(Decay::Lightning);
        else if (s == "gla")
          o.decays.push_back(Decay::Gla);
        else if (s == "delta")
          o.decays.push_back(Decay::Delta);
        else
          throw std::runtime_error("unknown decay " + s);
      }
    } else if (key == "--threads") {
      o.threads.clear();
      for (auto &s : split(need(), ','))
        o.threads.push_back(std::stoi(s));
    } else if (key == "--impls")
      o.implFilter = split(need(), ',');
    else if (key == "--chunk")
      o.chunk = std::stoi(need());
    else if (key == "--subchunk")
      o.subChunk = std::stoi(need());
    else if (key == "--reps")
      o.reps = std::stoi(need());
    else if (key == "--warmup")
      o.warmup = std::stoi(need());
    else if (key == "--budget")
      o.budget = std::stod(need());
    else if (key == "--min-reps")
      o.minReps = std::stoi(need());
    else if (key == "--max-reps")
      o.maxReps = std::stoi(need());
    else if (key == "--ref64")
      o.ref64 = need();
    else if (key == "--gla-tau")
      o.glaTau = std::stod(need());
    else if (key == "--seed")
      o.seed = std::stoull(need());
    else if (key == "--md")
      o.mdFile = need();
    else if (key == "--interleave")
      o.interleave = true;
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      usage(2);
    }
  }
  if (!shapesGiven) {
    if (o.quick)
      o.shapes = {
          {1, 2, 200, 64, 64}, {2, 3, 1000, 128, 128}, {1, 4, 2048, 64, 64}};
    else
      o.shapes = {{1, 8, 4096, 128, 128},
                  {4, 16, 4096, 128, 128},
                  {1, 8, 16384, 64, 64},
                  {4, 16, 16384, 128, 128}};
  }
  if (o.quick) {
    o.budget = std::min(o.budget, 0.2);
    o.minReps = std::min(o.minReps, 2);
    o.maxReps = std::min(o.maxReps, 5);
  }
  return o;
}

// Counter-based RNG: uniform in [-1, 1), reproducible independently of fill
// order.
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
void fillUniform(std::vector<float> &x, uint64_t seed, float scale) {
  const uint64_t base = splitmix64(seed);
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = scale *
           (float(splitmix64(base + i) >> 40) * (2.0f / 16777216.0f) - 1.0f);
}

Problem makeProblem(const Shape &s, Decay d, const Options &o) {
  Problem p;
  p.B = s.B, p.H = s.H, p.T = s.T, p.Dk = s.Dk, p.Dv = s.Dv;
  p.decay = d;
  p.chunk = o.chunk, p.subChunk = o.subChunk;
  p.q.resize(p.qkElems());
  p.k.resize(p.qkElems());
  p.v.resize(p.voElems());
  fillUniform(p.q, o.seed * 16 + 1,
              1.0f / std::sqrt(float(s.Dk))); // q already scaled
  fillUniform(p.k, o.seed * 16 + 2, 1.0f);
  fillUniform(p.v, o.seed * 16 + 3, 1.0f);
  if (d == Decay::Lightning) {
    // Lightning-Attention / TNL-style schedule at layer 0: ln(lambda_h) =
    // -slope_h, ALiBi slopes 2^(-8(h+1)/H) (MATH.md 4.b).
    p.g.resize(s.H);
    for (int h = 0; h < s.H; ++h)
      p.g[h] = -std::exp2(-8.0f * float(h + 1) / float(s.H));
  } else if (d == Decay::Delta) {
    // Delta rule: L2-normalized keys, beta = sigmoid(x), x ~ U(-4, 4)
    // (MATH.md 5.1, 9.6).
    for (size_t r = 0; r < p.k.size(); r += size_t(s.Dk)) {
      double sq = 0;
      for (int i = 0; i < s.Dk; ++i)
        sq += double(p.k[r + i]) * p.k[r + i];
      const float inv = float(1.0 / (std::sqrt(sq) + 1e-6));
      for (int i = 0; i < s.Dk; ++i)
        p.k[r + i] *= inv;
    }
    p.beta.resize(p.slices() * s.T);
    fillUniform(p.beta, o.seed * 16 + 6, 4.0f);
    for (float &x : p.beta)
      x = 1.0f / (1.0f + std::exp(-x));
  } else {
    // GLA-style gate: g = logsigmoid(x) / tau (MATH.md 4.d), x ~ U(-4, 4).
    p.g.resize(p.qkElems());
    fillUniform(p.g, o.seed * 16 + 4, 4.0f);
    for (float &x : p.g) {
      const float ls = std::min(x, 0.f) - std::log1p(std::exp(-std::fabs(x)));
      x = float(ls / o.glaTau);
    }
  }
  if (o.initState) {
    p.s0.resize(p.stateElems());
    fillUniform(p.s0, o.seed * 16 + 5, 1.0f);
  }
  return p;
}

// fp64 recurrent reference (MATH.md section 4 recurrence).
void reference64(const Problem &p, int threads, std::vector<double> &o,
                 std::vector<double> &S) {
  o.assign(p.voElems(), 0.0);
  S.assign(p.stateElems(), 0.0);
  const int n = p.B * p.H;
  auto slice = [&](int sl) {
    const int h = sl % p.H, Dk = p.Dk, Dv = p.Dv, T = p.T;
    const size_t qkS = size_t(T) * Dk, voS = size_t(T) * Dv;
    double *Sl = S.data() + size_t(sl) * Dk * Dv;
    if (!p.s0.empty())
      for (size_t i = 0; i < size_t(Dk) * Dv; ++i)
        Sl[i] = p.s0[size_t(sl) * Dk * Dv + i];
    std::vector<double> a(
        Dk, std::exp(double(p.decay == Decay::Lightning ? p.g[h] : 0.f)));
    for (int t = 0; t < T; ++t) {
      const float *q = p.q.data() + sl * qkS + size_t(t) * Dk;
      const float *k = p.k.data() + sl * qkS + size_t(t) * Dk;
      const float *v = p.v.data() + sl * voS + size_t(t) * Dv;
      double *ot = o.data() + sl * voS + size_t(t) * Dv;
      if (p.decay == Decay::Delta) {
        // u = beta (v - k S), S += k^T u, o = q S.
        std::vector<double> u(v, v + Dv);
        for (int i = 0; i < Dk; ++i)
          for (int j = 0; j < Dv; ++j)
            u[j] -= double(k[i]) * Sl[size_t(i) * Dv + j];
        const double beta = p.beta[size_t(sl) * T + t];
        for (int i = 0; i < Dk; ++i)
          for (int j = 0; j < Dv; ++j) {
            double &s = Sl[size_t(i) * Dv + j];
            s += double(k[i]) * beta * u[j];
            ot[j] += double(q[i]) * s;
          }
        continue;
      }
      if (p.decay == Decay::Gla)
        for (int i = 0; i < Dk; ++i)
          a[i] = std::exp(double(p.g[sl * qkS + size_t(t) * Dk + i]));
      for (int i = 0; i < Dk; ++i) {
        double *Si = Sl + size_t(i) * Dv;
        for (int j = 0; j < Dv; ++j) {
          Si[j] = a[i] * Si[j] + double(k[i]) * double(v[j]);
          ot[j] += double(q[i]) * Si[j];
        }
      }
    }
  };
  threads = std::max(1, std::min(threads, n));
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      for (int sl = t; sl < n; sl += threads)
        slice(sl);
    });
  for (auto &t : pool)
    t.join();
}

// max_i |x_i - r_i| / max_i |r_i|
template <class R>
double relErr(const std::vector<float> &x, const std::vector<R> &r) {
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    num = std::max(num, std::fabs(double(x[i]) - double(r[i])));
    den = std::max(den, std::fabs(double(r[i])));
  }
  if (!std::isfinite(num))
    return INFINITY;
  return den > 0 ? num / den : num;
}

struct Row {
  std::string shape;
  Decay decay;
  int threads;
  std::string impl;
  bool ok = false;
  std::string note; // skip reason / error
  double medMs = 0, minMs = 0, gflops = 0;
  int reps = 0;
  double errO = NAN, errS = NAN;
  std::string refName;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

bool implSelected(const std::string &name, const Options &o) {
  if (o.implFilter.empty())
    return true;
  for (auto &f : o.implFilter)
    if (name.compare(0, f.size(), f) == 0)
      return true;
  return false;
}

std::string fmt(const char *f, double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, x);
  return buf;
}

std::string cpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) {
      size_t c = line.find(':');
      return c == std::string::npos ? line : line.substr(c + 2);
    }
  return "unknown";
}

} // namespace

int main(int argc, char **argv) {
  Options opt;
  try {
    opt = parseArgs(argc, argv);
  } catch (const std::exception &e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    usage(2);
  }

  std::vector<Impl> all, impls;
  registerBaselineImpls(all);
  registerGgmlImpls(all);
  registerExtraImpls(all);
  if (opt.listImpls) {
    for (auto &im : all)
      std::printf("%s\n", im.name.c_str());
    return 0;
  }
  for (auto &im : all)
    if (implSelected(im.name, opt))
      impls.push_back(im);
  if (impls.empty()) {
    std::fprintf(stderr, "no implementation selected\n");
    return 2;
  }

  const auto tStart = Clock::now();
  const char *obt = std::getenv("OPENBLAS_NUM_THREADS");
  const char *obc = std::getenv("OPENBLAS_CORETYPE");
  std::printf(
      "# linattn CPU benchmark: fp32 causal linear attention with decay\n\n");
  std::printf("- CPU: %s, %u hardware threads\n", cpuModel().c_str(),
              std::thread::hardware_concurrency());
  std::printf("- compiler: %s\n", __VERSION__);
  std::printf("- OPENBLAS_NUM_THREADS=%s OPENBLAS_CORETYPE=%s\n",
              obt ? obt : "(unset)", obc ? obc : "(unset)");
  std::printf("- chunk C=%d, GLA sub-chunk c=%d, GLA gate "
              "logsigmoid(U(-4,4))/%g, initial state %s; "
              "impls:",
              opt.chunk, opt.subChunk, opt.glaTau,
              opt.initState ? "random" : "zero");
  for (auto &im : impls)
    std::printf(" %s", im.name.c_str());
  std::printf(
      "\n- timing: %d warmup, then %s; median and min of the timed runs\n",
      opt.warmup,
      opt.reps > 0 ? (std::to_string(opt.reps) + " reps").c_str()
                   : ("reps = clamp(" + fmt("%.2g", opt.budget) +
                      " s / warmup time, " + std::to_string(opt.minReps) +
                      ", " + std::to_string(opt.maxReps) + ")")
                         .c_str());
  std::printf("- GFLOP/s counts the nominal recurrent work 4*B*H*T*Dk*Dv\n\n");
  std::fflush(stdout);

  std::vector<Row> rows;
  for (const Shape &sh : opt.shapes) {
    for (Decay dec : opt.decays) {
      Problem p = makeProblem(sh, dec, opt);
      const double flop = 4.0 * double(p.B) * p.H * p.T * p.Dk * p.Dv;
      const bool use64 = opt.ref64 == "on" ||
                         (opt.ref64 == "auto" && flop / 4.0 <= opt.ref64Limit);
      std::vector<double> ref64O, ref64S;
      Output ref32; // used when no fp64 reference: the first successful impl
      std::string refName;
      if (use64) {
        const auto t0 = Clock::now();
        reference64(p,
                    *std::max_element(opt.threads.begin(), opt.threads.end()),
                    ref64O, ref64S);
        refName = "fp64";
        std::fprintf(stderr, "[%s %s] fp64 reference: %.2f s\n",
                     sh.str().c_str(), decayName(dec), secondsSince(t0));
      }
      for (int thr : opt.threads) {
        // One slot per implementation: prepared, warmed up, then timed
        // either back to back or round-robin (--interleave).
        struct Slot {
          const Impl *im;
          Row row;
          Output out;
          Prepared pr;
          int reps = 0;
          std::vector<double> ts;
          bool live = false;
        };
        std::vector<Slot> slots(impls.size());
        auto timeOnce = [](Slot &sl) {
          const auto t0 = Clock::now();
          sl.pr.compute();
          return secondsSince(t0);
        };
        auto measure = [&](Slot &sl) {
          const Impl &im = *sl.im;
          Row &row = sl.row;
          row.shape = sh.str(), row.decay = dec, row.threads = thr,
          row.impl = im.name;
          std::string why;
          if (im.supports && !im.supports(p, &why)) {
            row.note = "skipped: " + why;
            return;
          }
          sl.out.o.assign(p.voElems(), 0.f);
          sl.out.state.assign(p.stateElems(), 0.f);
          try {
            if (im.prepare) {
              sl.pr = im.prepare(p, sl.out, thr);
            } else {
              const Impl *ip = &im;
              Output *o = &sl.out;
              sl.pr.compute = [ip, &p, o, thr] { ip->run(p, *o, thr); };
            }
            double tw = 0;
            for (int w = 0; w < std::max(0, opt.warmup); ++w)
              tw = timeOnce(sl);
            int reps = opt.reps;
            if (reps <= 0) {
              if (tw <= 0)
                tw = timeOnce(sl);
              reps = int(std::lround(opt.budget / std::max(tw, 1e-9)));
              reps = std::max(opt.minReps, std::min(opt.maxReps, reps));
            }
            sl.reps = reps;
            sl.live = true;
          } catch (const std::exception &e) {
            row.note = std::string("error: ") + e.what();
          }
        };
        auto timeReps = [&](Slot &sl, int r) {
          if (!sl.live || r >= sl.reps)
            return;
          try {
            sl.ts.push_back(timeOnce(sl));
          } catch (const std::exception &e) {
            sl.row.note = std::string("error: ") + e.what();
            sl.live = false;
          }
        };
        auto report = [&](Slot &sl) {
          Row &row = sl.row;
          if (!sl.live) {
            rows.push_back(row);
            return;
          }
          if (sl.pr.finish)
            sl.pr.finish();
          row.ok = true;
          row.reps = sl.reps;
          row.medMs = 1e3 * median(sl.ts);
          row.minMs = 1e3 * *std::min_element(sl.ts.begin(), sl.ts.end());
          row.gflops = flop / (row.medMs * 1e-3) * 1e-9;
          if (use64) {
            row.errO = relErr(sl.out.o, ref64O);
            row.errS = relErr(sl.out.state, ref64S);
          } else if (refName.empty()) {
            refName = sl.im->name + "@" + std::to_string(thr);
            ref32 = std::move(sl.out);
            row.errO = row.errS = 0;
          } else {
            row.errO = relErr(sl.out.o, ref32.o);
            row.errS = relErr(sl.out.state, ref32.state);
          }
          row.refName = refName;
          std::fprintf(
              stderr,
              "[%s %s t=%d] %-18s median %10.2f ms  min %10.2f ms  (%d reps)  "
              "err o %.1e S %.1e vs %s  [%.0f s elapsed]\n",
              row.shape.c_str(), decayName(dec), thr, sl.im->name.c_str(),
              row.medMs, row.minMs, row.reps, row.errO, row.errS,
              refName.c_str(), secondsSince(tStart));
          rows.push_back(row);
          sl.out = Output(); // free the output before the next slot
        };
        for (size_t i = 0; i < impls.size(); ++i)
          slots[i].im = &impls[i];
        if (opt.interleave) {
          int maxReps = 0;
          for (Slot &sl : slots) {
            measure(sl);
            maxReps = std::max(maxReps, sl.reps);
          }
          for (int r = 0; r < maxReps; ++r)
            for (Slot &sl : slots)
              timeReps(sl, r);
          for (Slot &sl : slots)
            report(sl);
        } else {
          for (Slot &sl : slots) {
            measure(sl);
            for (int r = 0; r < sl.reps; ++r)
              timeReps(sl, r);
            report(sl);
          }
        }
      }
    }
  }

  // ----- Markdown output -----
  std::ostringstream md;
  md << "| shape BxHxTxD | decay | thr | impl | median ms | min ms | reps | "
        "GFLOP/s | "
        "speedup vs recurrent | time / fastest | max rel err o | max rel err S "
        "| ref |\n"
     << "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n";
  bool anyBad = false;
  for (const Row &r : rows) {
    double rec = 0, fastest = 0;
    for (const Row &x : rows)
      if (x.ok && x.shape == r.shape && x.decay == r.decay &&
          x.threads == r.threads) {
        if (x.impl == "recurrent")
          rec = x.medMs;
        if (fastest == 0 || x.medMs < fastest)
          fastest = x.medMs;
      }
    md << "| " << r.shape << " | " << decayName(r.decay) << " | " << r.threads
       << " | " << r.impl << " | ";
    if (!r.ok) {
      md << r.note << " | | | | | | | | |\n";
      continue;
    }
    const bool bad = !(r.errO < 1e-3) || !(r.errS < 1e-3);
    anyBad |= bad;
    md << fmt("%.2f", r.medMs) << " | " << fmt("%.2f", r.minMs) << " | "
       << r.reps << " | " << fmt("%.1f", r.gflops) << " | "
       << (rec > 0 ? fmt("%.2fx", rec / r.medMs) : "-") << " | "
       << fmt("%.2f", r.medMs / fastest) << " | " << fmt("%.1e", r.errO)
       << (bad ? " (!)" : "") << " | " << fmt("%.1e", r.errS) << " | "
       << r.refName << " |\n";
  }

  // Pivot: median ms per (shape, decay) x (impl, threads).
  std::vector<std::string> implNames;
  for (auto &im : impls)
    implNames.push_back(im.name);
  md << "\nMedian ms (rows: shape/decay; columns: impl @ threads)\n\n| shape | "
        "decay |";
  for (int thr : opt.threads)
    for (auto &n : implNames)
      md << " " << n << " @" << thr << " |";
  md << "\n|---|---|";
  for (size_t i = 0; i < opt.threads.size() * implNames.size(); ++i)
    md << "---:|";
  md << "\n";
  for (const Shape &sh : opt.shapes)
    for (Decay dec : opt.decays) {
      md << "| " << sh.str() << " | " << decayName(dec) << " |";
      for (int thr : opt.threads)
        for (auto &n : implNames) {
          std::string cell = " - ";
          for (const Row &r : rows)
            if (r.ok && r.shape == sh.str() && r.decay == dec &&
                r.threads == thr && r.impl == n)
              cell = " " + fmt("%.2f", r.medMs) + " ";
          md << cell << "|";
        }
      md << "\n";
    }
  md << "\nTotal benchmark wall time: " << fmt("%.1f", secondsSince(tStart))
     << " s\n";
  if (anyBad)
    md << "\nWARNING: some implementation disagrees with the reference (rel "
          "err >= 1e-3, "
          "marked (!)).\n";

  std::printf("%s", md.str().c_str());
  if (!opt.mdFile.empty()) {
    std::ofstream f(opt.mdFile);
    f << md.str();
  }
  return anyBad ? 1 : 0;
}
