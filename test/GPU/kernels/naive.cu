// naive.cu - Slow but simple kernels with the linattn GPU ABI
// (docs/gpu-kernel-abi.md), for testing the AOT runtime and the GPU test
// harness without the PTX generator. One thread per value column keeps its
// state column S[:, j] in local memory and walks the sequence token by
// token (the recurrent form, MATH.md 2). Regenerate naive.ptx with
// test/GPU/kernels/regen.sh.
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
                      long long hasOff, int Dk, int Dv, int blockV,
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
    const T *kt = k + at(Hk, hk, t, Dk), *qt = q + at(Hq, hq, t, Dk);
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

#define ENTRY(name, T, BTHD, DECAY, DK, DV, BLOCKV, SCALE)                     \
  extern "C" __global__ void name(                                             \
      TENSOR(T, q), TENSOR(T, k), TENSOR(T, v), TENSOR(float, gate),           \
      TENSOR(float, s0), OUT_TENSOR(T, o), OUT_TENSOR(float, s1),              \
      TENSOR(long long, off), long long N, long long Ttot, long long Hq,       \
      long long Hk, long long Hv, long long hasS0, long long hasS1,            \
      long long hasOff) {                                                      \
    naive<T, BTHD, DECAY>(q, k, v, gate, s0, o, s1, off, N, Ttot, Hq, Hk, Hv,  \
                          hasS0, hasS1, hasOff, DK, DV, BLOCKV, SCALE);        \
  }

// Dk = 32, Dv = 48, scale = 32^-1/2.
ENTRY(naive_scalar_f32_bthd, float, true, 1, 32, 48, 32, 0.17677669529663687f)
ENTRY(naive_none_bf16_bhtd, __nv_bfloat16, false, 0, 32, 48, 32,
      0.17677669529663687f)
