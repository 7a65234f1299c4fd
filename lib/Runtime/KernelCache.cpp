//===- KernelCache.cpp - in-memory and on-disk kernel cache ----*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
//
// Kernels are cached by a digest of everything that determines their machine
// code: the generated linattn source (spec, chunking), the vectorizer and
// LLVM options, the host target and the compiler build. The build identity
// includes the size and modification time of the binary that contains the
// code generator, so a rebuilt linattn never loads objects produced by an
// older pass pipeline.
//
// Disk format of `<cache dir>/kernels/<key>.o`: an 8-byte magic, a format
// version, the object's size and xxh3 hash, the key, then the ELF object.
// Files are written to a unique temporary name and renamed into place, so a
// reader sees either nothing or a whole file; a file that fails any check is
// treated as a miss and removed.
//
//===----------------------------------------------------------------------===//

#include "KernelCache.h"

#include "linattn/Transforms/Passes.h"

#include "mlir/ExecutionEngine/ExecutionEngine.h"

#include "llvm/ExecutionEngine/Orc/ExecutionUtils.h"
#include "llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h"
#include "llvm/ExecutionEngine/Orc/LLJIT.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SHA256.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Support/xxhash.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/TargetParser/Host.h"

#include <dlfcn.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <list>
#include <map>
#include <mutex>
#include <sstream>
#include <unistd.h>

namespace linattn {

namespace {
std::atomic<int64_t> compiledCount{0}, memoryHits{0}, diskHits{0},
    diskWrites{0}, diskRejected{0};
std::atomic<int> modeOverride{-1};
thread_local bool suppressDiskWrites = false;

constexpr char kMagic[8] = {'L', 'I', 'N', 'A', 'T', 'T', 'N', 'K'};
constexpr uint32_t kFormat = 1;
/// At most this many objects are kept; the oldest are removed beyond it.
constexpr size_t kMaxObjects = 512;

struct Header {
  char magic[8];
  uint32_t format;
  uint32_t keySize;
  uint64_t objectSize;
  uint64_t objectHash;
};
} // namespace

KernelCacheMode kernelCacheMode() {
  int o = modeOverride.load();
  if (o >= 0)
    return static_cast<KernelCacheMode>(o);
  if (const char *env = std::getenv("LINATTN_KERNEL_CACHE")) {
    std::string v = env;
    if (v == "off" || v == "0")
      return KernelCacheMode::Off;
    if (v == "memory")
      return KernelCacheMode::Memory;
  }
  return KernelCacheMode::Disk;
}

void setKernelCacheMode(KernelCacheMode mode) {
  modeOverride.store(static_cast<int>(mode));
}

KernelCacheStats kernelCacheStats() {
  KernelCacheStats s;
  s.compiled = compiledCount.load();
  s.memoryHits = memoryHits.load();
  s.diskHits = diskHits.load();
  s.diskWrites = diskWrites.load();
  s.diskRejected = diskRejected.load();
  return s;
}

ScopedNoKernelDiskWrites::ScopedNoKernelDiskWrites()
    : previous(suppressDiskWrites) {
  suppressDiskWrites = true;
}
ScopedNoKernelDiskWrites::~ScopedNoKernelDiskWrites() {
  suppressDiskWrites = previous;
}

/// Identity of the binary that holds the code generator: its size and
/// modification time (not its path, which differs between invocations, e.g.
/// through /proc/self/exe).
static std::string buildIdentity() {
  static const std::string id = [] {
    std::string r = compilerVersion();
    Dl_info info;
    if (dladdr(reinterpret_cast<void *>(&mlir::linattn::buildCPUPipeline),
               &info) &&
        info.dli_fname) {
      llvm::sys::fs::file_status st;
      if (!llvm::sys::fs::status(info.dli_fname, st)) {
        r += " " + std::to_string(st.getSize());
        r += " " + std::to_string(
                       st.getLastModificationTime().time_since_epoch().count());
      }
    }
    return r;
  }();
  return id;
}

std::string detail::kernelBuildIdentity() { return buildIdentity(); }

static std::string hostTargetIdentity() {
  static const std::string id = [] {
    std::string r =
        llvm::sys::getProcessTriple() + " " + llvm::sys::getHostCPUName().str();
    // Sorted, so that the key does not depend on the map's order.
    std::map<std::string, bool> sorted;
    for (const auto &f : llvm::sys::getHostCPUFeatures())
      sorted[f.getKey().str()] = f.getValue();
    for (const auto &[name, on] : sorted)
      r += (on ? " +" : " -") + name;
    return r;
  }();
  return id;
}

namespace detail {

CompiledCode::CompiledCode() = default;
CompiledCode::~CompiledCode() = default;

std::string kernelCodeKey(const std::string &source, const CompileOptions &o) {
  std::ostringstream os;
  os << source << "\n--\nchunk=" << o.chunkSize << " sub=" << o.subChunkSize
     << " tile=" << o.tileM << "x" << o.tileN << " width=" << o.vectorWidth
     << " opt=" << o.optLevel << "\n--\n"
     << hostTargetIdentity() << "\n--\n"
     << buildIdentity();
  std::string text = os.str();
  std::array<uint8_t, 32> digest = llvm::SHA256::hash(llvm::ArrayRef<uint8_t>(
      reinterpret_cast<const uint8_t *>(text.data()), text.size()));
  return llvm::toHex(llvm::ArrayRef<uint8_t>(digest.data(), 20),
                     /*LowerCase=*/true);
}

namespace {
std::mutex memoryMutex;
/// The most recently used codes, most recent first. Strong references in a
/// container that is never destroyed: the code of a tuning winner survives
/// the tuner's kernels, and no JIT is torn down during static destruction.
constexpr size_t kMemoryEntries = 32;
using MemoryCache =
    std::list<std::pair<std::string, std::shared_ptr<CompiledCode>>>;
MemoryCache &memoryCache() {
  static auto *cache = new MemoryCache;
  return *cache;
}
std::shared_ptr<CompiledCode> memoryLookup(const std::string &key) {
  std::lock_guard<std::mutex> lock(memoryMutex);
  MemoryCache &c = memoryCache();
  for (auto it = c.begin(); it != c.end(); ++it)
    if (it->first == key) {
      c.splice(c.begin(), c, it);
      return c.front().second;
    }
  return nullptr;
}
void memoryInsert(const std::string &key, std::shared_ptr<CompiledCode> code) {
  std::lock_guard<std::mutex> lock(memoryMutex);
  MemoryCache &c = memoryCache();
  c.remove_if([&](const auto &e) { return e.first == key; });
  c.emplace_front(key, std::move(code));
  if (c.size() > kMemoryEntries)
    c.pop_back();
}
} // namespace

static std::string objectDir() {
  std::string dir = cacheDirectory();
  if (dir.empty())
    return "";
  llvm::SmallString<256> p(dir);
  llvm::sys::path::append(p, "kernels");
  return std::string(p);
}

static std::string objectPath(const std::string &key) {
  std::string dir = objectDir();
  if (dir.empty())
    return "";
  llvm::SmallString<256> p(dir);
  llvm::sys::path::append(p, key + ".o");
  return std::string(p);
}

/// Reads and checks a cached object file; empty on any mismatch.
static std::unique_ptr<llvm::MemoryBuffer>
readObjectFile(const std::string &path, const std::string &key) {
  auto buf = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                         /*RequiresNullTerminator=*/false);
  if (!buf)
    return nullptr;
  llvm::StringRef data = (*buf)->getBuffer();
  Header h;
  if (data.size() < sizeof(Header))
    return nullptr;
  std::memcpy(&h, data.data(), sizeof(Header));
  if (std::memcmp(h.magic, kMagic, sizeof(kMagic)) != 0 ||
      h.format != kFormat || h.keySize != key.size() ||
      data.size() != sizeof(Header) + h.keySize + h.objectSize ||
      data.substr(sizeof(Header), h.keySize) != key)
    return nullptr;
  llvm::StringRef object = data.substr(sizeof(Header) + h.keySize);
  if (llvm::xxh3_64bits(object) != h.objectHash)
    return nullptr;
  return llvm::MemoryBuffer::getMemBufferCopy(object, path);
}

/// Loads an object into a fresh LLJIT that resolves libc/libm symbols from
/// the process.
static std::shared_ptr<CompiledCode>
loadObject(std::unique_ptr<llvm::MemoryBuffer> object) {
  auto jtmb = llvm::orc::JITTargetMachineBuilder::detectHost();
  if (!jtmb) {
    llvm::consumeError(jtmb.takeError());
    return nullptr;
  }
  auto jit =
      llvm::orc::LLJITBuilder().setJITTargetMachineBuilder(*jtmb).create();
  if (!jit) {
    llvm::consumeError(jit.takeError());
    return nullptr;
  }
  auto gen = llvm::orc::DynamicLibrarySearchGenerator::GetForCurrentProcess(
      (*jit)->getDataLayout().getGlobalPrefix());
  if (!gen) {
    llvm::consumeError(gen.takeError());
    return nullptr;
  }
  (*jit)->getMainJITDylib().addGenerator(std::move(*gen));
  if (llvm::Error e = (*jit)->addObjectFile(std::move(object))) {
    llvm::consumeError(std::move(e));
    return nullptr;
  }
  // The packed wrapper ExecutionEngine generated for the C interface.
  auto sym = (*jit)->lookup("_mlir__mlir_ciface_linattn_head");
  if (!sym) {
    llvm::consumeError(sym.takeError());
    return nullptr;
  }
  auto code = std::make_shared<CompiledCode>();
  code->jit = std::move(*jit);
  code->entry = sym->toPtr<void (*)(void **)>();
  return code;
}

static void writeObject(const std::string &key, CompiledCode &code);

std::shared_ptr<CompiledCode> findKernelCode(const std::string &key,
                                             CodeOrigin &origin) {
  KernelCacheMode mode = kernelCacheMode();
  if (mode == KernelCacheMode::Off)
    return nullptr;
  if (auto code = memoryLookup(key)) {
    ++memoryHits;
    origin = CodeOrigin::MemoryCache;
    // Compiled while disk writes were suppressed (a tuning candidate that
    // won): persist it now.
    if (!code->onDisk && !suppressDiskWrites && kernelDiskCacheEnabled())
      writeObject(key, *code);
    return code;
  }
  if (mode != KernelCacheMode::Disk)
    return nullptr;
  std::string path = objectPath(key);
  if (path.empty() || !llvm::sys::fs::exists(path))
    return nullptr;
  std::shared_ptr<CompiledCode> code;
  if (auto object = readObjectFile(path, key))
    code = loadObject(std::move(object));
  if (!code) {
    // Corrupt, truncated or unloadable: drop it; the caller recompiles and
    // writes a fresh copy.
    ++diskRejected;
    llvm::sys::fs::remove(path);
    return nullptr;
  }
  ++diskHits;
  code->onDisk = true;
  origin = CodeOrigin::DiskCache;
  memoryInsert(key, code);
  return code;
}

bool kernelDiskCacheEnabled() {
  return kernelCacheMode() == KernelCacheMode::Disk && !objectDir().empty();
}

void noteKernelCompiled() { ++compiledCount; }

/// Removes the oldest objects beyond kMaxObjects.
static void trimObjectDir(const std::string &dir) {
  std::vector<std::pair<llvm::sys::TimePoint<>, std::string>> files;
  std::error_code ec;
  for (llvm::sys::fs::directory_iterator it(dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    if (llvm::sys::path::extension(it->path()) != ".o")
      continue;
    llvm::sys::fs::file_status st;
    if (!llvm::sys::fs::status(it->path(), st))
      files.push_back({st.getLastModificationTime(), it->path()});
  }
  if (files.size() <= kMaxObjects)
    return;
  std::sort(files.begin(), files.end());
  for (size_t i = 0; i + kMaxObjects < files.size(); ++i)
    llvm::sys::fs::remove(files[i].second);
}

void publishKernelCode(const std::string &key,
                       const std::shared_ptr<CompiledCode> &code) {
  if (kernelCacheMode() == KernelCacheMode::Off)
    return;
  memoryInsert(key, code);
  if (!suppressDiskWrites && kernelDiskCacheEnabled())
    writeObject(key, *code);
}

static void writeObject(const std::string &key, CompiledCode &code) {
  static std::mutex writeMutex;
  std::lock_guard<std::mutex> lock(writeMutex);
  if (!code.engine || code.onDisk)
    return;
  std::string dir = objectDir();
  if (llvm::sys::fs::create_directories(dir))
    return;
  // ExecutionEngine writes its object to a file; frame it into ours.
  llvm::SmallString<256> raw;
  if (llvm::sys::fs::createUniqueFile(dir + "/" + key + ".raw-%%%%%%%%", raw))
    return;
  code.engine->dumpToObjectFile(raw);
  auto object = llvm::MemoryBuffer::getFile(raw, /*IsText=*/false,
                                            /*RequiresNullTerminator=*/false);
  llvm::sys::fs::remove(raw);
  if (!object || (*object)->getBufferSize() == 0)
    return;
  llvm::StringRef bytes = (*object)->getBuffer();
  Header h;
  std::memcpy(h.magic, kMagic, sizeof(kMagic));
  h.format = kFormat;
  h.keySize = static_cast<uint32_t>(key.size());
  h.objectSize = bytes.size();
  h.objectHash = llvm::xxh3_64bits(bytes);
  int fd;
  llvm::SmallString<256> tmp;
  if (llvm::sys::fs::createUniqueFile(dir + "/" + key + ".tmp-%%%%%%%%", fd,
                                      tmp))
    return;
  bool ok;
  {
    llvm::raw_fd_ostream os(fd, /*shouldClose=*/true);
    os.write(reinterpret_cast<const char *>(&h), sizeof(h));
    os << key << bytes;
    os.close();
    ok = !os.has_error();
    if (!ok)
      os.clear_error();
  }
  if (!ok || llvm::sys::fs::rename(tmp, objectPath(key))) {
    llvm::sys::fs::remove(tmp);
    return;
  }
  ++diskWrites;
  code.onDisk = true;
  trimObjectDir(dir);
}

} // namespace detail
} // namespace linattn
