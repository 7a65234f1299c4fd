//===- EmuDriver.cpp - CUDA driver API that runs kernels on the CPU ------===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
//
// liblinattn_cuda_emu.so stands in for libcuda.so.1 (LINATTN_LIBCUDA) and
// runs linattn's GPU kernels on the CPU, so that the generated kernels are
// checked against the reference on machines without a GPU. The kernels are
// the same NVVM-level code as the PTX, compiled for the host by
// `linattn-gpu-to-emulation` into a shared object (LINATTN_EMU_KERNELS).
//
// Every thread of a block is a fiber. A fiber runs until it reaches an
// operation that involves other threads (bar.sync, shfl.sync, mma.sync,
// wgmma) or ends; once every live thread of the block has stopped, the
// operations whose participants have all arrived are performed and those
// threads resume. Threads that never meet (divergent barriers, a warp split
// across different collectives) are reported as a deadlock. Device memory is
// host memory; with the kernels' memory checks every load and store must
// fall inside a live allocation or the block's dynamic shared memory, which
// starts each block filled with NaN bytes, and shared-memory accesses by
// different threads with no barrier between them are reported as races.
// Blocks run one after another.
// docs/gpu-emulator.md describes the whole contract.
//
//===----------------------------------------------------------------------===//

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <dlfcn.h>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <ucontext.h>
#include <vector>

#define EMU_API extern "C" __attribute__((visibility("default")))

namespace {

using CUresult = int;
using CUdeviceptr = unsigned long long;

constexpr CUresult kSuccess = 0, kInvalidValue = 1, kOutOfMemory = 2,
                   kInvalidImage = 200, kNotFound = 500, kLaunchFailed = 719;

/// Largest block and its shared memory: a whole sm_90 block.
constexpr int kMaxThreads = 1024;
constexpr size_t kSharedBytes = 256 * 1024;
constexpr size_t kStackBytes = 256 * 1024;

enum class Wait : uint8_t { None, Barrier, Shfl, Mma, Wgmma, Done };

struct Thread {
  ucontext_t ctx;
  Wait wait = Wait::None;
  // shfl.sync
  int shflKind = 0;
  uint32_t shflVal = 0, shflB = 0, shflC = 0, shflOut = 0;
  // mma.sync
  uint32_t a[4] = {}, b[2] = {};
  float c[4] = {};
  float *out = nullptr;
  int f16 = 0;
  // wgmma
  float *acc = nullptr;
  uint64_t descA = 0, descB = 0;
  int n = 0, scaleD = 0;
};

struct Function {
  void (*entry)(void **) = nullptr;
  std::string name;
  int maxDynamicShared = 48 * 1024;
};

struct Module {
  void *handle = nullptr;
  std::vector<Function *> functions;
};

/// The state of the launch in progress (one at a time).
struct Launch {
  const Function *fn = nullptr;
  void **params = nullptr;
  unsigned grid[3] = {}, block[3] = {}, ctaid[3] = {};
  int threads = 0;
  size_t shared = 0;
  std::vector<Thread> thread;
  ucontext_t sched;
  int current = 0;
  std::string error;
};

std::mutex launchMutex;
Launch *L = nullptr;
char *sharedMem = nullptr;
std::vector<void *> stacks;

/// Shared-memory race detection: per byte, the barrier interval ("epoch")
/// and thread of its last write and last read(s). Epochs only grow (a new
/// block starts a new one), so old entries never need clearing.
struct ShadowByte {
  uint32_t wEpoch = 0, rEpoch = 0;
  int16_t wTid = 0, rTid = 0;
};
constexpr int16_t kManyReaders = -1;
std::vector<ShadowByte> shadow;
uint32_t epoch = 0;
bool raceCheck = true;

std::mutex memMutex;
std::map<uintptr_t, size_t> allocations;

thread_local std::string lastError;

Thread &self() { return L->thread[L->current]; }
/// "block (x,y,z)" of the block running.
std::string blockName() {
  char buf[48];
  snprintf(buf, sizeof buf, "block (%u,%u,%u)", L->ctaid[0], L->ctaid[1],
           L->ctaid[2]);
  return buf;
}

std::string where() {
  return "thread " + std::to_string(L->current) + " of " + blockName();
}

/// Gives control back to the scheduler until the thread may go on.
void yield(Wait wait) {
  Thread &t = self();
  t.wait = wait;
  swapcontext(&t.ctx, &L->sched);
}

/// Stops the launch with `message`; the fiber never resumes.
[[noreturn]] void fail(const std::string &message) {
  if (L->error.empty())
    L->error = message + " (" + where() + ")";
  Thread &t = self();
  t.wait = Wait::Done;
  swapcontext(&t.ctx, &L->sched);
  abort(); // not reached: a failed launch is never resumed
}

bool inShared(uintptr_t p, size_t bytes) {
  auto base = reinterpret_cast<uintptr_t>(sharedMem);
  return p >= base && p + bytes <= base + L->shared;
}

/// Records an access of `bytes` at shared offset `off` by the current
/// thread; fails the launch on a read of data another thread wrote, or a
/// write of data another thread read or wrote, since the last barrier.
void trackShared(size_t off, size_t bytes, bool store) {
  if (!raceCheck)
    return;
  auto me = int16_t(L->current);
  for (size_t i = off; i < off + bytes; ++i) {
    ShadowByte &sh = shadow[i];
    int16_t other = 0;
    const char *verb = nullptr;
    if (sh.wEpoch == epoch && sh.wTid != me) {
      other = sh.wTid;
      verb = "wrote";
    } else if (store && sh.rEpoch == epoch && sh.rTid != me) {
      other = sh.rTid;
      verb = "read";
    }
    if (verb) {
      std::string by = other == kManyReaders
                           ? std::string("several threads")
                           : "thread " + std::to_string(other);
      fail(std::string("shared-memory race: ") + (store ? "writes" : "reads") +
           " byte " + std::to_string(i) + ", which " + by + " " + verb +
           " since the last barrier");
    }
    if (store) {
      sh.wEpoch = epoch;
      sh.wTid = me;
    } else if (sh.rEpoch != epoch) {
      sh.rEpoch = epoch;
      sh.rTid = me;
    } else if (sh.rTid != me) {
      sh.rTid = kManyReaders;
    }
  }
}

bool inAllocation(uintptr_t p, size_t bytes) {
  std::lock_guard<std::mutex> lock(memMutex);
  auto it = allocations.upper_bound(p);
  if (it == allocations.begin())
    return false;
  --it;
  return p + bytes <= it->first + it->second;
}

void fiberMain() {
  L->fn->entry(L->params);
  Thread &t = self();
  t.wait = Wait::Done;
  swapcontext(&t.ctx, &L->sched);
}

//===--- bf16 / f16 -----------------------------------------------------===//

float bf16ToFloat(uint16_t h) {
  uint32_t bits = uint32_t(h) << 16;
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

float f16ToFloat(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16, exp = (h >> 10) & 0x1f,
           man = h & 0x3ff;
  float f;
  if (exp == 0) { // zero or subnormal
    f = std::ldexp(float(man), -24);
    return sign ? -f : f;
  }
  uint32_t bits = exp == 31 ? sign | 0x7f800000 | (man << 13)
                            : sign | ((exp + 112) << 23) | (man << 13);
  memcpy(&f, &bits, 4);
  return f;
}

float element(uint16_t h, int f16) {
  return f16 ? f16ToFloat(h) : bf16ToFloat(h);
}

//===--- Warp and warpgroup operations ----------------------------------===//

/// shfl.sync, as the PTX ISA defines it (kinds as NVVM::ShflKind: bfly 0,
/// up 1, down 2, idx 3).
void doShfl(Thread *w) {
  for (int lane = 0; lane < 32; ++lane) {
    Thread &t = w[lane];
    uint32_t b = t.shflB & 31, c = t.shflC & 31, seg = (t.shflC >> 8) & 31;
    int maxLane = (lane & seg) | (c & ~seg), minLane = lane & seg;
    int j = lane;
    bool ok = false;
    switch (t.shflKind) {
    case 1:
      j = lane - int(b);
      ok = j >= maxLane;
      break;
    case 2:
      j = lane + int(b);
      ok = j <= maxLane;
      break;
    case 0:
      j = lane ^ int(b);
      ok = j <= maxLane;
      break;
    default:
      j = minLane | int(b & ~seg);
      ok = j <= maxLane;
      break;
    }
    t.shflOut = w[ok ? j : lane].shflVal;
  }
}

/// mma.sync.m16n8k16.row.col with f32 accumulators: fragments as in the
/// PTX ISA ("Matrix Fragments for mma.m16n8k16").
void doMma(Thread *w) {
  float A[16][16], B[16][8], C[16][8];
  int f16 = w[0].f16;
  for (int lane = 0; lane < 32; ++lane) {
    const Thread &t = w[lane];
    int g = lane / 4, tq = lane % 4;
    for (int r = 0; r < 4; ++r)
      for (int h = 0; h < 2; ++h) {
        int row = g + 8 * (r % 2), col = 2 * tq + h + 8 * (r / 2);
        A[row][col] = element(uint16_t(t.a[r] >> (16 * h)), f16);
      }
    for (int r = 0; r < 2; ++r)
      for (int h = 0; h < 2; ++h)
        B[2 * tq + h + 8 * r][g] = element(uint16_t(t.b[r] >> (16 * h)), f16);
    for (int r = 0; r < 4; ++r)
      C[g + 8 * (r / 2)][2 * tq + r % 2] = t.c[r];
  }
  for (int lane = 0; lane < 32; ++lane) {
    int g = lane / 4, tq = lane % 4;
    for (int r = 0; r < 4; ++r) {
      int m = g + 8 * (r / 2), n = 2 * tq + r % 2;
      float d = C[m][n];
      for (int k = 0; k < 16; ++k)
        d += A[m][k] * B[k][n];
      w[lane].out[r] = d;
    }
  }
}

/// wgmma.mma_async m64nNk16 with both operands K-major in shared memory
/// without swizzling ("Matrix Descriptor Format"; canonical layout: 8-row
/// by 16-byte core matrices, LBO between core matrices along K, SBO
/// between 8-row groups along M or N).
bool doWgmma(Thread *g, std::string &error) {
  const Thread &t0 = g[0];
  for (int i = 1; i < 128; ++i)
    if (g[i].descA != t0.descA || g[i].descB != t0.descB || g[i].n != t0.n ||
        g[i].scaleD != t0.scaleD || g[i].f16 != t0.f16) {
      error = "wgmma operands differ within the warpgroup";
      return false;
    }
  int N = t0.n;
  auto operand = [&](uint64_t desc, int rows, std::vector<float> &out) {
    if ((desc >> 62) != 0) {
      error = "wgmma: the emulator models unswizzled descriptors only";
      return false;
    }
    uint64_t start = (desc & 0x3FFF) << 4, lbo = ((desc >> 16) & 0x3FFF) << 4,
             sbo = ((desc >> 32) & 0x3FFF) << 4;
    out.assign(size_t(rows) * 16, 0.f);
    for (int r = 0; r < rows; ++r)
      for (int k = 0; k < 16; ++k) {
        uint64_t at =
            start + (r / 8) * sbo + (k / 8) * lbo + (r % 8) * 16 + (k % 8) * 2;
        if (at + 2 > L->shared) {
          char buf[160];
          snprintf(buf, sizeof buf,
                   "wgmma operand element (%d, %d) at shared offset %llu is "
                   "past the block's %zu bytes",
                   r, k, (unsigned long long)at, L->shared);
          error = buf;
          return false;
        }
        uint16_t h;
        memcpy(&h, sharedMem + at, 2);
        out[size_t(r) * 16 + k] = element(h, t0.f16);
      }
    return true;
  };
  std::vector<float> A, B;
  if (!operand(t0.descA, 64, A) || !operand(t0.descB, N, B))
    return false;
  for (int i = 0; i < 128; ++i) {
    int warp = i / 32, lane = i % 32, gq = lane / 4, tq = lane % 4;
    for (int r = 0; r < N / 2; ++r) {
      int m = 16 * warp + gq + 8 * ((r / 2) % 2),
          n = 8 * (r / 4) + 2 * tq + r % 2;
      float d = g[i].scaleD ? g[i].acc[r] : 0.f;
      for (int k = 0; k < 16; ++k)
        d += A[size_t(m) * 16 + k] * B[size_t(n) * 16 + k];
      g[i].acc[r] = d;
    }
  }
  return true;
}

/// Performs every operation whose participants have all arrived; false if
/// none could (a deadlock).
bool resolve() {
  std::vector<Thread> &T = L->thread;
  int n = L->threads;
  int live = 0;
  bool allBarrier = true;
  for (Thread &t : T) {
    if (t.wait == Wait::Done)
      continue;
    ++live;
    allBarrier &= t.wait == Wait::Barrier;
  }
  if (live && allBarrier) {
    ++epoch;
    // bar.sync is .aligned: every thread of the block must execute it.
    if (live != n) {
      L->error = "bar.sync reached by " + std::to_string(live) + " of " +
                 std::to_string(n) + " threads in " + blockName() +
                 "; the others exited";
      return false;
    }
    for (Thread &t : T)
      if (t.wait == Wait::Barrier)
        t.wait = Wait::None;
    return true;
  }
  bool progress = false;
  for (int w = 0; w + 32 <= n; w += 32) {
    Wait kind = T[w].wait;
    if (kind != Wait::Shfl && kind != Wait::Mma)
      continue;
    bool all = true;
    for (int l = 1; l < 32; ++l)
      all &= T[w + l].wait == kind;
    if (!all)
      continue;
    if (kind == Wait::Shfl)
      doShfl(&T[w]);
    else
      doMma(&T[w]);
    for (int l = 0; l < 32; ++l)
      T[w + l].wait = Wait::None;
    progress = true;
  }
  for (int g = 0; g + 128 <= n; g += 128) {
    bool all = true;
    for (int i = 0; i < 128; ++i)
      all &= T[g + i].wait == Wait::Wgmma;
    if (!all)
      continue;
    if (!doWgmma(&T[g], L->error))
      return false;
    for (int i = 0; i < 128; ++i)
      T[g + i].wait = Wait::None;
    progress = true;
  }
  return progress;
}

const char *waitName(Wait w) {
  switch (w) {
  case Wait::None:
    return "running";
  case Wait::Barrier:
    return "bar.sync";
  case Wait::Shfl:
    return "shfl.sync";
  case Wait::Mma:
    return "mma.sync";
  case Wait::Wgmma:
    return "wgmma";
  case Wait::Done:
    return "exited";
  }
  return "?";
}

bool runBlock() {
  // Fresh NaN-filled shared memory: reads of data no thread of this block
  // wrote show up in the results.
  memset(sharedMem, 0xff, L->shared);
  ++epoch;
  for (int i = 0; i < L->threads; ++i) {
    Thread &t = L->thread[i];
    t = Thread();
    getcontext(&t.ctx);
    t.ctx.uc_stack.ss_sp = stacks[i];
    t.ctx.uc_stack.ss_size = kStackBytes;
    t.ctx.uc_link = nullptr;
    makecontext(&t.ctx, fiberMain, 0);
  }
  while (true) {
    for (int i = 0; i < L->threads; ++i) {
      if (L->thread[i].wait != Wait::None)
        continue;
      L->current = i;
      swapcontext(&L->sched, &L->thread[i].ctx);
      if (!L->error.empty())
        return false;
    }
    bool allDone = true;
    for (Thread &t : L->thread)
      allDone &= t.wait == Wait::Done;
    if (allDone)
      return true;
    if (!resolve()) {
      if (L->error.empty()) {
        std::string msg = "deadlock in " + blockName() + ": threads wait at";
        for (int w = 0; w < L->threads; w += 32)
          msg += std::string(w ? ", " : " ") + "warp " +
                 std::to_string(w / 32) + " " + waitName(L->thread[w].wait);
        L->error = msg;
      }
      return false;
    }
  }
}

int computeCapability() {
  const char *cc = getenv("LINATTN_EMU_CC");
  int major = 9, minor = 0;
  if (cc && sscanf(cc, "%d.%d", &major, &minor) != 2)
    major = 9, minor = 0;
  return 10 * major + minor;
}

size_t sharedLimit() {
  int cc = computeCapability();
  if (cc >= 90)
    return 227 * 1024;
  if (cc == 80 || cc == 87)
    return 163 * 1024;
  return 99 * 1024;
}

/// Makes this library's __emu_* functions visible to the kernel objects
/// (the runtime loads the driver with RTLD_LOCAL).
void exportSelf() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void *>(&exportSelf), &info) && info.dli_fname)
    dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_GLOBAL);
}

int token;

} // namespace

//===--- Called by the emulated kernels ---------------------------------===//

EMU_API int __emu_sreg(int code) {
  int tid = L->current;
  unsigned bx = L->block[0], by = L->block[1];
  switch (code) {
  case 0:
    return tid % bx;
  case 1:
    return tid / bx % by;
  case 2:
    return tid / (bx * by);
  case 3:
  case 4:
  case 5:
    return L->ctaid[code - 3];
  case 6:
  case 7:
  case 8:
    return L->block[code - 6];
  case 9:
  case 10:
  case 11:
    return L->grid[code - 9];
  case 12:
    return tid % 32;
  case 13:
    return 32;
  }
  fail("unknown special register " + std::to_string(code));
}

EMU_API void *__emu_shared() { return sharedMem; }

EMU_API void __emu_barrier() { yield(Wait::Barrier); }

EMU_API uint32_t __emu_shfl(int kind, uint32_t mask, uint32_t val, uint32_t b,
                            uint32_t c) {
  if (mask != 0xffffffffu)
    fail("shfl.sync with a partial thread mask is not modelled");
  Thread &t = self();
  t.shflKind = kind, t.shflVal = val, t.shflB = b, t.shflC = c;
  yield(Wait::Shfl);
  return self().shflOut;
}

EMU_API void __emu_mma_m16n8k16(float *out, uint32_t a0, uint32_t a1,
                                uint32_t a2, uint32_t a3, uint32_t b0,
                                uint32_t b1, float c0, float c1, float c2,
                                float c3, int f16) {
  Thread &t = self();
  t.a[0] = a0, t.a[1] = a1, t.a[2] = a2, t.a[3] = a3;
  t.b[0] = b0, t.b[1] = b1;
  t.c[0] = c0, t.c[1] = c1, t.c[2] = c2, t.c[3] = c3;
  t.out = out, t.f16 = f16;
  yield(Wait::Mma);
}

EMU_API void __emu_wgmma(float *acc, uint64_t descA, uint64_t descB, int n,
                         int f16, int scaleD) {
  if (L->threads % 128)
    fail("wgmma in a block that is not whole warpgroups");
  Thread &t = self();
  t.acc = acc, t.descA = descA, t.descB = descB, t.n = n, t.f16 = f16,
  t.scaleD = scaleD;
  yield(Wait::Wgmma);
}

EMU_API void __emu_cp_async(void *dst, const void *src, int size, int srcSize) {
  auto d = reinterpret_cast<uintptr_t>(dst);
  auto s = reinterpret_cast<uintptr_t>(src);
  if (!inShared(d, size))
    fail("cp.async destination outside the block's shared memory");
  if (srcSize < 0 || srcSize > size)
    fail("cp.async source size " + std::to_string(srcSize) + " over " +
         std::to_string(size));
  if (srcSize > 0 && !inAllocation(s, srcSize)) {
    char buf[96];
    snprintf(buf, sizeof buf,
             "cp.async reads %d bytes at %p outside any "
             "allocation",
             srcSize, src);
    fail(buf);
  }
  trackShared(d - reinterpret_cast<uintptr_t>(sharedMem), size, true);
  memcpy(dst, src, srcSize);
  memset(static_cast<char *>(dst) + srcSize, 0, size - srcSize);
}

EMU_API float __emu_ex2_approx_ftz(float x) {
  if (std::fpclassify(x) == FP_SUBNORMAL)
    x = 0;
  float r = std::exp2(x);
  return std::fpclassify(r) == FP_SUBNORMAL ? 0.f : r;
}

EMU_API void __emu_check(void *p, int64_t bytes, int store) {
  auto a = reinterpret_cast<uintptr_t>(p);
  if (inShared(a, bytes)) {
    trackShared(a - reinterpret_cast<uintptr_t>(sharedMem), bytes, store);
    return;
  }
  if (inAllocation(a, bytes))
    return;
  char buf[160];
  bool sharedRange = a >= reinterpret_cast<uintptr_t>(sharedMem) &&
                     a < reinterpret_cast<uintptr_t>(sharedMem) + kSharedBytes;
  if (sharedRange)
    snprintf(buf, sizeof buf,
             "out-of-bounds shared %s of %lld bytes at offset %llu (the "
             "block has %zu bytes)",
             store ? "store" : "load", (long long)bytes,
             (unsigned long long)(a - reinterpret_cast<uintptr_t>(sharedMem)),
             L->shared);
  else
    snprintf(buf, sizeof buf,
             "out-of-bounds global %s of %lld bytes at %p (no allocation "
             "holds it)",
             store ? "store" : "load", (long long)bytes, p);
  fail(buf);
}

// Conversions LLVM calls for bf16 and f16 on hosts without native support.
EMU_API __bf16 __truncsfbf2(float f) {
  uint32_t bits;
  memcpy(&bits, &f, 4);
  uint16_t h = std::isnan(f)
                   ? uint16_t((bits >> 16) | 0x40)
                   : uint16_t((bits + 0x7fff + ((bits >> 16) & 1)) >> 16);
  __bf16 r;
  memcpy(&r, &h, 2);
  return r;
}

//===--- Driver API -----------------------------------------------------===//

EMU_API CUresult cuInit(unsigned) { return kSuccess; }
EMU_API CUresult cuDriverGetVersion(int *v) {
  *v = 12080;
  return kSuccess;
}
EMU_API CUresult cuDeviceGetCount(int *n) {
  *n = 1;
  return kSuccess;
}
EMU_API CUresult cuDeviceGet(int *d, int i) {
  if (i != 0)
    return kInvalidValue;
  *d = 0;
  return kSuccess;
}
EMU_API CUresult cuDeviceGetAttribute(int *v, int attr, int) {
  int cc = computeCapability();
  switch (attr) {
  case 75:
    *v = cc / 10;
    return kSuccess;
  case 76:
    *v = cc % 10;
    return kSuccess;
  case 16:
    *v = 1;
    return kSuccess;
  case 97:
    *v = int(sharedLimit());
    return kSuccess;
  }
  *v = 0;
  return kSuccess;
}
EMU_API CUresult cuDeviceGetName(char *s, int n, int) {
  snprintf(s, n, "linattn CPU emulator (sm_%d)", computeCapability());
  return kSuccess;
}
EMU_API CUresult cuDeviceTotalMem_v2(size_t *b, int) {
  *b = size_t(1) << 34;
  return kSuccess;
}
EMU_API CUresult cuDevicePrimaryCtxRetain(void **c, int) {
  *c = &token;
  return kSuccess;
}
EMU_API CUresult cuDevicePrimaryCtxRelease_v2(int) { return kSuccess; }
EMU_API CUresult cuCtxSetCurrent(void *) { return kSuccess; }
EMU_API CUresult cuCtxSynchronize() { return kSuccess; }

/// The .emu.so for `ptx` in directory `dir`: the sibling of the NAME.ptx
/// whose text is `ptx`, or "".
static std::string findInDirectory(const std::string &dir, const char *ptx) {
  DIR *d = opendir(dir.c_str());
  if (!d)
    return "";
  std::string found;
  while (dirent *e = readdir(d)) {
    std::string name = e->d_name;
    if (name.size() < 5 || name.compare(name.size() - 4, 4, ".ptx"))
      continue;
    std::ifstream in(dir + "/" + name, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    if (text.str() != ptx)
      continue;
    std::string so = dir + "/" + name.substr(0, name.size() - 4) + ".emu.so";
    struct stat st;
    if (stat(so.c_str(), &st) == 0) {
      found = so;
      break;
    }
  }
  closedir(d);
  return found;
}

EMU_API CUresult cuModuleLoadDataEx(void **m, const void *image, unsigned,
                                    int *, void **) {
  const char *env = getenv("LINATTN_EMU_KERNELS");
  if (!env || !*env) {
    lastError = "LINATTN_EMU_KERNELS is not set: it names the kernel's "
                ".emu.so, or the directory of NAME.ptx + NAME.emu.so pairs "
                "(linattn-run --emit-aot --emulation)";
    return kInvalidImage;
  }
  std::string path = env;
  struct stat st;
  if (stat(env, &st) == 0 && S_ISDIR(st.st_mode)) {
    path = findInDirectory(env, static_cast<const char *>(image));
    if (path.empty()) {
      lastError = std::string("no NAME.ptx in ") + env +
                  " matches the PTX loaded (or it has no NAME.emu.so)";
      return kInvalidImage;
    }
  }
  exportSelf();
  void *h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    lastError = std::string("cannot load the emulated kernels: ") + dlerror();
    return kInvalidImage;
  }
  auto *mod = new Module;
  mod->handle = h;
  *m = mod;
  return kSuccess;
}
EMU_API CUresult cuModuleUnload(void *m) {
  auto *mod = static_cast<Module *>(m);
  for (Function *f : mod->functions)
    delete f;
  dlclose(mod->handle);
  delete mod;
  return kSuccess;
}
EMU_API CUresult cuModuleGetFunction(void **f, void *m, const char *name) {
  auto *mod = static_cast<Module *>(m);
  void *sym = dlsym(mod->handle, (std::string("__emu_entry_") + name).c_str());
  if (!sym) {
    lastError = std::string("no kernel '") + name + "' in LINATTN_EMU_KERNELS";
    return kNotFound;
  }
  auto *fn = new Function;
  fn->entry = reinterpret_cast<void (*)(void **)>(sym);
  fn->name = name;
  mod->functions.push_back(fn);
  *f = fn;
  return kSuccess;
}
EMU_API CUresult cuFuncSetAttribute(void *f, int attr, int value) {
  if (attr == 8) { // CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
    if (value < 0 || size_t(value) > sharedLimit())
      return kInvalidValue;
    static_cast<Function *>(f)->maxDynamicShared = value;
  }
  return kSuccess;
}

EMU_API CUresult cuLaunchKernel(void *f, unsigned gx, unsigned gy, unsigned gz,
                                unsigned bx, unsigned by, unsigned bz,
                                unsigned shared, void *, void **params,
                                void **extra) {
  auto *fn = static_cast<Function *>(f);
  unsigned threads = bx * by * bz;
  if (!gx || !gy || !gz || !threads || threads > kMaxThreads || extra) {
    lastError = "bad launch geometry";
    return kInvalidValue;
  }
  if (shared > unsigned(fn->maxDynamicShared) || shared > kSharedBytes) {
    lastError = "dynamic shared memory " + std::to_string(shared) +
                " over the function's limit " +
                std::to_string(fn->maxDynamicShared) +
                " (cuFuncSetAttribute raises it)";
    return kInvalidValue;
  }
  std::lock_guard<std::mutex> lock(launchMutex);
  if (!sharedMem) {
    sharedMem = static_cast<char *>(aligned_alloc(kSharedBytes, kSharedBytes));
    if (!sharedMem)
      return kOutOfMemory;
    shadow.resize(kSharedBytes);
  }
  const char *rc = getenv("LINATTN_EMU_RACECHECK");
  raceCheck = !(rc && std::string(rc) == "0");
  while (stacks.size() < threads) {
    void *s = mmap(nullptr, kStackBytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (s == MAP_FAILED)
      return kOutOfMemory;
    stacks.push_back(s);
  }
  Launch launch;
  launch.fn = fn;
  launch.params = params;
  launch.grid[0] = gx, launch.grid[1] = gy, launch.grid[2] = gz;
  launch.block[0] = bx, launch.block[1] = by, launch.block[2] = bz;
  launch.threads = int(threads);
  launch.shared = shared;
  launch.thread.resize(threads);
  L = &launch;
  bool ok = true;
  for (unsigned z = 0; ok && z < gz; ++z)
    for (unsigned y = 0; ok && y < gy; ++y)
      for (unsigned x = 0; ok && x < gx; ++x) {
        launch.ctaid[0] = x, launch.ctaid[1] = y, launch.ctaid[2] = z;
        ok = runBlock();
      }
  L = nullptr;
  if (!ok) {
    lastError = fn->name + ": " + launch.error;
    fprintf(stderr, "linattn-emu: %s\n", lastError.c_str());
    return kLaunchFailed;
  }
  return kSuccess;
}

EMU_API CUresult cuMemAlloc_v2(CUdeviceptr *p, size_t bytes) {
  size_t rounded = (bytes + 255) / 256 * 256;
  void *m = aligned_alloc(256, rounded ? rounded : 256);
  if (!m)
    return kOutOfMemory;
  memset(m, 0xcd, rounded); // like fresh device memory: not zero
  std::lock_guard<std::mutex> lock(memMutex);
  allocations[reinterpret_cast<uintptr_t>(m)] = bytes;
  *p = reinterpret_cast<uintptr_t>(m);
  return kSuccess;
}
EMU_API CUresult cuMemFree_v2(CUdeviceptr p) {
  std::lock_guard<std::mutex> lock(memMutex);
  auto it = allocations.find(p);
  if (it == allocations.end())
    return kInvalidValue;
  allocations.erase(it);
  free(reinterpret_cast<void *>(p));
  return kSuccess;
}
EMU_API CUresult cuMemcpyHtoD_v2(CUdeviceptr d, const void *s, size_t b) {
  if (b && !inAllocation(d, b))
    return kInvalidValue;
  memcpy(reinterpret_cast<void *>(d), s, b);
  return kSuccess;
}
EMU_API CUresult cuMemcpyDtoH_v2(void *d, CUdeviceptr s, size_t b) {
  if (b && !inAllocation(s, b))
    return kInvalidValue;
  memcpy(d, reinterpret_cast<void *>(s), b);
  return kSuccess;
}
EMU_API CUresult cuMemsetD8_v2(CUdeviceptr d, unsigned char v, size_t b) {
  if (b && !inAllocation(d, b))
    return kInvalidValue;
  memset(reinterpret_cast<void *>(d), v, b);
  return kSuccess;
}

using Clock = std::chrono::steady_clock;
EMU_API CUresult cuEventCreate(void **e, unsigned) {
  *e = new Clock::time_point(Clock::now());
  return kSuccess;
}
EMU_API CUresult cuEventRecord(void *e, void *) {
  *static_cast<Clock::time_point *>(e) = Clock::now();
  return kSuccess;
}
EMU_API CUresult cuEventSynchronize(void *) { return kSuccess; }
EMU_API CUresult cuEventElapsedTime(float *ms, void *a, void *b) {
  *ms = std::chrono::duration<float, std::milli>(
            *static_cast<Clock::time_point *>(b) -
            *static_cast<Clock::time_point *>(a))
            .count();
  return kSuccess;
}
EMU_API CUresult cuEventDestroy_v2(void *e) {
  delete static_cast<Clock::time_point *>(e);
  return kSuccess;
}
EMU_API CUresult cuGetErrorName(CUresult r, const char **s) {
  switch (r) {
  case kSuccess:
    *s = "CUDA_SUCCESS";
    break;
  case kInvalidValue:
    *s = "CUDA_ERROR_INVALID_VALUE";
    break;
  case kOutOfMemory:
    *s = "CUDA_ERROR_OUT_OF_MEMORY";
    break;
  case kInvalidImage:
    *s = "CUDA_ERROR_INVALID_IMAGE";
    break;
  case kNotFound:
    *s = "CUDA_ERROR_NOT_FOUND";
    break;
  default:
    *s = "CUDA_ERROR_LAUNCH_FAILED";
    break;
  }
  return kSuccess;
}
EMU_API CUresult cuGetErrorString(CUresult, const char **s) {
  *s = lastError.empty() ? "emulator error" : lastError.c_str();
  return kSuccess;
}
