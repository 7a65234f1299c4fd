// ggml baseline: ggml_gated_linear_attn, the CPU op llama.cpp uses for
// GLA-style recurrences (QRWKV6 models). Compiled only with
// -DLINATTN_BENCH_WITH_GGML (bench/CMakeLists.txt, when GGML_SOURCE_DIR is
// set); ggml is built from source by run_cpu.sh, not vendored.
//
// Semantics of ggml_gated_linear_attn(ctx, k, v, q, g, state, scale), checked
// against ggml/src/ggml.c and ggml-cpu/ops.cpp (ggml_compute_forward_gla_f32),
// ggml 0.25.x:
//  * Argument order is k, v, q (NOT q, k, v), then g, state, scale.
//  * k, v, q, g: contiguous F32 with ne = {S, H, n_tokens}, i.e. row-major
//    [n_tokens, H, S] ("thd" / FLA's bthd with the batch folded into tokens). A
//    single head size S is used for keys and values: Dk == Dv is required.
//  * Batching: state has ne = {S*S*H, n_seqs}; the n_tokens tokens are split
//  into n_seqs
//    equal consecutive sequences (token t belongs to sequence t / (n_tokens /
//    n_seqs)). So a [B, T] batch is passed as n_tokens = B*T, n_seqs = B.
//  * g is the MULTIPLICATIVE decay alpha = exp(log-gate) in (0, 1], not the
//  log-gate
//    (llama.cpp passes w = exp(-exp(w_raw))). One value per (token, head, key
//    channel).
//  * Recurrence per head, key row i, value column j:
//        S[i][j] = S[i][j] * g[i] + k[i] * v[j];   o[j] += (q[i] * scale) *
//        S[i][j]
//    i.e. S_t = diag(alpha_t) S_{t-1} + k_t^T v_t and o_t = (scale q_t) S_t:
//    inclusive read, key-major state (the same convention as MATH.md / this
//    benchmark). We pass scale = 1 because q is already scaled.
//  * State layout: [n_seqs, H, S(key i), S(value j)] row-major = our [B, H, Dk,
//  Dv].
//  * Result: ONE F32 tensor with ne = {S*H, n_tokens + S*n_seqs}: the first
//  n_tokens*H*S
//    floats are the output in [n_tokens, H, S] (bthd) layout, followed by the
//    final state [n_seqs, H, S, S]. The input state tensor is only read, so
//    repeated computes are idempotent.
//  * Threads: the op splits the HEADS across min(n_threads, H) threads; each
//  thread walks all
//    tokens (of all sequences) and, per token, all of its heads' states (t
//    outer, h inner). The whole output is memset by thread 0 first (part of the
//    timed compute).
//  * No constant-decay variant exists in ggml. For the "lightning" (constant
//  per-head
//    log-decay g_h) case we feed g as the per-head constant alpha_h = exp(g_h)
//    broadcast over tokens and channels and materialized as a full [n_tokens,
//    H, S] tensor (ggml requires g contiguous with the shape of k), so ggml
//    does the same work, plus reading that tensor, as in the GLA case.
// Layout conversion bhtd <-> bthd, graph building and work-buffer allocation
// happen in prepare() and finish() and are NOT timed; only ggml_graph_compute()
// is timed.
#include "impls.h"

#include "ggml-cpu.h"
#include "ggml.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace linattn_bench {
namespace {

struct GgmlState {
  ggml_context *ctx = nullptr;
  ggml_cgraph *gf = nullptr;
  ggml_tensor *res = nullptr;
  ggml_cplan plan{};
  std::vector<uint8_t> work;
  ~GgmlState() {
    if (ctx)
      ggml_free(ctx);
  }
};

// bhtd [B,H,T,D] -> bthd [B,T,H,D] (= [B*T, H, D]), optionally applying f
// elementwise.
template <class F>
void toBthd(const float *src, float *dst, int B, int H, int T, int D, F f) {
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h)
      for (int t = 0; t < T; ++t) {
        const float *s = src + ((size_t(b) * H + h) * T + t) * D;
        float *d = dst + ((size_t(b) * T + t) * H + h) * D;
        for (int i = 0; i < D; ++i)
          d[i] = f(s[i]);
      }
}

Prepared prepareGgml(const Problem &p, Output &out, int threads) {
  const int B = p.B, H = p.H, T = p.T, D = p.Dk;
  const size_t nTok = size_t(B) * T, E = nTok * H * D,
               SE = size_t(B) * H * D * D;
  auto st = std::make_shared<GgmlState>();

  ggml_init_params ip{};
  ip.mem_size = (4 * E + E + SE + SE) * sizeof(float) +
                16 * ggml_tensor_overhead() + ggml_graph_overhead() +
                (1u << 20);
  ip.mem_buffer = nullptr;
  ip.no_alloc = false;
  st->ctx = ggml_init(ip);
  if (!st->ctx)
    throw std::runtime_error("ggml_init failed");
  ggml_context *ctx = st->ctx;

  ggml_tensor *k = ggml_new_tensor_3d(ctx, GGML_TYPE_F32, D, H, int64_t(nTok));
  ggml_tensor *v = ggml_new_tensor_3d(ctx, GGML_TYPE_F32, D, H, int64_t(nTok));
  ggml_tensor *q = ggml_new_tensor_3d(ctx, GGML_TYPE_F32, D, H, int64_t(nTok));
  ggml_tensor *g = ggml_new_tensor_3d(ctx, GGML_TYPE_F32, D, H, int64_t(nTok));
  ggml_tensor *s =
      ggml_new_tensor_2d(ctx, GGML_TYPE_F32, int64_t(D) * D * H, B);

  auto id = [](float x) { return x; };
  toBthd(p.q.data(), (float *)q->data, B, H, T, D, id);
  toBthd(p.k.data(), (float *)k->data, B, H, T, D, id);
  toBthd(p.v.data(), (float *)v->data, B, H, T, D, id);
  if (p.decay == Decay::Gla) {
    toBthd(p.g.data(), (float *)g->data, B, H, T, D,
           [](float x) { return std::exp(x); });
  } else {
    // Constant per-head decay broadcast to a full gate tensor (ggml has no
    // scalar-decay op).
    float *gd = (float *)g->data;
    for (size_t t = 0; t < nTok; ++t)
      for (int h = 0; h < H; ++h) {
        const float a = std::exp(p.g[h]);
        float *d = gd + (t * H + h) * D;
        for (int i = 0; i < D; ++i)
          d[i] = a;
      }
  }
  if (p.s0.empty())
    std::memset(s->data, 0, SE * sizeof(float));
  else
    std::memcpy(s->data, p.s0.data(), SE * sizeof(float));

  st->res = ggml_gated_linear_attn(ctx, k, v, q, g, s, /*scale=*/1.0f);
  st->gf = ggml_new_graph(ctx);
  ggml_build_forward_expand(st->gf, st->res);
  st->plan = ggml_graph_plan(st->gf, threads, /*threadpool=*/nullptr);
  st->work.resize(st->plan.work_size);
  st->plan.work_data = st->work.empty() ? nullptr : st->work.data();

  Prepared pr;
  pr.compute = [st]() {
    if (ggml_graph_compute(st->gf, &st->plan) != GGML_STATUS_SUCCESS)
      throw std::runtime_error("ggml_graph_compute failed");
  };
  Output *outp = &out;
  pr.finish = [st, outp, B, H, T, D, E, SE]() mutable {
    const float *r = (const float *)st->res->data;
    // output [B*T, H, D] -> [B, H, T, D]
    for (int b = 0; b < B; ++b)
      for (int t = 0; t < T; ++t)
        for (int h = 0; h < H; ++h) {
          const float *src = r + ((size_t(b) * T + t) * H + h) * D;
          float *dst = outp->o.data() + ((size_t(b) * H + h) * T + t) * D;
          std::memcpy(dst, src, sizeof(float) * D);
        }
    std::memcpy(outp->state.data(), r + E, SE * sizeof(float));
    st.reset(); // frees the ggml context
  };
  return pr;
}

} // namespace

void registerGgmlImpls(std::vector<Impl> &impls) {
  Impl im;
  im.name = "ggml_gla";
  im.prepare = prepareGgml;
  im.supports = [](const Problem &p, std::string *why) {
    if (p.decay == Decay::Delta) {
      if (why)
        *why = "ggml_gated_linear_attn has no delta rule";
      return false;
    }
    if (p.Dk != p.Dv) {
      if (why)
        *why = "ggml_gated_linear_attn needs Dk == Dv";
      return false;
    }
    return true;
  };
  impls.push_back(std::move(im));
}

} // namespace linattn_bench
