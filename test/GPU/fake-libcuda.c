/* A stand-in for libcuda.so.1 (driver API) that runs nothing: allocations
   are distinct fake addresses, downloads are zeros, and every launch is
   recorded. With FAKE_CUDA_TRACE set, each launch is also printed to stderr
   as "fake-cuda: launch ENTRY grid X,Y,Z block B shared S scalars ...",
   where the scalars are the kernel's i64 parameters after its memref
   descriptors (linattn_map: 4 tensors; linattn_fwd: 8). Used by
   test/python/test_aot.py and test/Tools/linattn-launch/fake-driver.mlir.
   Build: cc -shared -fPIC -o libcuda.so fake-libcuda.c */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
typedef int CUresult;
typedef unsigned long long CUdeviceptr;
static char token, map_token;
static CUdeviceptr next_ptr = 1ull << 40;
static int launches;
static unsigned grid[3], block;
static unsigned long long slots[48];

int fake_launches(void) { return launches; }
unsigned fake_grid(int i) { return grid[i]; }
unsigned fake_block(void) { return block; }
unsigned long long fake_slot(int i) { return slots[i]; }

CUresult cuInit(unsigned f) { return 0; }
CUresult cuDriverGetVersion(int *v) { *v = 12080; return 0; }
CUresult cuDeviceGetCount(int *n) { *n = 1; return 0; }
CUresult cuDeviceGet(int *d, int i) { *d = i; return 0; }
CUresult cuDeviceGetAttribute(int *v, int a, int d) {
  *v = a == 75 ? 9 : a == 76 ? 0 : a == 16 ? 132 : a == 97 ? 232448 : 0;
  return 0;
}
CUresult cuDeviceGetName(char *s, int n, int d) {
  strncpy(s, "linattn fake GPU", n);
  return 0;
}
CUresult cuDeviceTotalMem_v2(size_t *b, int d) { *b = 1ull << 34; return 0; }
CUresult cuDevicePrimaryCtxRetain(void **c, int d) { *c = &token; return 0; }
CUresult cuDevicePrimaryCtxRelease_v2(int d) { return 0; }
CUresult cuCtxSetCurrent(void *c) { return 0; }
CUresult cuCtxSynchronize(void) { return 0; }
CUresult cuModuleLoadDataEx(void **m, const void *p, unsigned n, int *o,
                            void **v) { *m = &token; return 0; }
CUresult cuModuleUnload(void *m) { return 0; }
CUresult cuModuleGetFunction(void **f, void *m, const char *n) {
  *f = strstr(n, "map") ? &map_token : &token; /* the prepass entry */
  return 0;
}
CUresult cuFuncSetAttribute(void *f, int a, int v) { return 0; }
CUresult cuLaunchKernel(void *f, unsigned gx, unsigned gy, unsigned gz,
                        unsigned bx, unsigned by, unsigned bz, unsigned sh,
                        void *stream, void **params, void **extra) {
  ++launches;
  if (getenv("FAKE_CUDA_TRACE")) {
    int map = f == &map_token, first = map ? 4 * 5 : 8 * 5;
    fprintf(stderr, "fake-cuda: launch %s grid %u,%u,%u block %u shared %u "
            "scalars", map ? "linattn_map" : "linattn_fwd", gx, gy, gz, bx,
            sh);
    for (int i = first; i < first + (map ? 5 : 8); ++i)
      fprintf(stderr, " %lld", *(long long *)params[i]);
    fprintf(stderr, "\n");
  }
  if (f == &map_token) /* 25 parameters; only linattn_fwd's are kept */
    return 0;
  grid[0] = gx, grid[1] = gy, grid[2] = gz, block = bx;
  for (int i = 0; i < 48; ++i) /* the 8 tensors and 8 scalars */
    slots[i] = *(unsigned long long *)params[i];
  return 0;
}
CUresult cuMemAlloc_v2(CUdeviceptr *p, size_t b) {
  *p = next_ptr;
  next_ptr += (b + 255) / 256 * 256;
  return 0;
}
CUresult cuMemFree_v2(CUdeviceptr p) { return 0; }
CUresult cuMemcpyHtoD_v2(CUdeviceptr d, const void *s, size_t b) { return 0; }
CUresult cuMemcpyDtoH_v2(void *d, CUdeviceptr s, size_t b) {
  memset(d, 0, b);
  return 0;
}
CUresult cuMemsetD8_v2(CUdeviceptr d, unsigned char v, size_t b) { return 0; }
CUresult cuEventCreate(void **e, unsigned f) { *e = &token; return 0; }
CUresult cuEventRecord(void *e, void *s) { return 0; }
CUresult cuEventSynchronize(void *e) { return 0; }
CUresult cuEventElapsedTime(float *ms, void *a, void *b) { *ms = 1; return 0; }
CUresult cuEventDestroy_v2(void *e) { return 0; }
CUresult cuGetErrorName(CUresult r, const char **s) { *s = "FAKE"; return 0; }
CUresult cuGetErrorString(CUresult r, const char **s) {
  *s = "fake";
  return 0;
}
