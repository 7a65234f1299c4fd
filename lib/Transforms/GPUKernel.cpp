//===- GPUKernel.cpp - linattn.attention -> tensor-core GPU kernel -*- C++
//-*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
//
// Implements --convert-linattn-to-gpu: one `gpu.func` per attention op that
// runs the chunked form of MATH.md 6 with one thread block per (value tile,
// head, sequence). The kernel ABI is docs/gpu-kernel-abi.md.
//
// Fragment layouts are those of `mma.sync.m16n8k16` (PTX ISA, "Matrix
// fragments for mma.m16n8k16"): with g = lane / 4 and q = lane % 4, the A
// operand holds rows {g, g+8} x cols {2q, 2q+1, 2q+8, 2q+9}, B holds rows
// (k) {2q, 2q+1, 2q+8, 2q+9} x col (n) g, and the f32 accumulator holds rows
// {g, g+8} x cols {2q, 2q+1}. Shared-memory tiles are stored so that every
// operand pair is two consecutive 16-bit elements (one 32-bit load): Q and K
// row-major [token][d], V and S transposed ([v][token], [v][d]).
//
//===----------------------------------------------------------------------===//

#include "GPUEmitter.h"
#include "linattn/Transforms/Passes.h"

#include "linattn/Dialect/LinAttn/IR/LinAttnOps.h"

#include "mlir/AsmParser/AsmParser.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/IR/PatternMatch.h"

namespace mlir::linattn {
#define GEN_PASS_DEF_LINATTNTOGPU
#define GEN_PASS_DEF_LINATTNEXTERNDYNAMICSHARED
#include "linattn/Transforms/Passes.h.inc"
} // namespace mlir::linattn

using namespace mlir;
using namespace mlir::linattn;

/// Row padding of the shared-memory tiles in elements (16 bytes), so that
/// the column-pair loads of a warp spread over the banks.
static constexpr int64_t kPad = 8;

/// Shared-memory bytes of the mma.sync kernel: padded row-major tiles. Q and
/// K (raw K with vector gates) live in a ring of `stages` slots; with more
/// than one stage a slot also holds the chunk's raw V rows and raw vector
/// gates (counted as f32), which cp.async fills ahead of use.
static int64_t syncSharedBytes(int64_t dk, int64_t chunk, int64_t blockV,
                               int64_t elementBytes, bool vectorGates,
                               int64_t stages) {
  int64_t rowTile = chunk * (dk + kPad) * elementBytes;
  int64_t slot = 2 * rowTile;
  if (stages > 1)
    slot += chunk * blockV * elementBytes + (vectorGates ? 4 * chunk * dk : 0);
  int64_t single = (blockV * (chunk + kPad)   // Vᵀ
                    + blockV * (dk + kPad)) * // Sᵀ
                   elementBytes;
  if (vectorGates) // + K̃ and the per-key cumulative gates
    single += rowTile + 4 * chunk * dk;
  else // + raw and cumulative gates
    single += 2 * 4 * chunk;
  return stages * slot + single;
}

/// Shared-memory bytes of the wgmma kernel: unpadded core-matrix tiles
/// (every tile a multiple of 128 bytes, so all stay 128-byte aligned), Q and
/// K (+ raw V rows with more than one stage) in a ring of `stages` slots.
static int64_t wgmmaSharedBytes(int64_t dk, int64_t chunk, int64_t blockV,
                                int64_t elementBytes, bool vectorGates,
                                int64_t stages) {
  int64_t slot = 2 * chunk * dk * elementBytes;
  if (stages > 1)
    slot += chunk * blockV * elementBytes + (vectorGates ? 4 * chunk * dk : 0);
  int64_t elems = blockV * chunk  // Vᵀ
                  + blockV * dk   // Sᵀ
                  + chunk * chunk // P
                  + dk * chunk;   // decayed Kᵀ
  // Vector gates: + the cumulative gates [C][Dk] (f32; K̃ shares the
  // decayed Kᵀ's tile, Q̃ is written over Q); otherwise + the per-token
  // gates and key factors. + 8: the descriptor base slot.
  int64_t gates = vectorGates ? 4 * chunk * dk : 3 * 4 * chunk;
  return stages * slot + elems * elementBytes + gates + 8;
}

/// Shared-memory bytes of the normalizer z (mma.sync): two fp32 copies of
/// the Dk-vector, the one read by a chunk and the one it writes.
static int64_t normalizerSharedBytes(int64_t dk) { return 2 * 4 * dk; }

static int64_t deltaSharedBytes(int64_t chunk, int64_t elementBytes);

/// All shared-memory bytes of the wgmma kernel for `form`: + z and the
/// rows' denominators when normalized, + the delta rule's tiles.
static int64_t wgmmaFormSharedBytes(int64_t dk, int64_t chunk, int64_t blockV,
                                    int64_t elementBytes,
                                    const GpuKernelForm &form, int64_t stages) {
  int64_t bytes = wgmmaSharedBytes(dk, chunk, blockV, elementBytes,
                                   form.vectorGates, stages);
  if (form.normalized)
    bytes += normalizerSharedBytes(dk) + 4 * chunk;
  if (form.delta)
    bytes += deltaSharedBytes(chunk, elementBytes);
  return bytes;
}

/// Shared-memory bytes the delta rule adds (mma.sync): the fp32 [C][C + 1]
/// matrix holding A below the diagonal and (I + A)^{-1} transposed above
/// it, the chunk's beta (fp32) and (I + A)^{-1} as a padded 16-bit tile.
static int64_t deltaSharedBytes(int64_t chunk, int64_t elementBytes) {
  return 4 * chunk * (chunk + 1) + 4 * chunk +
         chunk * (chunk + kPad) * elementBytes;
}

std::string mlir::linattn::planGpuKernel(const PTXPipelineOptions &options,
                                         int64_t dk, int64_t dv,
                                         int64_t elementBytes, bool vectorGates,
                                         GpuKernelPlan &plan) {
  GpuKernelForm form;
  form.vectorGates = vectorGates;
  return planGpuKernel(options, dk, dv, elementBytes, form, plan);
}

std::string mlir::linattn::planGpuKernel(const PTXPipelineOptions &options,
                                         int64_t dk, int64_t dv,
                                         int64_t elementBytes,
                                         const GpuKernelForm &form,
                                         GpuKernelPlan &plan) {
  bool vectorGates = form.vectorGates;
  std::string msg;
  llvm::raw_string_ostream os(msg);
  StringRef chip = options.chip;
  int64_t limit = gpuSharedLimit(chip);
  if (!limit) {
    os << "unsupported chip '" << chip
       << "' (expected sm_80, sm_86, sm_87, sm_89, sm_90 or sm_90a)";
    return msg;
  }
  if (!form.prepassMap.empty()) {
    int64_t width = dk;
    dk = llvm::alignTo(width, 16);
    if (dk > 256) {
      os << "feature map '" << form.prepassMap << "' gives " << width
         << " features (padded to " << dk
         << "), over the GPU kernel's key width limit of 256";
      return msg;
    }
    if (vectorGates && dk != width) {
      os << "vector gates on the GPU need the feature width to be a "
            "multiple of 16; feature map '"
         << form.prepassMap << "' gives " << width;
      return msg;
    }
  }
  plan.keyDim = dk;
  if (dk % 16 || dk > 256 || dk <= 0) {
    os << "key dim " << dk << " must be a multiple of 16 and at most 256";
    return msg;
  }
  if (form.delta && (form.normalized || !form.causal)) {
    os << "the delta rule has no "
       << (form.normalized ? "normalized" : "non-causal") << " GPU form";
    return msg;
  }
  bool hopper = chip.starts_with("sm_90");
  StringRef mma = options.mma;
  if (mma != "auto" && mma != "sync" && mma != "wgmma") {
    os << "mma must be auto, sync or wgmma, got '" << mma << "'";
    return msg;
  }
  if (mma == "wgmma" && !hopper) {
    os << "mma=wgmma needs sm_90 or sm_90a, not " << chip;
    return msg;
  }
  int64_t warps = options.warps ? options.warps : 4;
  // wgmma needs whole warpgroups, M = 64 query rows per warpgroup, and the
  // state's key rows in 64-row tiles shared out evenly among warpgroups.
  auto wgmmaFits = [&] {
    int64_t groups = warps / 4;
    int64_t chunk = options.chunkSize ? options.chunkSize : 64 * groups;
    return warps % 4 == 0 && groups > 0 && chunk == 64 * groups &&
           dk % 64 == 0 && (dk / 64) % groups == 0;
  };
  // Default block-v: the wgmma delta rule keeps 32 (its solve and new
  // values need the registers a wider state would take).
  auto defaultBlockV = [&](bool wgmma) {
    return std::min<int64_t>(
        options.blockV ? options.blockV : (wgmma && !form.delta ? 64 : 32), dv);
  };
  // Auto also keeps to mma.sync where the wgmma kernel's shared memory
  // (with the default block-v) would not fit, e.g. GLA at key dim 128 with
  // 3 stages, and for GLA at key dims over 128, where the wgmma kernel
  // spills (its state and the scores' operands exceed 255 registers).
  auto wgmmaPreferred = [&] {
    if (vectorGates && dk > 128)
      return false;
    int64_t chunk = options.chunkSize ? options.chunkSize : 64 * (warps / 4);
    return wgmmaFormSharedBytes(dk, chunk, defaultBlockV(true), elementBytes,
                                form,
                                options.stages ? options.stages : 1) <= limit;
  };
  plan.wgmma = mma == "wgmma" ||
               (mma == "auto" && hopper && wgmmaFits() && wgmmaPreferred());
  plan.targetChip = plan.wgmma ? "sm_90a" : chip.str();
  plan.warps = warps;
  plan.threads = 32 * warps;
  if (warps <= 0 || warps > 16) {
    os << "warps must be in [1, 16], got " << warps;
    return msg;
  }
  int64_t groups = warps / 4;
  plan.chunkSize = options.chunkSize
                       ? options.chunkSize
                       : (plan.wgmma ? 64 * std::max<int64_t>(groups, 1) : 64);
  plan.blockV = defaultBlockV(plan.wgmma);
  plan.stages = options.stages ? options.stages : 1;
  if (plan.stages < 1 || plan.stages > 4) {
    os << "stages must be in [1, 4], got " << plan.stages;
    return msg;
  }
  int64_t C = plan.chunkSize, BV = plan.blockV;
  if (plan.wgmma) {
    if (!wgmmaFits()) {
      os << "mma=wgmma needs warps a multiple of 4, chunk-size 64 per "
            "warpgroup and a key dim that is a multiple of 64 per warpgroup "
            "(warps "
         << warps << ", chunk-size " << C << ", key dim " << dk << ")";
      return msg;
    }
    if (BV <= 0 || BV % 8 || BV > 256 || dv % BV) {
      os << "block-v " << BV
         << " must be a multiple of 8, at most 256, and divide the value dim "
         << dv;
      return msg;
    }
    // fp32 accumulators per thread: the state share, P and the outputs.
    int64_t accRegs = dk / 64 / groups * BV / 2 + C / groups / 2 + BV / 2;
    if (accRegs > 192) {
      os << "block-v " << BV << " needs " << accRegs
         << " accumulator registers per thread (at most 192); lower block-v";
      return msg;
    }
    plan.sharedBytes =
        wgmmaFormSharedBytes(dk, C, BV, elementBytes, form, plan.stages);
  } else {
    if (C <= 0 || C % (16 * warps) || C > 256) {
      os << "chunk-size " << C << " must be a multiple of 16 * warps ("
         << 16 * warps << ") and at most 256";
      return msg;
    }
    if (BV <= 0 || BV % (8 * warps) || dv % BV) {
      os << "block-v " << BV << " must be a multiple of 8 * warps ("
         << 8 * warps << ") and divide the value dim " << dv;
      return msg;
    }
    if (form.rowScalars() && C > 32 * warps) {
      os << "chunk-size " << C << " needs at least " << C
         << " threads (warps >= " << C / 32
         << ") with scalar gates or beta, which are staged one chunk row "
            "per thread (warps "
         << warps << ")";
      return msg;
    }
    plan.sharedBytes =
        syncSharedBytes(dk, C, BV, elementBytes, vectorGates, plan.stages);
    if (form.normalized)
      plan.sharedBytes += normalizerSharedBytes(dk);
    if (form.delta)
      plan.sharedBytes += deltaSharedBytes(C, elementBytes);
  }
  if (plan.sharedBytes > limit) {
    os << "needs " << plan.sharedBytes << " bytes of shared memory (chunk-size "
       << C << ", key dim " << dk << ", block-v " << BV << ", stages "
       << plan.stages << "), over the " << limit << " bytes " << chip
       << " allows per block; lower " << (plan.stages > 1 ? "stages, " : "");
    // The wgmma kernel's chunk is fixed at 64 rows per warpgroup.
    if (plan.wgmma)
      os << "block-v, or use mma=sync";
    else
      os << "chunk-size or block-v";
    return msg;
  }
  return "";
}

int64_t mlir::linattn::gpuSharedLimit(StringRef chip) {
  return llvm::StringSwitch<int64_t>(chip)
      .Cases({"sm_80", "sm_87"}, 163 * 1024)
      .Cases({"sm_86", "sm_89"}, 99 * 1024)
      .Cases({"sm_90", "sm_90a"}, 227 * 1024)
      .Default(0);
}

namespace {

/// Log-gates below this are clamped, as on the CPU (MATH.md 9.3).
constexpr double kMinLogGate = -1000.0;

/// Everything static about the kernel.
struct GpuConfig {
  DecayKind decay = DecayKind::None;
  FeatureMapKind featureMap = FeatureMapKind::Identity;
  double scale = 1.0;
  Layout layout = Layout::BHTD;
  bool valueMajor = false;
  std::optional<double> clampMin;
  int64_t dk = 0, dv = 0, chunk = 64, warps = 4, blockV = 64;
  /// The feature-map prepass that maps q and k (width-changing maps).
  std::optional<GpuMapConfig> map;
  /// Key width of the states and normalizers in memory: Dφ, where dk is Dφ
  /// rounded up to 16 when the feature-map prepass pads q and k with zero
  /// features (the state rows of those features stay zero).
  int64_t stateDk = 0;
  /// Warpgroup wgmma (sm_90a) instead of per-warp mma.sync.
  bool wgmma = false;
  /// Chunks in flight (cp.async ring slots); 1: no prefetch.
  int64_t stages = 1;
  /// The read (MATH.md 2, Reference.h): causal = false reads S_T for every
  /// token (a second pass over the chunks); exclusive reads before the
  /// token's own write (mask s < t); normalized divides by q·z + eps.
  bool causal = true, exclusive = false, normalized = false;
  double eps = 1e-10;
  Type elt, gateElt, betaElt;
  NVVM::MMATypes mmaType = NVVM::MMATypes::bf16;

  int64_t threads() const { return 32 * warps; }
  int64_t groups() const { return warps / 4; }
  /// fp32 state values per thread.
  int64_t stateValues() const {
    return wgmma ? dk / 64 / groups() * blockV / 2
                 : dk / 16 * (blockV / warps / 8) * 4;
  }
  int64_t ldK() const { return dk + kPad; }
  int64_t ldC() const { return chunk + kPad; }
  /// Log-gates per token (all decays but none and the ungated delta rule).
  bool hasGates() const {
    return decay != DecayKind::None && decay != DecayKind::Delta;
  }
  /// The (gated) delta rule: per-token beta, new values by the WY/UT form.
  bool delta() const {
    return decay == DecayKind::Delta || decay == DecayKind::GatedDelta;
  }
  /// Per-key (GLA) gates: the decay sits inside the key contraction.
  bool vectorGates() const { return decay == DecayKind::Vector; }
  /// Scalar gates prefetched into registers (one per thread and chunk).
  bool gateFifo() const { return stages > 1 && decay == DecayKind::Scalar; }
  /// Whether staging transforms Q / K (feature map, query scale).
  bool mapsQuery() const {
    return featureMap != FeatureMapKind::Identity || scale != 1.0;
  }
  bool mapsKey() const { return featureMap != FeatureMapKind::Identity; }
};

/// An mma accumulator fragment: c0..c3.
using Frag = SmallVector<Value, 4>;

/// Builds the body of `linattn_fwd`.
class KernelEmitter : public EmitterBase {
public:
  KernelEmitter(OpBuilder &b, Location loc, const GpuConfig &cfg)
      : EmitterBase(b, loc), cfg(cfg) {}

  void emit(gpu::GPUFuncOp func);

private:
  //===--- Scalars ----------------------------------------------------===//
  Value toElt(Value x) { return arith::TruncFOp::create(b, loc, cfg.elt, x); }

  //===--- Tensor-core operands ---------------------------------------===//
  /// One mma operand register: two consecutive 16-bit elements.
  Value operand(Value pair) {
    if (cfg.mmaType == NVVM::MMATypes::f16)
      return pair;
    Value w = vector::BitCastOp::create(
        b, loc, VectorType::get({1}, b.getI32Type()), pair);
    return vector::ExtractOp::create(b, loc, w, ArrayRef<int64_t>{0});
  }
  /// The pair at [row, col], [row, col + 1] of a shared-memory tile.
  Value pairAt(Value tile, Value row, Value col) {
    auto v = vector::LoadOp::create(b, loc, VectorType::get({2}, cfg.elt), tile,
                                    tileIndex(tile, row, col));
    v.setAlignment(4);
    return operand(v);
  }
  /// Packs two f32 values into one operand register.
  Value pack(Value lo, Value hi) {
    Value v =
        vector::FromElementsOp::create(b, loc, VectorType::get({2}, cfg.elt),
                                       ValueRange{toElt(lo), toElt(hi)});
    return operand(v);
  }
  /// A operand from a row-major tile: rows row0 + {g, g+8}, cols col0 + ...
  SmallVector<Value> fragA(Value tile, Value row0, Value col0) {
    Value r1 = add(row0, 8), c1 = add(col0, 8);
    return {pairAt(tile, row0, col0), pairAt(tile, r1, col0),
            pairAt(tile, row0, c1), pairAt(tile, r1, c1)};
  }
  /// B operand from a tile stored [n][k]: n = n0 (already + g), k = k0 + 2q.
  SmallVector<Value> fragB(Value tile, Value n, Value k0) {
    return {pairAt(tile, n, k0), pairAt(tile, n, add(k0, 8))};
  }
  /// Indices of (row, col) in `tile`: the wgmma kernel's operand tiles
  /// (Q, K, K̃, Sᵀ with Dk columns, Vᵀ with C) are core-matrix blocked,
  /// every other tile is row-major.
  SmallVector<Value> tileIndex(Value tile, Value row, Value col) {
    if (cfg.wgmma && tile == vt)
      return {blockedOffset(row, col, cfg.chunk)};
    if (cfg.wgmma && llvm::is_contained({qs, ks, kr, st}, tile))
      return {blockedOffset(row, col, cfg.dk)};
    return {row, col};
  }
  /// tileIndex(r0 + dr, c0 + dc) of a tile with Dk columns (Q, K, K̃, Sᵀ),
  /// written so that it folds into a per-thread
  /// base and a constant (addresses in unrolled code then cost no
  /// registers): for wgmma, dr must be a multiple of 8 and c0 % 8 + dc % 8
  /// at most 7, e.g. c0 = 2q and dc % 8 <= 1.
  /// `c8`, when given, adds a dynamic multiple of 8 columns.
  SmallVector<Value> dkIndexAt(Value r0, int64_t dr, Value c0, int64_t dc,
                               Value c8 = nullptr) {
    if (!cfg.wgmma) {
      Value c = add(c0, dc);
      return {add(r0, dr), c8 ? add(c, c8) : c};
    }
    assert(dr % 8 == 0 && dc % 8 <= 1);
    // 8 columns on is one 64-element core matrix on.
    Value at = add(blockedOffset(r0, c0, cfg.dk),
                   dr / 8 * cfg.dk * 8 + dc / 8 * 64 + dc % 8);
    return {c8 ? add(at, mul(c8, 8)) : at};
  }
  /// pairAt of a tile with Dk columns at dkIndexAt(r0, dr, c0, dc, c8).
  Value pairDk(Value tile, Value r0, int64_t dr, Value c0, int64_t dc,
               Value c8 = nullptr) {
    auto v = vector::LoadOp::create(b, loc, VectorType::get({2}, cfg.elt), tile,
                                    dkIndexAt(r0, dr, c0, dc, c8));
    v.setAlignment(4);
    return operand(v);
  }
  /// fragB from a tile with Dk columns in either layout: n = g + dn,
  /// k = 2q + k16 (k16 a multiple of 16).
  SmallVector<Value> fragBDk(Value tile, int64_t dn, Value k16) {
    Value twoQ = mul(qd, 2);
    return {pairDk(tile, g, dn, twoQ, 0, k16),
            pairDk(tile, g, dn, twoQ, 8, k16)};
  }
  Frag mma(ArrayRef<Value> a, ArrayRef<Value> bOp, ArrayRef<Value> c) {
    auto structTy =
        LLVM::LLVMStructType::getLiteral(b.getContext(), {f32, f32, f32, f32});
    auto op = NVVM::MmaOp::create(
        b, loc, structTy, a, bOp, c, ArrayRef<int64_t>{16, 8, 16}, std::nullopt,
        std::nullopt, std::array<NVVM::MMATypes, 2>{cfg.mmaType, cfg.mmaType},
        std::array<NVVM::MMALayout, 2>{NVVM::MMALayout::row,
                                       NVVM::MMALayout::col});
    Frag d;
    for (int64_t i = 0; i < 4; ++i)
      d.push_back(LLVM::ExtractValueOp::create(b, loc, op, i));
    return d;
  }
  Frag zeroFrag() { return Frag(4, f(0.0)); }

  //===--- Kernel pieces ----------------------------------------------===//
  Value sharedTile(Value base, int64_t byteOffset, ArrayRef<int64_t> shape,
                   Type type);
  Value sharedTile(Value base, Value byteOffset, ArrayRef<int64_t> shape,
                   Type type);
  /// Element offset of (token, d) of a [B, T, H, D] / [B, H, T, D] tensor.
  Value tokenOffset(Value batch, Value token, Value head, Value heads,
                    int64_t dim);
  /// Calls body(row, col) for this thread's 8-element items of a C x width
  /// tile (item i * threads + tid). Staging and the cp.async ring use the
  /// same mapping, so a thread only ever reads back what it copied itself.
  void forEachItem(int64_t width, function_ref<void(Value, Value)> body);
  /// Loads rows [c0, c0 + C) of one head into shared memory, 8 elements
  /// per thread and step; `put(row, col, vec)` stores the vector<8xelt>.
  void stageRows(Value src, Value batch, Value tok0, Value rows, Value head,
                 Value heads, int64_t dim, Value col0, int64_t width,
                 function_ref<void(Value, Value, Value)> put,
                 Type elt = nullptr);
  Value featureMap(Value vec8, bool isQuery);
  /// Stages Q, K and Vᵀ of rows [tok0, tok0 + rows) and the raw gates.
  void stageInputs(Value tok0, Value rows, Value vCol0);
  /// Loads the raw log-gate of each row into graw (0 past the end).
  void stageGates(Value tok0, Value rows);
  /// This thread's row's raw scalar gate (gate type; 0 at or past `rows`).
  Value rawGate(Value tok0, Value rows);
  /// This thread's row's element of a per-token [B, T, H] / [B, H, T]
  /// tensor `src` of element type `elt` (0 at or past `rows`).
  Value rowScalar(Value src, Type elt, Value tok0, Value rows);
  /// Loads the chunk's beta into betas (f32, 0 past the end).
  void stageBeta(Value tok0, Value rows);
  /// The f32 log-gate of this thread's row from its raw gate (ignored for
  /// constant decays): clamped, and 0 at or past `rows`.
  Value finishGate(Value raw, Value rows);
  /// Stores one staged 8-element row piece: Q/K (feature-mapped), Vᵀ
  /// (transposed), raw vector gates (clamped, as f32).
  void putQK(Value tile, Value row, Value col, Value vec, bool isQuery);
  void putVT(Value row, Value col, Value vec);
  void putGate8(Value row, Value col, Value vec);
  /// Rows of the chunk starting at c0: min(C, len - c0) (negative past the
  /// end).
  Value chunkRows(Value c0) {
    return arith::MinSIOp::create(b, loc, idx(cfg.chunk),
                                  arith::SubIOp::create(b, loc, len, c0));
  }
  /// Everything chunk c0 needs before its first barrier but the state:
  /// staged inputs and gates (stages = 1), or the prefetch of chunk
  /// c0 + (S - 1) C, the wait for chunk c0's copies and their commit.
  void beginChunk(Value c0, Value tok0, Value rows);
  //===--- cp.async ring (stages > 1) -----------------------------------===//
  /// Ring slot of the chunk starting at c0.
  Value slotOf(Value c0);
  /// Points qs / ks (kr) / vraw / graw8 at `slot`.
  void useSlot(Value slot);
  /// Issues the cp.async copies of the chunk starting at c0 (zeros past the
  /// end) into its slot, and commits them as one group.
  void issueChunk(Value c0);
  /// Copies rows [tok0, tok0 + rows) of `src` (8 elements per item) into
  /// `tile` at `at(row, col)` with cp.async; rows past the end get zeros.
  void copyRowsAsync(Value src, Value tok0, Value rows, Value hd, Value hds,
                     int64_t dim, Value col0, int64_t width, Type elt,
                     Value tile,
                     function_ref<SmallVector<Value>(Value, Value)> at);
  /// One chunk with mma.sync (state: this thread's values, updated).
  void emitChunk(Value c0, SmallVector<Value> &state);
  /// One chunk with per-key (GLA) gates, mma.sync.
  void emitChunkVector(Value c0, SmallVector<Value> &state);
  /// Vector gates: the cumulative gates in gb and K̃ in ks, from the staged
  /// raw gates and raw K (no barriers).
  void cumulateVectorGates();
  /// Vector gates, the 16 query rows from row0 (one warp's, mma.sync from
  /// registers): p, the masked and decayed scores (C/8 fragments); out =
  /// (q ⊙ exp(b_t))·S (BV/8 fragments, from Sᵀ in st), or with `overQ`
  /// (wgmma) q ⊙ exp(b_t) written over the rows' Q instead (with one
  /// barrier, which every thread must reach); normalized,
  /// qz[i] this lane's share of (q ⊙ exp(b_t))·z for row t0 / t1 (zs row
  /// zRow).
  void vectorScores(Value row0, Value zRow, SmallVector<Frag> &p,
                    SmallVector<Frag> &out, Value qz[2], bool overQ = false);
  /// Vector gates: k_s[d] exp(b_C[d] - b_s[d]) (f32) from raw K and gb.
  Value vectorDecayedKey(Value s, Value d);
  /// Vector gates: z[d] ← exp(b_C[d]) z[d] + Σ_s k_s[d] exp(b_C[d] - b_s[d]).
  void updateNormalizerVector(Value c0, Value rows) {
    updateNormalizer(
        c0, rows,
        [&](Value d) {
          return exp(load(gb, {idx(cfg.chunk - 1), d}));
        },
        [&](Value s, Value d) { return vectorDecayedKey(s, d); });
  }
  /// The (gated) delta rule's new values of one chunk (mma.sync): replaces
  /// Vᵀ in vt by Ṽᵀ, after which emitChunk's outputs and state update are
  /// those of the delta rule.
  void emitDeltaValues(Value c0);
  /// T = (I + A)^{-1} of the chunk (am in, am and tb out), ending with a
  /// barrier.
  void emitDeltaSolve(Value c0);
  static SmallVector<Frag> toFrags(ArrayRef<Value> flat) {
    SmallVector<Frag> frags;
    for (size_t i = 0; i < flat.size(); i += 4)
      frags.push_back(Frag(flat.begin() + i, flat.begin() + i + 4));
    return frags;
  }
  static SmallVector<Value> flatten(ArrayRef<Frag> frags) {
    SmallVector<Value> flat;
    for (const Frag &fr : frags)
      flat.append(fr.begin(), fr.end());
    return flat;
  }
  /// rows t0 + {0, 8} (16-row block) of `aTile` [.][Dk] times the first
  /// `cols` rows of `bTile` [.][Dk], transposed: cols / 8 accumulators
  /// (mma.sync; both tiles over Dk, in either kernel's layout).
  SmallVector<Frag> rowsTimesDk(Value aTile, Value t0, Value bTile,
                                int64_t cols) {
    Value twoQ = mul(qd, 2);
    SmallVector<Frag> acc(cols / 8, zeroFrag());
    for (int64_t kk = 0; kk < cfg.dk / 16; ++kk) {
      // fragA in either layout, as a base and constants (dkIndexAt).
      SmallVector<Value> a;
      for (int64_t dc : {0, 8})
        for (int64_t dr : {0, 8})
          a.push_back(pairDk(aTile, t0, dr, twoQ, 16 * kk + dc));
      for (int64_t n = 0; n < cols / 8; ++n)
        acc[n] = mma(a, fragBDk(bTile, 8 * n, idx(16 * kk)), acc[n]);
    }
    return acc;
  }
  /// out += P·V for one 16-row block: the P accumulators (C/8 fragments)
  /// become the A operand directly (mma.sync).
  void accumulatePV(ArrayRef<Frag> p, SmallVector<Frag> &out);
  /// state += Kᵀ·V over the chunk for this warp's value columns (mma.sync):
  /// key(s, d, f) gives the f32 key element of token s, feature d, where f
  /// is tokenFactor(s), evaluated once per token (may be a null Value).
  void accumulateKV(SmallVector<Frag> &state,
                    function_ref<Value(Value)> tokenFactor,
                    function_ref<Value(Value, Value, Value)> key);
  /// Stores this thread's output accumulators of rows t0, t1 (< rows).
  void storeOutputs(ArrayRef<Frag> out, Value tok0, Value t0, Value t1,
                    Value rows);

  //===--- Exclusive, non-causal and normalized forms -------------------===//
  /// Whether P[t][s] is kept: s <= t, or s < t for the exclusive read.
  Value keep(Value s, Value t) { return cfg.exclusive ? ult(s, t) : ule(s, t); }
  /// The sum of x over the 4 lanes of this thread's quad (the lanes that
  /// hold one accumulator row).
  Value quadSum(Value x);
  /// Row of the normalizer buffer zs a chunk starting at c0 reads (the other
  /// row receives the updated z).
  Value zRead(Value c0);
  /// Row of zs holding z after all chunks of the sequence.
  Value zFinal();
  /// Calls body(d) for the key features d this thread owns in the scalar
  /// normalizer code (the same threads in every loop, so no barrier is
  /// needed between a thread's own writes and reads of zs[·][d]).
  void forOwnFeatures(function_ref<void(Value)> body);
  /// zs[0] from the initial normalizer or zero.
  void initNormalizer();
  /// The final normalizer, written by the blocks of value tile 0.
  void storeNormalizer();
  /// z ← decay(d) z + Σ_{s < rows} key(s, d) into the row a chunk writes;
  /// decay may be null (no decay).
  void updateNormalizer(Value c0, Value rows, function_ref<Value(Value)> decay,
                        function_ref<Value(Value, Value)> key);
  /// qz[half] += Σ q[t][c] z[c] over this thread's A-fragment columns of
  /// rows t0 (half 0) and t1 (half 1): c = col0 + {0, 1, 8, 9}, col0 =
  /// 16 kk + 2q, so the quad covers the 16 columns of key block kk.
  void accumulateQZ(Value zRow, Value t0, Value t1, Value col0, Value qz[2]);
  /// Per-thread sums of the (masked, decayed) P elements of rows t0, t1.
  void rowSums(ArrayRef<Frag> p, Value sums[2]);
  /// out[·][rows t0, t1] /= (den + eps), den given per row.
  void divideOutputs(SmallVector<Frag> &out, Value den[2]);
  /// Non-causal second pass: o_t = q_t S_T (/ (q_t · z_T + eps)) per chunk.
  void emitNonCausalOutputs(ArrayRef<Value> state);
  /// One chunk with wgmma.
  void emitChunkWgmma(Value c0, SmallVector<Value> &state);
  /// Normalized wgmma kernel: the denominators den[0], den[1] of rows t0
  /// and t1, from this lane's P̃ sums of those rows, z's row `zRow` and
  /// exp(b_t) (null: no gates); every lane of the quad gets them.
  void wgmmaDenominators(Value zRow, Value t0, Value t1, Value rowSum[2],
                         Value e0, Value e1, Value den[2]);
  /// Sᵀ from the wgmma state accumulators into the st tile.
  void stageStateTWgmma(ArrayRef<Value> state);
  /// body(warpgroup) under a switch on this thread's warpgroup (constant
  /// descriptor offsets in each case); its numValues f32 results.
  SmallVector<Value>
  perWarpgroup(function_ref<SmallVector<Value>(int64_t)> body,
               int64_t numValues);
  /// Stores this thread's wgmma output values of rows t0, t1 (< rows),
  /// divided by den[i] + eps when `den` is given (normalized).
  void storeOutputsWgmma(SmallVector<Value> &out, Value tok0, Value t0,
                         Value t1, Value rows, Value *den = nullptr);
  /// Pass 2 of the non-causal kernels: stages Sᵀ of the final state, opens
  /// the loop over the chunks (leaving the builder inside it) and stages
  /// the chunk's Q; `rows` and `tok0` are the chunk's rows and first token.
  void beginNonCausalChunk(ArrayRef<Value> state, Value &rows, Value &tok0);
  /// Non-causal wgmma kernel, pass 2: O = Q·S_T per chunk.
  void emitNonCausalOutputsWgmma(ArrayRef<Value> state);
  /// Key row d and value column (within the block's tile) of state value i
  /// of this thread.
  std::pair<Value, Value> stateCoord(int64_t i);
  void emitStateIO(SmallVector<Value> &state, bool load);
  /// Writes this thread's state values to Sᵀ in shared memory (mma.sync
  /// layout [v][d], bf16/f16).
  void stageStateT(ArrayRef<Value> state) {
    for (int64_t i = 0; i < cfg.stateValues(); ++i) {
      auto [d, col] = stateCoord(i);
      store(toElt(state[i]), st, {col, d});
    }
  }

  /// Scalar gates of the chunks in flight (gateFifo()), oldest first: the
  /// chunk loop carries them.
  SmallVector<Value> fifo;

  //===--- wgmma --------------------------------------------------------===//
  /// Element offset of (row, col) in a core-matrix tile with `cols` columns:
  /// 8x8 blocks of 128 contiguous bytes, K (col) blocks adjacent.
  Value blockedOffset(Value row, Value col, int64_t cols);
  /// Matrix descriptor of the K-major tile at `byteOffset` with `cols`
  /// columns, starting `row0` rows and `col0` columns in.
  Value descriptor(int64_t byteOffset, int64_t cols, int64_t row0, int64_t col0,
                   bool inSlot = false);
  Value zeroAcc(int64_t n);
  /// acc = A(64x16) * B(16xn) (+ acc when `accumulate`), as a struct.
  Value wgmma(int64_t n, Value descA, Value descB, Value acc, bool accumulate);
  SmallVector<Value> unpack(Value acc, int64_t n);
  Value packAcc(ArrayRef<Value> values);
  void fenceProxyAsync();

  const GpuConfig &cfg;

  // Kernel arguments and per-block values.
  Value q, k, v, gate, h0, o, hT, offsets;
  Value seqLen, headsQ, headsK, headsV, heads, hasH0, hasHT, hasOffsets;
  Value tid, warp, g, qd, head, vTile, seq, batch, start, len;
  Value logLambda; // constant decay: ln(lambda_h)
  // Shared-memory tiles (1-D core-matrix tiles for wgmma) and their byte
  // offsets.
  Value qs, ks, vt, st, ps, kd, graw, gs, gf;
  Value kr, gb; // vector gates: raw K and the cumulative gates [C][Dk] (f32)
  // Delta rule: the beta argument, the chunk's beta (f32 [C]) and the fp32
  // [C][C + 1] matrix with A below the diagonal, (I + A)^{-1} transposed
  // above it.
  // tb is T = (I + A)^{-1} in the input type, [C][C + 8] (the A operand).
  Value beta, betas, am, tb;
  Value headQ, headK, headV; // the q / k / v head of this block's head
  // The cp.async ring (stages > 1): dynamic shared memory, its offset and
  // slot size in bytes, this chunk's raw V rows [C][BV] and raw vector gates
  // [C][Dk], and the slot's descriptor offset (>> 4) for wgmma.
  Value dyn, vraw, graw8, slotDesc;
  int64_t ringOff = 0, slotBytes = 0, slotKOff = 0, slotVOff = 0, slotGOff = 0;
  // Normalized form: initial/final normalizer and their flags; zs is the
  // fp32 [2][Dk] shared normalizer (read row and write row swap per chunk).
  // dens (wgmma) holds each row's denominator from step 4 to the stores.
  Value z0, z1, hasZ0, hasZ1, zs, dens;
  int64_t qsOff = 0, ksOff = 0, vtOff = 0, stOff = 0, psOff = 0, kdOff = 0;
  Value descSlot; // shared i64 holding (shared address >> 4) of the buffer
  Value descBase; // its value, loaded once per chunk
  Value wg, wIn;  // warpgroup and warp within it (wgmma)
};

Value KernelEmitter::sharedTile(Value base, int64_t byteOffset,
                                ArrayRef<int64_t> shape, Type type) {
  auto space =
      gpu::AddressSpaceAttr::get(b.getContext(), gpu::AddressSpace::Workgroup);
  auto t = MemRefType::get(shape, type, MemRefLayoutAttrInterface(), space);
  return memref::ViewOp::create(b, loc, t, base, idx(byteOffset), ValueRange{});
}

Value KernelEmitter::tokenOffset(Value batch, Value token, Value head,
                                 Value heads, int64_t dim) {
  // As a row base and a stride, two loop invariants in all (bthd rows of
  // a head are heads * dim apart).
  if (cfg.layout == Layout::BTHD)
    return add(mul(token, mul(heads, dim)),
               mul(add(mul(mul(batch, seqLen), heads), head), dim));
  return mul(add(mul(add(mul(batch, heads), head), seqLen), token), dim);
}

Value KernelEmitter::featureMap(Value vec8, bool isQuery) {
  bool scale = isQuery && cfg.scale != 1.0;
  if (cfg.featureMap == FeatureMapKind::Identity && !scale)
    return vec8;
  auto vt32 = VectorType::get({8}, f32);
  Value x = arith::ExtFOp::create(b, loc, vt32, vec8);
  SmallVector<Value> out;
  for (int64_t i = 0; i < 8; ++i) {
    Value e = vector::ExtractOp::create(b, loc, x, ArrayRef<int64_t>{i});
    Value zero = f(0.0);
    if (cfg.featureMap == FeatureMapKind::Relu) {
      e = arith::MaximumFOp::create(b, loc, e, zero);
    } else if (cfg.featureMap == FeatureMapKind::EluPlusOne) {
      Value pos =
          arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT, e, zero);
      e = select(pos, fadd(e, f(1.0)),
                 exp(arith::MinimumFOp::create(b, loc, e, zero)));
    }
    if (scale)
      e = fmul(e, f(cfg.scale));
    out.push_back(e);
  }
  Value y = vector::FromElementsOp::create(b, loc, vt32, out);
  return arith::TruncFOp::create(b, loc, VectorType::get({8}, cfg.elt), y);
}

Value KernelEmitter::sharedTile(Value base, Value byteOffset,
                                ArrayRef<int64_t> shape, Type type) {
  auto space =
      gpu::AddressSpaceAttr::get(b.getContext(), gpu::AddressSpace::Workgroup);
  auto t = MemRefType::get(shape, type, MemRefLayoutAttrInterface(), space);
  return memref::ViewOp::create(b, loc, t, base, byteOffset, ValueRange{});
}

void KernelEmitter::forEachItem(int64_t width,
                                function_ref<void(Value, Value)> body) {
  int64_t perRow = width / 8, total = cfg.chunk * perRow;
  int64_t steps = (total + cfg.threads() - 1) / cfg.threads();
  loop(steps, [&](Value i) {
    Value lin = add(mul(i, cfg.threads()), tid);
    auto item = [&] {
      Value row = arith::DivUIOp::create(b, loc, lin, idx(perRow));
      Value col = mul(arith::RemUIOp::create(b, loc, lin, idx(perRow)), 8);
      body(row, col);
    };
    if (total % cfg.threads() == 0)
      item();
    else
      ifThen(ult(lin, idx(total)), item);
  });
}

void KernelEmitter::stageRows(Value src, Value batch, Value tok0, Value rows,
                              Value head, Value heads, int64_t dim, Value col0,
                              int64_t width,
                              function_ref<void(Value, Value, Value)> put,
                              Type elt) {
  if (!elt)
    elt = cfg.elt;
  auto vecTy = VectorType::get({8}, elt);
  forEachItem(width, [&](Value row, Value col) {
    Value vec = ifElse(
        ult(row, rows), vecTy,
        [&] {
          Value off = add(
              add(tokenOffset(batch, add(tok0, row), head, heads, dim), col0),
              col);
          auto ld = vector::LoadOp::create(b, loc, vecTy, src, off);
          ld.setAlignment(16);
          return Value(ld);
        },
        [&] {
          return Value(arith::ConstantOp::create(
              b, loc, vecTy,
              DenseElementsAttr::get(vecTy, b.getFloatAttr(elt, 0.0))));
        });
    put(row, col, vec);
  });
}

std::pair<Value, Value> KernelEmitter::stateCoord(int64_t i) {
  if (cfg.wgmma) {
    // Tile j = i / (BV/2) holds key rows 64 (wg + groups*j) + [0, 64) as a
    // wgmma accumulator: row 16 wIn + g (+8), column 8 (r/4) + 2q + r%2.
    int64_t perTile = cfg.blockV / 2, j = i / perTile, r = i % perTile;
    Value d = add(add(mul(add(wg, cfg.groups() * j), 64), mul(wIn, 16)),
                  add(g, (r / 2) % 2 * 8));
    Value col = add(mul(qd, 2), 8 * (r / 4) + r % 2);
    return {d, col};
  }
  // Fragment (mt, nt) of an mma.sync accumulator: d = 16 mt + {g, g+8},
  // columns = this warp's + 8 nt + {2q, 2q+1}.
  int64_t ntw = cfg.blockV / cfg.warps / 8;
  int64_t frag = i / 4, e = i % 4, mt = frag / ntw, nt = frag % ntw;
  Value d = add(g, 16 * mt + (e >= 2 ? 8 : 0));
  Value col =
      add(add(mul(warp, cfg.blockV / cfg.warps), 8 * nt + (e & 1)), mul(qd, 2));
  return {d, col};
}

/// Loads (load = true) or stores this thread's fp32 state values.
void KernelEmitter::emitStateIO(SmallVector<Value> &state, bool load) {
  Value mem = load ? h0 : hT;
  int64_t dk = cfg.stateDk;
  Value base = mul(add(mul(seq, heads), head), dk * cfg.dv);
  for (int64_t i = 0; i < cfg.stateValues(); ++i) {
    auto [d, vLocal] = stateCoord(i);
    Value col = add(mul(vTile, cfg.blockV), vLocal);
    Value off =
        cfg.valueMajor ? add(mul(col, dk), d) : add(mul(d, cfg.dv), col);
    off = add(base, off);
    if (dk != cfg.dk) { // padded key rows: zero, never stored
      Value inside = ult(d, idx(dk));
      if (load)
        state[i] = ifElse(
            inside, f32, [&] { return this->load(mem, off); },
            [&] { return f(0.0); });
      else
        ifThen(inside, [&] { store(state[i], mem, off); });
    } else if (load) {
      state[i] = this->load(mem, off);
    } else {
      store(state[i], mem, off);
    }
  }
}

void KernelEmitter::putQK(Value tile, Value row, Value col, Value vec,
                          bool isQuery) {
  Value x = featureMap(vec, isQuery);
  vector::StoreOp st =
      cfg.wgmma
          ? vector::StoreOp::create(b, loc, x, tile,
                                    blockedOffset(row, col, cfg.dk))
          : vector::StoreOp::create(b, loc, x, tile, ValueRange{row, col});
  st.setAlignment(16);
}

void KernelEmitter::putVT(Value row, Value col, Value vec) {
  for (int64_t i = 0; i < 8; ++i) {
    Value x = vector::ExtractOp::create(b, loc, vec, ArrayRef<int64_t>{i});
    if (cfg.wgmma)
      store(x, vt, blockedOffset(add(col, i), row, cfg.chunk));
    else
      store(x, vt, {add(col, i), row});
  }
}

void KernelEmitter::putGate8(Value row, Value col, Value vec) {
  auto vt32 = VectorType::get({8}, f32);
  Value x = vec.getType() == vt32
                ? vec
                : Value(arith::ExtFOp::create(b, loc, vt32, vec));
  auto splat = [&](double c) {
    return Value(arith::ConstantOp::create(
        b, loc, vt32, DenseElementsAttr::get(vt32, b.getF32FloatAttr(c))));
  };
  if (cfg.clampMin)
    x = arith::MaximumFOp::create(b, loc, x, splat(*cfg.clampMin));
  x = arith::MaximumFOp::create(b, loc, x, splat(kMinLogGate));
  auto stOp = vector::StoreOp::create(b, loc, x, gb, ValueRange{row, col});
  stOp.setAlignment(16);
}

void KernelEmitter::stageInputs(Value tok0, Value rows, Value vCol0) {
  stageRows(q, batch, tok0, rows, headQ, headsQ, cfg.dk, idx(0), cfg.dk,
            [&](Value row, Value col, Value vec) {
              putQK(qs, row, col, vec, /*isQuery=*/true);
            });
  Value kTile = cfg.vectorGates() ? kr : ks;
  stageRows(k, batch, tok0, rows, headK, headsK, cfg.dk, idx(0), cfg.dk,
            [&](Value row, Value col, Value vec) {
              putQK(kTile, row, col, vec, /*isQuery=*/false);
            });
  stageRows(v, batch, tok0, rows, headV, headsV, cfg.dv, vCol0, cfg.blockV,
            [&](Value row, Value col, Value vec) { putVT(row, col, vec); });
}

Value KernelEmitter::rowScalar(Value src, Type elt, Value tok0, Value rows) {
  return ifElse(
      ult(tid, rows), elt,
      [&] {
        Value tok = add(tok0, tid);
        Value off = cfg.layout == Layout::BTHD
                        ? add(mul(add(mul(batch, seqLen), tok), heads), head)
                        : add(mul(add(mul(batch, heads), head), seqLen), tok);
        return load(src, off);
      },
      [&] {
        return Value(
            arith::ConstantOp::create(b, loc, elt, b.getFloatAttr(elt, 0.0)));
      });
}

Value KernelEmitter::rawGate(Value tok0, Value rows) {
  return rowScalar(gate, cfg.gateElt, tok0, rows);
}

void KernelEmitter::stageBeta(Value tok0, Value rows) {
  ifThen(ult(tid, idx(cfg.chunk)), [&] {
    store(toF32(rowScalar(beta, cfg.betaElt, tok0, rows)), betas, tid);
  });
}

Value KernelEmitter::finishGate(Value raw, Value rows) {
  Value x = logLambda;
  if (cfg.decay != DecayKind::Constant) {
    x = toF32(raw);
    if (cfg.clampMin)
      x = arith::MaximumFOp::create(b, loc, x, f(*cfg.clampMin));
    x = arith::MaximumFOp::create(b, loc, x, f(kMinLogGate));
  }
  return select(ult(tid, rows), x, f(0.0));
}

void KernelEmitter::stageGates(Value tok0, Value rows) {
  ifThen(ult(tid, idx(cfg.chunk)), [&] {
    Value raw =
        cfg.decay == DecayKind::Constant ? Value() : rawGate(tok0, rows);
    store(finishGate(raw, rows), graw, tid);
  });
}

void KernelEmitter::beginChunk(Value c0, Value tok0, Value rows) {
  if (cfg.stages == 1) {
    stageInputs(tok0, rows, mul(vTile, cfg.blockV));
    // GLA wgmma: a barrier keeps the gate rows' loads from joining those of
    // Q, K and V in flight, over the kernel's register budget.
    if (cfg.vectorGates() && cfg.wgmma)
      gpu::BarrierOp::create(b, loc);
    if (cfg.vectorGates())
      stageRows(
          gate, batch, tok0, rows, head, heads, cfg.dk, idx(0), cfg.dk,
          [&](Value row, Value col, Value vec) { putGate8(row, col, vec); },
          cfg.gateElt);
    else if (cfg.hasGates())
      stageGates(tok0, rows);
    if (cfg.delta())
      stageBeta(tok0, rows);
    return;
  }
  // The slot of chunk c0 - C is free (every chunk ends with a barrier):
  // prefetch chunk c0 + (S - 1) C into it, then wait until at most S - 1
  // groups are pending, i.e. until this chunk's own group has landed.
  issueChunk(add(c0, (cfg.stages - 1) * cfg.chunk));
  NVVM::CpAsyncWaitGroupOp::create(b, loc, cfg.stages - 1);
  useSlot(slotOf(c0));
  // Commit: each thread transforms the items it copied itself, which
  // cp.async.wait_group has made visible to it; the chunk's first barrier
  // publishes the results.
  // Q and K tiles are core-matrix blocked for wgmma; the raw V and gate
  // rows are always row-major.
  auto vecOf = [&](Value tile, Value row, Value col, Type elt,
                   bool blocked = false) {
    auto vecTy = VectorType::get({8}, elt);
    vector::LoadOp ld =
        blocked
            ? vector::LoadOp::create(b, loc, vecTy, tile,
                                     blockedOffset(row, col, cfg.dk))
            : vector::LoadOp::create(b, loc, vecTy, tile, ValueRange{row, col});
    ld.setAlignment(16);
    return Value(ld);
  };
  if (cfg.mapsQuery())
    forEachItem(cfg.dk, [&](Value row, Value col) {
      putQK(qs, row, col, vecOf(qs, row, col, cfg.elt, cfg.wgmma),
            /*isQuery=*/true);
    });
  Value kTile = cfg.vectorGates() ? kr : ks;
  if (cfg.mapsKey())
    forEachItem(cfg.dk, [&](Value row, Value col) {
      putQK(kTile, row, col, vecOf(kTile, row, col, cfg.elt, cfg.wgmma),
            /*isQuery=*/false);
    });
  forEachItem(cfg.blockV, [&](Value row, Value col) {
    putVT(row, col, vecOf(vraw, row, col, cfg.elt));
  });
  if (cfg.vectorGates()) {
    forEachItem(cfg.dk, [&](Value row, Value col) {
      putGate8(row, col, vecOf(graw8, row, col, cfg.gateElt));
    });
  } else if (cfg.gateFifo()) {
    // Converted and clamped only now, a chunk or more after its load was
    // issued, so that the load's latency is not waited for at issue.
    Value mine = finishGate(fifo.front(), rows);
    fifo.erase(fifo.begin());
    ifThen(ult(tid, idx(cfg.chunk)), [&] { store(mine, graw, tid); });
  } else if (cfg.hasGates()) {
    stageGates(tok0, rows);
  }
  // Beta is read synchronously, like the gates outside the register FIFO.
  if (cfg.delta())
    stageBeta(tok0, rows);
}

Value KernelEmitter::slotOf(Value c0) {
  return arith::RemUIOp::create(
      b, loc, arith::DivUIOp::create(b, loc, c0, idx(cfg.chunk)),
      idx(cfg.stages));
}

void KernelEmitter::useSlot(Value slot) {
  int64_t C = cfg.chunk, Dk = cfg.dk;
  Value base = add(mul(slot, slotBytes), ringOff);
  auto at = [&](int64_t off, ArrayRef<int64_t> shape, Type t) {
    return sharedTile(dyn, add(base, off), shape, t);
  };
  SmallVector<int64_t> shape = cfg.wgmma ? SmallVector<int64_t>{C * Dk}
                                         : SmallVector<int64_t>{C, cfg.ldK()};
  qs = at(0, shape, cfg.elt);
  (cfg.vectorGates() ? kr : ks) = at(slotKOff, shape, cfg.elt);
  vraw = at(slotVOff, {C, cfg.blockV}, cfg.elt);
  if (cfg.vectorGates())
    graw8 = at(slotGOff, {C, Dk}, cfg.gateElt);
  if (cfg.wgmma)
    slotDesc = arith::IndexCastOp::create(
        b, loc, b.getI64Type(),
        arith::DivUIOp::create(b, loc, mul(slot, slotBytes), idx(16)));
}

void KernelEmitter::copyRowsAsync(
    Value src, Value tok0, Value rows, Value hd, Value hds, int64_t dim,
    Value col0, int64_t width, Type elt, Value tile,
    function_ref<SmallVector<Value>(Value, Value)> at) {
  int64_t per = 16 / (elt.getIntOrFloatBitWidth() / 8); // elements per copy
  forEachItem(width, [&](Value row, Value col) {
    SmallVector<Value> dst = at(row, col);
    auto ifOp = scf::IfOp::create(b, loc, TypeRange{}, ult(row, rows), true);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(ifOp.thenBlock()->getTerminator());
    Value off =
        add(add(tokenOffset(batch, add(tok0, row), hd, hds, dim), col0), col);
    for (int64_t j = 0; j < 8; j += per) {
      SmallVector<Value> d = dst;
      d.back() = add(d.back(), j);
      nvgpu::DeviceAsyncCopyOp::create(
          b, loc, tile, d, src, ValueRange{add(off, j)}, b.getIndexAttr(per),
          Value(), b.getUnitAttr());
    }
    b.setInsertionPoint(ifOp.elseBlock()->getTerminator());
    auto vecTy = VectorType::get({8}, elt);
    Value zeros = arith::ConstantOp::create(
        b, loc, vecTy, DenseElementsAttr::get(vecTy, b.getFloatAttr(elt, 0.0)));
    vector::StoreOp::create(b, loc, zeros, tile, dst).setAlignment(16);
  });
}

void KernelEmitter::issueChunk(Value c0) {
  int64_t Dk = cfg.dk;
  // Chunks past the end (prologue, last prefetches) have 0 rows.
  Value rows = arith::MaxSIOp::create(b, loc, chunkRows(c0), idx(0));
  Value tok0 = add(start, c0);
  useSlot(slotOf(c0));
  auto qkAt = [&](Value row, Value col) -> SmallVector<Value> {
    if (cfg.wgmma)
      return {blockedOffset(row, col, Dk)};
    return {row, col};
  };
  auto rowMajor = [](Value row, Value col) -> SmallVector<Value> {
    return {row, col};
  };
  copyRowsAsync(q, tok0, rows, headQ, headsQ, Dk, idx(0), Dk, cfg.elt, qs,
                qkAt);
  copyRowsAsync(k, tok0, rows, headK, headsK, Dk, idx(0), Dk, cfg.elt,
                cfg.vectorGates() ? kr : ks, qkAt);
  copyRowsAsync(v, tok0, rows, headV, headsV, cfg.dv, mul(vTile, cfg.blockV),
                cfg.blockV, cfg.elt, vraw, rowMajor);
  if (cfg.vectorGates())
    copyRowsAsync(gate, tok0, rows, head, heads, Dk, idx(0), Dk, cfg.gateElt,
                  graw8, rowMajor);
  if (cfg.gateFifo())
    fifo.push_back(rawGate(tok0, rows));
  NVVM::CpAsyncCommitGroupOp::create(b, loc);
}

void KernelEmitter::accumulatePV(ArrayRef<Frag> p, SmallVector<Frag> &out) {
  Value twoQ = mul(qd, 2);
  for (int64_t kk = 0; kk < cfg.chunk / 16; ++kk) {
    SmallVector<Value> a = {pack(p[2 * kk][0], p[2 * kk][1]),
                            pack(p[2 * kk][2], p[2 * kk][3]),
                            pack(p[2 * kk + 1][0], p[2 * kk + 1][1]),
                            pack(p[2 * kk + 1][2], p[2 * kk + 1][3])};
    for (int64_t nv = 0; nv < cfg.blockV / 8; ++nv)
      out[nv] = mma(a, fragB(vt, add(g, 8 * nv), add(twoQ, 16 * kk)), out[nv]);
  }
}

void KernelEmitter::accumulateKV(SmallVector<Frag> &state,
                                 function_ref<Value(Value)> tokenFactor,
                                 function_ref<Value(Value, Value, Value)> key) {
  int64_t ntw = cfg.blockV / cfg.warps / 8;
  Value twoQ = mul(qd, 2);
  Value vw = mul(warp, cfg.blockV / cfg.warps); // this warp's first column
  for (int64_t kk = 0; kk < cfg.chunk / 16; ++kk) {
    // This thread's tokens s = 16 kk + {2q, 2q+1, 2q+8, 2q+9} and factors.
    Value s[4] = {add(twoQ, 16 * kk), add(twoQ, 16 * kk + 1),
                  add(twoQ, 16 * kk + 8), add(twoQ, 16 * kk + 9)};
    Value fac[4];
    for (int i = 0; i < 4; ++i)
      fac[i] = tokenFactor(s[i]);
    SmallVector<SmallVector<Value>> bv;
    for (int64_t nt = 0; nt < ntw; ++nt)
      bv.push_back(fragB(vt, add(add(vw, 8 * nt), g), add(twoQ, 16 * kk)));
    for (int64_t mt = 0; mt < cfg.dk / 16; ++mt) {
      Value d0 = add(g, 16 * mt), d1 = add(d0, 8);
      auto kd = [&](int i, Value d) { return key(s[i], d, fac[i]); };
      SmallVector<Value> a = {
          pack(kd(0, d0), kd(1, d0)), pack(kd(0, d1), kd(1, d1)),
          pack(kd(2, d0), kd(3, d0)), pack(kd(2, d1), kd(3, d1))};
      for (int64_t nt = 0; nt < ntw; ++nt)
        state[mt * ntw + nt] = mma(a, bv[nt], state[mt * ntw + nt]);
    }
  }
}

void KernelEmitter::storeOutputs(ArrayRef<Frag> out, Value tok0, Value t0,
                                 Value t1, Value rows) {
  // Rows t < rows: two consecutive outputs per 32-bit store.
  int64_t BV = cfg.blockV;
  Value twoQ = mul(qd, 2);
  for (int64_t half = 0; half < 2; ++half) {
    Value t = half ? t1 : t0;
    ifThen(ult(t, rows), [&] {
      Value base = tokenOffset(batch, add(tok0, t), head, heads, cfg.dv);
      for (int64_t nv = 0; nv < BV / 8; ++nv) {
        Value col = add(add(mul(vTile, BV), 8 * nv), twoQ);
        Value pair = vector::FromElementsOp::create(
            b, loc, VectorType::get({2}, cfg.elt),
            ValueRange{toElt(out[nv][2 * half]), toElt(out[nv][2 * half + 1])});
        auto stOp = vector::StoreOp::create(b, loc, pair, o,
                                            ValueRange{add(base, col)});
        stOp.setAlignment(4);
      }
    });
  }
}

//===----------------------------------------------------------------------===//
// Exclusive, non-causal and normalized forms (mma.sync)
//===----------------------------------------------------------------------===//
//
// The normalized form (MATH.md 2.5, 6.4) divides each output row by
// den_t + eps with den_t = Σ_s P̃[t][s] + q̃_t · z, where P̃ is the masked,
// decayed score row (the same P that multiplies V), q̃_t = q_t ⊙ exp(b_t)
// is the query that reads the state, and z (Dk fp32 values in shared
// memory) decays like S: z ← exp(b_C) ⊙ z + Σ_s exp(b_C - b_s) ⊙ k_s. Each
// lane sums its own P columns and A-fragment columns of q̃ ⊙ z, and the
// quad that shares the row adds them up with two xor shuffles.

Value KernelEmitter::quadSum(Value x) {
  for (int32_t lanes : {1, 2})
    x = fadd(x,
             gpu::ShuffleOp::create(b, loc, x, lanes, 32, gpu::ShuffleMode::XOR)
                 .getShuffleResult());
  return x;
}

Value KernelEmitter::zRead(Value c0) {
  Value chunk = arith::DivUIOp::create(b, loc, c0, idx(cfg.chunk));
  return arith::RemUIOp::create(b, loc, chunk, idx(2));
}

Value KernelEmitter::zFinal() {
  // Chunk n reads row n % 2 and writes row (n + 1) % 2: after all
  // ceil(len / C) chunks (none: row 0, the initial normalizer).
  Value chunks =
      arith::DivUIOp::create(b, loc, add(len, cfg.chunk - 1), idx(cfg.chunk));
  return arith::RemUIOp::create(b, loc, chunks, idx(2));
}

void KernelEmitter::forOwnFeatures(function_ref<void(Value)> body) {
  int64_t n = cfg.threads();
  loop((cfg.dk + n - 1) / n, [&](Value it) {
    Value d = add(mul(it, n), tid);
    if (cfg.dk % n == 0)
      body(d);
    else
      ifThen(ult(d, idx(cfg.dk)), [&] { body(d); });
  });
}

void KernelEmitter::initNormalizer() {
  Value base = mul(add(mul(seq, heads), head), cfg.stateDk);
  forOwnFeatures([&](Value d) {
    Value from = hasZ0;
    if (cfg.stateDk != cfg.dk)
      from = arith::AndIOp::create(b, loc, from, ult(d, idx(cfg.stateDk)));
    Value z = ifElse(
        from, f32, [&] { return load(z0, add(base, d)); },
        [&] { return f(0.0); });
    store(z, zs, {idx(0), d});
  });
}

void KernelEmitter::storeNormalizer() {
  // Every value tile computes the same z; tile 0 writes it.
  Value tile0 =
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, vTile, idx(0));
  ifThen(arith::AndIOp::create(b, loc, hasZ1, tile0), [&] {
    Value base = mul(add(mul(seq, heads), head), cfg.stateDk);
    Value row = zFinal();
    forOwnFeatures([&](Value d) {
      auto put = [&] { store(load(zs, {row, d}), z1, add(base, d)); };
      if (cfg.stateDk != cfg.dk)
        ifThen(ult(d, idx(cfg.stateDk)), put);
      else
        put();
    });
  });
}

void KernelEmitter::updateNormalizer(Value c0, Value rows,
                                     function_ref<Value(Value)> decay,
                                     function_ref<Value(Value, Value)> key) {
  Value from = zRead(c0);
  Value to = arith::SubIOp::create(b, loc, idx(1), from);
  forOwnFeatures([&](Value d) {
    // Only rows < rows: padded keys are not zero under elu_plus_one.
    auto sum =
        scf::ForOp::create(b, loc, idx(0), rows, idx(1), ValueRange{f(0.0)});
    {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(sum.getBody());
      Value acc =
          fadd(sum.getRegionIterArgs()[0], key(sum.getInductionVar(), d));
      scf::YieldOp::create(b, loc, acc);
    }
    Value z = load(zs, {from, d});
    if (Value fac = decay ? decay(d) : Value())
      z = fmul(z, fac);
    store(fadd(z, sum.getResult(0)), zs, {to, d});
  });
}

void KernelEmitter::accumulateQZ(Value zRow, Value t0, Value t1, Value col0,
                                 Value qz[2]) {
  auto v2 = VectorType::get({2}, f32);
  for (int64_t off : {0, 8}) {
    Value c = add(col0, off);
    auto zv = vector::LoadOp::create(b, loc, v2, zs, ValueRange{zRow, c});
    zv.setAlignment(8);
    for (int64_t half = 0; half < 2; ++half) {
      // The pair the A fragment holds (the same shared-memory load).
      auto qv = vector::LoadOp::create(b, loc, VectorType::get({2}, cfg.elt),
                                       qs, ValueRange{half ? t1 : t0, c});
      qv.setAlignment(4);
      Value qf = arith::ExtFOp::create(b, loc, v2, qv.getResult());
      for (int64_t i = 0; i < 2; ++i)
        qz[half] = fadd(
            qz[half],
            fmul(vector::ExtractOp::create(b, loc, qf, ArrayRef<int64_t>{i}),
                 vector::ExtractOp::create(b, loc, zv.getResult(),
                                           ArrayRef<int64_t>{i})));
    }
  }
}

void KernelEmitter::rowSums(ArrayRef<Frag> p, Value sums[2]) {
  sums[0] = sums[1] = f(0.0);
  for (const Frag &fr : p)
    for (int64_t e = 0; e < 4; ++e)
      sums[e / 2] = fadd(sums[e / 2], fr[e]);
}

void KernelEmitter::divideOutputs(SmallVector<Frag> &out, Value den[2]) {
  Value inv[2];
  for (int64_t half = 0; half < 2; ++half)
    inv[half] =
        arith::DivFOp::create(b, loc, f(1.0), fadd(den[half], f(cfg.eps)));
  for (Frag &fr : out)
    for (int64_t e = 0; e < 4; ++e)
      fr[e] = fmul(fr[e], inv[e / 2]);
}

void KernelEmitter::beginNonCausalChunk(ArrayRef<Value> state, Value &rows,
                                        Value &tok0) {
  gpu::BarrierOp::create(b, loc); // pass 1's last reads of st are done
  if (cfg.wgmma)
    stageStateTWgmma(state);
  else
    stageStateT(state);
  // Pass 2 loads Q synchronously; with a cp.async ring, into slot 0 (pass 1
  // has no copies left in flight: those past the end only store zeros).
  if (cfg.stages > 1)
    useSlot(idx(0));
  auto forOp = scf::ForOp::create(b, loc, idx(0), len, idx(cfg.chunk));
  b.setInsertionPoint(forOp.getBody()->getTerminator());
  Value c0 = forOp.getInductionVar();
  rows = chunkRows(c0);
  tok0 = add(start, c0);
  stageRows(q, batch, tok0, rows, headQ, headsQ, cfg.dk, idx(0), cfg.dk,
            [&](Value row, Value col, Value vec) {
              putQK(qs, row, col, vec, /*isQuery=*/true);
            });
}

void KernelEmitter::emitNonCausalOutputs(ArrayRef<Value> state) {
  // Pass 2 (pass 1 is the chunk loop without outputs): every query reads
  // S_T (and z_T), which is constant, so Sᵀ is staged once.
  int64_t C = cfg.chunk, W = cfg.warps, BV = cfg.blockV;
  OpBuilder::InsertionGuard guard(b);
  Value rows, tok0;
  beginNonCausalChunk(state, rows, tok0);
  Value zRow = cfg.normalized ? zFinal() : Value();
  gpu::BarrierOp::create(b, loc);
  Value twoQ = mul(qd, 2);
  for (int64_t mq = 0; mq < C / 16 / W; ++mq) {
    Value row0 = add(mul(warp, C / W), 16 * mq);
    Value t0 = add(row0, g), t1 = add(t0, 8);
    SmallVector<Frag> out(BV / 8, zeroFrag());
    Value qz[2] = {f(0.0), f(0.0)};
    for (int64_t kk = 0; kk < cfg.dk / 16; ++kk) {
      Value col0 = add(twoQ, 16 * kk);
      SmallVector<Value> a = fragA(qs, t0, col0);
      for (int64_t nv = 0; nv < BV / 8; ++nv)
        out[nv] = mma(a, fragB(st, add(g, 8 * nv), col0), out[nv]);
      if (cfg.normalized)
        accumulateQZ(zRow, t0, t1, col0, qz);
    }
    if (cfg.normalized) {
      Value den[2] = {quadSum(qz[0]), quadSum(qz[1])};
      divideOutputs(out, den);
    }
    storeOutputs(out, tok0, t0, t1, rows);
  }
  gpu::BarrierOp::create(b, loc);
}

void KernelEmitter::cumulateVectorGates() {
  int64_t C = cfg.chunk, Dk = cfg.dk;
  // One thread per key feature d: cumulative gates b_t[d] down the chunk
  // (rows past the end have raw gates 0, so b stays flat there), then
  // K̃[s][d] = k_s[d] exp(b_e[d] - b_s[d]) with e the last row of s's
  // 16-row block (a factor <= 1, so nothing overflows).
  loop((Dk + cfg.threads() - 1) / cfg.threads(), [&](Value it) {
    Value d = add(mul(it, cfg.threads()), tid);
    ifThen(ult(d, idx(Dk)), [&] {
      auto sum = scf::ForOp::create(b, loc, idx(0), idx(C), idx(1),
                                    ValueRange{f(0.0)});
      {
        OpBuilder::InsertionGuard guard(b);
        b.setInsertionPointToStart(sum.getBody());
        Value t = sum.getInductionVar();
        Value acc = fadd(sum.getRegionIterArgs()[0], load(gb, {t, d}));
        store(acc, gb, {t, d});
        scf::YieldOp::create(b, loc, acc);
      }
      loop(C, [&](Value s) {
        Value e = add(mul(arith::DivUIOp::create(b, loc, s, idx(16)), 16), 15);
        Value x = toF32(load(kr, tileIndex(kr, s, d)));
        Value fac = exp(fsub(load(gb, {e, d}), load(gb, {s, d})));
        store(toElt(fmul(x, fac)), ks, tileIndex(ks, s, d));
      });
    });
  });
}

void KernelEmitter::vectorScores(Value row0, Value zRow, SmallVector<Frag> &p,
                                 SmallVector<Frag> &out, Value qz[2],
                                 bool overQ) {
  // Row block i (16 rows, reference r = 16 i - 1): off-diagonal blocks
  // j < i on tensor cores with A = q exp(b_t - b_r) ⊙ exp(b_r - b_e_j) and
  // B = K̃_j; the diagonal block exactly, element by element; the
  // inter-chunk part with A = q ⊙ exp(b_t).
  int64_t C = cfg.chunk, BV = cfg.blockV, Dk = cfg.dk;
  Value twoQ = mul(qd, 2);
  Value blk = arith::DivUIOp::create(b, loc, row0, idx(16));
  // b_r: the row before the block (row 0's gates for block 0 never reach an
  // off-diagonal product, which is masked out).
  Value ref = arith::MaxSIOp::create(
      b, loc, arith::SubIOp::create(b, loc, row0, idx(1)), idx(0));
  Value t0 = add(row0, g), t1 = add(t0, 8);
  // The diagonal block, exactly: P[t][s] = Σ_d q k exp(b_t - b_s), in
  // fragment ns's four values if ns is in it, else `other`.
  auto diagonal = [&](int64_t ns, ValueRange other) {
    Value diag = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, blk,
                                       idx(ns / 2));
    auto ifOp =
        scf::IfOp::create(b, loc, SmallVector<Type>(4, f32), diag, true);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(&ifOp.getThenRegion().front());
    Value s0 = add(twoQ, 8 * ns), s1 = add(s0, 1);
    auto sum = scf::ForOp::create(b, loc, idx(0), idx(Dk), idx(1),
                                  SmallVector<Value>(4, f(0.0)));
    {
      OpBuilder::InsertionGuard inner(b);
      b.setInsertionPointToStart(sum.getBody());
      Value d = sum.getInductionVar();
      Value qa = toF32(load(qs, tileIndex(qs, t0, d)));
      Value qb = toF32(load(qs, tileIndex(qs, t1, d)));
      Value ka = toF32(load(kr, tileIndex(kr, s0, d)));
      Value kb = toF32(load(kr, tileIndex(kr, s1, d)));
      Value ga = load(gb, {t0, d}), gbv = load(gb, {t1, d});
      Value sa = load(gb, {s0, d}), sb = load(gb, {s1, d});
      // exp of a positive difference (s > t) is masked out later; clamp
      // so it cannot produce inf * 0.
      auto term = [&](Value qv, Value gt, Value kv, Value gsv) {
        Value x = arith::MinimumFOp::create(b, loc, fsub(gt, gsv), f(0.0));
        return fmul(fmul(qv, kv), exp(x));
      };
      auto acc = sum.getRegionIterArgs();
      SmallVector<Value> next = {fadd(acc[0], term(qa, ga, ka, sa)),
                                 fadd(acc[1], term(qa, ga, kb, sb)),
                                 fadd(acc[2], term(qb, gbv, ka, sa)),
                                 fadd(acc[3], term(qb, gbv, kb, sb))};
      scf::YieldOp::create(b, loc, next);
    }
    scf::YieldOp::create(b, loc, sum.getResults());
    b.setInsertionPointToStart(&ifOp.getElseRegion().front());
    scf::YieldOp::create(b, loc, other);
    return Frag(ifOp.getResults().begin(), ifOp.getResults().end());
  };
  // With q ⊙ exp(b_t) written over Q (overQ), the diagonal block,
  // which reads raw q across the quad, comes first, behind a barrier before
  // the first write; the steps then add nothing to blocks j >= i (their A
  // is zero), so the diagonal's values stay. Otherwise the steps fill
  // every block and the diagonal replaces its own afterwards.
  p.assign(C / 8, zeroFrag());
  if (overQ) {
    for (int64_t ns = 0; ns < C / 8; ++ns)
      p[ns] = diagonal(ns, zeroFrag());
    gpu::BarrierOp::create(b, loc);
  }
  // One step per 16 features: (p, out, qz) -> (p, out, qz).
  auto step = [&](Value kk, ValueRange args) -> SmallVector<Value> {
    SmallVector<Value> flat(args);
    ArrayRef<Value> all(flat);
    SmallVector<Frag> pk = toFrags(all.take_front(C / 2));
    SmallVector<Frag> ok = toFrags(all.slice(C / 2, all.size() - C / 2 - 2));
    Value qzk[2] = {all[all.size() - 2], all.back()};
    Value k16 = mul(kk, 16);
    // This thread's A elements: rows {t0, t1} x cols 16 kk + {2q,
    // 2q+1, 2q+8, 2q+9}, in fragment order.
    int64_t colOff[4] = {0, 1, 8, 9};
    Value cols[4];
    for (int64_t c = 0; c < 4; ++c)
      cols[c] = add(add(twoQ, k16), colOff[c]);
    Value q8[8], qt[8], qs8[8];
    for (int64_t e = 0; e < 8; ++e) {
      // Fragment register e/2 holds (row, col pair): 0 (t0, c0..1),
      // 1 (t1, c0..1), 2 (t0, c8..9), 3 (t1, c8..9).
      int64_t reg = e / 2;
      Value t = reg % 2 ? t1 : t0;
      int64_t c = (reg / 2) * 2 + e % 2;
      Value d = cols[c];
      q8[e] = toF32(load(qs, dkIndexAt(t0, reg % 2 * 8, twoQ, colOff[c], k16)));
      Value bt = load(gb, {t, d});
      qt[e] = fmul(q8[e], exp(fsub(bt, load(gb, {ref, d}))));
      qs8[e] = fmul(q8[e], exp(bt));
      if (cfg.normalized)
        qzk[reg % 2] = fadd(qzk[reg % 2], fmul(qs8[e], load(zs, {zRow, d})));
    }
    auto packA = [&](function_ref<Value(int64_t)> x) {
      return SmallVector<Value>{pack(x(0), x(1)), pack(x(2), x(3)),
                                pack(x(4), x(5)), pack(x(6), x(7))};
    };
    for (int64_t j = 0; j < C / 16; ++j) {
      // exp(b_r - b_e_j) per column; clamped at 0 so that blocks j >= i
      // (masked or replaced below) cannot overflow; in place, 0 there.
      Value fj[4];
      for (int64_t c = 0; c < 4; ++c) {
        fj[c] = exp(arith::MinimumFOp::create(
            b, loc,
            fsub(load(gb, {ref, cols[c]}),
                 load(gb, {idx(16 * j + 15), cols[c]})),
            f(0.0)));
        if (overQ)
          fj[c] = select(ult(idx(j), blk), fj[c], f(0.0));
      }
      SmallVector<Value> a = packA([&](int64_t e) {
        int64_t reg = e / 2;
        return fmul(qt[e], fj[(reg / 2) * 2 + e % 2]);
      });
      for (int64_t ns = 2 * j; ns < 2 * j + 2; ++ns)
        pk[ns] = mma(a, fragBDk(ks, 8 * ns, k16), pk[ns]);
    }
    if (overQ) {
      // The pairs of qs8 are adjacent columns of one row.
      for (int64_t e = 0; e < 8; e += 2) {
        int64_t reg = e / 2, c = (reg / 2) * 2;
        Value pair = vector::FromElementsOp::create(
            b, loc, VectorType::get({2}, cfg.elt),
            ValueRange{toElt(qs8[e]), toElt(qs8[e + 1])});
        vector::StoreOp::create(
            b, loc, pair, qs, dkIndexAt(t0, reg % 2 * 8, twoQ, colOff[c], k16))
            .setAlignment(4);
      }
    } else {
      SmallVector<Value> aS = packA([&](int64_t e) { return qs8[e]; });
      for (int64_t nv = 0; nv < BV / 8; ++nv)
        ok[nv] = mma(aS, fragBDk(st, 8 * nv, k16), ok[nv]);
    }
    SmallVector<Value> next = flatten(pk);
    next.append(flatten(ok));
    next.append({qzk[0], qzk[1]});
    return next;
  };
  // The wgmma kernel rolls the steps (its own staging and accumulators
  // leave no registers for the loads and exps of all steps at once); the
  // mma.sync kernel unrolls them, with constant offsets.
  SmallVector<Value> acc = flatten(p);
  acc.append((overQ ? 0 : BV / 2) + 2, f(0.0));
  if (overQ) {
    acc = rolledLoop(Dk / 16, acc, step);
  } else {
    for (int64_t kk = 0; kk < Dk / 16; ++kk)
      acc = step(idx(kk), acc);
  }
  p = toFrags(ArrayRef<Value>(acc).take_front(C / 2));
  out = toFrags(ArrayRef<Value>(acc).slice(C / 2, acc.size() - C / 2 - 2));
  qz[0] = acc[acc.size() - 2];
  qz[1] = acc.back();
  if (!overQ)
    for (int64_t ns = 0; ns < C / 8; ++ns)
      p[ns] = diagonal(ns, p[ns]);
  for (int64_t ns = 0; ns < C / 8; ++ns) {
    Value s0 = add(twoQ, 8 * ns), s1 = add(s0, 1);
    for (int64_t e = 0; e < 4; ++e)
      p[ns][e] =
          select(keep((e & 1) ? s1 : s0, e < 2 ? t0 : t1), p[ns][e], f(0.0));
  }
}

Value KernelEmitter::vectorDecayedKey(Value s, Value d) {
  Value x = toF32(load(kr, tileIndex(kr, s, d)));
  return fmul(x,
              exp(fsub(load(gb, {idx(cfg.chunk - 1), d}), load(gb, {s, d}))));
}

void KernelEmitter::emitChunkVector(Value c0, SmallVector<Value> &flatState) {
  int64_t C = cfg.chunk, W = cfg.warps, BV = cfg.blockV, Dk = cfg.dk;
  int64_t ntw = BV / W / 8;
  SmallVector<Frag> state = toFrags(flatState);
  Value rows = chunkRows(c0);
  Value tok0 = add(start, c0);

  // 1. Stage Q, raw K, Vᵀ, Sᵀ and the raw per-key log-gates [C][Dk].
  beginChunk(c0, tok0, rows);
  stageStateT(flatState);
  gpu::BarrierOp::create(b, loc);

  // 2. Cumulative gates and K̃.
  cumulateVectorGates();
  gpu::BarrierOp::create(b, loc);

  // 3. Outputs, one 16-row block at a time.
  Value zRow = cfg.normalized ? zRead(c0) : Value();
  for (int64_t mq = 0; mq < C / 16 / W; ++mq) {
    Value row0 = add(mul(warp, C / W), 16 * mq);
    Value t0 = add(row0, g), t1 = add(t0, 8);
    SmallVector<Frag> p, out;
    Value qz[2];
    vectorScores(row0, zRow, p, out, qz);
    Value den[2];
    if (cfg.normalized) {
      rowSums(p, den);
      for (int64_t half = 0; half < 2; ++half)
        den[half] = quadSum(fadd(den[half], qz[half]));
    }
    accumulatePV(p, out);
    if (cfg.normalized)
      divideOutputs(out, den);
    storeOutputs(out, tok0, t0, t1, rows);
  }

  // 4. S[d][·] ← exp(b_C[d]) S[d][·] + Σ_s k_s[d] exp(b_C[d] - b_s[d]) v_s.
  Value last = idx(C - 1);
  for (int64_t mt = 0; mt < Dk / 16; ++mt) {
    Value d0 = add(g, 16 * mt), d1 = add(d0, 8);
    Value e0 = exp(load(gb, {last, d0})), e1 = exp(load(gb, {last, d1}));
    for (int64_t nt = 0; nt < ntw; ++nt) {
      Frag &fr = state[mt * ntw + nt];
      fr[0] = fmul(fr[0], e0);
      fr[1] = fmul(fr[1], e0);
      fr[2] = fmul(fr[2], e1);
      fr[3] = fmul(fr[3], e1);
    }
  }
  accumulateKV(
      state, [](Value) { return Value(); },
      [&](Value s, Value d, Value) { return vectorDecayedKey(s, d); });
  if (cfg.normalized)
    updateNormalizerVector(c0, rows);
  gpu::BarrierOp::create(b, loc);
  flatState = flatten(state);
}

void KernelEmitter::emitChunk(Value c0, SmallVector<Value> &flatState) {
  int64_t C = cfg.chunk, W = cfg.warps, BV = cfg.blockV;
  SmallVector<Frag> state = toFrags(flatState);
  Value rows = chunkRows(c0);
  Value tok0 = add(start, c0);

  // 1. Stage Q, K, Vᵀ, Sᵀ (bf16) and the raw log-gates.
  beginChunk(c0, tok0, rows);
  stageStateT(flatState);
  gpu::BarrierOp::create(b, loc);

  // 2. Chunk-local cumulative log-gates b_t (rows past the end add 0).
  if (cfg.hasGates()) {
    ifThen(ult(tid, idx(C)), [&] {
      auto sum = scf::ForOp::create(b, loc, idx(0), add(tid, 1), idx(1),
                                    ValueRange{f(0.0)});
      {
        OpBuilder::InsertionGuard guard(b);
        b.setInsertionPointToStart(sum.getBody());
        Value acc =
            fadd(sum.getRegionIterArgs()[0], load(graw, sum.getInductionVar()));
        scf::YieldOp::create(b, loc, acc);
      }
      store(sum.getResult(0), gs, tid);
    });
    gpu::BarrierOp::create(b, loc);
  }

  // Delta rule: V becomes the new values Ṽ = U − W S.
  if (cfg.delta())
    emitDeltaValues(c0);

  // 3. Outputs of this warp's query rows (non-causal: none here, the
  // second pass emitNonCausalOutputs writes them).
  Value twoQ = mul(qd, 2);
  Value zRow = cfg.normalized ? zRead(c0) : Value();
  int64_t outputBlocks = cfg.causal ? C / 16 / W : 0;
  for (int64_t mq = 0; mq < outputBlocks; ++mq) {
    Value row0 = add(mul(warp, C / W), 16 * mq);
    Value t0 = add(row0, g), t1 = add(t0, 8);
    SmallVector<Frag> p(C / 8, zeroFrag()), out(BV / 8, zeroFrag());
    Value qz[2] = {f(0.0), f(0.0)};
    for (int64_t kk = 0; kk < cfg.dk / 16; ++kk) {
      SmallVector<Value> a = fragA(qs, t0, add(twoQ, 16 * kk));
      for (int64_t ns = 0; ns < C / 8; ++ns)
        p[ns] = mma(a, fragB(ks, add(g, 8 * ns), add(twoQ, 16 * kk)), p[ns]);
      for (int64_t nv = 0; nv < BV / 8; ++nv)
        out[nv] =
            mma(a, fragB(st, add(g, 8 * nv), add(twoQ, 16 * kk)), out[nv]);
      if (cfg.normalized)
        accumulateQZ(zRow, t0, t1, add(twoQ, 16 * kk), qz);
    }
    // Inter-chunk part scaled by γq = exp(b_t); P masked to s <= t (s < t
    // when exclusive) and decayed by exp(b_t - b_s).
    Value b0, b1, e0, e1;
    if (cfg.hasGates()) {
      b0 = load(gs, t0);
      b1 = load(gs, t1);
      e0 = exp(b0);
      e1 = exp(b1);
      for (Frag &fr : out) {
        fr[0] = fmul(fr[0], e0);
        fr[1] = fmul(fr[1], e0);
        fr[2] = fmul(fr[2], e1);
        fr[3] = fmul(fr[3], e1);
      }
    }
    for (int64_t ns = 0; ns < C / 8; ++ns) {
      Value s0 = add(twoQ, 8 * ns), s1 = add(s0, 1);
      Value bs0, bs1;
      if (cfg.hasGates()) {
        bs0 = load(gs, s0);
        bs1 = load(gs, s1);
      }
      for (int64_t e = 0; e < 4; ++e) {
        Value t = e < 2 ? t0 : t1, s = (e & 1) ? s1 : s0;
        Value x = p[ns][e];
        if (cfg.hasGates())
          x = fmul(x, exp(fsub(e < 2 ? b0 : b1, (e & 1) ? bs1 : bs0)));
        p[ns][e] = select(keep(s, t), x, f(0.0));
      }
    }
    // Normalizer: den_t = Σ_s P̃[t][s] + γq_t (q_t · z).
    Value den[2];
    if (cfg.normalized) {
      rowSums(p, den);
      for (int64_t half = 0; half < 2; ++half) {
        Value qz0 = cfg.hasGates() ? fmul(qz[half], half ? e1 : e0) : qz[half];
        den[half] = quadSum(fadd(den[half], qz0));
      }
    }
    accumulatePV(p, out);
    if (cfg.normalized)
      divideOutputs(out, den);
    storeOutputs(out, tok0, t0, t1, rows);
  }

  // 4. State update S ← exp(b_C) S + (diag(exp(b_C - b_s)) K)ᵀ V for this
  // warp's value columns.
  Value bLast;
  if (cfg.hasGates()) {
    bLast = load(gs, idx(C - 1));
    Value decayAll = exp(bLast);
    for (Frag &fr : state)
      for (Value &x : fr)
        x = fmul(x, decayAll);
  }
  accumulateKV(
      state,
      [&](Value s) {
        return cfg.hasGates() ? exp(fsub(bLast, load(gs, s))) : Value();
      },
      [&](Value s, Value d, Value fac) {
        Value x = toF32(load(ks, {s, d}));
        return fac ? fmul(x, fac) : x;
      });
  // z ← exp(b_C) z + Σ_s exp(b_C - b_s) k_s (into the other row of zs).
  if (cfg.normalized) {
    Value decayAll = cfg.hasGates() ? exp(bLast) : Value();
    updateNormalizer(
        c0, rows, [&](Value) { return decayAll; },
        [&](Value s, Value d) {
          Value x = toF32(load(ks, {s, d}));
          return cfg.hasGates() ? fmul(x, exp(fsub(bLast, load(gs, s)))) : x;
        });
  }
  gpu::BarrierOp::create(b, loc);
  flatState = flatten(state);
}

//===----------------------------------------------------------------------===//
// The (gated) delta rule (mma.sync)
//===----------------------------------------------------------------------===//
//
// The WY/UT chunk form of MATH.md 5.2 / 6.5, as lib/Reference/DeltaChunked.cpp
// computes it, with b the chunk-local inclusive cumulative log-gates (0 for
// the ungated rule), Γ_ts = exp(b_t − b_s) and T = (I + A)^{-1},
// A = strict_tril(diag(β) (K Kᵀ) ⊙ Γ):
//   Ṽ = U − W S = T diag(β) V − T diag(β e^b) K S = T X,
//   X = diag(β) (V − diag(e^b) K S),
// one Dk-wide product (K S) instead of two (W = T diag(β e^b) K, then W S).
// The outputs and the state update are then those of emitChunk with Ṽ in
// place of V: O = diag(e^b) Q S + ((Q Kᵀ) ⊙ Γ ⊙ M) Ṽ and
// S ← e^{b_C} S + (diag(e^{b_C − b}) K)ᵀ Ṽ. Rows past the end of the
// sequence have β = 0 and zero K, so their rows of A and X are zero, T is
// the identity there and their Ṽ rows are zero.

void KernelEmitter::emitDeltaSolve(Value c0) {
  int64_t C = cfg.chunk, n = cfg.threads();
  // The thread index, as a value that depends on the chunk: indices and
  // addresses computed from tid alone would be hoisted out of the chunk loop
  // and stay live across it (min(tid, c0 + n) is tid).
  Value tid = arith::MinUIOp::create(b, loc, this->tid, add(c0, n));
  // acc + Σ_{m ∈ [from, to)} am[r1][m] · am[r2][m], r1 and r2 fixed or not.
  auto dot = [&](Value acc, Value from, Value to, function_ref<Value(Value)> x,
                 function_ref<Value(Value)> y) {
    auto loop = scf::ForOp::create(b, loc, from, to, idx(1), ValueRange{acc});
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(loop.getBody());
    Value m = loop.getInductionVar();
    scf::YieldOp::create(b, loc,
                         fadd(loop.getRegionIterArgs()[0], fmul(x(m), y(m))));
    return loop.getResult(0);
  };
  // The end of the 16-row block holding row / column j.
  auto blockEnd = [&](Value j) {
    return add(mul(arith::DivUIOp::create(b, loc, j, idx(16)), 16), 16);
  };
  // (a) Each 16 x 16 diagonal block by forward substitution, one column j
  // per thread: T[i][j] = −A[i][j] − Σ_{j<m<i} A[i][m] T[m][j] for the rows
  // i > j of j's block (a thread reads back only its own column).
  // (C may exceed the thread count: then a thread takes several columns.)
  loop((C + n - 1) / n, [&](Value e) {
    Value j = add(mul(e, n), tid);
    ifThen(ult(j, idx(C)), [&] {
      // Column j of tb: 0 above the diagonal, 1 on it.
      loopTo(j, [&](Value m) { store(toElt(f(0.0)), tb, {m, j}); });
      store(toElt(f(1.0)), tb, {j, j});
      Value end = blockEnd(j);
      auto rows = scf::ForOp::create(b, loc, add(j, 1), end, idx(1));
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPoint(rows.getBody()->getTerminator());
      Value i = rows.getInductionVar();
      Value acc = dot(
          load(am, {i, j}), add(j, 1), i,
          [&](Value m) {
            return load(am, {i, m});
          },
          [&](Value m) {
            return load(am, {j, m});
          });
      Value t = arith::NegFOp::create(b, loc, acc);
      store(t, am, {j, i});
      store(toElt(t), tb, {i, j});
    });
  });
  gpu::BarrierOp::create(b, loc);
  // (b) Block rows r0 = 16, 32, ...: for each (i, j) with i in the block
  // row and j < r0 (spread over all threads),
  //   U[i][j] = A[i][j] + Σ_{j<m<r0} A[i][m] T[m][j]
  // (the products A[ib][mb] T[mb][kb], mb ∈ [kb, ib)) goes to am[j][i],
  // above the diagonal and unused so far; after a barrier
  //   T[i][j] = −U[i][j] − Σ_{r0<=m<i} T[i][m] U[m][j]   (−T[ib][ib] U)
  // goes over A at am[i][j], which nothing reads any more. So T's
  // off-diagonal blocks sit below the diagonal, its diagonal blocks above.
  for (int64_t r0 = 16; r0 < C; r0 += 16) {
    int64_t count = 16 * r0;
    auto forPairs = [&](function_ref<void(Value, Value)> body) {
      loop((count + n - 1) / n,
           [&](Value e) {
             Value k = add(mul(e, n), tid);
             auto pair = [&] {
               body(add(arith::DivUIOp::create(b, loc, k, idx(r0)), r0),
                    arith::RemUIOp::create(b, loc, k, idx(r0)));
             };
             if (count % n)
               ifThen(ult(k, idx(count)), pair);
             else
               pair();
           },
           /*rolled=*/true);
    };
    forPairs([&](Value i, Value j) {
      Value end = blockEnd(j);
      auto aRow = [&](Value m) { return load(am, {i, m}); };
      // T[m][j]: above the diagonal in j's block, below it past the block.
      Value acc = dot(load(am, {i, j}), add(j, 1), end, aRow, [&](Value m) {
        return load(am, {j, m});
      });
      acc = dot(acc, end, idx(r0), aRow, [&](Value m) {
        return load(am, {m, j});
      });
      store(acc, am, {j, i});
    });
    gpu::BarrierOp::create(b, loc);
    forPairs([&](Value i, Value j) {
      Value acc = dot(
          load(am, {j, i}), idx(r0), i,
          [&](Value m) {
            return load(am, {m, i});
          },
          [&](Value m) {
            return load(am, {j, m});
          });
      Value t = arith::NegFOp::create(b, loc, acc);
      store(t, am, {i, j});
      store(toElt(t), tb, {i, j});
    });
    gpu::BarrierOp::create(b, loc);
  }
  // Each path ended with a barrier: tb and am are complete.
}

void KernelEmitter::emitDeltaValues(Value c0) {
  int64_t C = cfg.chunk, W = cfg.warps, BV = cfg.blockV;
  Value twoQ = mul(qd, 2);
  // 1. Per 16-row block of this warp: K S and then K Kᵀ with mma.sync (one
  // after the other, so that their accumulators are not live together); X
  // over V in vt (each element of the block's rows is read and written by
  // the one thread holding it), A into the lower triangle of am (fp32).
  for (int64_t mq = 0; mq < C / 16 / W; ++mq) {
    Value row0 = add(mul(warp, C / W), 16 * mq);
    Value t0 = add(row0, g), t1 = add(t0, 8);
    Value bt[2] = {load(betas, t0), load(betas, t1)};
    Value gt[2];
    if (cfg.hasGates()) {
      gt[0] = load(gs, t0);
      gt[1] = load(gs, t1);
    }
    // X[t][j] = β_t (V[t][j] − e^{b_t} (K S)[t][j]).
    {
      SmallVector<Frag> kS = rowsTimesDk(ks, t0, st, BV);
      Value et[2];
      if (cfg.hasGates()) {
        et[0] = exp(gt[0]);
        et[1] = exp(gt[1]);
      }
      for (int64_t nv = 0; nv < BV / 8; ++nv) {
        for (int64_t e = 0; e < 4; ++e) {
          int64_t half = e / 2;
          Value t = half ? t1 : t0;
          Value j = add(twoQ, 8 * nv + (e & 1));
          Value kSx = kS[nv][e];
          if (cfg.hasGates())
            kSx = fmul(kSx, et[half]);
          Value x =
              fmul(fsub(toF32(load(vt, tileIndex(vt, j, t))), kSx), bt[half]);
          store(toElt(x), vt, tileIndex(vt, j, t));
        }
      }
    }
    // A[t][s] = β_t (k_t · k_s) exp(b_t − b_s) for s < t (the solve reads
    // nothing on or above the diagonal, and overwrites what is above it).
    SmallVector<Frag> p = rowsTimesDk(ks, t0, ks, C);
    for (int64_t ns = 0; ns < C / 8; ++ns) {
      Value s0 = add(twoQ, 8 * ns), s1 = add(s0, 1);
      Value gs0, gs1;
      if (cfg.hasGates()) {
        gs0 = load(gs, s0);
        gs1 = load(gs, s1);
      }
      for (int64_t e = 0; e < 4; ++e) {
        int64_t half = e / 2;
        Value t = half ? t1 : t0, s = (e & 1) ? s1 : s0;
        Value x = fmul(p[ns][e], bt[half]);
        if (cfg.hasGates())
          x = fmul(x, exp(fsub(gt[half], (e & 1) ? gs1 : gs0)));
        store(x, am, {t, s});
      }
    }
  }
  gpu::BarrierOp::create(b, loc);

  // 2. T = (I + A)^{-1} in fp32, blocked by 16 rows (test/GPU/delta-model.py
  // models it). T[i][j] (i > j) is kept at am[j][i], above the diagonal,
  // where A has nothing; T's diagonal is 1.
  emitDeltaSolve(c0);

  // 3. Ṽ = T X for this warp's rows: T (tb) is the A operand, X (vt) the
  // B operand.
  SmallVector<SmallVector<Frag>> vNew;
  for (int64_t mq = 0; mq < C / 16 / W; ++mq) {
    Value row0 = add(mul(warp, C / W), 16 * mq);
    Value t0 = add(row0, g);
    SmallVector<Frag> out(BV / 8, zeroFrag());
    for (int64_t kk = 0; kk < C / 16; ++kk) {
      Value m0 = add(twoQ, 16 * kk);
      SmallVector<Value> a = fragA(tb, t0, m0);
      for (int64_t nv = 0; nv < BV / 8; ++nv)
        out[nv] = mma(a, fragB(vt, add(g, 8 * nv), m0), out[nv]);
    }
    vNew.push_back(std::move(out));
  }
  // Every warp has read X; Ṽᵀ replaces it in vt.
  gpu::BarrierOp::create(b, loc);
  for (int64_t mq = 0; mq < C / 16 / W; ++mq) {
    Value t0 = add(add(mul(warp, C / W), 16 * mq), g), t1 = add(t0, 8);
    for (int64_t nv = 0; nv < BV / 8; ++nv)
      for (int64_t e = 0; e < 4; ++e)
        store(toElt(vNew[mq][nv][e]), vt,
              tileIndex(vt, add(twoQ, 8 * nv + (e & 1)), e < 2 ? t0 : t1));
  }
  gpu::BarrierOp::create(b, loc);
}

//===----------------------------------------------------------------------===//
// wgmma (sm_90a)
//===----------------------------------------------------------------------===//

Value KernelEmitter::blockedOffset(Value row, Value col, int64_t cols) {
  Value rBlk = arith::DivUIOp::create(b, loc, row, idx(8));
  Value rIn = arith::RemUIOp::create(b, loc, row, idx(8));
  Value cBlk = arith::DivUIOp::create(b, loc, col, idx(8));
  Value cIn = arith::RemUIOp::create(b, loc, col, idx(8));
  return add(add(mul(add(mul(rBlk, cols / 8), cBlk), 64), mul(rIn, 8)), cIn);
}

Value KernelEmitter::descriptor(int64_t byteOffset, int64_t cols, int64_t row0,
                                int64_t col0, bool inSlot) {
  // PTX "Matrix Descriptor Format", K-major without swizzle: bits 0-13 the
  // start address >> 4, 16-29 the leading-dimension byte offset >> 4 (the
  // next 8 columns: one 128-byte core matrix on), 32-45 the stride byte
  // offset >> 4 (the next 8 rows: a row of core matrices on).
  int64_t eb = cfg.elt.getIntOrFloatBitWidth() / 8;
  int64_t sbo = cols / 8 * 128;
  int64_t start = byteOffset + row0 / 8 * sbo + col0 / 8 * 128;
  assert(start % 16 == 0 && eb == 2);
  (void)eb;
  int64_t bits =
      (start >> 4) | (int64_t(128 >> 4) << 16) | (int64_t(sbo >> 4) << 32);
  // descBase + start >> 4 stays below 2^14 (shared memory < 256 KiB), so the
  // sum never carries into the offset fields.
  Value base = descBase;
  if (inSlot && cfg.stages > 1) // the ring slot of this chunk
    base = arith::AddIOp::create(b, loc, base, slotDesc);
  return arith::AddIOp::create(b, loc, base,
                               arith::ConstantIntOp::create(b, loc, bits, 64));
}

Value KernelEmitter::zeroAcc(int64_t n) {
  auto ty = LLVM::LLVMStructType::getLiteral(b.getContext(),
                                             SmallVector<Type>(n / 2, f32));
  return LLVM::ZeroOp::create(b, loc, ty);
}

Value KernelEmitter::wgmma(int64_t n, Value descA, Value descB, Value acc,
                           bool accumulate) {
  auto type = cfg.mmaType == NVVM::MMATypes::f16 ? NVVM::WGMMATypes::f16
                                                 : NVVM::WGMMATypes::bf16;
  return NVVM::WgmmaMmaAsyncOp::create(
      b, loc, acc.getType(), acc, descA, descB,
      NVVM::MMAShapeAttr::get(b.getContext(), 64, n, 16), type, type,
      NVVM::WGMMATypes::f32,
      accumulate ? NVVM::WGMMAScaleOut::one : NVVM::WGMMAScaleOut::zero,
      NVVM::WGMMAScaleIn::one, NVVM::WGMMAScaleIn::one, NVVM::MMALayout::row,
      NVVM::MMALayout::col, NVVM::MMAIntOverflowAttr());
}

SmallVector<Value> KernelEmitter::unpack(Value acc, int64_t n) {
  SmallVector<Value> values;
  for (int64_t i = 0; i < n / 2; ++i)
    values.push_back(LLVM::ExtractValueOp::create(b, loc, acc, i));
  return values;
}

Value KernelEmitter::packAcc(ArrayRef<Value> values) {
  Value acc = zeroAcc(2 * values.size());
  for (auto [i, x] : llvm::enumerate(values))
    acc = LLVM::InsertValueOp::create(b, loc, acc, x, i);
  return acc;
}

void KernelEmitter::fenceProxyAsync() {
  // Shared-memory writes by threads must be made visible to the async proxy
  // that wgmma reads operands through.
  NVVM::FenceProxyOp::create(
      b, loc, NVVM::ProxyKind::async_shared,
      NVVM::SharedSpaceAttr::get(b.getContext(),
                                 NVVM::SharedSpace::shared_cta));
}

void KernelEmitter::stageStateTWgmma(ArrayRef<Value> state) {
  // Sᵀ[v][d] from the accumulators. Value r of tile j sits at v = 8 (r/4) +
  // 2q + r%2 and d = 64 (wg + groups j) + 16 wIn + 8 ((r/2)%2) + g, so its
  // core-matrix offset is a per-thread base plus a constant (kept apart so
  // that the 64-odd addresses are not each held in a register).
  int64_t Dk = cfg.dk, perTile = cfg.blockV / 2;
  Value stBase =
      add(add(mul(add(mul(wg, 8), mul(wIn, 2)), 64), mul(qd, 16)), g);
  for (int64_t i = 0; i < cfg.stateValues(); ++i) {
    int64_t j = i / perTile, r = i % perTile;
    int64_t c = ((r / 4) * (Dk / 8) + 8 * cfg.groups() * j + (r / 2) % 2) * 64 +
                (r % 2) * 8;
    store(toElt(state[i]), st, add(stBase, c));
  }
}

SmallVector<Value>
KernelEmitter::perWarpgroup(function_ref<SmallVector<Value>(int64_t)> body,
                            int64_t numValues) {
  // The warpgroup index is dynamic; descriptors are built per warpgroup
  // under a switch on it so that every offset stays a constant.
  if (cfg.groups() == 1)
    return body(0);
  auto sw = scf::IndexSwitchOp::create(
      b, loc, SmallVector<Type>(numValues, f32), wg,
      llvm::to_vector(llvm::seq<int64_t>(1, cfg.groups())), cfg.groups() - 1);
  for (int64_t grp = 0; grp < cfg.groups(); ++grp) {
    Region &r = grp == 0 ? sw.getDefaultRegion() : sw.getCaseRegions()[grp - 1];
    b.createBlock(&r);
    SmallVector<Value> vals = body(grp);
    scf::YieldOp::create(b, loc, vals);
  }
  b.setInsertionPointAfter(sw);
  return SmallVector<Value>(sw.getResults());
}

void KernelEmitter::storeOutputsWgmma(SmallVector<Value> &out, Value tok0,
                                      Value t0, Value t1, Value rows,
                                      Value *den) {
  // Rows t < rows: two consecutive outputs per 32-bit store (normalized:
  // divided by den_t + eps).
  int64_t BV = cfg.blockV;
  Value twoQ = mul(qd, 2);
  if (den) {
    Value inv[2];
    for (int64_t half = 0; half < 2; ++half)
      inv[half] =
          arith::DivFOp::create(b, loc, f(1.0), fadd(den[half], f(cfg.eps)));
    for (int64_t r = 0; r < BV / 2; ++r)
      out[r] = fmul(out[r], inv[(r / 2) % 2]);
  }
  for (int64_t half = 0; half < 2; ++half) {
    Value t = half ? t1 : t0;
    ifThen(ult(t, rows), [&] {
      Value base = tokenOffset(batch, add(tok0, t), head, heads, cfg.dv);
      for (int64_t r = 2 * half; r < BV / 2; r += 4) {
        Value col = add(add(mul(vTile, BV), 8 * (r / 4)), twoQ);
        Value pair = vector::FromElementsOp::create(
            b, loc, VectorType::get({2}, cfg.elt),
            ValueRange{toElt(out[r]), toElt(out[r + 1])});
        auto stOp = vector::StoreOp::create(b, loc, pair, o,
                                            ValueRange{add(base, col)});
        stOp.setAlignment(4);
      }
    });
  }
}

void KernelEmitter::emitNonCausalOutputsWgmma(ArrayRef<Value> state) {
  // Pass 2: every query reads S_T (and z_T), constant, so Sᵀ is staged once;
  // per chunk, O = Q·S_T on wgmma.
  int64_t BV = cfg.blockV, Dk = cfg.dk;
  OpBuilder::InsertionGuard guard(b);
  Value rows, tok0;
  beginNonCausalChunk(state, rows, tok0);
  fenceProxyAsync();
  gpu::BarrierOp::create(b, loc);
  descBase = load(descSlot, idx(0));
  NVVM::WgmmaFenceAlignedOp::create(b, loc);
  SmallVector<Value> out = perWarpgroup(
      [&](int64_t grp) {
        Value oAcc = zeroAcc(BV);
        for (int64_t kk = 0; kk < Dk / 16; ++kk)
          oAcc = wgmma(BV, descriptor(qsOff, Dk, 64 * grp, 16 * kk, true),
                       descriptor(stOff, Dk, 0, 16 * kk), oAcc, kk > 0);
        NVVM::WgmmaGroupSyncAlignedOp::create(b, loc);
        NVVM::WgmmaWaitGroupSyncOp::create(b, loc, 0);
        return unpack(oAcc, BV);
      },
      BV / 2);
  Value t0 = add(add(mul(wg, 64), mul(wIn, 16)), g), t1 = add(t0, 8);
  Value den[2];
  if (cfg.normalized) {
    Value none[2] = {f(0.0), f(0.0)};
    wgmmaDenominators(zFinal(), t0, t1, none, Value(), Value(), den);
  }
  storeOutputsWgmma(out, tok0, t0, t1, rows, cfg.normalized ? den : nullptr);
  gpu::BarrierOp::create(b, loc); // before the next chunk's Q overwrites qs
}

void KernelEmitter::emitChunkWgmma(Value c0, SmallVector<Value> &state) {
  int64_t C = cfg.chunk, BV = cfg.blockV, Dk = cfg.dk;
  int64_t tilesPerGroup = Dk / 64 / cfg.groups();
  int64_t perTile = BV / 2;
  Value rows = chunkRows(c0);
  Value tok0 = add(start, c0);

  // Non-causal (pass 1): no outputs, only the state (and z) recurrence.
  bool outputs = cfg.causal;
  // Per-token gates (scalar or constant); vector (GLA) gates take the
  // scores from mma.sync (the decays make A differ per 16-row block).
  bool vector = cfg.vectorGates();
  bool scalarGates = cfg.hasGates() && !vector;

  // 1. Stage Q, K, Vᵀ, Sᵀ and the raw gates; make them visible to wgmma.
  beginChunk(c0, tok0, rows);
  if (outputs)
    stageStateTWgmma(state);
  fenceProxyAsync();
  gpu::BarrierOp::create(b, loc);
  descBase = load(descSlot, idx(0));

  // 2. Cumulative gates b_t, and the key factors exp(b_C - b_s) of the
  // state update (vector gates: per feature, with K̃).
  if (vector) {
    cumulateVectorGates();
    gpu::BarrierOp::create(b, loc);
  } else if (scalarGates) {
    ifThen(ult(tid, idx(C)), [&] {
      auto sum = scf::ForOp::create(b, loc, idx(0), idx(C), idx(1),
                                    ValueRange{f(0.0), f(0.0)});
      {
        OpBuilder::InsertionGuard guard(b);
        b.setInsertionPointToStart(sum.getBody());
        Value i = sum.getInductionVar();
        Value x = load(graw, i);
        Value total = fadd(sum.getRegionIterArgs()[0], x);
        Value mine = select(ule(i, tid), fadd(sum.getRegionIterArgs()[1], x),
                            sum.getRegionIterArgs()[1]);
        scf::YieldOp::create(b, loc, ValueRange{total, mine});
      }
      store(sum.getResult(1), gs, tid);
      store(exp(fsub(sum.getResult(0), sum.getResult(1))), gf, tid);
    });
    gpu::BarrierOp::create(b, loc);
  }
  // Delta rule: Vᵀ becomes Ṽᵀ (mma.sync and the blocked solve; step 4's
  // proxy fence publishes it to wgmma).
  if (cfg.delta())
    emitDeltaValues(c0);

  // 3. P = Q·Kᵀ and O = Q·S for this warpgroup's 64 query rows.
  int64_t rowBase = 64; // rows per warpgroup
  NVVM::WgmmaFenceAlignedOp::create(b, loc);
  auto groupRows = [&](int64_t tileOff, int64_t cols, int64_t kk, int64_t group,
                       bool inSlot) {
    return descriptor(tileOff, cols, rowBase * group, 16 * kk, inSlot);
  };
  SmallVector<Value> p, out;
  Value qz[2]; // vector gates, normalized: this lane's share of q̃ · z
  if (outputs && vector) {
    // This warp's 16 rows of the warpgroup's 64: the mma.sync fragments of
    // P and O are its rows of the wgmma accumulators, value for value.
    SmallVector<Frag> pf, of;
    vectorScores(mul(warp, 16), cfg.normalized ? zRead(c0) : Value(), pf, of,
                 qz, /*overQ=*/true);
    p = flatten(pf);
    out = flatten(of);
  } else if (outputs) {
    SmallVector<Value> pAndO = perWarpgroup(
        [&](int64_t grp) {
          Value pAcc = zeroAcc(C), oAcc = zeroAcc(BV);
          for (int64_t kk = 0; kk < Dk / 16; ++kk) {
            Value a = groupRows(qsOff, Dk, kk, grp, /*inSlot=*/true);
            pAcc = wgmma(C, a, descriptor(ksOff, Dk, 0, 16 * kk, true), pAcc,
                         kk > 0);
            oAcc =
                wgmma(BV, a, descriptor(stOff, Dk, 0, 16 * kk), oAcc, kk > 0);
          }
          NVVM::WgmmaGroupSyncAlignedOp::create(b, loc);
          NVVM::WgmmaWaitGroupSyncOp::create(b, loc, 0);
          SmallVector<Value> vals = unpack(pAcc, C);
          vals.append(unpack(oAcc, BV));
          return vals;
        },
        C / 2 + BV / 2);
    p.assign(pAndO.begin(), pAndO.begin() + C / 2);
    out.assign(pAndO.begin() + C / 2, pAndO.end());
  }

  // 4. Mask and decay P, scale Q·S by exp(b_t); write P to shared memory.
  Value twoQ = mul(qd, 2);
  Value t0 = add(add(mul(wg, rowBase), mul(wIn, 16)), g), t1 = add(t0, 8);
  if (outputs) {
    Value b0, b1, e0, e1;
    if (scalarGates) {
      b0 = load(gs, t0);
      b1 = load(gs, t1);
      e0 = exp(b0);
      e1 = exp(b1);
      for (int64_t r = 0; r < BV / 2; ++r)
        out[r] = fmul(out[r], (r / 2) % 2 ? e1 : e0);
    }
    Value rowSum[2] = {f(0.0), f(0.0)}; // normalized: this lane's Σ_s P̃[t][s]
    Value psBase = add(
        add(mul(add(mul(wg, 8), mul(wIn, 2)), C / 8 * 64), mul(g, 8)), twoQ);
    for (int64_t r = 0; r < C / 2; r += 2) {
      Value s0 = add(twoQ, 8 * (r / 4)), s1 = add(s0, 1);
      Value bs0, bs1;
      if (scalarGates) {
        bs0 = load(gs, s0);
        bs1 = load(gs, s1);
      }
      bool upper = (r / 2) % 2;
      Value t = upper ? t1 : t0;
      SmallVector<Value, 2> pair;
      for (int64_t e = 0; e < 2; ++e) {
        Value x = p[r + e];
        if (!vector) { // vectorScores masked and decayed its scores
          if (scalarGates)
            x = fmul(x, exp(fsub(upper ? b1 : b0, e ? bs1 : bs0)));
          x = select(keep(e ? s1 : s0, t), x, f(0.0));
        }
        if (cfg.normalized)
          rowSum[upper] = fadd(rowSum[upper], x);
        pair.push_back(toElt(x));
      }
      Value vec = vector::FromElementsOp::create(
          b, loc, VectorType::get({2}, cfg.elt), pair);
      // blockedOffset(t, s0, C) as a per-thread base plus a constant.
      int64_t c = (upper * (C / 8) + r / 4) * 64;
      auto stOp = vector::StoreOp::create(b, loc, vec, ps, add(psBase, c));
      stOp.setAlignment(4);
    }
    if (cfg.normalized) {
      // Through shared memory: no register lives through step 5. Lane 0
      // of the quad stores (one writer per row).
      Value den[2];
      if (vector) {
        for (int64_t half = 0; half < 2; ++half)
          den[half] = quadSum(fadd(rowSum[half], qz[half]));
      } else {
        wgmmaDenominators(zRead(c0), t0, t1, rowSum, e0, e1, den);
      }
      ifThen(
          arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, qd, idx(0)),
          [&] {
            store(den[0], dens, t0);
            store(den[1], dens, t1);
          });
    }
  }
  // Decayed Kᵀ: kd[d][s] = K[s][d] exp(b_C - b_s), 8 tokens per item
  // (vector gates: exp(b_C[d] - b_s[d]), over K̃ once every warp has read
  // it).
  if (vector)
    gpu::BarrierOp::create(b, loc);
  {
    int64_t items = Dk * C / 8;
    int64_t steps = (items + cfg.threads() - 1) / cfg.threads();
    loop(steps, [&](Value i) {
      Value lin = add(mul(i, cfg.threads()), tid);
      auto body = [&] {
        Value d = arith::RemUIOp::create(b, loc, lin, idx(Dk));
        Value s8 = mul(arith::DivUIOp::create(b, loc, lin, idx(Dk)), 8);
        SmallVector<Value> xs;
        for (int64_t e = 0; e < 8; ++e) {
          Value s = add(s8, e);
          Value x = vector ? toElt(vectorDecayedKey(s, d))
                           : load(ks, blockedOffset(s, d, Dk));
          if (scalarGates)
            x = toElt(fmul(toF32(x), load(gf, s)));
          xs.push_back(x);
        }
        Value vec = vector::FromElementsOp::create(
            b, loc, VectorType::get({8}, cfg.elt), xs);
        auto stOp =
            vector::StoreOp::create(b, loc, vec, kd, blockedOffset(d, s8, C));
        stOp.setAlignment(16);
      };
      if (items % cfg.threads() == 0)
        body();
      else
        ifThen(ult(lin, idx(items)), body);
    });
  }
  fenceProxyAsync();
  gpu::BarrierOp::create(b, loc);

  // 5. O += P·V; S ← exp(b_C) S + (decayed K)ᵀ·V.
  if (scalarGates) {
    Value decayAll = exp(load(gs, idx(C - 1)));
    for (Value &x : state)
      x = fmul(x, decayAll);
  } else if (vector) {
    // Row d of the state by exp(b_C[d]); a thread's values of tile j sit
    // on two key rows (r / 2 even: row g, odd: g + 8).
    SmallVector<Value> rowDecay;
    for (int64_t i = 0; i < cfg.stateValues(); ++i) {
      int64_t j = i / perTile, r = i % perTile;
      if (r == 0 || r == 2)
        rowDecay.push_back(exp(load(gb, {idx(C - 1), stateCoord(i).first})));
      state[i] = fmul(state[i], rowDecay[2 * j + (r / 2) % 2]);
    }
  }
  int64_t numOut = outputs ? BV / 2 : 0;
  SmallVector<Value> updated = perWarpgroup(
      [&](int64_t grp) {
        NVVM::WgmmaFenceAlignedOp::create(b, loc);
        Value oAcc;
        if (outputs && vector) { // O = Q̃·S first
          oAcc = zeroAcc(BV);
          for (int64_t kk = 0; kk < Dk / 16; ++kk)
            oAcc = wgmma(BV, groupRows(qsOff, Dk, kk, grp, /*inSlot=*/true),
                         descriptor(stOff, Dk, 0, 16 * kk), oAcc, kk > 0);
        } else if (outputs) {
          oAcc = packAcc(out);
        }
        if (outputs) {
          for (int64_t kk = 0; kk < C / 16; ++kk)
            oAcc = wgmma(BV, groupRows(psOff, C, kk, grp, /*inSlot=*/false),
                         descriptor(vtOff, C, 0, 16 * kk), oAcc, true);
        }
        SmallVector<Value> tiles;
        for (int64_t j = 0; j < tilesPerGroup; ++j) {
          int64_t mt = grp + cfg.groups() * j;
          Value s = packAcc(ArrayRef<Value>(state).slice(j * perTile, perTile));
          for (int64_t kk = 0; kk < C / 16; ++kk)
            s = wgmma(BV, descriptor(kdOff, C, 64 * mt, 16 * kk),
                      descriptor(vtOff, C, 0, 16 * kk), s, true);
          tiles.push_back(s);
        }
        NVVM::WgmmaGroupSyncAlignedOp::create(b, loc);
        NVVM::WgmmaWaitGroupSyncOp::create(b, loc, 0);
        SmallVector<Value> vals;
        if (outputs)
          vals = unpack(oAcc, BV);
        for (Value s : tiles)
          vals.append(unpack(s, BV));
        return vals;
      },
      numOut + state.size());
  out.assign(updated.begin(), updated.begin() + numOut);
  state.assign(updated.begin() + numOut, updated.end());

  // 6. Store this chunk's outputs.
  if (outputs) {
    Value den[2];
    if (cfg.normalized) {
      den[0] = load(dens, t0);
      den[1] = load(dens, t1);
    }
    storeOutputsWgmma(out, tok0, t0, t1, rows, cfg.normalized ? den : nullptr);
  }
  // z ← exp(b_C) z + Σ_s exp(b_C - b_s) k_s (into the other row of zs).
  if (cfg.normalized && vector) {
    updateNormalizerVector(c0, rows);
  } else if (cfg.normalized) {
    Value decayAll = scalarGates ? exp(load(gs, idx(C - 1))) : Value();
    updateNormalizer(
        c0, rows, [&](Value) { return decayAll; },
        [&](Value s, Value d) {
          Value x = toF32(load(ks, blockedOffset(s, d, Dk)));
          return scalarGates ? fmul(x, load(gf, s)) : x;
        });
  }
  gpu::BarrierOp::create(b, loc);
}

void KernelEmitter::wgmmaDenominators(Value zRow, Value t0, Value t1,
                                      Value rowSum[2], Value e0, Value e1,
                                      Value den[2]) {
  // den_t = Σ_s P̃[t][s] + exp(b_t) (q_t · z). The quad holding row t splits
  // q_t · z by 8-feature groups (lane q: groups q, q + 4, ...), and adds up
  // its partial sums with the P̃ sums of its columns.
  int64_t Dk = cfg.dk;
  auto v8 = VectorType::get({8}, f32);
  for (int64_t half = 0; half < 2; ++half) {
    Value t = half ? t1 : t0;
    Value qz = f(0.0);
    for (int64_t j = 0; j < Dk / 32; ++j) {
      Value col = mul(add(qd, 4 * j), 8);
      auto qv = vector::LoadOp::create(b, loc, VectorType::get({8}, cfg.elt),
                                       qs, blockedOffset(t, col, Dk));
      qv.setAlignment(16);
      auto zv = vector::LoadOp::create(b, loc, v8, zs, ValueRange{zRow, col});
      zv.setAlignment(16);
      Value qf = arith::ExtFOp::create(b, loc, v8, qv.getResult());
      for (int64_t i = 0; i < 8; ++i)
        qz = fadd(qz, fmul(vector::ExtractOp::create(b, loc, qf,
                                                     ArrayRef<int64_t>{i}),
                           vector::ExtractOp::create(b, loc, zv.getResult(),
                                                     ArrayRef<int64_t>{i})));
    }
    if (cfg.hasGates())
      qz = fmul(qz, half ? e1 : e0);
    den[half] = quadSum(fadd(rowSum[half], qz));
  }
}

void KernelEmitter::emit(gpu::GPUFuncOp func) {
  Block &entry = func.getBody().front();
  b.setInsertionPointToStart(&entry);
  auto args = entry.getArguments();
  q = args[0], k = args[1], v = args[2], gate = args[3], h0 = args[4];
  o = args[5], hT = args[6], offsets = args[7];
  // args[8], the number of sequences, is the grid's z extent.
  seqLen = toIndex(args[9]);
  headsQ = toIndex(args[10]);
  headsK = toIndex(args[11]);
  headsV = toIndex(args[12]);
  Value zero64 = arith::ConstantIntOp::create(b, loc, 0, 64);
  auto flag = [&](Value x) {
    return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ne, x, zero64);
  };
  hasH0 = flag(args[13]);
  hasHT = flag(args[14]);
  hasOffsets = flag(args[15]);
  if (cfg.delta())
    beta = args[16];
  if (cfg.normalized) {
    z0 = args[16];
    z1 = args[17];
    hasZ0 = flag(args[18]);
    hasZ1 = flag(args[19]);
  }
  heads = arith::MaxUIOp::create(
      b, loc, arith::MaxUIOp::create(b, loc, headsQ, headsK), headsV);

  tid = gpu::ThreadIdOp::create(b, loc, gpu::Dimension::x);
  warp = arith::DivUIOp::create(b, loc, tid, idx(32));
  Value lane = arith::RemUIOp::create(b, loc, tid, idx(32));
  g = arith::DivUIOp::create(b, loc, lane, idx(4));
  qd = arith::RemUIOp::create(b, loc, lane, idx(4));
  wg = arith::DivUIOp::create(b, loc, warp, idx(4));
  wIn = arith::RemUIOp::create(b, loc, warp, idx(4));
  vTile = gpu::BlockIdOp::create(b, loc, gpu::Dimension::x);
  head = gpu::BlockIdOp::create(b, loc, gpu::Dimension::y);
  seq = gpu::BlockIdOp::create(b, loc, gpu::Dimension::z);

  // The sequence: [offsets[n], offsets[n+1]) of batch entry 0, or all of
  // batch entry n.
  auto i64 = b.getI64Type();
  Value startLen = ifElse(
      hasOffsets, VectorType::get({2}, i64),
      [&] {
        Value s = load(offsets, seq), e = load(offsets, add(seq, 1));
        return Value(vector::FromElementsOp::create(
            b, loc, VectorType::get({2}, i64),
            ValueRange{s, arith::SubIOp::create(b, loc, e, s)}));
      },
      [&] {
        Value t = arith::IndexCastOp::create(b, loc, i64, seqLen);
        return Value(vector::FromElementsOp::create(
            b, loc, VectorType::get({2}, i64), ValueRange{zero64, t}));
      });
  start = toIndex(
      vector::ExtractOp::create(b, loc, startLen, ArrayRef<int64_t>{0}));
  len = toIndex(
      vector::ExtractOp::create(b, loc, startLen, ArrayRef<int64_t>{1}));
  batch = select(hasOffsets, idx(0), seq);
  if (cfg.decay == DecayKind::Constant)
    logLambda = toF32(load(gate, head));
  // GQA/GVA: the q, k and v heads this block's head reads.
  auto headOf = [&](Value n) {
    return arith::DivUIOp::create(b, loc, head,
                                  arith::DivUIOp::create(b, loc, heads, n));
  };
  headQ = headOf(headsQ);
  headK = headOf(headsK);
  headV = headOf(headsV);

  // Shared memory.
  auto space =
      gpu::AddressSpaceAttr::get(b.getContext(), gpu::AddressSpace::Workgroup);
  dyn = gpu::DynamicSharedMemoryOp::create(
      b, loc,
      MemRefType::get({ShapedType::kDynamic}, b.getI8Type(),
                      MemRefLayoutAttrInterface(), space));
  int64_t off = 0;
  auto carve = [&](ArrayRef<int64_t> shape, Type t) {
    Value tile = sharedTile(dyn, off, shape, t);
    int64_t n = t.getIntOrFloatBitWidth() / 8;
    for (int64_t d : shape)
      n *= d;
    off += n;
    return tile;
  };
  int64_t C = cfg.chunk, BV = cfg.blockV, Dk = cfg.dk;
  int64_t eltBytes = cfg.elt.getIntOrFloatBitWidth() / 8;
  // The ring of Q / K (+ raw V and raw vector gates) slots (stages > 1):
  // slot views are made per chunk by useSlot().
  auto carveRing = [&](int64_t qkElems) {
    ringOff = off;
    slotKOff = qkElems * eltBytes;
    slotVOff = 2 * slotKOff;
    slotGOff = slotVOff + C * BV * eltBytes;
    slotBytes = slotGOff;
    if (cfg.vectorGates())
      slotBytes += C * Dk * (cfg.gateElt.getIntOrFloatBitWidth() / 8);
    off += cfg.stages * slotBytes;
  };
  if (cfg.wgmma) {
    auto tile = [&](int64_t elems, int64_t &at) {
      at = off;
      return carve({elems}, cfg.elt);
    };
    if (cfg.stages > 1) {
      carveRing(C * Dk);
      qsOff = ringOff;
      ksOff = ringOff + slotKOff;
    } else {
      qs = tile(C * Dk, qsOff);
      (cfg.vectorGates() ? kr : ks) = tile(C * Dk, ksOff);
    }
    vt = tile(BV * C, vtOff);
    st = tile(BV * Dk, stOff);
    ps = tile(C * C, psOff);
    kd = tile(Dk * C, kdOff);
    if (cfg.vectorGates()) { // K̃ over the decayed Kᵀ; the [C][Dk] gates
      ks = kd;
      gb = carve({C, Dk}, f32);
    }
    if (cfg.normalized) { // multiples of 128 bytes: the tiles stay aligned
      zs = carve({2, Dk}, f32);
      dens = carve({C}, f32);
    }
    if (!cfg.vectorGates()) {
      graw = carve({C}, f32);
      gs = carve({C}, f32);
      gf = carve({C}, f32);
    }
  } else {
    if (cfg.vectorGates())
      gb = carve({C, Dk}, f32); // first: 16-byte aligned rows
    if (cfg.stages > 1) {
      carveRing(C * cfg.ldK());
    } else {
      qs = carve({C, cfg.ldK()}, cfg.elt);
      (cfg.vectorGates() ? kr : ks) = carve({C, cfg.ldK()}, cfg.elt);
    }
    if (cfg.vectorGates())
      ks = carve({C, cfg.ldK()}, cfg.elt);
    vt = carve({BV, cfg.ldC()}, cfg.elt);
    st = carve({BV, cfg.ldK()}, cfg.elt);
    if (!cfg.vectorGates()) {
      graw = carve({C}, f32);
      gs = carve({C}, f32);
    }
    if (cfg.normalized)
      zs = carve({2, Dk}, f32);
  }
  if (cfg.delta()) { // the same mma.sync tiles in both kernels
    am = carve({C, C + 1}, f32);
    betas = carve({C}, f32);
    tb = carve({C, cfg.ldC()}, cfg.elt); // 4-byte aligned: C is even
  }
  if (cfg.wgmma) {
    descSlot = carve({1}, b.getI64Type());
    Value base = memref::ExtractAlignedPointerAsIndexOp::create(b, loc, dyn);
    base = arith::IndexCastOp::create(b, loc, b.getI64Type(), base);
    base = arith::AndIOp::create(
        b, loc,
        arith::ShRUIOp::create(b, loc, base,
                               arith::ConstantIntOp::create(b, loc, 4, 64)),
        arith::ConstantIntOp::create(b, loc, 0x3FFF, 64));
    // The chunk loop reloads the base from shared memory (published before
    // the loop's first barrier): descriptors computed from a loop-invariant
    // value would be hoisted out of the loop and pin ~60 registers.
    ifThen(arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, tid, idx(0)),
           [&] { store(base, descSlot, idx(0)); });
  }
  if (cfg.normalized)
    initNormalizer();

  // The state, in registers, from the initial state or zero.
  int64_t numValues = cfg.stateValues();
  SmallVector<Value> state;
  {
    auto ifOp = scf::IfOp::create(b, loc, SmallVector<Type>(numValues, f32),
                                  hasH0, true);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(&ifOp.getThenRegion().front());
    SmallVector<Value> loaded(numValues);
    emitStateIO(loaded, /*load=*/true);
    scf::YieldOp::create(b, loc, loaded);
    b.setInsertionPointToStart(&ifOp.getElseRegion().front());
    scf::YieldOp::create(b, loc, SmallVector<Value>(numValues, f(0.0)));
    b.setInsertionPointAfter(ifOp);
    state.assign(ifOp.getResults().begin(), ifOp.getResults().end());
  }

  // Pipeline prologue: chunks 0 .. S - 2 in flight before the loop.
  for (int64_t j = 0; j + 1 < cfg.stages; ++j)
    issueChunk(idx(j * C));

  // The chunk loop carries the state (and the prefetched scalar gates).
  SmallVector<Value> carried = state;
  carried.append(fifo.begin(), fifo.end());
  auto forOp = scf::ForOp::create(b, loc, idx(0), len, idx(C), carried);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(forOp.getBody());
    auto iterArgs = forOp.getRegionIterArgs();
    SmallVector<Value> s(iterArgs.begin(), iterArgs.begin() + numValues);
    fifo.assign(iterArgs.begin() + numValues, iterArgs.end());
    if (cfg.wgmma)
      emitChunkWgmma(forOp.getInductionVar(), s);
    else if (cfg.vectorGates())
      emitChunkVector(forOp.getInductionVar(), s);
    else
      emitChunk(forOp.getInductionVar(), s);
    s.append(fifo.begin(), fifo.end());
    scf::YieldOp::create(b, loc, s);
  }
  state.assign(forOp.getResults().begin(),
               forOp.getResults().begin() + numValues);
  if (!cfg.causal && cfg.wgmma)
    emitNonCausalOutputsWgmma(state);
  else if (!cfg.causal)
    emitNonCausalOutputs(state);
  if (cfg.normalized)
    storeNormalizer();
  ifThen(hasHT, [&] { emitStateIO(state, /*load=*/false); });
  gpu::ReturnOp::create(b, loc);
}

//===----------------------------------------------------------------------===//
// The pass
//===----------------------------------------------------------------------===//

struct LinAttnToGPUPass
    : public mlir::linattn::impl::LinAttnToGPUBase<LinAttnToGPUPass> {
  using LinAttnToGPUBase::LinAttnToGPUBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<AttentionOp> ops;
    module.walk([&](AttentionOp op) { ops.push_back(op); });
    for (AttentionOp op : ops)
      if (failed(rewrite(op)))
        return signalPassFailure();
    if (!ops.empty())
      module->setAttr(gpu::GPUDialect::getContainerModuleAttrName(),
                      UnitAttr::get(module.getContext()));
  }

  LogicalResult configure(AttentionOp op, GpuConfig &cfg);
  LogicalResult configureMap(AttentionOp op, GpuConfig &cfg);
  LogicalResult rewrite(AttentionOp op);

  /// The chip the last configured kernel targets.
  std::string targetChip;
};

LogicalResult LinAttnToGPUPass::configure(AttentionOp op, GpuConfig &cfg) {
  if (!gpuSharedLimit(chip))
    return op.emitOpError() << "unsupported chip '" << chip
                            << "' (expected sm_80, sm_86, sm_87, sm_89, sm_90 "
                               "or sm_90a)";
  DecayAttr decay = op.getDecay();
  cfg.decay = decay.getKind();
  // The verifier guarantees that non-causal ops have no decay and are not
  // exclusive, that normalized ones are not delta rules, and that delta
  // rules (only they) have a beta.
  cfg.causal = op.getCausal();
  cfg.exclusive = op.getExclusive();
  cfg.normalized = op.getNormalization() != Normalization::None;
  cfg.eps = op.getEps().convertToDouble();
  cfg.featureMap = op.getFeatureMap();
  cfg.scale = op.getScaleOrDefault();
  cfg.layout = op.getLayout();
  cfg.valueMajor = op.getStateLayout() == StateLayout::ValueMajor;
  if (FloatAttr cm = decay.getClampMin())
    cfg.clampMin = cm.getValueAsDouble();

  auto qType = cast<ShapedType>(op.getQ().getType());
  cfg.elt = qType.getElementType();
  if (cfg.elt.isBF16())
    cfg.mmaType = NVVM::MMATypes::bf16;
  else if (cfg.elt.isF16())
    cfg.mmaType = NVVM::MMATypes::f16;
  else
    return op.emitOpError()
           << "GPU kernels take bf16 or f16 inputs, got " << cfg.elt;
  if (Value gv = op.getGate()) {
    cfg.gateElt = cast<ShapedType>(gv.getType()).getElementType();
    if (cfg.decay == DecayKind::Constant && !cfg.gateElt.isF32())
      return op.emitOpError() << "a constant decay's gate must be f32 on GPU";
  }
  if (Value bv = op.getBeta())
    cfg.betaElt = cast<ShapedType>(bv.getType()).getElementType();
  cfg.dk = cfg.stateDk = qType.getShape().back();
  cfg.dv = cast<ShapedType>(op.getV().getType()).getShape().back();
  if (failed(configureMap(op, cfg)))
    return failure();
  PTXPipelineOptions options;
  options.chip = chip;
  options.mma = mma;
  options.chunkSize = chunkSize;
  options.blockV = blockV;
  options.warps = warps;
  options.stages = stages;
  GpuKernelPlan plan;
  GpuKernelForm form;
  form.vectorGates = cfg.vectorGates();
  form.causal = cfg.causal;
  form.normalized = cfg.normalized;
  form.delta = cfg.delta();
  form.tokenGates = cfg.hasGates() && !cfg.vectorGates();
  if (cfg.map)
    form.prepassMap = stringifyFeatureMapKind(cfg.map->kind).str();
  std::string error = planGpuKernel(
      options, cfg.dk, cfg.dv, cfg.elt.getIntOrFloatBitWidth() / 8, form, plan);
  if (!error.empty())
    return op.emitOpError() << error;
  cfg.dk = plan.keyDim; // padded for the prepass; stateDk stays Dφ
  if (cfg.map)
    cfg.map->padded = plan.keyDim;
  cfg.wgmma = plan.wgmma;
  cfg.chunk = plan.chunkSize;
  cfg.warps = plan.warps;
  cfg.blockV = plan.blockV;
  cfg.stages = plan.stages;
  targetChip = plan.targetChip;
  return success();
}

LogicalResult LinAttnToGPUPass::configureMap(AttentionOp op, GpuConfig &cfg) {
  auto qMap = op.getQ().getDefiningOp<FeatureMapOp>();
  auto kMap = op.getK().getDefiningOp<FeatureMapOp>();
  if (!qMap && !kMap)
    return success();
  auto inWidth = [](FeatureMapOp m) {
    return cast<ShapedType>(m.getInput().getType()).getShape().back();
  };
  if (!qMap || !kMap || qMap.getKind() != kMap.getKind() ||
      inWidth(qMap) != inWidth(kMap))
    return op.emitOpError()
           << "on the GPU, q and k must both come from linattn.feature_map "
              "ops of the same kind and input width (one prepass kernel "
              "maps both)";
  if (op.getFeatureMap() != FeatureMapKind::Identity)
    return op.emitOpError()
           << "on the GPU, q and k mapped by "
              "linattn.feature_map take no second feature "
              "map (got '"
           << stringifyFeatureMapKind(op.getFeatureMap()) << "')";
  GpuMapConfig map;
  map.kind = qMap.getKind();
  map.layout = cfg.layout;
  map.elt = cfg.elt;
  map.d = inWidth(qMap);
  map.f = map.d;
  for (FeatureMapOp m : {qMap, kMap}) {
    Value w = m.getWeight();
    if (!w)
      continue;
    auto wt = cast<ShapedType>(w.getType());
    if (!wt.getElementType().isF32())
      return m.emitOpError() << "GPU feature-map weights must be f32, got "
                             << wt.getElementType();
    auto shape = wt.getShape();
    // Hedgehog [.., d, f]; Performer [.., m, d].
    map.f = map.kind == FeatureMapKind::Hedgehog ? shape.back()
                                                 : shape[shape.size() - 2];
  }
  // planGpuKernel checks and pads the width (configure sets `padded`).
  map.width = cfg.dk;
  cfg.map = map;
  return success();
}

LogicalResult LinAttnToGPUPass::rewrite(AttentionOp op) {
  GpuConfig cfg;
  if (failed(configure(op, cfg)))
    return failure();
  auto func = op->getParentOfType<func::FuncOp>();
  if (!func)
    return op.emitOpError() << "must be inside a func.func";
  MLIRContext *ctx = op.getContext();
  Location loc = op.getLoc();
  std::string target = "#nvvm.target<chip = \"" + targetChip +
                       "\", features = \"+ptx80\", O = 3>";
  Attribute targetAttr = parseAttribute(target, ctx);
  OpBuilder b(func);
  auto gpuModule = gpu::GPUModuleOp::create(b, loc, func.getSymName(),
                                            b.getArrayAttr({targetAttr}));
  b.setInsertionPointToStart(gpuModule.getBody());

  auto tensor = [&](Type t) {
    return MemRefType::get({ShapedType::kDynamic}, t);
  };
  Type gateElt = cfg.gateElt ? cfg.gateElt : b.getF32Type();
  SmallVector<Type> argTypes = {tensor(cfg.elt),        tensor(cfg.elt),
                                tensor(cfg.elt),        tensor(gateElt),
                                tensor(b.getF32Type()), tensor(cfg.elt),
                                tensor(b.getF32Type()), tensor(b.getI64Type())};
  argTypes.append(8, b.getI64Type());
  if (cfg.delta()) // beta [B, T, H] / [B, H, T] (ABI 17)
    argTypes.push_back(tensor(cfg.betaElt));
  if (cfg.normalized) {
    // Initial/final normalizer [N, H, Dk] and their flags (ABI 17-20).
    argTypes.append(2, tensor(b.getF32Type()));
    argTypes.append(2, b.getI64Type());
  }
  auto kernel = gpu::GPUFuncOp::create(b, loc, "linattn_fwd",
                                       b.getFunctionType(argTypes, {}));
  kernel->setAttr(gpu::GPUDialect::getKernelFuncAttrName(), b.getUnitAttr());
  kernel.setKnownBlockSizeAttr(
      b.getDenseI32ArrayAttr({static_cast<int32_t>(cfg.threads()), 1, 1}));

  // Allow ptxas the whole register file: it otherwise caps sm_86/sm_89
  // kernels at 168 registers and spills.
  kernel->setAttr("nvvm.maxnreg", b.getI32IntegerAttr(255));

  KernelEmitter emitter(b, loc, cfg);
  emitter.emit(kernel);
  if (cfg.map) {
    b.setInsertionPointAfter(kernel);
    emitFeatureMapKernel(b, loc, *cfg.map);
  }
  func.erase();
  return success();
}

//===----------------------------------------------------------------------===//
// Extern dynamic shared memory
//===----------------------------------------------------------------------===//

struct LinAttnExternDynamicSharedPass
    : public mlir::linattn::impl::LinAttnExternDynamicSharedBase<
          LinAttnExternDynamicSharedPass> {
  void runOnOperation() override {
    getOperation()->walk([](LLVM::GlobalOp global) {
      if (global.getSymName().starts_with("__dynamic_shmem__"))
        global.setLinkage(LLVM::Linkage::External);
    });
  }
};

} // namespace
