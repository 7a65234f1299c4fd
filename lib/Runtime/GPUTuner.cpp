//===- GPUTuner.cpp - choose among AOT kernel variants on a GPU -*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//

#include "linattn/Runtime/GPUTuner.h"

#include "Json.h"

#include <chrono>
#include <cmath>
#include <cstdio>

namespace linattn::cuda {

std::string gpuFingerprint(const std::string &name, int sm, int driverVersion) {
  // cuDriverGetVersion: 1000 * major + 10 * minor.
  return "gpu: " + name + " (sm_" + std::to_string(sm) + ", driver " +
         std::to_string(driverVersion / 1000) + "." +
         std::to_string((driverVersion % 1000) / 10) + ")";
}

double gpuTolerance(const std::string &dtype) {
  return dtype == "f32" ? 1e-5 : dtype == "f16" ? 1e-3 : 5e-3;
}

//===----------------------------------------------------------------------===//
// Variant index
//===----------------------------------------------------------------------===//

static const char *const kIndexFormat = "linattn-aot-variants";

std::string variantIndexJSON(const VariantIndex &index) {
  std::string s =
      "{\n  \"format\": " + json::quote(kIndexFormat) +
      ",\n  \"version\": 1,\n  \"name\": " + json::quote(index.name) +
      ",\n  \"chip\": " + json::quote(index.chip) +
      ",\n  \"compiler\": " + json::quote(index.compiler) +
      ",\n  \"spec_key\": " + json::quote(index.specKey) +
      ",\n  \"default\": " + std::to_string(index.defaultIndex) +
      ",\n  \"variants\": [";
  for (size_t i = 0; i < index.variants.size(); ++i) {
    const AOTVariant &v = index.variants[i];
    s += (i ? ",\n    {" : "\n    {");
    s += "\"manifest\": " + json::quote(v.manifest) + ", \"params\": {";
    bool first = true;
    for (const auto &[name, value] : v.config.params) {
      s += (first ? "" : ", ") + json::quote(name) + ": " +
           std::to_string(value);
      first = false;
    }
    s += "}}";
  }
  return s + (index.variants.empty() ? "]\n}\n" : "\n  ]\n}\n");
}

bool isVariantIndex(const std::string &text) {
  json::Value doc;
  if (!json::parse(text, doc).empty())
    return false;
  const json::Value *f = doc.get("format");
  return f && f->kind == json::Value::Kind::String && f->string == kIndexFormat;
}

std::string parseVariantIndex(const std::string &text, VariantIndex &out) {
  using K = json::Value::Kind;
  json::Value doc;
  if (std::string e = json::parse(text, doc); !e.empty())
    return "variant index: " + e;
  if (doc.kind != K::Object)
    return "variant index: not a JSON object";
  auto str = [&](const char *key, std::string &field) -> std::string {
    const json::Value *v = doc.get(key);
    if (!v || v->kind != K::String)
      return std::string("variant index: missing string field '") + key + "'";
    field = v->string;
    return "";
  };
  VariantIndex r;
  std::string format;
  for (auto [key, field] :
       {std::pair{"format", &format}, std::pair{"name", &r.name},
        std::pair{"chip", &r.chip}, std::pair{"compiler", &r.compiler},
        std::pair{"spec_key", &r.specKey}})
    if (std::string e = str(key, *field); !e.empty())
      return e;
  if (format != kIndexFormat)
    return "variant index: format is '" + format + "', expected '" +
           kIndexFormat + "'";
  const json::Value *version = doc.get("version");
  if (!version || !version->isInteger || version->integer != 1)
    return "variant index: unsupported 'version' (this reader takes 1)";
  const json::Value *variants = doc.get("variants");
  if (!variants || variants->kind != K::Array || variants->items.empty())
    return "variant index: 'variants' must be a non-empty array";
  for (size_t i = 0; i < variants->items.size(); ++i) {
    const json::Value &v = variants->items[i];
    std::string where = "variant index: variants[" + std::to_string(i) + "]";
    const json::Value *m = v.get("manifest");
    const json::Value *p = v.get("params");
    if (v.kind != K::Object || !m || m->kind != K::String || m->string.empty())
      return where + ": missing string field 'manifest'";
    if (!p || p->kind != K::Object || p->members.empty())
      return where + ": missing object field 'params'";
    AOTVariant av;
    av.manifest = m->string;
    av.config.backend = "gpu";
    for (const auto &[name, value] : p->members) {
      if (value.kind != K::Number || !value.isInteger)
        return where + ": params." + name + " must be an integer";
      av.config.params[name] = value.integer;
    }
    r.variants.push_back(std::move(av));
  }
  const json::Value *def = doc.get("default");
  if (!def || !def->isInteger || def->integer < 0 ||
      def->integer >= static_cast<int64_t>(r.variants.size()))
    return "variant index: 'default' must index 'variants' (0.." +
           std::to_string(r.variants.size() - 1) + ")";
  r.defaultIndex = static_cast<size_t>(def->integer);
  out = std::move(r);
  return "";
}

int findVariant(const VariantIndex &index, const TuneConfig &config) {
  for (size_t i = 0; i < index.variants.size(); ++i)
    if (index.variants[i].config.params == config.params)
      return static_cast<int>(i);
  return -1;
}

//===----------------------------------------------------------------------===//
// Tuning
//===----------------------------------------------------------------------===//

static std::string formatMs(double ms) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4f ms", ms);
  return buf;
}

std::string tuneVariants(const VariantIndex &index,
                         const VariantTuneHooks &hooks,
                         const VariantTuneOptions &options,
                         VariantTuneResult &result) {
  result = VariantTuneResult();
  if (index.variants.empty() || index.defaultIndex >= index.variants.size())
    return "tune: the variant index has no default variant";
  if (!(options.budgetSeconds > 0))
    return "tune: the budget must be positive, got " +
           std::to_string(options.budgetSeconds) + " s";
  auto steady = [] {
    return std::chrono::duration<double>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  };
  auto now = [&] { return hooks.now ? hooks.now() : steady(); };
  bool verbose = progressEnabled(options.verbosity);
  auto progress = [&](const std::string &line) {
    if (!verbose)
      return;
    if (hooks.progress)
      hooks.progress(line);
    else
      std::fprintf(stderr, "[linattn tune] %s\n", line.c_str());
  };
  const double start = now();
  const size_t def = index.defaultIndex;
  auto name = [&](size_t i) { return index.variants[i].config.describe(); };

  // 1. The default: reference check, baseline output, time.
  if (std::string e = hooks.checkDefault(); !e.empty())
    return "tune: the default variant (" + name(def) +
           ") fails the reference check: " + e;
  VariantOutput base;
  if (std::string e = hooks.run(def, base); !e.empty())
    return "tune: the default variant (" + name(def) + "): " + e;
  double defaultMs = 0;
  if (std::string e = hooks.time(def, defaultMs); !e.empty())
    return "tune: timing the default variant (" + name(def) + "): " + e;
  result.tried = 1;
  progress("[1/" + std::to_string(index.variants.size()) + "] " + name(def) +
           " (default): " + formatMs(defaultMs));
  size_t best = def;
  double bestMs = defaultMs;
  // Cost of one candidate, estimated by the slowest so far (run + time).
  double cost = now() - start;

  // 2. The other variants, verified against the default before timing.
  for (size_t i = 0; i < index.variants.size(); ++i) {
    if (i == def)
      continue;
    if (now() - start + cost > options.budgetSeconds) {
      result.budgetReached = true;
      progress("budget of " + std::to_string(options.budgetSeconds) +
               " s reached after " + std::to_string(result.tried) +
               " variants");
      break;
    }
    double t0 = now();
    ++result.tried;
    std::string tag = "[" + std::to_string(result.tried) + "/" +
                      std::to_string(index.variants.size()) + "] " + name(i);
    VariantOutput out;
    if (std::string e = hooks.run(i, out); !e.empty()) {
      ++result.dropped;
      progress(tag + ": dropped, run failed: " + e);
      cost = std::max(cost, now() - t0);
      continue;
    }
    double ro = reference::ratio(out.o, base.o);
    double rs = reference::ratio(out.state, base.state);
    // NaN comparisons are false, so a NaN ratio drops the variant too.
    if (!(ro <= options.tolerance && rs <= options.tolerance)) {
      ++result.dropped;
      char buf[160];
      std::snprintf(buf, sizeof(buf),
                    ": dropped, differs from the default (output ratio %.3g, "
                    "state ratio %.3g, tolerance %.0e)",
                    ro, rs, options.tolerance);
      progress(tag + buf);
      cost = std::max(cost, now() - t0);
      continue;
    }
    double ms = 0;
    if (std::string e = hooks.time(i, ms); !e.empty()) {
      ++result.dropped;
      progress(tag + ": dropped, timing failed: " + e);
      cost = std::max(cost, now() - t0);
      continue;
    }
    if (ms < bestMs) {
      bestMs = ms;
      best = i;
    }
    cost = std::max(cost, now() - t0);
    progress(tag + ": " + formatMs(ms) + "   best " + formatMs(bestMs) + " (" +
             name(best) + ")");
  }

  // 3. Re-time the winner against the default so that one lucky sample
  //    cannot make the result slower than the default.
  if (best != def) {
    double d = 0, w = 0;
    if (hooks.time(def, d).empty() && hooks.time(best, w).empty()) {
      if (w < d) {
        defaultMs = d;
        bestMs = w;
      } else {
        progress("re-timed: " + name(best) + " " + formatMs(w) +
                 " vs default " + formatMs(d) + "; keeping the default");
        best = def;
        defaultMs = bestMs = d;
      }
    } else {
      best = def;
      bestMs = defaultMs;
    }
  }
  result.best = best;
  result.bestMs = bestMs;
  result.defaultMs = defaultMs;
  result.seconds = now() - start;
  char buf[200];
  std::snprintf(buf, sizeof(buf),
                "done in %.1f s: %s at %.4f ms (default %.4f ms, %.2fx), %d "
                "tried, %d dropped",
                result.seconds, name(best).c_str(), bestMs, defaultMs,
                bestMs > 0 ? defaultMs / bestMs : 1.0, result.tried,
                result.dropped);
  progress(buf);
  return "";
}

} // namespace linattn::cuda
