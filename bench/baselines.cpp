// CPU baselines for fp32 causal linear attention with decay. See baselines.h
// and impls.h.
//
// Build: C++17, -O3 -march=native -fopenmp-simd, link OpenBLAS (cblas) and, on
// glibc x86-64 with AVX2, libmvec (vectorized expf). bench/CMakeLists.txt does
// all of this.
#include "baselines.h"
#include "impls.h"

#include <cblas.h> // OpenBLAS' cblas.h (declares openblas_set_num_threads)

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__AVX2__) && defined(__GLIBC__) && !defined(LINATTN_BENCH_NO_MVEC)
#include <immintrin.h>
// glibc's libmvec: 8-wide AVX2 expf (max error ~4 ulp). Declared by hand
// because math.h only exposes the SIMD variants under -ffast-math.
extern "C" __m256 _ZGVdN8v_expf(__m256);
#define LINATTN_BENCH_HAVE_MVEC 1
#endif

namespace linattn_bench {
namespace {

// y[i] = exp(x[i]); x and y may alias. Callers only pass x <= 0.
inline void vexp(const float *x, float *y, int n) {
  int i = 0;
#ifdef LINATTN_BENCH_HAVE_MVEC
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _ZGVdN8v_expf(_mm256_loadu_ps(x + i)));
#endif
  for (; i < n; ++i)
    y[i] = std::exp(x[i]);
}

inline float dotf(const float *__restrict a, const float *__restrict b, int n) {
  float s = 0.f;
#pragma omp simd reduction(+ : s)
  for (int i = 0; i < n; ++i)
    s += a[i] * b[i];
  return s;
}

// Runs f(slice) for slice in [0, n) on `threads` std::threads (dynamic
// scheduling).
template <class F> void parallelFor(int n, int threads, F &&f) {
  threads = std::max(1, std::min(threads, n));
  if (threads == 1) {
    for (int i = 0; i < n; ++i)
      f(i);
    return;
  }
  std::atomic<int> next{0};
  auto worker = [&]() {
    for (int i; (i = next.fetch_add(1, std::memory_order_relaxed)) < n;)
      f(i);
  };
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (int t = 1; t < threads; ++t)
    pool.emplace_back(worker);
  worker();
  for (auto &t : pool)
    t.join();
}

void initState(float *S, const float *s0, int Dk, int Dv) {
  if (s0)
    std::memcpy(S, s0, sizeof(float) * size_t(Dk) * Dv);
  else
    std::fill(S, S + size_t(Dk) * Dv, 0.f);
}

// ---------------------------------------------------------------------------------------------
// (a) Recurrent: one token at a time. Per token one pass over the state:
//     S[i,:] = a_i * S[i,:] + k_t[i] * v_t ;  o_t += q_t[i] * S[i,:]
// ---------------------------------------------------------------------------------------------
template <bool kGla>
void recurrentSlice(int T, int Dk, int Dv, const float *q, const float *k,
                    const float *v, const float *g /* gla: [T,Dk] */,
                    float logLambda, const float *s0, float *o, float *S) {
  initState(S, s0, Dk, Dv);
  std::vector<float> alpha(Dk, std::exp(logLambda));
  for (int t = 0; t < T; ++t) {
    const float *qt = q + size_t(t) * Dk;
    const float *kt = k + size_t(t) * Dk;
    const float *__restrict vt = v + size_t(t) * Dv;
    float *__restrict ot = o + size_t(t) * Dv;
    if (kGla)
      vexp(g + size_t(t) * Dk, alpha.data(), Dk);
    std::fill(ot, ot + Dv, 0.f);
    for (int i = 0; i < Dk; ++i) {
      const float a = alpha[i], ki = kt[i], qi = qt[i];
      float *__restrict Si = S + size_t(i) * Dv;
      for (int j = 0; j < Dv; ++j) {
        const float s = a * Si[j] + ki * vt[j];
        Si[j] = s;
        ot[j] += qi * s;
      }
    }
  }
}

template <bool kGla> void recurrentAll(const LinAttnArgs &a, int threads) {
  const size_t qkS = size_t(a.T) * a.Dk, voS = size_t(a.T) * a.Dv,
               stS = size_t(a.Dk) * a.Dv;
  parallelFor(a.B * a.H, threads, [&](int sl) {
    const int h = sl % a.H;
    recurrentSlice<kGla>(a.T, a.Dk, a.Dv, a.q + sl * qkS, a.k + sl * qkS,
                         a.v + sl * voS, kGla ? a.g + sl * qkS : nullptr,
                         kGla ? 0.f : a.g[h], a.s0 ? a.s0 + sl * stS : nullptr,
                         a.o + sl * voS, a.stateOut + sl * stS);
  });
}

// ---------------------------------------------------------------------------------------------
// (b) Chunked with OpenBLAS (MATH.md 6.1/6.2/6.3). Chunk rows r, s = 0..Cn-1
// (0-based; the 1-based r of MATH.md is r+1). Short last chunk when C does not
// divide T.
// ---------------------------------------------------------------------------------------------
void blasSingleThreaded() {
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}

inline void gemm(bool transA, bool transB, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb, float beta,
                 float *C, int ldc) {
  cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
              transB ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B,
              ldb, beta, C, ldc);
}

// Case (b) of MATH.md 6.2, constant lambda = exp(g), b_r = (r+1) g:
//   Gamma[r,s] = lambda^(r-s) (r >= s),  gq_r = lambda^(r+1),  gk_s =
//   lambda^(Cn-1-s), gc = lambda^Cn. P = (Q K^T) (.) Gamma;  O = P V + diag(gq)
//   Q S;  S <- gc S + (diag(gk) K)^T V.
void chunkedLightningSlice(int T, int Dk, int Dv, int C, const float *q,
                           const float *k, const float *v, float logLambda,
                           const float *s0, float *o, float *S) {
  std::vector<float> pw(C + 1); // lambda^d = exp(d g), d = 0..C (exponent <= 0)
  for (int d = 0; d <= C; ++d)
    pw[d] = float(std::exp(double(d) * double(logLambda)));
  std::vector<float> P(size_t(C) * C), Qd(size_t(C) * Dk), Kd(size_t(C) * Dk);
  initState(S, s0, Dk, Dv);
  bool stateIsZero = (s0 == nullptr);

  for (int n0 = 0; n0 < T; n0 += C) {
    const int Cn = std::min(C, T - n0);
    const float *Qn = q + size_t(n0) * Dk, *Kn = k + size_t(n0) * Dk;
    const float *Vn = v + size_t(n0) * Dv;
    float *On = o + size_t(n0) * Dv;

    // 1. P = Q K^T, then the decay mask Gamma.
    gemm(false, true, Cn, Cn, Dk, 1.f, Qn, Dk, Kn, Dk, 0.f, P.data(), C);
    for (int r = 0; r < Cn; ++r) {
      float *Pr = P.data() + size_t(r) * C;
      for (int s = 0; s <= r; ++s)
        Pr[s] *= pw[r - s];
      std::fill(Pr + r + 1, Pr + Cn, 0.f);
    }
    // 2. O = P V (intra-chunk).
    gemm(false, false, Cn, Dv, Cn, 1.f, P.data(), C, Vn, Dv, 0.f, On, Dv);
    // 3. O += diag(gq) Q S (inter-chunk).
    if (!stateIsZero) {
      for (int r = 0; r < Cn; ++r) {
        const float f = pw[r + 1];
        for (int i = 0; i < Dk; ++i)
          Qd[size_t(r) * Dk + i] = f * Qn[size_t(r) * Dk + i];
      }
      gemm(false, false, Cn, Dv, Dk, 1.f, Qd.data(), Dk, S, Dv, 1.f, On, Dv);
    }
    // 4. S = gc S + (diag(gk) K)^T V.
    for (int s = 0; s < Cn; ++s) {
      const float f = pw[Cn - 1 - s];
      for (int i = 0; i < Dk; ++i)
        Kd[size_t(s) * Dk + i] = f * Kn[size_t(s) * Dk + i];
    }
    gemm(true, false, Dk, Dv, Cn, 1.f, Kd.data(), Dk, Vn, Dv,
         stateIsZero ? 0.f : pw[Cn], S, Dv);
    stateIsZero = false;
  }
}

// Case (d) of MATH.md 6.3 (GLA), with b = chunk-local inclusive cumsum of g
// (per channel):
//   P[r,s] = sum_i Q[r,i] K[s,i] exp(b_r[i] - b_s[i])  (r >= s)
//   O = P V + (Q (.) exp(b)) S;   S <- diag(exp(b_last)) S + (K (.) exp(b_last
//   - b))^T V.
// P is built per sub-chunk p (rows rho..e, size c):
//   * off-diagonal blocks (key rows s < rho), one sgemm per p (secondary
//   chunking):
//       Qh[r] = Q[r] (.) exp(b_r - b_rho)                      (r in p;
//       exponent <= 0) Kt[s] = K[s] (.) exp(b_e' - b_s) (s in p', e' its last
//       row) Khat[s] = Kt[s] (.) exp(b_rho - b_e')                  (e' < rho;
//       exponent <= 0) P[p, 0:rho] = Qh_p Khat^T
//     Every factor is <= 1; if one underflows, the true product is at least as
//     small.
//   * diagonal blocks, exact per channel: exp(b_r - b_s) = prod_{j=s+1..r}
//   alpha_j with
//     alpha_j = exp(g_j), as a running product (fp32, no exp of anything
//     positive).
// The inter-chunk factors reuse the same exps: exp(b_r) = exp(b_r - b_rho)
// exp(b_rho) and exp(b_last - b_s) = exp(b_e - b_s) exp(b_last - b_e).
void chunkedGlaSlice(int T, int Dk, int Dv, int C, int c, const float *q,
                     const float *k, const float *v, const float *g,
                     const float *s0, float *o, float *S) {
  c = std::max(1, std::min(c, C));
  const int mMax = (C + c - 1) / c;
  const size_t CD = size_t(C) * Dk;
  std::vector<float> bcum(CD), alpha(CD), Qh(CD), Kt(CD), Khat(CD), Qd(CD),
      Kd(CD);
  std::vector<float> P(size_t(C) * C), eRho(size_t(mMax) * Dk),
      eEnd(size_t(mMax) * Dk);
  std::vector<float> eTot(Dk), w(Dk), acc(Dk);
  initState(S, s0, Dk, Dv);
  bool stateIsZero = (s0 == nullptr);

  for (int n0 = 0; n0 < T; n0 += C) {
    const int Cn = std::min(C, T - n0);
    const int m = (Cn + c - 1) / c;
    const float *Qn = q + size_t(n0) * Dk, *Kn = k + size_t(n0) * Dk;
    const float *Gn = g + size_t(n0) * Dk;
    const float *Vn = v + size_t(n0) * Dv;
    float *On = o + size_t(n0) * Dv;
    auto row = [Dk](std::vector<float> &x, int r) {
      return x.data() + size_t(r) * Dk;
    };
    auto crow = [Dk](const float *x, int r) { return x + size_t(r) * Dk; };

    // Chunk-local inclusive cumulative log-gates and per-step decays.
    std::copy(Gn, Gn + Dk, bcum.data());
    for (int r = 1; r < Cn; ++r) {
      const float *prev = row(bcum, r - 1), *gr = crow(Gn, r);
      float *br = row(bcum, r);
      for (int i = 0; i < Dk; ++i)
        br[i] = prev[i] + gr[i];
    }
    vexp(Gn, alpha.data(), Cn * Dk);
    const float *bLast = row(bcum, Cn - 1);

    // Per sub-chunk scaled operands.
    for (int p = 0; p < m; ++p) {
      const int rho = p * c, e = std::min(rho + c, Cn) - 1, nr = e - rho + 1;
      const float *bRho = row(bcum, rho), *bE = row(bcum, e);
      for (int r = rho; r <= e; ++r) {
        const float *br = row(bcum, r);
        float *qh = row(Qh, r), *kt = row(Kt, r);
        for (int i = 0; i < Dk; ++i) {
          qh[i] = br[i] - bRho[i]; // <= 0
          kt[i] = bE[i] - br[i];   // <= 0
        }
      }
      vexp(row(Qh, rho), row(Qh, rho), nr * Dk);
      vexp(row(Kt, rho), row(Kt, rho), nr * Dk);
      for (int r = rho; r <= e; ++r) {
        float *qh = row(Qh, r), *kt = row(Kt, r);
        const float *qr = crow(Qn, r), *kr = crow(Kn, r);
        for (int i = 0; i < Dk; ++i) {
          qh[i] *= qr[i];
          kt[i] *= kr[i];
        }
      }
      float *er = row(eRho, p), *ee = row(eEnd, p);
      for (int i = 0; i < Dk; ++i) {
        er[i] = bRho[i];          // <= 0
        ee[i] = bLast[i] - bE[i]; // <= 0
      }
    }
    vexp(eRho.data(), eRho.data(), m * Dk);
    vexp(eEnd.data(), eEnd.data(), m * Dk);
    vexp(bLast, eTot.data(), Dk);
    for (int r = 0; r < Cn; ++r) {
      const float *er = row(eRho, r / c), *ee = row(eEnd, r / c);
      const float *qh = row(Qh, r), *kt = row(Kt, r);
      float *qd = row(Qd, r), *kd = row(Kd, r);
      for (int i = 0; i < Dk; ++i) {
        qd[i] = qh[i] * er[i]; // Q exp(b_r)
        kd[i] = kt[i] * ee[i]; // K exp(b_last - b_r)
      }
    }

    // Intra-chunk scores P (lower triangular, zero above the diagonal).
    std::fill(P.begin(), P.end(), 0.f);
    for (int p = 1; p < m;
         ++p) { // off-diagonal sub-blocks: one sgemm per query sub-chunk
      const int rho = p * c, e = std::min(rho + c, Cn) - 1, nr = e - rho + 1;
      const float *bRho = row(bcum, rho);
      for (int pp = 0; pp < p; ++pp) {
        const int ePrev = (pp + 1) * c - 1; // pp < p, so sub-chunk pp is full
        const float *bEp = row(bcum, ePrev);
        for (int i = 0; i < Dk; ++i)
          w[i] = bRho[i] - bEp[i]; // <= 0
        vexp(w.data(), w.data(), Dk);
        for (int s = pp * c; s <= ePrev; ++s) {
          const float *kt = row(Kt, s);
          float *kh = row(Khat, s);
          for (int i = 0; i < Dk; ++i)
            kh[i] = kt[i] * w[i];
        }
      }
      gemm(false, true, nr, rho, Dk, 1.f, row(Qh, rho), Dk, Khat.data(), Dk,
           0.f, P.data() + size_t(rho) * C, C);
    }
    for (int p = 0; p < m;
         ++p) { // diagonal sub-blocks: exact running product per channel
      const int rho = p * c, e = std::min(rho + c, Cn) - 1;
      for (int s = rho; s <= e; ++s) {
        std::copy(crow(Kn, s), crow(Kn, s) + Dk, acc.data());
        P[size_t(s) * C + s] = dotf(crow(Qn, s), acc.data(), Dk);
        for (int r = s + 1; r <= e; ++r) {
          const float *ar = row(alpha, r);
          for (int i = 0; i < Dk; ++i)
            acc[i] *= ar[i];
          P[size_t(r) * C + s] = dotf(crow(Qn, r), acc.data(), Dk);
        }
      }
    }

    // O = P V + (Q exp(b)) S
    gemm(false, false, Cn, Dv, Cn, 1.f, P.data(), C, Vn, Dv, 0.f, On, Dv);
    if (!stateIsZero)
      gemm(false, false, Cn, Dv, Dk, 1.f, Qd.data(), Dk, S, Dv, 1.f, On, Dv);
    // S = diag(exp(b_last)) S + (K exp(b_last - b))^T V
    if (!stateIsZero)
      for (int i = 0; i < Dk; ++i) {
        float *Si = S + size_t(i) * Dv;
        const float f = eTot[i];
        for (int j = 0; j < Dv; ++j)
          Si[j] *= f;
      }
    gemm(true, false, Dk, Dv, Cn, 1.f, Kd.data(), Dk, Vn, Dv,
         stateIsZero ? 0.f : 1.f, S, Dv);
    stateIsZero = false;
  }
}

} // namespace

void recurrent_lightning(const LinAttnArgs &a, int threads) {
  recurrentAll<false>(a, threads);
}
void recurrent_gla(const LinAttnArgs &a, int threads) {
  recurrentAll<true>(a, threads);
}

void recurrent_delta(const LinAttnArgs &a, int threads) {
  const int T = a.T, Dk = a.Dk, Dv = a.Dv;
  const size_t qkS = size_t(T) * Dk, voS = size_t(T) * Dv,
               stS = size_t(Dk) * Dv;
  parallelFor(a.B * a.H, threads, [&](int sl) {
    float *S = a.stateOut + sl * stS;
    initState(S, a.s0 ? a.s0 + sl * stS : nullptr, Dk, Dv);
    std::vector<float> u(Dv);
    for (int t = 0; t < T; ++t) {
      const float *q = a.q + sl * qkS + size_t(t) * Dk;
      const float *k = a.k + sl * qkS + size_t(t) * Dk;
      const float *v = a.v + sl * voS + size_t(t) * Dv;
      const float beta = a.beta[size_t(sl) * T + t];
      float *o = a.o + sl * voS + size_t(t) * Dv;
      // u = beta (v - k S): one pass over S.
      std::copy(v, v + Dv, u.data());
      for (int i = 0; i < Dk; ++i) {
        const float *Si = S + size_t(i) * Dv;
        const float ki = k[i];
#pragma omp simd
        for (int j = 0; j < Dv; ++j)
          u[j] -= ki * Si[j];
      }
      for (int j = 0; j < Dv; ++j)
        u[j] *= beta;
      // S += k^T u and o = q S: a second pass.
      std::fill(o, o + Dv, 0.f);
      for (int i = 0; i < Dk; ++i) {
        float *Si = S + size_t(i) * Dv;
        const float ki = k[i], qi = q[i];
#pragma omp simd
        for (int j = 0; j < Dv; ++j) {
          Si[j] += ki * u[j];
          o[j] += qi * Si[j];
        }
      }
    }
  });
}

void openblas_chunked_lightning(const LinAttnArgs &a, int threads, int chunk) {
  blasSingleThreaded();
  const size_t qkS = size_t(a.T) * a.Dk, voS = size_t(a.T) * a.Dv,
               stS = size_t(a.Dk) * a.Dv;
  const int C = std::max(1, chunk);
  parallelFor(a.B * a.H, threads, [&](int sl) {
    chunkedLightningSlice(a.T, a.Dk, a.Dv, C, a.q + sl * qkS, a.k + sl * qkS,
                          a.v + sl * voS, a.g[sl % a.H],
                          a.s0 ? a.s0 + sl * stS : nullptr, a.o + sl * voS,
                          a.stateOut + sl * stS);
  });
}

void openblas_chunked_gla(const LinAttnArgs &a, int threads, int chunk,
                          int subChunk) {
  blasSingleThreaded();
  const size_t qkS = size_t(a.T) * a.Dk, voS = size_t(a.T) * a.Dv,
               stS = size_t(a.Dk) * a.Dv;
  const int C = std::max(1, chunk);
  parallelFor(a.B * a.H, threads, [&](int sl) {
    chunkedGlaSlice(a.T, a.Dk, a.Dv, C, subChunk, a.q + sl * qkS,
                    a.k + sl * qkS, a.v + sl * voS, a.g + sl * qkS,
                    a.s0 ? a.s0 + sl * stS : nullptr, a.o + sl * voS,
                    a.stateOut + sl * stS);
  });
}

// ---------------------------------------------------------------------------------------------
// Registry entries.
// ---------------------------------------------------------------------------------------------
namespace {
LinAttnArgs argsOf(const Problem &p, Output &out) {
  return LinAttnArgs{p.B,          p.H,        p.T,          p.Dk,
                     p.Dv,         p.q.data(), p.k.data(),   p.v.data(),
                     p.g.data(),   p.s0Ptr(),  out.o.data(), out.state.data(),
                     p.beta.data()};
}
} // namespace

void registerBaselineImpls(std::vector<Impl> &impls) {
  Impl rec;
  rec.name = "recurrent";
  rec.run = [](const Problem &p, Output &out, int threads) {
    const LinAttnArgs a = argsOf(p, out);
    if (p.decay == Decay::Lightning)
      recurrent_lightning(a, threads);
    else if (p.decay == Decay::Gla)
      recurrent_gla(a, threads);
    else
      recurrent_delta(a, threads);
  };
  impls.push_back(std::move(rec));

  Impl chk;
  chk.name = "openblas_chunked";
  chk.run = [](const Problem &p, Output &out, int threads) {
    const LinAttnArgs a = argsOf(p, out);
    if (p.decay == Decay::Lightning)
      openblas_chunked_lightning(a, threads, p.chunk);
    else
      openblas_chunked_gla(a, threads, p.chunk, p.subChunk);
  };
  chk.supports = [](const Problem &p, std::string *why) {
    if (p.decay != Decay::Delta)
      return true;
    if (why)
      *why = "no chunked delta rule";
    return false;
  };
  impls.push_back(std::move(chk));
}

} // namespace linattn_bench
