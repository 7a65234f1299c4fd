// CPU baselines for fp32 causal linear attention with decay (see impls.h for
// the problem).
//
//  recurrent_*        : one token at a time, S kept in a per-head fp32 buffer;
//  plain loops
//                       that the compiler auto-vectorizes (-O3 -march=native).
//  openblas_chunked_* : chunkwise-parallel form of MATH.md section 6 (chunk
//  size C, default 64)
//                       with cblas_sgemm for the per-chunk matmuls (OpenBLAS
//                       single-threaded). GLA uses secondary chunking
//                       (MATH.md 6.3) for the off-diagonal sub-blocks and an
//                       exact per-channel running product for the diagonal
//                       sub-blocks; no exp of a positive number is ever taken.
//
// All functions parallelize over the B*H slices with std::thread (`threads`
// workers) and write o [B,H,T,Dv] and the final state [B,H,Dk,Dv]. s0 may be
// null (zero initial state).
#pragma once

namespace linattn_bench {

struct LinAttnArgs {
  int B, H, T, Dk, Dv;
  const float *q; // [B,H,T,Dk], already scaled
  const float *k; // [B,H,T,Dk]
  const float *v; // [B,H,T,Dv]
  const float
      *g; // lightning: [H] ln(lambda_h); gla: [B,H,T,Dk] log-gates (all <= 0)
  const float *s0;             // [B,H,Dk,Dv] or nullptr
  float *o;                    // [B,H,T,Dv]
  float *stateOut;             // [B,H,Dk,Dv]
  const float *beta = nullptr; // delta: [B,H,T]
};

void recurrent_lightning(const LinAttnArgs &a, int threads);
void recurrent_gla(const LinAttnArgs &a, int threads);
// Delta rule, one token at a time in FLA's order: u = beta (v - k S),
// S += k^T u, o = q S (MATH.md 5.1).
void recurrent_delta(const LinAttnArgs &a, int threads);

void openblas_chunked_lightning(const LinAttnArgs &a, int threads,
                                int chunk = 64);
void openblas_chunked_gla(const LinAttnArgs &a, int threads, int chunk = 64,
                          int subChunk = 16);

} // namespace linattn_bench
