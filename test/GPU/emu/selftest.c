/* Self-test of the CUDA driver emulator (docs/gpu-emulator.md) on the
   kernels of selftest-kernels.mlir: shuffle modes, a barrier exchange
   through shared memory and its NaN fill, mma.sync fragments, and the
   launch errors for a shared-memory race, a divergent barrier and an
   out-of-bounds store.
   Usage: selftest LIBLINATTN_CUDA_EMU.so (LINATTN_EMU_KERNELS names the
   kernels). Prints one line per check and exits 1 on any failure. */
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
typedef unsigned long long CUdeviceptr;
static CUresult (*cuInit)(unsigned);
static CUresult (*cuModuleLoadDataEx)(void **, const void *, unsigned, int *,
                                      void **);
static CUresult (*cuModuleGetFunction)(void **, void *, const char *);
static CUresult (*cuLaunchKernel)(void *, unsigned, unsigned, unsigned,
                                  unsigned, unsigned, unsigned, unsigned,
                                  void *, void **, void **);
static CUresult (*cuMemAlloc_v2)(CUdeviceptr *, size_t);
static CUresult (*cuMemcpyHtoD_v2)(CUdeviceptr, const void *, size_t);
static CUresult (*cuMemcpyDtoH_v2)(void *, CUdeviceptr, size_t);
static CUresult (*cuGetErrorString)(CUresult, const char **);
static void *module;
static int failures;

static void check(int ok, const char *what) {
  printf("%s: %s\n", ok ? "ok" : "FAIL", what);
  failures += !ok;
}

static void *fn(const char *name) {
  void *f = 0;
  if (cuModuleGetFunction(&f, module, name)) {
    printf("FAIL: no kernel %s\n", name);
    exit(1);
  }
  return f;
}

static CUresult launch(const char *name, unsigned threads, unsigned shared,
                       void **params) {
  return cuLaunchKernel(fn(name), 1, 1, 1, threads, 1, 1, shared, 0, params, 0);
}

static uint16_t bf16(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  return (uint16_t)(u >> 16); /* the test's values are exact in bf16 */
}

int main(int argc, char **argv) {
  void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    printf("FAIL: %s\n", dlerror());
    return 1;
  }
#define SYM(n) *(void **)&n = dlsym(h, #n)
  SYM(cuInit);
  SYM(cuModuleLoadDataEx);
  SYM(cuModuleGetFunction);
  SYM(cuLaunchKernel);
  SYM(cuMemAlloc_v2);
  SYM(cuMemcpyHtoD_v2);
  SYM(cuMemcpyDtoH_v2);
  SYM(cuGetErrorString);
  cuInit(0);
  if (cuModuleLoadDataEx(&module, "", 0, 0, 0)) {
    const char *s;
    cuGetErrorString(1, &s);
    printf("FAIL: module load: %s\n", s);
    return 1;
  }
  enum { N = 64 };
  CUdeviceptr out;
  cuMemAlloc_v2(&out, 4 * N * sizeof(uint32_t));
  void *p1[] = {&out};

  /* Shuffles: bfly, up, down, idx over two warps. */
  uint32_t r[4 * N];
  check(launch("shuffles", N, 0, p1) == 0, "shuffles launch");
  cuMemcpyDtoH_v2(r, out, sizeof r);
  int ok = 1;
  for (int t = 0; t < N; ++t) {
    int lane = t % 32, w = 1000 * (t / 32);
    ok &= r[t] == (uint32_t)(w + (lane ^ 5));
    ok &= r[N + t] == (uint32_t)(w + (lane >= 3 ? lane - 3 : lane));
    ok &= r[2 * N + t] == (uint32_t)(w + (lane + 7 <= 31 ? lane + 7 : lane));
    ok &= r[3 * N + t] == (uint32_t)(w + 9);
  }
  check(ok, "shfl.sync bfly/up/down/idx with clamps");

  /* Barrier exchange through shared memory; unwritten shared is NaN. */
  check(launch("barrier_exchange", N, 4 * (N + 1), p1) == 0,
        "barrier_exchange launch");
  cuMemcpyDtoH_v2(r, out, 4 * (N + 1));
  ok = 1;
  for (int t = 0; t < N; ++t)
    ok &= r[t] == (uint32_t)((t + 1) % N + 1);
  check(ok, "bar.sync orders shared-memory writes before reads");
  float fill;
  memcpy(&fill, &r[N], 4);
  check(isnan(fill), "shared memory starts as NaN");

  /* mma.sync m16n8k16: fragments from the PTX ISA's layout. */
  uint32_t a[32 * 4], b[32 * 2];
  for (int l = 0; l < 32; ++l) {
    int g = l / 4, q = l % 4;
    for (int i = 0; i < 4; ++i) {
      int row = g + 8 * (i % 2), col = 2 * q + 8 * (i / 2);
      a[4 * l + i] =
          bf16(row + col / 16.f) | (uint32_t)bf16(row + (col + 1) / 16.f) << 16;
    }
    for (int i = 0; i < 2; ++i) {
      int k = 2 * q + 8 * i;
      b[2 * l + i] = bf16(k == g) | (uint32_t)bf16(k + 1 == g) << 16;
    }
  }
  CUdeviceptr da, db;
  cuMemAlloc_v2(&da, sizeof a);
  cuMemAlloc_v2(&db, sizeof b);
  cuMemcpyHtoD_v2(da, a, sizeof a);
  cuMemcpyHtoD_v2(db, b, sizeof b);
  void *p3[] = {&da, &db, &out};
  check(launch("mma", 32, 0, p3) == 0, "mma launch");
  float d[128];
  cuMemcpyDtoH_v2(d, out, sizeof d);
  ok = 1;
  for (int l = 0; l < 32; ++l)
    for (int i = 0; i < 4; ++i) {
      int m = l / 4 + 8 * (i / 2), n = 2 * (l % 4) + i % 2;
      ok &= d[4 * l + i] == 0.5f + m + n / 16.f;
    }
  check(ok, "mma.sync m16n8k16 fragments (A row, B col, C/D)");

  /* Launch errors. */
  const char *msg;
  /* Thread 0 reads slot 1 with no barrier between it and thread 1's write
     of that slot. */
  CUresult rcRace = launch("racy_exchange", N, 4 * (N + 1), 0);
  cuGetErrorString(rcRace, &msg);
  check(rcRace != 0 && strstr(msg, "shared-memory race"),
        "shared-memory race is caught");
  printf("  (%s)\n", msg);
  CUresult rc = launch("divergent_barrier", N, 0, 0);
  cuGetErrorString(rc, &msg);
  check(rc != 0 && strstr(msg, "bar.sync reached by 32 of 64 threads"),
        "divergent barrier is caught");
  printf("  (%s)\n", msg);
  int n = 16;
  CUdeviceptr small;
  cuMemAlloc_v2(&small, n * sizeof(uint32_t));
  void *p2[] = {&small, &n};
  rc = launch("out_of_bounds", n, 0, p2);
  cuGetErrorString(rc, &msg);
  check(rc != 0 && strstr(msg, "out-of-bounds global store of 4 bytes") &&
            strstr(msg, "thread 5 of block (0,0,0)"),
        "out-of-bounds store is caught");
  printf("  (%s)\n", msg);
  return failures != 0;
}
