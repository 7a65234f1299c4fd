//===- TuningCache.cpp - tuning cache file (standard C++ only) -*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
//
// POSIX file handling (mkdir, mkstemp, flock, rename) instead of
// llvm::sys::fs, so that linattn-launch can build without LLVM.
//
//===----------------------------------------------------------------------===//

#include "linattn/Runtime/TuningCache.h"

#include "Json.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <sys/file.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace linattn {

static const int kTuningFormat = 1;

std::string cacheDirectory() {
  auto env = [](const char *name) -> std::string {
    const char *v = std::getenv(name);
    return v ? v : "";
  };
  if (std::string d = env("LINATTN_CACHE_DIR"); !d.empty())
    return d;
  if (std::string d = env("XDG_CACHE_HOME"); !d.empty())
    return d + "/linattn";
  if (std::string d = env("HOME"); !d.empty())
    return d + "/.cache/linattn";
  return "";
}

std::string defaultTuningCacheFile() {
  std::string dir = cacheDirectory();
  return dir.empty() ? "" : dir + "/tuning.json";
}

static int64_t pow2Ceil(int64_t x) {
  int64_t p = 1;
  while (p < x && p < (int64_t(1) << 40))
    p *= 2;
  return p;
}

std::string shapeClassOf(int64_t seqLen, int64_t batchHeads, int threads) {
  std::string s = "T" + std::to_string(pow2Ceil(std::max<int64_t>(seqLen, 1))) +
                  ".BH" +
                  std::to_string(pow2Ceil(std::max<int64_t>(batchHeads, 1)));
  if (threads > 0)
    s += ".t" + std::to_string(threads);
  return s;
}

std::string TuneConfig::describe() const {
  auto get = [&](const char *name, int64_t fallback) {
    auto it = params.find(name);
    return it == params.end() ? fallback : it->second;
  };
  if (backend == "cpu") {
    CompileOptions d;
    return "C=" + std::to_string(get("chunk", d.chunkSize)) +
           " sub=" + std::to_string(get("sub_chunk", d.subChunkSize)) +
           " tile=" + std::to_string(get("tile_m", d.tileM)) + "x" +
           std::to_string(get("tile_n", d.tileN));
  }
  std::string s;
  auto add = [&](const std::string &text) {
    s += (s.empty() ? "" : " ") + text;
  };
  if (params.count("chunk"))
    add("C=" + std::to_string(params.at("chunk")));
  if (params.count("block_v"))
    add("bv=" + std::to_string(params.at("block_v")));
  if (params.count("warps"))
    add("warps=" + std::to_string(params.at("warps")));
  for (const auto &[name, value] : params)
    if (name != "chunk" && name != "block_v" && name != "warps")
      add(name + "=" + std::to_string(value));
  return s;
}

const char *tuneModeName(TuneMode mode) {
  switch (mode) {
  case TuneMode::Off:
    return "off";
  case TuneMode::UseOnly:
    return "use-only";
  case TuneMode::TuneIfMissing:
    return "tune-if-missing";
  case TuneMode::Force:
    return "force";
  }
  return "?";
}

std::optional<TuneMode> parseTuneMode(const std::string &name) {
  for (TuneMode m : {TuneMode::Off, TuneMode::UseOnly, TuneMode::TuneIfMissing,
                     TuneMode::Force})
    if (name == tuneModeName(m))
      return m;
  return std::nullopt;
}

TuneMode tuneModeFromEnvironment(TuneMode fallback) {
  if (const char *env = std::getenv("LINATTN_TUNE"))
    if (auto m = parseTuneMode(env))
      return *m;
  return fallback;
}

bool progressEnabled(Verbosity v) {
  return v == Verbosity::Verbose ||
         (v == Verbosity::Auto && isatty(STDERR_FILENO));
}

std::string tuningKey(const std::string &device, const std::string &spec,
                      const std::string &shape) {
  return device + " | " + spec + " | " + shape;
}

//===----------------------------------------------------------------------===//
// Reading
//===----------------------------------------------------------------------===//

namespace {

std::optional<TuningEntry> entryFromJSON(const json::Value &o) {
  if (o.kind != json::Value::Kind::Object)
    return std::nullopt;
  TuningEntry e;
  auto str = [&](const char *k, std::string &out) {
    const json::Value *v = o.get(k);
    if (!v || v->kind != json::Value::Kind::String)
      return false;
    out = v->string;
    return true;
  };
  auto num = [&](const char *k, double &out) {
    const json::Value *v = o.get(k);
    if (!v || v->kind != json::Value::Kind::Number)
      return false;
    out = v->number;
    return true;
  };
  if (!str("device", e.device) || !str("spec", e.spec) ||
      !str("shape", e.shape) || !str("backend", e.config.backend) ||
      !num("ms", e.ms))
    return std::nullopt;
  num("default_ms", e.defaultMs);
  num("tune_seconds", e.tuneSeconds);
  const json::Value *params = o.get("params");
  if (!params || params->kind != json::Value::Kind::Object ||
      params->members.empty())
    return std::nullopt;
  for (const auto &[name, value] : params->members) {
    if (value.kind != json::Value::Kind::Number || !value.isInteger)
      return std::nullopt;
    e.config.params[name] = value.integer;
  }
  return e;
}

std::string dirName(const std::string &path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

/// mkdir -p.
std::string makeDirectories(const std::string &dir) {
  if (dir.empty())
    return "";
  for (size_t i = 1; i <= dir.size(); ++i) {
    if (i < dir.size() && dir[i] != '/')
      continue;
    std::string prefix = dir.substr(0, i);
    if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST)
      return "cannot create '" + prefix + "': " + std::strerror(errno);
  }
  return "";
}

/// An exclusive lock on `file`.lock while alive (best effort: without it
/// the rename still keeps the file whole, only a concurrent entry may be
/// lost).
class FileLock {
public:
  explicit FileLock(const std::string &file) {
    makeDirectories(dirName(file));
    fd = ::open((file + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
      return;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!(locked = ::flock(fd, LOCK_EX | LOCK_NB) == 0) &&
           std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ~FileLock() {
    if (locked)
      ::flock(fd, LOCK_UN);
    if (fd >= 0)
      ::close(fd);
  }
  FileLock(const FileLock &) = delete;
  FileLock &operator=(const FileLock &) = delete;

private:
  int fd = -1;
  bool locked = false;
};

} // namespace

std::map<std::string, TuningEntry>
readTuningCacheFile(const std::string &file, const std::string &compiler,
                    std::string *problem) {
  std::map<std::string, TuningEntry> entries;
  auto why = [&](const std::string &msg) {
    if (problem)
      *problem = msg;
    return std::map<std::string, TuningEntry>();
  };
  std::string text;
  if (std::string e = readWholeFile(file, text); !e.empty())
    return why(e);
  json::Value doc;
  if (std::string e = json::parse(text, doc); !e.empty())
    return why("'" + file + "' is not valid JSON: " + e);
  if (doc.kind != json::Value::Kind::Object)
    return why("'" + file + "' is not a JSON object");
  const json::Value *format = doc.get("format");
  const json::Value *comp = doc.get("compiler");
  if (!format || !format->isInteger || format->integer != kTuningFormat)
    return why("'" + file + "' has an unknown format");
  if (!comp || comp->kind != json::Value::Kind::String ||
      comp->string != compiler)
    return why(
        "'" + file + "' was written by '" +
        (comp && comp->kind == json::Value::Kind::String ? comp->string : "?") +
        "', this is '" + compiler + "'");
  const json::Value *map = doc.get("entries");
  if (!map || map->kind != json::Value::Kind::Object)
    return why("'" + file + "' has no entries object");
  // Malformed entries are skipped one by one: the others stay usable.
  for (const auto &[key, value] : map->members)
    if (auto e = entryFromJSON(value))
      entries[key] = *e;
  if (problem)
    problem->clear();
  return entries;
}

//===----------------------------------------------------------------------===//
// Writing
//===----------------------------------------------------------------------===//

std::string
writeTuningCacheFile(const std::string &file, const std::string &compiler,
                     const std::map<std::string, TuningEntry> &entries) {
  std::string text = "{\n  \"format\": " + std::to_string(kTuningFormat) +
                     ",\n  \"compiler\": " + json::quote(compiler) +
                     ",\n  \"entries\": {";
  bool first = true;
  for (const auto &[key, e] : entries) {
    text += first ? "\n" : ",\n";
    first = false;
    text += "    " + json::quote(key) + ": {\n";
    text += "      \"device\": " + json::quote(e.device) + ",\n";
    text += "      \"spec\": " + json::quote(e.spec) + ",\n";
    text += "      \"shape\": " + json::quote(e.shape) + ",\n";
    text += "      \"backend\": " + json::quote(e.config.backend) + ",\n";
    text += "      \"params\": {";
    bool firstParam = true;
    for (const auto &[name, value] : e.config.params) {
      text += (firstParam ? "" : ", ") + json::quote(name) + ": " +
              std::to_string(value);
      firstParam = false;
    }
    text += "},\n";
    // Non-finite times (never produced by the tuners) are stored as 0 so
    // that the entry stays readable.
    auto num = [](double x) {
      return std::isfinite(x) ? json::number(x) : "0";
    };
    text += "      \"ms\": " + num(e.ms) + ",\n";
    text += "      \"default_ms\": " + num(e.defaultMs) + ",\n";
    text += "      \"tune_seconds\": " + num(e.tuneSeconds) + "\n    }";
  }
  text += first ? "}\n}\n" : "\n  }\n}\n";

  if (std::string e = makeDirectories(dirName(file)); !e.empty())
    return e;
  std::string tmp = file + ".tmp-XXXXXX";
  int fd = ::mkstemp(tmp.data());
  if (fd < 0)
    return "cannot create a temporary file next to '" + file +
           "': " + std::strerror(errno);
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      std::string err = std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      return "cannot write '" + tmp + "': " + err;
    }
    done += static_cast<size_t>(n);
  }
  // mkstemp creates 0600; the cache is as readable as a normal file.
  ::fchmod(fd, 0644);
  if (::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return "cannot write '" + tmp + "'";
  }
  if (::rename(tmp.c_str(), file.c_str()) != 0) {
    std::string err = std::strerror(errno);
    ::unlink(tmp.c_str());
    return "cannot rename '" + tmp + "' to '" + file + "': " + err;
  }
  return "";
}

std::string
storeTuningCacheEntries(const std::string &file, const std::string &compiler,
                        const std::map<std::string, TuningEntry> &entries) {
  FileLock lock(file);
  std::map<std::string, TuningEntry> merged =
      readTuningCacheFile(file, compiler, nullptr);
  for (const auto &[key, entry] : entries)
    merged[key] = entry;
  return writeTuningCacheFile(file, compiler, merged);
}

std::string readWholeFile(const std::string &path, std::string &out) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return "cannot read '" + path + "'";
  std::ostringstream buf;
  buf << in.rdbuf();
  out = buf.str();
  return "";
}

} // namespace linattn
