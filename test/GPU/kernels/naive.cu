// naive.cu - Slow but simple kernels with the linattn GPU ABI
// (docs/gpu-kernel-abi.md), for testing the AOT runtime and the GPU test
// harness without the PTX generator. One thread per value column keeps its
// state column S[:, j] in local memory and walks the sequence token by
// token (the recurrent form, MATH.md 2). Regenerate naive.ptx with
// test/GPU/kernels/regen.sh. The Hedgehog kernel also has the feature-map
// prepass entry (docs/gpu-kernel-abi.md, `linattn_map`): one thread per row.
#include <cuda_bf16.h>

#define TENSOR(T, n)                                                           \
  const T *n##_alloc, const T *n, long long n##_off, long long n##_size,       \
      long long n##_stride
#define OUT_TENSOR(T, n)                                                       \
  T *n##_alloc, T *n, long long n##_off, long long n##_size, long long n##_stride

__device__ inline float toF(float x) { return x; }
__device__ inline float toF(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ inline void fromF(float x, float &out) { out = x; }
__device__ inline void fromF(float x, __nv_bfloat16 &out) {
  out = __float2bfloat16_rn(x);
}

constexpr int MaxDk = 128;

// Decay: 0 none, 1 scalar gate.
template <typename T, bool BTHD, int Decay>
__device__ void naive(const T *q, const T *k, const T *v, const float *gate,
                      const float *s0, T *o, float *s1, const long long *off,
                      long long N, long long Ttot, long long Hq, long long Hk,
                      long long Hv, long long hasS0, long long hasS1,
                      long long hasOff, int Dk, int Dqk, int Dv, int blockV,
                      float scale) {
  long long H = max(Hq, max(Hk, Hv));
  int j = blockIdx.x * blockV + threadIdx.x;
  long long h = blockIdx.y, n = blockIdx.z;
  if (threadIdx.x >= blockV || j >= Dv || Dk > MaxDk)
    return;
  long long b = hasOff ? 0 : n;
  long long t0 = hasOff ? off[n] : 0, t1 = hasOff ? off[n + 1] : Ttot;
  long long hq = h / (H / Hq), hk = h / (H / Hk), hv = h / (H / Hv);
  auto at = [&](long long heads, long long head, long long t, int dim) {
    return BTHD ? ((b * Ttot + t) * heads + head) * dim
                : ((b * heads + head) * Ttot + t) * dim;
  };
  float S[MaxDk];
  for (int i = 0; i < Dk; ++i)
    S[i] = hasS0 ? s0[((n * H + h) * Dk + i) * Dv + j] : 0.f;
  for (long long t = t0; t < t1; ++t) {
    float decay = 1.f;
    if (Decay == 1)
      decay = expf(gate[BTHD ? (b * Ttot + t) * H + h
                               : (b * H + h) * Ttot + t]);
    float vj = toF(v[at(Hv, hv, t, Dv) + j]);
    // q and k rows have width Dqk: Dk, or Dp >= Dk after a map prepass.
    const T *kt = k + at(Hk, hk, t, Dqk), *qt = q + at(Hq, hq, t, Dqk);
    float acc = 0.f;
    for (int i = 0; i < Dk; ++i) {
      S[i] = decay * S[i] + toF(kt[i]) * vj;
      acc += toF(qt[i]) * S[i];
    }
    fromF(scale * acc, o[at(H, h, t, Dv) + j]);
  }
  if (hasS1)
    for (int i = 0; i < Dk; ++i)
      s1[((n * H + h) * Dk + i) * Dv + j] = S[i];
}

#define ENTRY(name, T, BTHD, DECAY, DK, DQK, DV, BLOCKV, SCALE)                \
  extern "C" __global__ void name(                                             \
      TENSOR(T, q), TENSOR(T, k), TENSOR(T, v), TENSOR(float, gate),           \
      TENSOR(float, s0), OUT_TENSOR(T, o), OUT_TENSOR(float, s1),              \
      TENSOR(long long, off), long long N, long long Ttot, long long Hq,       \
      long long Hk, long long Hv, long long hasS0, long long hasS1,            \
      long long hasOff) {                                                      \
    naive<T, BTHD, DECAY>(q, k, v, gate, s0, o, s1, off, N, Ttot, Hq, Hk, Hv,  \
                          hasS0, hasS1, hasOff, DK, DQK, DV, BLOCKV, SCALE);   \
  }

// Dk = 32, Dv = 48, scale = 32^-1/2.
ENTRY(naive_scalar_f32_bthd, float, true, 1, 32, 32, 48, 32,
      0.17677669529663687f)
ENTRY(naive_none_bf16_bhtd, __nv_bfloat16, false, 0, 32, 32, 48, 32,
      0.17677669529663687f)

// Hedgehog, d = 16, f = 20: the attention runs on Dphi = 40 features read
// from workspace rows of Dp = 48; scale = 16^-1/2.
ENTRY(naive_hedgehog_scalar_bf16_bthd, __nv_bfloat16, true, 1, 40, 48, 48, 32,
      0.25f)

constexpr int MaxF = 64;

// phi(x) = [softmax(x W + b), softmax(-(x W + b))] (MATH.md 3), written
// with zeros up to Dp. Row r = one thread; its head (per-head weights) is
// r % heads for bthd and (r / T) % heads for bhtd.
template <typename T, bool BTHD>
__device__ void naiveHedgehog(const T *x, const float *w, const float *bias,
                              T *out, long long rows, long long Ttot,
                              long long heads, long long perHead,
                              long long hasBias, int d, int f, int dp) {
  long long r = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= rows || f > MaxF)
    return;
  long long h = !perHead ? 0 : BTHD ? r % heads : (r / Ttot) % heads;
  const float *W = w + h * d * f;
  const T *xr = x + r * d;
  float y[MaxF], hi = -INFINITY, lo = INFINITY;
  for (int j = 0; j < f; ++j) {
    float acc = hasBias ? bias[h * f + j] : 0.f;
    for (int i = 0; i < d; ++i)
      acc += toF(xr[i]) * W[i * f + j];
    y[j] = acc;
    hi = fmaxf(hi, acc);
    lo = fminf(lo, acc);
  }
  float sumPos = 0.f, sumNeg = 0.f;
  for (int j = 0; j < f; ++j) {
    sumPos += expf(y[j] - hi);
    sumNeg += expf(lo - y[j]);
  }
  T *o = out + r * dp;
  for (int j = 0; j < f; ++j) {
    fromF(expf(y[j] - hi) / sumPos, o[j]);
    fromF(expf(lo - y[j]) / sumNeg, o[f + j]);
  }
  for (int j = 2 * f; j < dp; ++j)
    fromF(0.f, o[j]);
}

extern "C" __global__ void naive_map_hedgehog_bf16_bthd(
    TENSOR(__nv_bfloat16, x), TENSOR(float, w), TENSOR(float, b),
    OUT_TENSOR(__nv_bfloat16, out), long long rows, long long Ttot,
    long long heads, long long perHead, long long hasBias) {
  naiveHedgehog<__nv_bfloat16, true>(x, w, b, out, rows, Ttot, heads, perHead,
                                     hasBias, 16, 20, 48);
}
