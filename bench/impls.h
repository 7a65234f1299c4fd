// Implementation registry of the CPU linear-attention benchmark
// (bench/cpu_bench.cpp).
//
// Problem: fp32 causal linear attention forward with decay, per (b, h) slice
// (MATH.md sections 0 and 4):
//     S_t = G_t (.) S_{t-1} + k_t^T v_t,     o_t = q_t S_t      (inclusive
//     read)
// with S in R^{Dk x Dv} ("key-major") and q already scaled (no scale is
// applied).
//   Decay::Lightning : G_t = lambda_h (scalar, constant per head); g =
//   ln(lambda_h), shape [H]. Decay::Gla       : G_t[i, j] = exp(g_t[i]); g =
//   log-gates <= 0, shape [B, H, T, Dk].
// Layout: bhtd, row major. q, k: [B, H, T, Dk]; v, o: [B, H, T, Dv];
// state (initial and final): [B, H, Dk, Dv].
//
// HOOK for more implementations (the linattn JIT kernel): compile one extra
// .cpp that defines linattn_bench::registerExtraImpls() and build with
// -DLINATTN_BENCH_WITH_JIT (bench/CMakeLists.txt does this when
// LINATTN_BENCH_EXTRA_SOURCES / LINATTN_BUILD_DIR is set; see bench/README.md).
// Without it cpu_bench.cpp supplies an empty definition.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace linattn_bench {

// Decay::Delta is the delta rule (MATH.md 5.1), S_t = (I - beta_t k_t^T k_t)
// S_{t-1} + beta_t k_t^T v_t with L2-normalized keys and beta in (0, 1); it
// has no gate (g empty) and takes beta [B, H, T].
enum class Decay { Lightning, Gla, Delta };

inline const char *decayName(Decay d) {
  return d == Decay::Lightning ? "lightning"
         : d == Decay::Gla     ? "gla"
                               : "delta";
}

struct Problem {
  int B = 1, H = 1, T = 1, Dk = 1, Dv = 1;
  Decay decay = Decay::Lightning;
  int chunk =
      64; // chunk size C for chunked implementations (a hint; impls may ignore)
  int subChunk = 16;          // secondary chunk c for GLA (a hint)
  std::vector<float> q, k, v; // bhtd, q already scaled
  std::vector<float>
      g; // Lightning: [H] ln(lambda_h) <= 0; Gla: [B,H,T,Dk] log-gates <= 0
  std::vector<float> s0;   // [B,H,Dk,Dv] initial state; empty means zeros
  std::vector<float> beta; // Delta: [B,H,T] write strengths in (0, 1)

  size_t slices() const { return size_t(B) * H; }
  size_t qkElems() const { return slices() * T * Dk; }
  size_t voElems() const { return slices() * T * Dv; }
  size_t stateElems() const { return slices() * Dk * Dv; }
  const float *s0Ptr() const { return s0.empty() ? nullptr : s0.data(); }
};

// Filled by the implementation. The driver pre-sizes both vectors (o:
// voElems(), state: stateElems()) before calling run/prepare.
struct Output {
  std::vector<float> o;     // [B,H,T,Dv]
  std::vector<float> state; // [B,H,Dk,Dv], S_T
};

// Result of Impl::prepare: setup already done (untimed); `compute` is what gets
// timed and may be called several times (it must be idempotent); `finish`
// (untimed, optional) writes the results of the last compute into the Output
// and releases resources.
struct Prepared {
  std::function<void()> compute;
  std::function<void()> finish;
};

struct Impl {
  std::string name;
  // Simple form: one call = one timed forward pass writing into Output.
  std::function<void(const Problem &, Output &, int threads)> run;
  // Optional split form (preferred when set): untimed setup / timed compute /
  // untimed finish. Use it for layout conversions, JIT compilation, graph
  // building.
  std::function<Prepared(const Problem &, Output &, int threads)> prepare;
  // Optional: return false (and a reason) to skip shapes/decays the impl cannot
  // run.
  std::function<bool(const Problem &, std::string *why)> supports;
};

// baselines.cpp: recurrent (all decays), openblas_chunked (lightning, gla).
void registerBaselineImpls(std::vector<Impl> &impls);
// ggml_gla.cpp (compiled with -DLINATTN_BENCH_WITH_GGML); otherwise a no-op in
// cpu_bench.cpp.
void registerGgmlImpls(std::vector<Impl> &impls);
// HOOK: the linattn JIT kernel (compiled with -DLINATTN_BENCH_WITH_JIT);
// otherwise a no-op.
void registerExtraImpls(std::vector<Impl> &impls);

} // namespace linattn_bench
