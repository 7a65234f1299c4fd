//===- CudaManifest.cpp - AOT manifest, shape checks, parameters -*- C++
//-*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
//
// The driver-independent half of the CUDA runtime: everything here is pure
// host code so it is unit-tested on machines without a GPU.
//
//===----------------------------------------------------------------------===//

#include "linattn/Runtime/CudaRuntime.h"

#include "Json.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

using namespace linattn;
using namespace linattn::cuda;
using json::Value;

const char *cuda::elemTypeName(ElemType t) {
  switch (t) {
  case ElemType::F32:
    return "f32";
  case ElemType::BF16:
    return "bf16";
  case ElemType::F16:
    return "f16";
  }
  return "?";
}

size_t cuda::elemTypeSize(ElemType t) { return t == ElemType::F32 ? 4 : 2; }

bool cuda::needsMapPrepass(reference::FeatureMap m) {
  using reference::FeatureMap;
  return m != FeatureMap::Identity && m != FeatureMap::EluPlusOne &&
         m != FeatureMap::Relu;
}

bool cuda::mapTakesWeight(reference::FeatureMap m) {
  using reference::FeatureMap;
  return m == FeatureMap::Hedgehog || m == FeatureMap::HedgehogJoint ||
         m == FeatureMap::Performer || m == FeatureMap::PerformerHyperbolic;
}

bool cuda::mapTakesBias(reference::FeatureMap m) {
  using reference::FeatureMap;
  return m == FeatureMap::Hedgehog || m == FeatureMap::HedgehogJoint;
}

int64_t cuda::paddedFeatureDim(int64_t featureDim) {
  return (featureDim + 15) / 16 * 16;
}

//===----------------------------------------------------------------------===//
// Manifest
//===----------------------------------------------------------------------===//

namespace {

/// Typed access to manifest fields with errors that name the dotted path.
class Fields {
public:
  std::string err;

  const Value *field(const Value &obj, const std::string &path,
                     const std::string &key, bool optional = false) {
    if (!err.empty())
      return nullptr;
    const Value *v = obj.get(key);
    if (!v && !optional)
      err = "manifest: missing field '" + path + key + "'";
    return v;
  }

  bool typed(const Value *v, const std::string &name, Value::Kind kind,
             const char *what) {
    if (!err.empty() || !v)
      return false;
    if (v->kind != kind) {
      err = "manifest: field '" + name + "' must be " + what + ", got " +
            json::kindName(v->kind);
      return false;
    }
    return true;
  }

  void str(const Value &obj, const std::string &path, const std::string &key,
           std::string &out) {
    const Value *v = field(obj, path, key);
    if (typed(v, path + key, Value::Kind::String, "a string"))
      out = v->string;
  }

  void integer(const Value &obj, const std::string &path,
               const std::string &key, int64_t &out, int64_t min, int64_t max) {
    const Value *v = field(obj, path, key);
    if (!typed(v, path + key, Value::Kind::Number, "an integer"))
      return;
    if (!v->isInteger) {
      err = "manifest: field '" + path + key + "' must be an integer, got " +
            numberText(v->number);
      return;
    }
    if (v->integer < min || v->integer > max) {
      err = "manifest: field '" + path + key + "' is " +
            std::to_string(v->integer) + ", expected " + std::to_string(min) +
            " to " + std::to_string(max);
      return;
    }
    out = v->integer;
  }

  void number(const Value &obj, const std::string &path, const std::string &key,
              double &out) {
    const Value *v = field(obj, path, key);
    if (typed(v, path + key, Value::Kind::Number, "a number"))
      out = v->number;
  }

  void boolean(const Value &obj, const std::string &path,
               const std::string &key, bool &out) {
    const Value *v = field(obj, path, key);
    if (typed(v, path + key, Value::Kind::Bool, "a boolean"))
      out = v->boolean;
  }

  /// A string from a fixed list; the error lists the accepted values.
  template <typename T>
  void oneOf(const Value &obj, const std::string &path, const std::string &key,
             std::initializer_list<std::pair<const char *, T>> names, T &out) {
    std::string s;
    str(obj, path, key, s);
    if (!err.empty())
      return;
    std::string list;
    for (const auto &[n, val] : names) {
      if (s == n) {
        out = val;
        return;
      }
      list += (list.empty() ? "" : ", ") + std::string(n);
    }
    err = "manifest: field '" + path + key + "' is '" + s + "', expected one " +
          "of " + list;
  }

  static std::string numberText(double d) {
    std::ostringstream os;
    os << d;
    return os.str();
  }
};

/// The feature_count rules of the map and spec.featureDim (checked against
/// `given`, the manifest's feature_dim or -1 when absent).
std::string checkFeatureWidth(KernelSpec &s, int64_t given) {
  using reference::FeatureMap;
  std::string name = reference::featureMapName(s.featureMap);
  std::string count = std::to_string(s.featureCount);
  if (s.featureMap == FeatureMap::HedgehogJoint) {
    // f = d; 0 stands for d as in AttentionSpec::featureCount.
    if (s.featureCount != 0 && s.featureCount != s.keyDim)
      return "manifest: spec.feature_count of feature map 'hedgehog_joint' "
             "must be key_dim (" +
             std::to_string(s.keyDim) + "), got " + count;
    s.featureCount = s.keyDim;
  } else if (mapTakesWeight(s.featureMap) && s.featureCount < 1) {
    return "manifest: spec.feature_count must be >= 1 for feature map '" +
           name + "', got " + count;
  } else if (!mapTakesWeight(s.featureMap) && s.featureCount != 0) {
    return "manifest: spec.feature_count must be 0 for feature map '" + name +
           "' (it has no weights), got " + count;
  }
  int64_t width =
      reference::featureMapWidth(s.featureMap, s.keyDim, s.featureCount);
  if (width > (1 << 16))
    return "manifest: feature map '" + name + "' gives feature_dim " +
           std::to_string(width) + " for key_dim " + std::to_string(s.keyDim) +
           "; at most 65536 is supported";
  if (given >= 0 && given != width)
    return "manifest: spec.feature_dim is " + std::to_string(given) +
           ", expected " + std::to_string(width) + " (feature map '" + name +
           "' with key_dim " + std::to_string(s.keyDim) + ", feature_count " +
           std::to_string(s.featureCount) + ")";
  s.featureDim = width;
  return "";
}

/// The top-level `map` object: required exactly for the width-changing
/// maps.
std::string parseMap(const Value &root, Manifest &m) {
  Fields f;
  std::string name = reference::featureMapName(m.spec.featureMap);
  bool mapped = needsMapPrepass(m.spec.featureMap);
  const Value *map = f.field(root, "", "map", /*optional=*/!mapped);
  if (!mapped) {
    if (map && map->kind != Value::Kind::Null)
      return "manifest: field 'map' is only for the width-changing feature "
             "maps, got feature_map '" +
             name + "'";
    return "";
  }
  if (!f.typed(map, "map", Value::Kind::Object, "an object"))
    return f.err;
  MapLaunch ml;
  f.str(*map, "map.", "entry", ml.entry);
  f.integer(*map, "map.", "threads", ml.threads, 1, 1024);
  f.integer(*map, "map.", "rows_per_block", ml.rowsPerBlock, 1, 1024);
  f.integer(*map, "map.", "padded_dim", ml.paddedDim, 1, INT64_MAX);
  if (!f.err.empty())
    return f.err;
  if (ml.entry.empty())
    return "manifest: field 'map.entry' is empty";
  if (ml.entry == m.entry)
    return "manifest: field 'map.entry' names the attention entry '" + m.entry +
           "'";
  int64_t want = paddedFeatureDim(m.spec.featureDim);
  if (ml.paddedDim != want)
    return "manifest: map.padded_dim is " + std::to_string(ml.paddedDim) +
           ", expected " + std::to_string(want) + " (spec.feature_dim " +
           std::to_string(m.spec.featureDim) +
           " rounded up to a multiple of 16)";
  m.map = std::move(ml);
  return "";
}

std::string parseSpec(const Value &root, KernelSpec &s) {
  using reference::DecayKind;
  using reference::FeatureMap;
  using reference::Schedule;
  Fields f;
  const Value *spec = f.field(root, "", "spec");
  if (!f.typed(spec, "spec", Value::Kind::Object, "an object"))
    return f.err;
  const std::string p = "spec.";
  f.oneOf<DecayKind>(*spec, p, "decay",
                     {{"none", DecayKind::None},
                      {"constant", DecayKind::Constant},
                      {"scalar", DecayKind::Scalar},
                      {"vector", DecayKind::Vector},
                      {"delta", DecayKind::Delta},
                      {"gated_delta", DecayKind::GatedDelta}},
                     s.decay);
  auto fm = [](FeatureMap m) {
    return std::pair<const char *, FeatureMap>(reference::featureMapName(m), m);
  };
  f.oneOf<FeatureMap>(*spec, p, "feature_map",
                      {fm(FeatureMap::Identity), fm(FeatureMap::EluPlusOne),
                       fm(FeatureMap::Relu), fm(FeatureMap::Taylor2),
                       fm(FeatureMap::Taylor2Symmetric),
                       fm(FeatureMap::Hedgehog), fm(FeatureMap::HedgehogJoint),
                       fm(FeatureMap::Performer),
                       fm(FeatureMap::PerformerHyperbolic)},
                      s.featureMap);
  f.oneOf<bool>(*spec, p, "layout", {{"bthd", true}, {"bhtd", false}}, s.bthd);
  std::initializer_list<std::pair<const char *, ElemType>> types = {
      {"bf16", ElemType::BF16}, {"f16", ElemType::F16}, {"f32", ElemType::F32}};
  f.oneOf<ElemType>(*spec, p, "dtype", types, s.dtype);
  f.oneOf<ElemType>(*spec, p, "gate_dtype", types, s.gateDType);
  f.integer(*spec, p, "key_dim", s.keyDim, 1, 1 << 16);
  f.integer(*spec, p, "value_dim", s.valueDim, 1, 1 << 16);
  f.number(*spec, p, "scale", s.scale);
  f.boolean(*spec, p, "causal", s.causal);
  f.boolean(*spec, p, "exclusive", s.exclusive);
  f.boolean(*spec, p, "normalized", s.normalized);
  f.boolean(*spec, p, "state_value_major", s.stateValueMajor);
  f.integer(*spec, p, "layer", s.layer, 0, 1 << 20);
  f.integer(*spec, p, "num_layers", s.numLayers, 1, 1 << 20);
  if (!f.err.empty())
    return f.err;

  // Nullable fields.
  const Value *sched = f.field(*spec, p, "schedule");
  if (sched && sched->kind != Value::Kind::Null) {
    std::string name;
    f.str(*spec, p, "schedule", name);
    if (f.err.empty()) {
      s.schedule = reference::parseSchedule(name);
      if (!s.schedule) {
        std::string list;
        for (Schedule v : reference::allSchedules())
          list += (list.empty() ? "" : ", ") +
                  std::string(reference::scheduleName(v));
        f.err = "manifest: field '" + p + "schedule' is '" + name +
                "', expected one of " + list;
      }
    }
  }
  const Value *clamp = f.field(*spec, p, "clamp_min");
  if (clamp && clamp->kind != Value::Kind::Null) {
    double c = 0;
    f.number(*spec, p, "clamp_min", c);
    s.clampMin = c;
  }
  const Value *logs = f.field(*spec, p, "log_decay");
  if (f.typed(logs, "spec.log_decay", Value::Kind::Array, "an array"))
    for (size_t i = 0; i < logs->items.size(); ++i) {
      const Value &x = logs->items[i];
      if (x.kind != Value::Kind::Number)
        return "manifest: field 'spec.log_decay[" + std::to_string(i) +
               "]' must be a number, got " + json::kindName(x.kind);
      if (!(x.number <= 0.0))
        return "manifest: field 'spec.log_decay[" + std::to_string(i) +
               "]' is " + Fields::numberText(x.number) +
               "; log-decays must be <= 0";
      s.logDecay.push_back(x.number);
    }
  if (f.field(*spec, p, "eps", /*optional=*/true))
    f.number(*spec, p, "eps", s.eps);
  if (f.field(*spec, p, "feature_count", /*optional=*/true))
    f.integer(*spec, p, "feature_count", s.featureCount, 0, 1 << 16);
  int64_t featureDim = -1;
  if (f.field(*spec, p, "feature_dim", /*optional=*/true))
    f.integer(*spec, p, "feature_dim", featureDim, 1, INT64_MAX);
  if (!f.err.empty())
    return f.err;
  if (std::string e = checkFeatureWidth(s, featureDim); !e.empty())
    return e;

  // Cross-field rules of the ABI.
  if (s.layer >= s.numLayers)
    return "manifest: spec.layer " + std::to_string(s.layer) +
           " is outside [0, num_layers = " + std::to_string(s.numLayers) + ")";
  if (s.gateDType != ElemType::F32 && s.gateDType != s.dtype)
    return std::string("manifest: spec.gate_dtype '") +
           elemTypeName(s.gateDType) + "' must be f32 or the dtype '" +
           elemTypeName(s.dtype) + "'";
  if (s.decay == DecayKind::Constant && s.gateDType != ElemType::F32)
    return "manifest: spec.gate_dtype must be f32 for constant decay";
  if (!s.causal && (s.decay != DecayKind::None || s.exclusive))
    return "manifest: spec.causal false needs decay 'none' and exclusive "
           "false";
  if (!std::isfinite(s.scale))
    return "manifest: spec.scale must be finite";
  if (s.normalized && !(s.eps > 0.0 && std::isfinite(s.eps)))
    return "manifest: spec.eps must be a finite positive number for the "
           "normalized form";
  return "";
}

} // namespace

std::string cuda::parseManifest(const std::string &text, Manifest &out) {
  Value root;
  if (std::string e = json::parse(text, root); !e.empty())
    return "manifest: invalid JSON: " + e;
  if (root.kind != Value::Kind::Object)
    return std::string("manifest: the top level must be an object, got ") +
           json::kindName(root.kind);
  Fields f;
  Manifest m;
  std::string format;
  f.str(root, "", "format", format);
  if (f.err.empty() && format != "linattn-aot")
    return "manifest: unknown format '" + format + "' (expected 'linattn-aot')";
  f.integer(root, "", "version", m.version, 1, INT64_MAX);
  if (f.err.empty() && m.version > LINATTN_RT_MANIFEST_VERSION)
    return "manifest: version " + std::to_string(m.version) +
           " is newer than this runtime reads (" +
           std::to_string(LINATTN_RT_MANIFEST_VERSION) +
           "); rebuild linattn-launch";
  f.str(root, "", "entry", m.entry);
  f.str(root, "", "ptx", m.ptx);
  f.str(root, "", "chip", m.chip);
  if (f.field(root, "", "compiler", /*optional=*/true))
    f.str(root, "", "compiler", m.compiler);
  if (!f.err.empty())
    return f.err;
  int sm;
  bool archSpecific;
  if (!parseChip(m.chip, sm, archSpecific))
    return "manifest: field 'chip' is '" + m.chip +
           "', expected sm_XY or sm_XYa (e.g. sm_90)";
  if (m.entry.empty() || m.ptx.empty())
    return std::string("manifest: field '") +
           (m.entry.empty() ? "entry" : "ptx") + "' is empty";
  if (std::string e = parseSpec(root, m.spec); !e.empty())
    return e;

  const Value *launch = f.field(root, "", "launch");
  if (!f.typed(launch, "launch", Value::Kind::Object, "an object"))
    return f.err;
  f.integer(*launch, "launch.", "threads", m.launch.threads, 1, 1024);
  f.integer(*launch, "launch.", "block_v", m.launch.blockV, 1, 1 << 16);
  f.integer(*launch, "launch.", "chunk_size", m.launch.chunkSize, 1, 1 << 16);
  f.integer(*launch, "launch.", "shared_bytes", m.launch.sharedBytes, 0,
            1 << 30);
  if (!f.err.empty())
    return f.err;
  if (std::string e = parseMap(root, m); !e.empty())
    return e;
  out = std::move(m);
  return "";
}

std::string cuda::loadManifest(const std::string &path, Manifest &out) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return "cannot read manifest '" + path + "'";
  std::ostringstream buf;
  buf << in.rdbuf();
  if (std::string e = parseManifest(buf.str(), out); !e.empty())
    return path + ": " + e;
  return "";
}

bool cuda::parseChip(const std::string &chip, int &sm, bool &archSpecific) {
  if (chip.size() < 5 || chip.compare(0, 3, "sm_") != 0)
    return false;
  size_t i = 3;
  int v = 0;
  while (i < chip.size() && chip[i] >= '0' && chip[i] <= '9' && v < 10000)
    v = v * 10 + (chip[i++] - '0');
  if (i - 3 < 2)
    return false;
  bool a = false;
  if (i < chip.size() && chip[i] == 'a') {
    a = true;
    ++i;
  }
  if (i != chip.size())
    return false;
  sm = v;
  archSpecific = a;
  return true;
}

static std::string smName(int sm) { return "sm_" + std::to_string(sm); }

std::string cuda::checkChip(const std::string &chip, int deviceSm,
                            const std::string &deviceName) {
  int sm;
  bool archSpecific;
  if (!parseChip(chip, sm, archSpecific))
    return "invalid chip '" + chip + "'";
  std::string dev = deviceName + " (" + smName(deviceSm) + ")";
  if (archSpecific && sm != deviceSm)
    return "kernel compiled for " + chip + " (manifest chip) uses " +
           "architecture-specific instructions that only run on " + smName(sm) +
           ", device is " + dev +
           "; regenerate it with --chip=" + smName(deviceSm);
  if (sm > deviceSm)
    return "kernel compiled for " + chip +
           " (manifest chip) cannot run on the older device " + dev;
  return "";
}

//===----------------------------------------------------------------------===//
// Validation
//===----------------------------------------------------------------------===//

int64_t DeviceTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

static std::string fmtShape(const std::vector<int64_t> &s) {
  return reference::formatShape(s);
}

namespace {

/// q/k/v-like tensor in logical order.
struct Dims4 {
  int64_t b = 0, h = 0, t = 0, d = 0;
};

class Checker {
public:
  const KernelSpec &spec;
  std::string err;
  explicit Checker(const KernelSpec &s) : spec(s) {}
  const char *layoutName() const { return spec.bthd ? "bthd" : "bhtd"; }

  bool basic(const char *name, const DeviceTensor &t, size_t rank) {
    if (!err.empty())
      return false;
    if (t.shape.size() != rank) {
      err = std::string(name) + ": expected rank " + std::to_string(rank) +
            ", got shape " + fmtShape(t.shape);
      return false;
    }
    for (int64_t d : t.shape)
      if (d < 0) {
        err = std::string(name) + ": negative extent in shape " +
              fmtShape(t.shape);
        return false;
      }
    if (!t.ptr && t.numel() > 0) {
      err = std::string(name) + ": null device pointer";
      return false;
    }
    return true;
  }

  /// A [B, T, H, D] / [B, H, T, D] tensor (rank 3 without D for scalar
  /// gates).
  bool tokens(const char *name, const DeviceTensor &t, size_t rank,
              Dims4 &out) {
    if (!basic(name, t, rank))
      return false;
    out.b = t.shape[0];
    out.h = spec.bthd ? t.shape[2] : t.shape[1];
    out.t = spec.bthd ? t.shape[1] : t.shape[2];
    out.d = rank == 4 ? t.shape[3] : 1;
    return true;
  }

  std::vector<int64_t> tokenShape(int64_t b, int64_t h, int64_t t,
                                  int64_t d) const {
    std::vector<int64_t> s = spec.bthd ? std::vector<int64_t>{b, t, h}
                                       : std::vector<int64_t>{b, h, t};
    if (d > 0)
      s.push_back(d);
    return s;
  }

  void expect(const char *name, const DeviceTensor &t,
              const std::vector<int64_t> &want, const std::string &why) {
    if (err.empty() && t.shape != want)
      err = std::string(name) + ": expected shape " + fmtShape(want) + " (" +
            why + "), got " + fmtShape(t.shape);
  }
};

/// spec.featureDim, or keyDim in a hand-built spec that left it 0.
int64_t keyWidth(const KernelSpec &s) {
  return s.featureDim > 0 ? s.featureDim : s.keyDim;
}

/// The weight and bias of one side (q or k) of a map with weights.
struct MapSide {
  const char *weightName, *biasName;
  const std::optional<DeviceTensor> *weight, *bias;
  /// Heads of the side's tensor (Hq or Hk) and its name.
  int64_t heads;
  const char *side;
};

/// Checks one side's weight ([a, b] or [heads, a, b]) and bias ([f] or
/// [heads, f], with the weight's head dim or without, like the weight).
void checkMapSide(Checker &c, const KernelSpec &s, const MapSide &m) {
  using reference::FeatureMap;
  bool performer = s.featureMap == FeatureMap::Performer ||
                   s.featureMap == FeatureMap::PerformerHyperbolic;
  int64_t d = s.keyDim, f = s.featureCount;
  std::vector<int64_t> ws =
      performer ? std::vector<int64_t>{f, d} : std::vector<int64_t>{d, f};
  std::vector<int64_t> wsHeads = ws;
  wsHeads.insert(wsHeads.begin(), m.heads);
  std::string what = std::string(reference::featureMapName(s.featureMap)) +
                     ", d = " + std::to_string(d);
  if (s.featureMap != FeatureMap::HedgehogJoint)
    what += std::string(performer ? ", m = " : ", f = ") + std::to_string(f);
  const DeviceTensor &w = **m.weight;
  size_t rank = w.shape.size();
  if ((rank == 2 || rank == 3) && !c.basic(m.weightName, w, rank))
    return;
  if (w.shape != ws && w.shape != wsHeads) {
    c.err = std::string(m.weightName) + ": expected shape " + fmtShape(ws) +
            " or " + fmtShape(wsHeads) + " (" + what + ", one per " + m.side +
            " head), got " + fmtShape(w.shape);
    return;
  }
  if (!*m.bias)
    return;
  // The prepass has one per-head flag for the weight and the bias.
  bool perHead = rank == 3;
  std::vector<int64_t> bs =
      perHead ? std::vector<int64_t>{m.heads, f} : std::vector<int64_t>{f};
  const DeviceTensor &b = **m.bias;
  if ((b.shape.size() == 1 || b.shape.size() == 2) &&
      !c.basic(m.biasName, b, b.shape.size()))
    return;
  if (b.shape != bs)
    c.err = std::string(m.biasName) + ": expected shape " + fmtShape(bs) +
            " (" + what + (perHead ? ", per head" : ", shared") + " like " +
            m.weightName + "), got " + fmtShape(b.shape);
}

/// The feature-map weights: required for the maps with weights, forbidden
/// for the others; k falls back to q's.
void checkMapArgs(Checker &c, const LaunchArgs &a, const Problem &p) {
  const KernelSpec &s = c.spec;
  std::string name = reference::featureMapName(s.featureMap);
  if (!mapTakesWeight(s.featureMap)) {
    for (auto [n, t] : {std::pair{"map_weight", &a.mapWeight},
                        {"map_bias", &a.mapBias},
                        {"key_map_weight", &a.keyMapWeight},
                        {"key_map_bias", &a.keyMapBias}})
      if (*t) {
        c.err =
            std::string(n) + ": feature map '" + name + "' takes no weights";
        return;
      }
    return;
  }
  if (!a.mapWeight) {
    c.err = "map_weight: feature map '" + name + "' needs a weight";
    return;
  }
  if (!mapTakesBias(s.featureMap) && (a.mapBias || a.keyMapBias)) {
    c.err = std::string(a.mapBias ? "map_bias" : "key_map_bias") +
            ": feature map '" + name + "' takes no bias";
    return;
  }
  if (a.keyMapBias && !a.keyMapWeight) {
    c.err = "key_map_bias: given without key_map_weight (k uses map_weight "
            "and map_bias unless key_map_weight is given)";
    return;
  }
  checkMapSide(c, s,
               {"map_weight", "map_bias", &a.mapWeight, &a.mapBias, p.hq, "q"});
  if (!c.err.empty())
    return;
  if (a.keyMapWeight) {
    checkMapSide(c, s,
                 {"key_map_weight", "key_map_bias", &a.keyMapWeight,
                  &a.keyMapBias, p.hk, "k"});
  } else if (a.mapWeight->shape.size() == 3 && p.hq != p.hk) {
    c.err = "map_weight: one map per q head (" + std::to_string(p.hq) +
            ") cannot be applied to the " + std::to_string(p.hk) +
            " k heads; pass key_map_weight";
  }
}

} // namespace

std::string cuda::validateArgs(const Manifest &m, const LaunchArgs &a,
                               Problem &out) {
  using reference::DecayKind;
  const KernelSpec &s = m.spec;
  Checker c(s);
  Dims4 q, k, v;
  c.tokens("q", a.q, 4, q);
  c.tokens("k", a.k, 4, k);
  c.tokens("v", a.v, 4, v);
  if (!c.err.empty())
    return c.err;
  std::string lay = std::string(c.layoutName()) + " layout";
  auto dimErr = [&](const char *name, const char *what, int64_t want,
                    const DeviceTensor &t) {
    return std::string(name) + ": expected " + what + " " +
           std::to_string(want) + " (manifest), got shape " + fmtShape(t.shape);
  };
  if (q.d != s.keyDim)
    return dimErr("q", "key dim", s.keyDim, a.q);
  if (k.d != s.keyDim)
    return dimErr("k", "key dim", s.keyDim, a.k);
  if (v.d != s.valueDim)
    return dimErr("v", "value dim", s.valueDim, a.v);
  if (k.b != q.b || v.b != q.b)
    return std::string(k.b != q.b ? "k" : "v") + ": batch " +
           std::to_string(k.b != q.b ? k.b : v.b) +
           " does not match q's batch " + std::to_string(q.b);
  if (k.t != q.t || v.t != q.t)
    return std::string(k.t != q.t ? "k" : "v") + ": length " +
           std::to_string(k.t != q.t ? k.t : v.t) +
           " does not match q's length " + std::to_string(q.t);
  int64_t H = std::max({q.h, k.h, v.h});
  if (q.h <= 0 || k.h <= 0 || v.h <= 0 || H % q.h || H % k.h || H % v.h)
    return "heads: q, k, v have " + std::to_string(q.h) + ", " +
           std::to_string(k.h) + ", " + std::to_string(v.h) +
           " heads; each must divide the largest (GQA/GVA)";
  Problem p;
  p.batch = q.b;
  p.seqLen = q.t;
  p.hq = q.h;
  p.hk = k.h;
  p.hv = v.h;
  p.heads = H;
  p.numSeqs = q.b;

  if (a.offsets) {
    if (!c.basic("offsets", *a.offsets, 1))
      return c.err;
    if (p.batch != 1)
      return "offsets: packed sequences need batch 1, got " +
             std::to_string(p.batch);
    if (a.offsets->shape[0] < 2)
      return "offsets: need at least 2 entries (N + 1), got " +
             std::to_string(a.offsets->shape[0]);
    p.numSeqs = a.offsets->shape[0] - 1;
  }
  int64_t B = p.batch, T = p.seqLen, N = p.numSeqs;
  // Key width of gates, states and normalizers: Dphi after the map.
  int64_t dk = keyWidth(s);
  const char *dkName = needsMapPrepass(s.featureMap) ? "Dphi" : "Dk";
  c.basic("o", a.o, 4);
  c.expect("o", a.o, c.tokenShape(B, H, T, s.valueDim),
           lay + ", H = max(Hq, Hk, Hv), Dv");

  // Gate.
  switch (s.decay) {
  case DecayKind::None:
    if (a.gate && c.err.empty())
      c.err = "gate: decay 'none' takes no gate";
    break;
  case DecayKind::Constant:
    if (a.gate && c.basic("gate", *a.gate, 1))
      c.expect("gate", *a.gate, {H}, "constant decay: ln(lambda) per head");
    if (!a.gate && c.err.empty()) {
      if (!s.logDecay.empty() && static_cast<int64_t>(s.logDecay.size()) != H)
        c.err = "gate: the manifest's log_decay has " +
                std::to_string(s.logDecay.size()) + " entries for " +
                std::to_string(H) + " heads";
      else if (s.logDecay.empty() && !s.schedule)
        c.err = "gate: constant decay without a schedule or log_decay in the "
                "manifest needs a [H] gate tensor of ln(lambda)";
    }
    break;
  case DecayKind::Delta:
    if (a.gate && c.err.empty())
      c.err = "gate: decay 'delta' takes no gate";
    break;
  case DecayKind::Scalar:
  case DecayKind::GatedDelta:
  case DecayKind::Vector: {
    bool vec = s.decay == DecayKind::Vector;
    if (!a.gate) {
      if (c.err.empty())
        c.err = std::string("gate: the '") + reference::decayKindName(s.decay) +
                "' decay needs a gate";
    } else if (c.basic("gate", *a.gate, vec ? 4 : 3)) {
      c.expect("gate", *a.gate, c.tokenShape(B, H, T, vec ? dk : 0),
               lay + (vec ? std::string(", ") + dkName : ""));
    }
    break;
  }
  }

  // Beta (the delta rules only): f32, one per token and head.
  bool delta = s.decay == DecayKind::Delta || s.decay == DecayKind::GatedDelta;
  if (delta && !a.beta && c.err.empty())
    c.err = std::string("beta: the '") + reference::decayKindName(s.decay) +
            "' rule needs a beta tensor";
  else if (!delta && a.beta && c.err.empty())
    c.err = "beta: only the delta rules take a beta";
  else if (a.beta && c.basic("beta", *a.beta, 3))
    c.expect("beta", *a.beta, c.tokenShape(B, H, T, 0), lay + " f32");

  // States.
  std::vector<int64_t> st = s.stateValueMajor
                                ? std::vector<int64_t>{N, H, s.valueDim, dk}
                                : std::vector<int64_t>{N, H, dk, s.valueDim};
  std::string stWhy =
      s.stateValueMajor
          ? std::string("[N, H, Dv, ") + dkName + "] f32, value-major"
          : std::string("[N, H, ") + dkName + ", Dv] f32";
  if (a.initialState && c.basic("initial_state", *a.initialState, 4))
    c.expect("initial_state", *a.initialState, st, stWhy);
  if (a.finalState && c.basic("final_state", *a.finalState, 4))
    c.expect("final_state", *a.finalState, st, stWhy);

  // Normalizers.
  for (auto [name, z] :
       {std::pair<const char *, const std::optional<DeviceTensor> *>{
            "initial_normalizer", &a.initialNormalizer},
        {"final_normalizer", &a.finalNormalizer}}) {
    if (!*z || !c.err.empty())
      continue;
    if (!s.normalized)
      c.err = std::string(name) +
              ": only normalized kernels (spec.normalized) take a normalizer";
    else if (c.basic(name, **z, 3))
      c.expect(name, **z, {N, H, dk},
               std::string("[N, H, ") + dkName + "] f32");
  }
  if (c.err.empty())
    checkMapArgs(c, a, p);
  if (!c.err.empty())
    return c.err;
  out = p;
  return "";
}

std::string cuda::validateOffsets(const std::vector<int64_t> &off,
                                  int64_t seqLen) {
  if (off.size() < 2)
    return "offsets: need at least 2 entries (N + 1), got " +
           std::to_string(off.size());
  if (off.front() != 0)
    return "offsets: entry 0 must be 0, got " + std::to_string(off.front());
  for (size_t i = 1; i < off.size(); ++i)
    if (off[i] < off[i - 1])
      return "offsets: entry " + std::to_string(i) + " (" +
             std::to_string(off[i]) + ") is smaller than entry " +
             std::to_string(i - 1) + " (" + std::to_string(off[i - 1]) + ")";
  if (off.back() != seqLen)
    return "offsets: the last entry must be the total length T = " +
           std::to_string(seqLen) + ", got " + std::to_string(off.back());
  return "";
}

//===----------------------------------------------------------------------===//
// Geometry and parameters
//===----------------------------------------------------------------------===//

std::string cuda::computeGeometry(const Manifest &m, const Problem &p,
                                  Geometry &out) {
  int64_t gx = (m.spec.valueDim + m.launch.blockV - 1) / m.launch.blockV;
  if (p.heads > 65535)
    return "grid: " + std::to_string(p.heads) +
           " heads exceed the grid y limit 65535";
  if (p.numSeqs > 65535)
    return "grid: " + std::to_string(p.numSeqs) +
           " sequences exceed the grid z limit 65535";
  Geometry g;
  g.grid[0] = static_cast<unsigned>(gx);
  g.grid[1] = static_cast<unsigned>(p.heads);
  g.grid[2] = static_cast<unsigned>(p.numSeqs);
  g.block[0] = static_cast<unsigned>(m.launch.threads);
  g.block[1] = g.block[2] = 1;
  g.sharedBytes = static_cast<unsigned>(m.launch.sharedBytes);
  out = g;
  return "";
}

PackedParams::PackedParams() {
  for (int i = 0; i < NumSlots; ++i)
    params[i] = &slots[i];
}

PackedParams::PackedParams(const PackedParams &other) : PackedParams() {
  std::copy(std::begin(other.slots), std::end(other.slots), slots);
  size = other.size;
}

PackedParams &PackedParams::operator=(const PackedParams &other) {
  std::copy(std::begin(other.slots), std::end(other.slots), slots);
  size = other.size;
  return *this;
}

/// A memref<?xT> as the NVVM lowering expands it: allocated, aligned,
/// offset, size, stride; a null tensor is absent (null, size 0).
static void putTensor(uint64_t *slots, int &i, const DeviceTensor *t) {
  uint64_t ptr = t ? t->ptr : 0;
  int64_t n = t ? t->numel() : 0;
  slots[i++] = ptr;
  slots[i++] = ptr;
  slots[i++] = 0;
  slots[i++] = static_cast<uint64_t>(n);
  slots[i++] = 1;
}

static const DeviceTensor *optTensor(const std::optional<DeviceTensor> &t) {
  return t ? &*t : nullptr;
}

void cuda::packParams(const LaunchArgs &a, const Problem &p, PackedParams &out,
                      const DeviceTensor *gate, bool normalized, bool delta) {
  int i = 0;
  auto tensor = [&](const DeviceTensor *t) { putTensor(out.slots, i, t); };
  auto opt = optTensor;
  tensor(&a.q);
  tensor(&a.k);
  tensor(&a.v);
  tensor(gate ? gate : opt(a.gate));
  tensor(opt(a.initialState));
  tensor(&a.o);
  tensor(opt(a.finalState));
  tensor(opt(a.offsets));
  for (int64_t s :
       {p.numSeqs, p.seqLen, p.hq, p.hk, p.hv,
        int64_t(a.initialState.has_value()), int64_t(a.finalState.has_value()),
        int64_t(a.offsets.has_value())})
    out.slots[i++] = static_cast<uint64_t>(s);
  out.size = PackedParams::NumBaseSlots;
  if (delta) { // ABI 17; never together with the normalizer parameters
    tensor(opt(a.beta));
    out.size = PackedParams::NumBaseSlots + 5;
  }
  if (!normalized)
    return;
  tensor(opt(a.initialNormalizer));
  tensor(opt(a.finalNormalizer));
  out.slots[i++] = a.initialNormalizer.has_value();
  out.slots[i++] = a.finalNormalizer.has_value();
  out.size = PackedParams::NumSlots;
}

//===----------------------------------------------------------------------===//
// The feature-map prepass
//===----------------------------------------------------------------------===//

MapWorkspace cuda::mapWorkspace(const Manifest &m, const Problem &p) {
  MapWorkspace w;
  w.paddedDim = m.map ? m.map->paddedDim : paddedFeatureDim(m.spec.featureDim);
  w.rowsQ = p.batch * p.seqLen * p.hq;
  w.rowsK = p.batch * p.seqLen * p.hk;
  size_t row = static_cast<size_t>(w.paddedDim) * elemTypeSize(m.spec.dtype);
  w.qBytes = static_cast<size_t>(w.rowsQ) * row;
  w.kBytes = static_cast<size_t>(w.rowsK) * row;
  // phi(k) on its own 256-byte boundary, like a separate allocation.
  w.kOffset = (w.qBytes + 255) / 256 * 256;
  w.bytes = w.kOffset + w.kBytes;
  return w;
}

std::pair<DeviceTensor, DeviceTensor>
cuda::mapWorkspaceTensors(const Manifest &m, const Problem &p,
                          const MapWorkspace &ws, uint64_t base) {
  Checker c(m.spec);
  DeviceTensor q{base, c.tokenShape(p.batch, p.hq, p.seqLen, ws.paddedDim)};
  DeviceTensor k{base + ws.kOffset,
                 c.tokenShape(p.batch, p.hk, p.seqLen, ws.paddedDim)};
  return {q, k};
}

PackedMapParams::PackedMapParams() {
  for (int i = 0; i < NumSlots; ++i)
    params[i] = &slots[i];
}

PackedMapParams::PackedMapParams(const PackedMapParams &other)
    : PackedMapParams() {
  std::copy(std::begin(other.slots), std::end(other.slots), slots);
}

PackedMapParams &PackedMapParams::operator=(const PackedMapParams &other) {
  std::copy(std::begin(other.slots), std::end(other.slots), slots);
  return *this;
}

void cuda::packMapParams(const LaunchArgs &a, const Problem &p, bool key,
                         const DeviceTensor &out, PackedMapParams &pp) {
  const std::optional<DeviceTensor> *w = &a.mapWeight, *b = &a.mapBias;
  if (key && a.keyMapWeight) {
    w = &a.keyMapWeight;
    b = &a.keyMapBias;
  }
  int64_t heads = key ? p.hk : p.hq;
  int i = 0;
  putTensor(pp.slots, i, key ? &a.k : &a.q);
  putTensor(pp.slots, i, optTensor(*w));
  putTensor(pp.slots, i, optTensor(*b));
  putTensor(pp.slots, i, &out);
  bool perHead = *w && (*w)->shape.size() == 3;
  for (int64_t v : {p.batch * p.seqLen * heads, p.seqLen, heads,
                    int64_t(perHead), int64_t(b->has_value())})
    pp.slots[i++] = static_cast<uint64_t>(v);
}

std::string cuda::computeMapGeometry(const Manifest &m, int64_t rows,
                                     Geometry &out) {
  if (!m.map)
    return "manifest: feature map '" +
           std::string(reference::featureMapName(m.spec.featureMap)) +
           "' has no map prepass";
  int64_t blocks = (rows + m.map->rowsPerBlock - 1) / m.map->rowsPerBlock;
  if (blocks > 2147483647)
    return "map grid: " + std::to_string(rows) + " rows need " +
           std::to_string(blocks) +
           " blocks, more than the grid x limit 2147483647";
  Geometry g;
  g.grid[0] = static_cast<unsigned>(blocks);
  g.grid[1] = g.grid[2] = 1;
  g.block[0] = static_cast<unsigned>(m.map->threads);
  g.block[1] = g.block[2] = 1;
  g.sharedBytes = 0;
  out = g;
  return "";
}
