//===- Chunk.cpp - linattn.attention -> chunked loops ----------*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
//
// Implements --linattn-chunk: the chunkwise-parallel form of MATH.md 6 as
// explicit loops over sequences, heads and chunks. All per-chunk work runs on
// static-shaped scratch buffers in the compute type (f32, or f64 for f64
// inputs), so the matmuls are static `linalg.matmul`s a target lowering can
// tile; ragged tails are handled by zero rows (padding with q = k = v = 0,
// g = 0 and beta = 0, MATH.md 6.1). The delta rules use the WY/UT form of
// MATH.md 5.2 with the triangular solve done by forward substitution.
//
//===----------------------------------------------------------------------===//

#include "linattn/Transforms/Passes.h"

#include "linattn/Dialect/LinAttn/IR/LinAttnOps.h"
#include "linattn/Reference/Reference.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"

namespace mlir::linattn {
#define GEN_PASS_DEF_LINATTNCHUNK
#include "linattn/Transforms/Passes.h.inc"
} // namespace mlir::linattn

using namespace mlir;
using namespace mlir::linattn;

namespace {

/// Log-gates below this are clamped (exp(-1000) is 0, and a clamped -inf
/// gives the same factors without (-inf) - (-inf) = NaN; MATH.md 9.3).
constexpr double kMinLogGate = -1000.0;

/// Largest exponent of a factor exp(b_ρ − b_s) >= 1 in the factorized
/// diagonal sub-blocks of vector gates (e^30 ≈ 1e13, far from overflow; a
/// partner factor small enough to underflow makes the product negligible).
constexpr double kFactorLimit = 30.0;

static int64_t roundUp(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

/// Everything static about one attention op that the emitter needs.
struct Config {
  DecayKind decay = DecayKind::None;
  FeatureMapKind featureMap = FeatureMapKind::Identity;
  bool normalized = false;
  double eps = 1e-10;
  double scale = 1.0;
  bool causal = true;
  bool exclusive = false;
  bool valueMajor = false;
  std::optional<double> clampMin;
  int64_t numHeads = 0, groupQ = 1, groupK = 1, groupV = 1;
  int64_t dk = 0, dv = 0;
  int64_t chunk = 64, subChunk = 16;
  // Padded column counts of the scratch buffers.
  int64_t chunkCols = 0, valueCols = 0;
};

/// Builds the loops of one attention op. Values named like the math: Q, K, V
/// are the chunk scratch buffers, S the state.
class Emitter {
public:
  Emitter(OpBuilder &b, Location loc, const Config &cfg, Type computeType)
      : b(b), loc(loc), cfg(cfg), ct(computeType) {}

  // Inputs in logical [B, H, T, D] order (memrefs).
  Value q, k, v, gate, beta, initState, initNorm, offsets;
  // Outputs.
  Value out, finalState, finalNorm;
  // Per-head log-decays for a constant decay given by an attribute.
  Value constLogDecay;

  void emit();

private:
  //===--- Small builders ---------------------------------------------===//
  Value idx(int64_t v) { return arith::ConstantIndexOp::create(b, loc, v); }
  Value cst(double v) {
    return arith::ConstantOp::create(b, loc, ct, b.getFloatAttr(ct, v));
  }
  Value add(Value x, Value y) {
    return isa<IndexType>(x.getType())
               ? Value(arith::AddIOp::create(b, loc, x, y))
               : Value(arith::AddFOp::create(b, loc, x, y));
  }
  Value sub(Value x, Value y) {
    return isa<IndexType>(x.getType())
               ? Value(arith::SubIOp::create(b, loc, x, y))
               : Value(arith::SubFOp::create(b, loc, x, y));
  }
  Value mul(Value x, Value y) {
    return isa<IndexType>(x.getType())
               ? Value(arith::MulIOp::create(b, loc, x, y))
               : Value(arith::MulFOp::create(b, loc, x, y));
  }
  Value div(Value x, Value y) { return arith::DivFOp::create(b, loc, x, y); }
  Value neg(Value x) { return arith::NegFOp::create(b, loc, x); }
  Value maxf(Value x, Value y) {
    return arith::MaximumFOp::create(b, loc, x, y);
  }
  Value minIdx(Value x, Value y) {
    return arith::MinSIOp::create(b, loc, x, y);
  }
  Value exp(Value x) { return math::ExpOp::create(b, loc, x); }
  Value load(Value m, ValueRange ivs) {
    return memref::LoadOp::create(b, loc, m, ivs);
  }
  void store(Value x, Value m, ValueRange ivs) {
    memref::StoreOp::create(b, loc, x, m, ivs);
  }
  /// Converts a loaded element to the compute type.
  Value toCompute(Value x) {
    Type t = x.getType();
    if (t == ct)
      return x;
    if (t.getIntOrFloatBitWidth() < ct.getIntOrFloatBitWidth())
      return arith::ExtFOp::create(b, loc, ct, x);
    return arith::TruncFOp::create(b, loc, ct, x);
  }
  /// Converts a compute-type value to the element type of memref `m`.
  Value toElement(Value x, Value m) {
    Type t = cast<MemRefType>(m.getType()).getElementType();
    if (t == x.getType())
      return x;
    if (t.getIntOrFloatBitWidth() < x.getType().getIntOrFloatBitWidth())
      return arith::TruncFOp::create(b, loc, t, x);
    return arith::ExtFOp::create(b, loc, t, x);
  }
  /// for iv in [lo, hi) step `step`: body(iv).
  void loop(Value lo, Value hi, int64_t step, function_ref<void(Value)> body) {
    auto forOp = scf::ForOp::create(b, loc, lo, hi, idx(step));
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(forOp.getBody()->getTerminator());
    body(forOp.getInductionVar());
  }
  void loop(int64_t lo, int64_t hi, function_ref<void(Value)> body) {
    loop(idx(lo), idx(hi), 1, body);
  }
  /// acc = init; for iv in [lo, hi): acc = body(iv, acc). Returns acc.
  Value accumulate(Value lo, Value hi, Value init,
                   function_ref<Value(Value, Value)> body) {
    auto forOp = scf::ForOp::create(b, loc, lo, hi, idx(1), ValueRange{init});
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(forOp.getBody());
    Value next =
        body(forOp.getInductionVar(), forOp.getRegionIterArgs().front());
    scf::YieldOp::create(b, loc, next);
    return forOp.getResult(0);
  }
  Value alloc(ArrayRef<int64_t> shape) {
    auto type = MemRefType::get(shape, ct);
    Value m = memref::AllocOp::create(b, loc, type, b.getI64IntegerAttr(64));
    allocs.push_back(m);
    return m;
  }
  void fill(Value m, double v) {
    linalg::FillOp::create(b, loc, ValueRange{cst(v)}, ValueRange{m});
  }
  /// c (+)= a·b as a linalg.matmul; `zeroInit` fills c with 0 first.
  void matmul(Value a, Value bm, Value c, bool zeroInit,
              StringRef hint = StringRef()) {
    if (zeroInit)
      fill(c, 0.0);
    auto op =
        linalg::MatmulOp::create(b, loc, ValueRange{a, bm}, ValueRange{c});
    if (!hint.empty())
      op->setAttr(hint, b.getUnitAttr());
  }
  Value transpose(Value m) {
    auto perm =
        AffineMap::getPermutationMap(ArrayRef<unsigned>{1, 0}, b.getContext());
    return memref::TransposeOp::create(b, loc, m, AffineMapAttr::get(perm));
  }
  /// dst[:, 0:rows] = srcᵀ for a [rows, cols] buffer `src`.
  void transposeInto(Value src, Value dst) {
    auto t = cast<MemRefType>(src.getType());
    int64_t rows = t.getDimSize(0), cols = t.getDimSize(1);
    Value view = cast<MemRefType>(dst.getType()).getDimSize(1) == rows
                     ? dst
                     : subview(dst, {0, 0}, {cols, rows});
    linalg::TransposeOp::create(b, loc, src, view, ArrayRef<int64_t>{1, 0});
  }
  Value subview(Value m, ArrayRef<int64_t> offsets, ArrayRef<int64_t> sizes) {
    SmallVector<int64_t> strides(offsets.size(), 1);
    return memref::SubViewOp::create(b, loc, m, offsets, sizes, strides);
  }
  Value applyFeatureMap(Value x) {
    switch (cfg.featureMap) {
    case FeatureMapKind::EluPlusOne: {
      Value pos =
          arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT, x, cst(0.0));
      return arith::SelectOp::create(b, loc, pos, add(x, cst(1.0)), exp(x));
    }
    case FeatureMapKind::Relu:
      return maxf(x, cst(0.0));
    default:
      return x;
    }
  }

  //===--- The algorithm ----------------------------------------------===//
  void allocScratch();
  void emitSequence(Value batch, Value head, Value tStart, Value tLen,
                    Value stateIdx);
  void loadState(Value n, Value h);
  void storeState(Value n, Value h);
  void loadChunk(Value batch, Value head, Value t0, Value len, bool withQ,
                 bool withKV);
  void cumulativeDecay(Value batch, Value head, Value t0, Value len,
                       Value logLambda);
  void causalChunk(Value batch, Value head, Value t0, Value len);
  void maskScalar();
  void intraVector();
  void decayQ();
  void updateState(Value values);
  void loadBeta(Value batch, Value head, Value t0, Value len);
  void solveUT(Value len);
  void deltaChunk(Value batch, Value head, Value t0, Value len);
  void writeOutput(Value batch, Value head, Value t0, Value len);

  Value gateAt(Value batch, Value head, Value t, Value d = Value()) {
    Value g =
        d ? load(gate, {batch, head, t, d}) : load(gate, {batch, head, t});
    g = toCompute(g);
    double lo =
        cfg.clampMin ? std::max(*cfg.clampMin, kMinLogGate) : kMinLogGate;
    return maxf(g, cst(lo));
  }
  /// A gate (constant or data-dependent) decays the state.
  bool hasDecay() const {
    return cfg.decay != DecayKind::None && cfg.decay != DecayKind::Delta;
  }
  bool isDelta() const {
    return cfg.decay == DecayKind::Delta || cfg.decay == DecayKind::GatedDelta;
  }
  bool isVector() const { return cfg.decay == DecayKind::Vector; }

  OpBuilder &b;
  Location loc;
  const Config &cfg;
  Type ct;
  SmallVector<Value> allocs;
  // Scratch buffers.
  Value Qc, Kc, Kt, Vc, Oc, P, S, bv, bvT, Qh, Kht;
  // Vector gates: whether the last sub-chunk's span exceeded kFactorLimit
  // (set by intraVector, read by updateState in the same chunk).
  Value lastUnsafe;
  // Delta rules: beta of the chunk's rows, T = (I + A)^-1, the right-hand
  // sides -diag(beta e^b) K and diag(beta) V, and -W, U (then Ṽ = U - W S).
  Value betaC, Tm, Kb, Vb, Wn, Uc;
};

void Emitter::allocScratch() {
  int64_t C = cfg.chunk, dk = cfg.dk;
  Qc = alloc({C, dk});
  Kc = alloc({C, dk});
  Kt = alloc({dk, cfg.chunkCols});
  Vc = alloc({C, cfg.valueCols});
  Oc = alloc({C, cfg.valueCols});
  P = alloc({C, cfg.chunkCols});
  S = alloc({dk, cfg.valueCols});
  if (isVector()) {
    bv = alloc({C, dk});
    bvT = alloc({dk, C});
    Qh = alloc({cfg.subChunk, dk});
    Kht = alloc({dk, cfg.chunkCols});
  } else if (hasDecay()) {
    bv = alloc({C});
  }
  if (isDelta()) {
    betaC = alloc({C});
    Tm = alloc({C, cfg.chunkCols});
    Kb = alloc({C, dk});
    Vb = alloc({C, cfg.valueCols});
    Wn = alloc({C, dk});
    Uc = alloc({C, cfg.valueCols});
    fill(Vb, 0.0);
  }
  // Padding columns stay zero for the whole kernel.
  fill(Kt, 0.0);
  fill(Vc, 0.0);
  if (Kht)
    fill(Kht, 0.0);
}

void Emitter::emit() {
  allocScratch();
  Value H = idx(cfg.numHeads);
  if (offsets) {
    Value numSeq = sub(memref::DimOp::create(b, loc, offsets, 0), idx(1));
    loop(idx(0), numSeq, 1, [&](Value n) {
      auto readOffset = [&](Value i) {
        Value o = load(offsets, {i});
        return Value(arith::IndexCastOp::create(b, loc, b.getIndexType(), o));
      };
      Value start = readOffset(n);
      Value end = readOffset(add(n, idx(1)));
      loop(idx(0), H, 1, [&](Value h) {
        emitSequence(idx(0), h, start, sub(end, start), n);
      });
    });
  } else {
    Value B = memref::DimOp::create(b, loc, q, 0);
    Value T = memref::DimOp::create(b, loc, q, 2);
    loop(idx(0), B, 1, [&](Value bi) {
      loop(idx(0), H, 1, [&](Value h) { emitSequence(bi, h, idx(0), T, bi); });
    });
  }
  for (Value m : allocs)
    memref::DeallocOp::create(b, loc, m);
}

void Emitter::loadState(Value n, Value h) {
  int64_t dk = cfg.dk, dv = cfg.dv;
  fill(S, 0.0);
  if (initState) {
    loop(0, dk, [&](Value i) {
      loop(0, dv, [&](Value j) {
        Value x = cfg.valueMajor ? load(initState, {n, h, j, i})
                                 : load(initState, {n, h, i, j});
        store(toCompute(x), S, {i, j});
      });
    });
  }
  if (initNorm) {
    loop(0, dk, [&](Value i) {
      store(toCompute(load(initNorm, {n, h, i})), S, {i, idx(dv)});
    });
  }
}

void Emitter::storeState(Value n, Value h) {
  int64_t dk = cfg.dk, dv = cfg.dv;
  loop(0, dk, [&](Value i) {
    loop(0, dv, [&](Value j) {
      Value x = load(S, {i, j});
      if (cfg.valueMajor)
        store(toElement(x, finalState), finalState, {n, h, j, i});
      else
        store(toElement(x, finalState), finalState, {n, h, i, j});
    });
  });
  if (finalNorm) {
    loop(0, dk, [&](Value i) {
      Value x = load(S, {i, idx(dv)});
      store(toElement(x, finalNorm), finalNorm, {n, h, i});
    });
  }
}

/// Loads rows [t0, t0 + len) of the sequence into the chunk buffers, zeroing
/// rows len..C: Q (feature map, scale), K and its transpose Kt (feature
/// map), V (plus the ones column of the normalized form).
void Emitter::loadChunk(Value batch, Value head, Value t0, Value len,
                        bool withQ, bool withKV) {
  int64_t C = cfg.chunk, dk = cfg.dk, dv = cfg.dv;
  Value hq = arith::DivUIOp::create(b, loc, head, idx(cfg.groupQ));
  Value hk = arith::DivUIOp::create(b, loc, head, idx(cfg.groupK));
  Value hv = arith::DivUIOp::create(b, loc, head, idx(cfg.groupV));
  Value scale = cst(cfg.scale);
  loop(idx(0), len, 1, [&](Value r) {
    Value t = add(t0, r);
    loop(0, dk, [&](Value d) {
      if (withQ) {
        Value x = applyFeatureMap(toCompute(load(q, {batch, hq, t, d})));
        store(mul(x, scale), Qc, {r, d});
      }
      if (withKV) {
        Value y = applyFeatureMap(toCompute(load(k, {batch, hk, t, d})));
        store(y, Kc, {r, d});
      }
    });
    if (withKV) {
      loop(0, dv, [&](Value j) {
        store(toCompute(load(v, {batch, hv, t, j})), Vc, {r, j});
      });
      if (cfg.normalized)
        store(cst(1.0), Vc, {r, idx(dv)});
    }
  });
  // Zero rows: q = k = v = 0 (and the ones column 0) past the end.
  loop(len, idx(C), 1, [&](Value r) {
    loop(0, dk, [&](Value d) {
      if (withQ)
        store(cst(0.0), Qc, {r, d});
      if (withKV) {
        store(cst(0.0), Kc, {r, d});
      }
    });
    if (withKV)
      loop(0, dv + (cfg.normalized ? 1 : 0), [&](Value j) {
        store(cst(0.0), Vc, {r, j});
      });
  });
  // Kt = Kcᵀ as one transpose op, which the CPU lowering does in register
  // blocks (storing a column per loaded row touches a cache line per element).
  if (withKV)
    transposeInto(Kc, Kt);
}

/// bv[r] (or bv[r, :] for vector gates) = chunk-local inclusive cumulative
/// log-decay; rows past the end repeat the last one (padding with g = 0).
void Emitter::cumulativeDecay(Value batch, Value head, Value t0, Value len,
                              Value logLambda) {
  int64_t C = cfg.chunk, dk = cfg.dk;
  if (isVector()) {
    loop(0, dk, [&](Value d) {
      store(gateAt(batch, head, t0, d), bv, {idx(0), d});
    });
    loop(idx(1), len, 1, [&](Value r) {
      Value prev = sub(r, idx(1));
      loop(0, dk, [&](Value d) {
        Value g = gateAt(batch, head, add(t0, r), d);
        store(add(load(bv, {prev, d}), g), bv, {r, d});
      });
    });
    Value last = sub(len, idx(1));
    loop(len, idx(C), 1, [&](Value r) {
      loop(0, dk, [&](Value d) { store(load(bv, {last, d}), bv, {r, d}); });
    });
    // Channel-major copy for the K factors, whose stores run along s.
    transposeInto(bv, bvT);
    return;
  }
  // Scalar kinds: a running sum in a loop-carried value.
  accumulate(idx(0), idx(C), cst(0.0), [&](Value r, Value acc) {
    Value inRange =
        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, r, len);
    Value g;
    if (logLambda) {
      g = logLambda;
    } else {
      // Clamp the row index so the load stays in bounds; its value is
      // discarded for padding rows.
      Value rr = minIdx(r, sub(len, idx(1)));
      g = gateAt(batch, head, add(t0, rr));
    }
    g = arith::SelectOp::create(b, loc, inRange, g, cst(0.0));
    Value next = add(acc, g);
    store(next, bv, {r});
    return next;
  });
}

/// P = (Q Kᵀ) ⊙ Γ for the scalar kinds (Γ = M without decay).
void Emitter::maskScalar() {
  int64_t C = cfg.chunk, cols = cfg.chunkCols;
  loop(0, C, [&](Value r) {
    Value br = hasDecay() ? load(bv, {r}) : Value();
    if (hasDecay())
      loop(idx(0), r, 1, [&](Value s) {
        Value f = exp(sub(br, load(bv, {s})));
        store(mul(load(P, {r, s}), f), P, {r, s});
      });
    if (cfg.exclusive)
      store(cst(0.0), P, {r, r});
    loop(add(r, idx(1)), idx(cols), 1, [&](Value s) {
      store(cst(0.0), P, {r, s});
    });
  });
}

/// Intra-chunk scores for vector gates with secondary chunking (MATH.md
/// 6.3): off-diagonal sub-blocks as matmuls of factors exp(<= 0),
/// diagonal sub-blocks elementwise in log space. Also leaves Qc decayed
/// (Q ⊙ exp(b), the Q S operand) and Kht holding K_s ⊙ exp(b_ρ − b_s) for
/// the last reference row ρ, which updateState rescales instead of
/// evaluating C·Dk exps again.
///
/// Most factors come from products of factors <= 1 rather than from fresh
/// exps (the exp work dominated the profile): with ρ' = ρ − c,
///   exp(b_ρ − b_s) = exp(b_ρ − b_ρ') · exp(b_ρ' − b_s)    for s < ρ',
///   exp(b_r)       = exp(b_r − b_ρ) · exp(b_ρ)           for r >= ρ.
/// Each product of factors <= 1 underflows only when the exact value is
/// negligible too. The columns s in [ρ', ρ) were stored with the clamped
/// factor exp(min(b_ρ' − b_s, kFactorLimit)) >= 1; the product is exact
/// unless that clamp was active (the previous sub-chunk's span exceeds the
/// limit), in which case they are recomputed from fresh exps.
void Emitter::intraVector() {
  int64_t C = cfg.chunk, c = cfg.subChunk, dk = cfg.dk;
  fill(P, 0.0);
  Value prevUnsafe;
  for (int64_t rho = 0; rho < C; rho += c) {
    Value rhoV = idx(rho), lastV = idx(rho + c - 1);
    // Fresh columns: Khtᵀ[:, s] = K_s ⊙ exp(min(b_ρ − b_s, kFactorLimit)).
    // Channel-major (Kt, bvT) so the stores are contiguous.
    auto freshColumns = [&](int64_t from, int64_t to) {
      loop(0, dk, [&](Value d) {
        Value bRho = load(bvT, {d, rhoV});
        loop(from, to, [&](Value s) {
          Value e = sub(bRho, load(bvT, {d, s}));
          e = arith::MinimumFOp::create(b, loc, e, cst(kFactorLimit));
          store(mul(load(Kt, {d, s}), exp(e)), Kht, {d, s});
        });
      });
    };
    if (rho > 0) {
      // Move the reference row of the earlier columns from ρ' to ρ.
      Value prevV = idx(rho - c);
      loop(0, dk, [&](Value d) {
        Value f = exp(sub(load(bv, {rhoV, d}), load(bv, {prevV, d})));
        loop(0, rho, [&](Value s) {
          store(mul(load(Kht, {d, s}), f), Kht, {d, s});
        });
      });
      auto ifOp = scf::IfOp::create(b, loc, prevUnsafe, /*withElse=*/false);
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPoint(ifOp.thenBlock()->getTerminator());
      freshColumns(rho - c, rho);
    }
    freshColumns(rho, rho + c);
    // Reference row ρ: Qh = Q_p ⊙ exp(b_rows − b_ρ) (exponents <= 0). For
    // the rows s >= ρ of the diagonal block the K factor is >= 1 but at most
    // the sub-chunk's total decay; it is clamped at kFactorLimit, and when
    // some channel decays more than that inside the sub-chunk the diagonal
    // block is recomputed exactly in log space below.
    loop(0, c, [&](Value r) {
      Value row = add(rhoV, r);
      loop(0, dk, [&](Value d) {
        Value f = exp(sub(load(bv, {row, d}), load(bv, {rhoV, d})));
        store(mul(load(Qc, {row, d}), f), Qh, {r, d});
      });
    });
    matmul(Qh, subview(Kht, {0, 0}, {dk, rho + c}),
           subview(P, {rho, 0}, {c, rho + c}), /*zeroInit=*/true);

    // Largest decay of any channel across the sub-chunk.
    Value span = accumulate(idx(0), idx(dk), cst(0.0), [&](Value d, Value m) {
      return maxf(m, sub(load(bv, {rhoV, d}), load(bv, {lastV, d})));
    });
    Value unsafe = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::UGT,
                                         span, cst(kFactorLimit));
    auto ifOp = scf::IfOp::create(b, loc, unsafe, /*withElse=*/false);
    {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPoint(ifOp.thenBlock()->getTerminator());
      // Exact diagonal block: P[r, s] = Σ_i q_r[i] k_s[i] exp(b_r[i] − b_s[i]).
      loop(rho, rho + c, [&](Value r) {
        loop(rhoV, add(r, idx(1)), 1, [&](Value s) {
          Value isDiag =
              arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, r, s);
          Value dot =
              accumulate(idx(0), idx(dk), cst(0.0), [&](Value d, Value acc) {
                Value diff = sub(load(bv, {r, d}), load(bv, {s, d}));
                // The diagonal factor is exactly 1 (MATH.md 9.3).
                Value f = arith::SelectOp::create(b, loc, isDiag, cst(1.0),
                                                  exp(diff));
                Value term = mul(mul(load(Qc, {r, d}), load(Kc, {s, d})), f);
                auto sum = arith::AddFOp::create(b, loc, acc, term);
                sum.setFastmath(arith::FastMathFlags::reassoc);
                return Value(sum);
              });
          store(dot, P, {r, s});
        });
      });
    }
    // Causal mask inside the diagonal block (and the diagonal if exclusive).
    loop(rho, rho + c, [&](Value r) {
      Value from = cfg.exclusive ? r : add(r, idx(1));
      loop(from, idx(rho + c), 1, [&](Value s) { store(cst(0.0), P, {r, s}); });
    });
    // Decay the sub-chunk's queries for Q S (raw Qc is no longer needed):
    // Q_r ⊙ exp(b_r) = Qh_r ⊙ exp(b_ρ).
    loop(0, dk, [&](Value d) {
      Value f = exp(load(bv, {rhoV, d}));
      loop(0, c, [&](Value r) {
        store(mul(load(Qh, {r, d}), f), Qc, {add(rhoV, r), d});
      });
    });
    prevUnsafe = unsafe;
  }
  lastUnsafe = prevUnsafe;
}

/// Q ← diag(γq) Q: the decay of the incoming state up to each row (scalar
/// kinds; intraVector does it for vector gates).
void Emitter::decayQ() {
  int64_t C = cfg.chunk, dk = cfg.dk;
  loop(0, C, [&](Value r) {
    Value f = exp(load(bv, {r}));
    loop(0, dk, [&](Value d) { store(mul(load(Qc, {r, d}), f), Qc, {r, d}); });
  });
}

/// S ← γc S + (diag(γk) K)ᵀ V, with `values` as V (Ṽ for the delta rules).
void Emitter::updateState(Value values) {
  int64_t C = cfg.chunk, dk = cfg.dk, cols = cfg.valueCols;
  Value last = idx(C - 1);
  if (isVector()) {
    // Kht holds K_s ⊙ exp(b_ρ − b_s) for the last reference row ρ (clamped
    // for s >= ρ; intraVector): one more factor exp(b_last − b_ρ) <= 1 per
    // channel gives exp(b_last − b_s), except for the last sub-chunk's
    // columns when the clamp was active there, which are recomputed.
    int64_t c = cfg.subChunk;
    Value rhoV = idx(C - c);
    loop(0, dk, [&](Value i) {
      Value f = exp(load(bv, {last, i}));
      loop(0, cols, [&](Value j) {
        store(mul(load(S, {i, j}), f), S, {i, j});
      });
      Value g = exp(sub(load(bv, {last, i}), load(bv, {rhoV, i})));
      loop(0, C, [&](Value s) {
        store(mul(load(Kht, {i, s}), g), Kht, {i, s});
      });
    });
    auto ifOp = scf::IfOp::create(b, loc, lastUnsafe, /*withElse=*/false);
    {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPoint(ifOp.thenBlock()->getTerminator());
      loop(0, dk, [&](Value d) {
        Value bLast = load(bvT, {d, last});
        loop(C - c, C, [&](Value s) {
          Value f = exp(sub(bLast, load(bvT, {d, s})));
          store(mul(load(Kt, {d, s}), f), Kht, {d, s});
        });
      });
    }
    matmul(subview(Kht, {0, 0}, {dk, C}), values, S, /*zeroInit=*/false);
    return;
  }
  if (hasDecay()) {
    Value total = load(bv, {last});
    Value gc = exp(total);
    loop(0, dk, [&](Value i) {
      loop(0, cols, [&](Value j) {
        store(mul(load(S, {i, j}), gc), S, {i, j});
      });
    });
    loop(0, C, [&](Value s) {
      Value fs = exp(sub(total, load(bv, {s})));
      loop(0, dk, [&](Value d) {
        store(mul(load(Kc, {s, d}), fs), Kc, {s, d});
      });
    });
  }
  matmul(transpose(Kc), values, S, /*zeroInit=*/false);
}

void Emitter::writeOutput(Value batch, Value head, Value t0, Value len) {
  int64_t dv = cfg.dv;
  loop(idx(0), len, 1, [&](Value r) {
    Value t = add(t0, r);
    Value denom;
    if (cfg.normalized)
      denom = add(load(Oc, {r, idx(dv)}), cst(cfg.eps));
    loop(0, dv, [&](Value j) {
      Value x = load(Oc, {r, j});
      if (denom)
        x = div(x, denom);
      store(toElement(x, out), out, {batch, head, t, j});
    });
  });
}

/// One causal chunk step (MATH.md 6.2 / 6.3).
void Emitter::causalChunk(Value batch, Value head, Value t0, Value len) {
  if (isVector())
    intraVector();
  else {
    matmul(Qc, Kt, P, /*zeroInit=*/true, "linattn.lower_triangular_result");
    maskScalar();
  }
  // P has padding columns when C is not a multiple of pad-to.
  Value scores = cfg.chunkCols == cfg.chunk
                     ? P
                     : subview(P, {0, 0}, {cfg.chunk, cfg.chunk});
  matmul(scores, Vc, Oc, /*zeroInit=*/true, "linattn.lower_triangular_lhs");
  // intraVector already decayed Q.
  if (hasDecay() && !isVector())
    decayQ();
  matmul(Qc, S, Oc, /*zeroInit=*/false);
  writeOutput(batch, head, t0, len);
  updateState(Vc);
}

/// betaC[r] = beta of row r; 0 past the end (padding writes nothing).
void Emitter::loadBeta(Value batch, Value head, Value t0, Value len) {
  loop(idx(0), len, 1, [&](Value r) {
    store(toCompute(load(beta, {batch, head, add(t0, r)})), betaC, {r});
  });
  loop(len, idx(cfg.chunk), 1, [&](Value r) { store(cst(0.0), betaC, {r}); });
}

/// Tm = (I + A)^{-1} with A = strict_tril(diag(β) (K Kᵀ) ⊙ Γ), where P holds
/// K Kᵀ (lower tiles). Forward substitution row by row (MATH.md 5.2):
/// T[i, :] = e_i − Σ_{m<i} A[i, m] T[m, :], and T[m, j] = 0 for j > m, so
/// row i costs i²/2 multiply-adds. Rows from `len` on have β = 0 and stay
/// e_i. Everything is in the compute type (fp32 at least, MATH.md 9.6).
void Emitter::solveUT(Value len) {
  int64_t C = cfg.chunk;
  fill(Tm, 0.0);
  loop(0, C, [&](Value i) { store(cst(1.0), Tm, {i, i}); });
  loop(idx(1), len, 1, [&](Value i) {
    Value betaI = load(betaC, {i});
    Value bI = hasDecay() ? load(bv, {i}) : Value();
    loop(idx(0), i, 1, [&](Value m) {
      Value a = mul(betaI, load(P, {i, m}));
      if (hasDecay())
        a = mul(a, exp(sub(bI, load(bv, {m}))));
      loop(idx(0), add(m, idx(1)), 1, [&](Value j) {
        store(sub(load(Tm, {i, j}), mul(a, load(Tm, {m, j}))), Tm, {i, j});
      });
    });
  });
}

/// One chunk of the (gated) delta rule in the WY/UT form (MATH.md 5.2, 6.5):
///   W = T diag(β e^b) K,  U = T diag(β) V,  Ṽ = U − W S,
///   O = diag(e^b) Q S + ((Q Kᵀ) ⊙ Γ ⊙ M) Ṽ,
///   S ← e^{b_C} S + (diag(e^{b_C − b}) K)ᵀ Ṽ.
/// W is formed negated so that Ṽ is one accumulating matmul onto U.
void Emitter::deltaChunk(Value batch, Value head, Value t0, Value len) {
  int64_t C = cfg.chunk, dk = cfg.dk, dv = cfg.dv;
  auto square = [&](Value m) {
    return cfg.chunkCols == C ? m : subview(m, {0, 0}, {C, C});
  };
  loadBeta(batch, head, t0, len);
  matmul(Kc, Kt, P, /*zeroInit=*/true, "linattn.lower_triangular_result");
  solveUT(len);
  loop(0, C, [&](Value r) {
    Value betaR = load(betaC, {r});
    Value fk = neg(hasDecay() ? mul(betaR, exp(load(bv, {r}))) : betaR);
    loop(0, dk, [&](Value d) { store(mul(load(Kc, {r, d}), fk), Kb, {r, d}); });
    loop(0, dv, [&](Value j) {
      store(mul(load(Vc, {r, j}), betaR), Vb, {r, j});
    });
  });
  matmul(square(Tm), Kb, Wn, /*zeroInit=*/true, "linattn.lower_triangular_lhs");
  matmul(square(Tm), Vb, Uc, /*zeroInit=*/true, "linattn.lower_triangular_lhs");
  matmul(Wn, S, Uc, /*zeroInit=*/false);

  matmul(Qc, Kt, P, /*zeroInit=*/true, "linattn.lower_triangular_result");
  maskScalar();
  matmul(square(P), Uc, Oc, /*zeroInit=*/true, "linattn.lower_triangular_lhs");
  if (hasDecay())
    decayQ();
  matmul(Qc, S, Oc, /*zeroInit=*/false);
  writeOutput(batch, head, t0, len);
  updateState(Uc);
}

void Emitter::emitSequence(Value batch, Value head, Value tStart, Value tLen,
                           Value stateIdx) {
  int64_t C = cfg.chunk;
  loadState(stateIdx, head);
  Value logLambda;
  if (cfg.decay == DecayKind::Constant)
    logLambda = toCompute(constLogDecay ? load(constLogDecay, {head})
                                        : load(gate, {head}));
  auto chunkLoop = [&](function_ref<void(Value, Value)> body) {
    loop(idx(0), tLen, C, [&](Value c0) {
      Value len = minIdx(idx(C), sub(tLen, c0));
      body(c0, len);
    });
  };
  if (!cfg.causal) {
    // Bidirectional (no decay): S_T first, then O = Q S_T everywhere.
    chunkLoop([&](Value c0, Value len) {
      loadChunk(batch, head, add(tStart, c0), len, false, true);
      matmul(transpose(Kc), Vc, S, /*zeroInit=*/false);
    });
    chunkLoop([&](Value c0, Value len) {
      loadChunk(batch, head, add(tStart, c0), len, true, false);
      matmul(Qc, S, Oc, /*zeroInit=*/true);
      writeOutput(batch, head, add(tStart, c0), len);
    });
  } else {
    chunkLoop([&](Value c0, Value len) {
      Value t0 = add(tStart, c0);
      loadChunk(batch, head, t0, len, true, true);
      if (hasDecay())
        cumulativeDecay(batch, head, t0, len, logLambda);
      if (isDelta())
        deltaChunk(batch, head, t0, len);
      else
        causalChunk(batch, head, t0, len);
    });
  }
  storeState(stateIdx, head);
}

//===----------------------------------------------------------------------===//
// The pass
//===----------------------------------------------------------------------===//

/// Memref type with dynamic strides except a unit innermost stride.
static MemRefType innerContiguousType(RankedTensorType t,
                                      bool unitInner = true) {
  SmallVector<int64_t> strides(t.getRank(), ShapedType::kDynamic);
  if (!strides.empty() && unitInner)
    strides.back() = 1;
  auto layout =
      StridedLayoutAttr::get(t.getContext(), ShapedType::kDynamic, strides);
  return MemRefType::get(t.getShape(), t.getElementType(), layout);
}

static Value toBuffer(OpBuilder &b, Location loc, Value tensor,
                      bool unitInner = true) {
  if (!tensor)
    return Value();
  auto type =
      innerContiguousType(cast<RankedTensorType>(tensor.getType()), unitInner);
  return bufferization::ToBufferOp::create(b, loc, type, tensor,
                                           /*read_only=*/true);
}

/// [B, T, H, D] view -> [B, H, T, D] view.
static Value toBHTD(OpBuilder &b, Location loc, Value m, Layout layout) {
  if (!m || layout == Layout::BHTD)
    return m;
  auto type = cast<MemRefType>(m.getType());
  if (type.getRank() < 3)
    return m;
  SmallVector<unsigned> perm = {0, 2, 1};
  for (unsigned i = 3; i < type.getRank(); ++i)
    perm.push_back(i);
  auto map = AffineMap::getPermutationMap(perm, b.getContext());
  return memref::TransposeOp::create(b, loc, m, AffineMapAttr::get(map));
}

struct LinAttnChunkPass
    : public mlir::linattn::impl::LinAttnChunkBase<LinAttnChunkPass> {
  using LinAttnChunkBase::LinAttnChunkBase;

  void runOnOperation() override {
    SmallVector<AttentionOp> ops;
    getOperation()->walk([&](AttentionOp op) { ops.push_back(op); });
    for (AttentionOp op : ops)
      if (failed(rewrite(op)))
        return signalPassFailure();
  }

  LogicalResult rewrite(AttentionOp op);
};

LogicalResult LinAttnChunkPass::rewrite(AttentionOp op) {
  DecayAttr decay = op.getDecay();

  Config cfg;
  cfg.decay = decay.getKind();
  cfg.featureMap = op.getFeatureMap();
  cfg.normalized = op.getNormalization() == Normalization::Katharopoulos;
  cfg.eps = op.getEps().convertToDouble();
  cfg.scale = op.getScaleOrDefault();
  cfg.causal = op.getCausal();
  cfg.exclusive = op.getExclusive();
  cfg.valueMajor = op.getStateLayout() == StateLayout::ValueMajor;
  if (FloatAttr cm = decay.getClampMin())
    cfg.clampMin = cm.getValueAsDouble();

  Layout layout = op.getLayout();
  auto dims = [&](Value v) {
    return AttentionOp::toBHTD(cast<RankedTensorType>(v.getType()).getShape(),
                               layout);
  };
  SmallVector<int64_t> qd = dims(op.getQ()), kd = dims(op.getK()),
                       vd = dims(op.getV());
  cfg.numHeads = op.getNumHeads();
  cfg.groupQ = cfg.numHeads / qd[1];
  cfg.groupK = cfg.numHeads / kd[1];
  cfg.groupV = cfg.numHeads / vd[1];
  cfg.dk = qd[3];
  cfg.dv = vd[3];

  int64_t C = chunkSize, c = subChunkSize;
  if (ChunkingAttr hint = op.getChunkingAttr()) {
    if (C == 0)
      C = hint.getSize();
    if (c == 0)
      c = hint.getSubSize();
  }
  if (C == 0)
    C = 64;
  if (c == 0 || c > C)
    c = std::min<int64_t>(16, C);
  if (C <= 0 || C % c != 0)
    return op.emitOpError()
           << "sub-chunk size " << c << " must divide the chunk size " << C;
  if (padTo <= 0)
    return op.emitOpError() << "pad-to must be positive, got " << padTo;
  if (cfg.decay == DecayKind::Vector && c % padTo != 0 && padTo % c != 0)
    return op.emitOpError()
           << "sub-chunk size " << c
           << " must be a multiple or divisor of pad-to " << padTo;
  cfg.chunk = C;
  cfg.subChunk = c;
  cfg.chunkCols = roundUp(C, padTo);
  cfg.valueCols = roundUp(cfg.dv + (cfg.normalized ? 1 : 0), padTo);

  OpBuilder b(op);
  Location loc = op.getLoc();
  Type elt = cast<RankedTensorType>(op.getQ().getType()).getElementType();
  Type ct = elt.isF64() ? b.getF64Type() : b.getF32Type();
  Emitter e(b, loc, cfg, ct);

  e.q = toBHTD(b, loc, toBuffer(b, loc, op.getQ()), layout);
  e.k = toBHTD(b, loc, toBuffer(b, loc, op.getK()), layout);
  e.v = toBHTD(b, loc, toBuffer(b, loc, op.getV()), layout);
  if (Value g = op.getGate()) {
    // A [B, H, T] scalar gate is read along T, which is strided in bthd.
    int64_t rank = cast<RankedTensorType>(g.getType()).getRank();
    Value gb = toBuffer(b, loc, g, /*unitInner=*/rank != 3);
    e.gate = cast<MemRefType>(gb.getType()).getRank() >= 3
                 ? toBHTD(b, loc, gb, layout)
                 : gb;
  }
  // beta [B, H, T] is read along T, which is strided in bthd.
  e.beta = toBHTD(b, loc, toBuffer(b, loc, op.getBeta(), /*unitInner=*/false),
                  layout);
  e.initState = toBuffer(b, loc, op.getInitialState());
  e.initNorm = toBuffer(b, loc, op.getInitialNormalizer());
  e.offsets = toBuffer(b, loc, op.getOffsets());

  // A constant decay from the attribute becomes a private global [H].
  if (cfg.decay == DecayKind::Constant && !op.getGate()) {
    std::vector<double> logs;
    if (DenseF64ArrayAttr list = decay.getLogDecay()) {
      logs.assign(list.asArrayRef().begin(), list.asArrayRef().end());
    } else if (std::optional<DecaySchedule> s = decay.getSchedule()) {
      auto schedule = static_cast<::linattn::reference::Schedule>(*s);
      int64_t numLayers = std::max<int64_t>(decay.getNumLayers(), 1);
      logs = ::linattn::reference::logDecaySchedule(
          schedule, cfg.numHeads, decay.getLayer(), numLayers);
    }
    if (static_cast<int64_t>(logs.size()) != cfg.numHeads)
      return op.emitOpError() << "constant decay needs " << cfg.numHeads
                              << " per-head log-decays, got " << logs.size();
    auto module = op->getParentOfType<ModuleOp>();
    if (!module)
      return op.emitOpError() << "a scheduled constant decay must be inside a "
                                 "module (it becomes a memref.global)";
    auto type = MemRefType::get({cfg.numHeads}, ct);
    SmallVector<Attribute> values;
    for (double l : logs)
      values.push_back(b.getFloatAttr(ct, l));
    auto init = DenseElementsAttr::get(
        RankedTensorType::get({cfg.numHeads}, ct), values);
    OpBuilder mb(module.getBodyRegion());
    auto global = memref::GlobalOp::create(
        mb, loc, "__linattn_log_decay", mb.getStringAttr("private"), type, init,
        /*constant=*/true, /*alignment=*/nullptr);
    SymbolTable(module).insert(global);
    e.constLogDecay =
        memref::GetGlobalOp::create(b, loc, type, global.getSymName());
  }

  // Outputs: written straight into a memref destination when the result is
  // only materialized there, else into a fresh buffer.
  SmallVector<Operation *> toErase;
  // Extent of a dynamic result dim: B or T from q, N from offsets.
  auto dynamicDim = [&](Value result, unsigned i) -> Value {
    if (result != op.getOutput() && i == 0 && op.getOffsets()) {
      Value n = tensor::DimOp::create(b, loc, op.getOffsets(), 0);
      return arith::SubIOp::create(b, loc, n,
                                   arith::ConstantIndexOp::create(b, loc, 1));
    }
    return tensor::DimOp::create(b, loc, op.getQ(), i);
  };
  auto outputBuffer = [&](Value result, bool bhtd) -> Value {
    if (!result)
      return Value();
    if (result.hasOneUse()) {
      if (auto mat = dyn_cast<bufferization::MaterializeInDestinationOp>(
              *result.getUsers().begin())) {
        if (isa<BaseMemRefType>(mat.getDest().getType())) {
          toErase.push_back(mat);
          Value dest = mat.getDest();
          return bhtd ? toBHTD(b, loc, dest, layout) : dest;
        }
      }
    }
    auto type = cast<RankedTensorType>(result.getType());
    SmallVector<Value> dynSizes;
    for (auto [i, d] : llvm::enumerate(type.getShape()))
      if (ShapedType::isDynamic(d))
        dynSizes.push_back(dynamicDim(result, i));
    Value m = memref::AllocOp::create(
        b, loc, MemRefType::get(type.getShape(), type.getElementType()),
        dynSizes);
    Value t = bufferization::ToTensorOp::create(b, loc, type, m,
                                                /*restrict=*/true,
                                                /*writable=*/true);
    result.replaceAllUsesWith(t);
    return bhtd ? toBHTD(b, loc, m, layout) : m;
  };
  e.out = outputBuffer(op.getOutput(), /*bhtd=*/true);
  e.finalState = outputBuffer(op.getFinalState(), false);
  e.finalNorm = outputBuffer(op.getFinalNormalizer(), false);

  e.emit();
  for (Operation *o : toErase)
    o->erase();
  op->erase();
  return success();
}

} // namespace
