//===- GPUFeatureMap.cpp - The feature-map prepass kernel ---------*- C++
//-*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
//
// Emits `linattn_map`, the GPU kernel that applies a feature map φ of MATH.md
// 3 to the rows of q or k before the attention kernel runs (the ABI is the
// "Feature-map prepass" section of docs/gpu-kernel-abi.md). One warp maps
// one row: lane l computes the features l, l + 32, ... in fp32 and writes
// them in the input type; the row is padded with zeros to a multiple of 16
// features, the key width the tensor-core kernel needs. Softmax maps reduce
// their maximum and sum across the warp with xor shuffles.
//
// Taylor features are a[I]·a[J]·c with a = [1, x] (the same gather form as
// --linattn-lower-feature-map): the constant, the linear terms (I = 0) and
// the products, with (I, J) computed from the feature index. Symmetric
// storage numbers the pairs i < j row by row, so pair m has the row i with
// rowStart(i) = i·d − i(i+1)/2 <= m < rowStart(i + 1).
//
//===----------------------------------------------------------------------===//

#include "GPUEmitter.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"

#include <cmath>

using namespace mlir;
using namespace mlir::linattn;

namespace {

class MapEmitter : public EmitterBase {
public:
  MapEmitter(OpBuilder &b, Location loc, const GpuMapConfig &cfg)
      : EmitterBase(b, loc), cfg(cfg) {}

  void emit(gpu::GPUFuncOp func);

private:
  /// x[i] of this warp's row in f32.
  Value xAt(Value i) { return toF32(load(x, add(xBase, i))); }
  /// Writes feature n (f32) of this warp's row.
  void put(Value n, Value value) {
    store(arith::TruncFOp::create(b, loc, cfg.elt, value), out,
          add(outBase, n));
  }
  /// Calls body(n) for this lane's features n < `count` (lane-strided).
  void forLaneFeatures(int64_t count, function_ref<void(Value)> body);
  /// Zeros features [cfg.width, cfg.padded).
  void zeroPadding();
  Value warpReduce(Value x, bool max);

  void emitElementwise();
  void emitTaylor();
  void emitHedgehog();
  void emitPerformer();

  const GpuMapConfig &cfg;
  Value x, weight, bias, out, perHead, hasBias;
  Value lane, head, xBase, outBase;
};

void MapEmitter::forLaneFeatures(int64_t count,
                                 function_ref<void(Value)> body) {
  loop((count + 31) / 32, [&](Value s) {
    Value n = add(mul(s, 32), lane);
    if (count % 32 == 0)
      body(n);
    else
      ifThen(ult(n, idx(count)), [&] { body(n); });
  });
}

void MapEmitter::zeroPadding() {
  if (cfg.padded == cfg.width)
    return;
  ifThen(ult(lane, idx(cfg.padded - cfg.width)),
         [&] { put(add(lane, cfg.width), f(0.0)); });
}

Value MapEmitter::warpReduce(Value v, bool max) {
  for (int32_t lanes : {16, 8, 4, 2, 1}) {
    Value other =
        gpu::ShuffleOp::create(b, loc, v, lanes, 32, gpu::ShuffleMode::XOR)
            .getShuffleResult();
    v = max ? Value(arith::MaximumFOp::create(b, loc, v, other))
            : fadd(v, other);
  }
  return v;
}

void MapEmitter::emitElementwise() {
  forLaneFeatures(cfg.padded, [&](Value n) {
    Value inRow = ult(n, idx(cfg.d));
    Value e = xAt(select(inRow, n, idx(0)));
    Value zero = f(0.0);
    if (cfg.kind == FeatureMapKind::Relu) {
      e = arith::MaximumFOp::create(b, loc, e, zero);
    } else if (cfg.kind == FeatureMapKind::EluPlusOne) {
      Value pos =
          arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT, e, zero);
      e = select(pos, fadd(e, f(1.0)),
                 exp(arith::MinimumFOp::create(b, loc, e, zero)));
    }
    put(n, select(inRow, e, zero));
  });
}

void MapEmitter::emitTaylor() {
  int64_t d = cfg.d;
  bool symmetric = cfg.kind == FeatureMapKind::Taylor2Symmetric;
  double rd = std::sqrt(static_cast<double>(d));
  double linScale = 1.0 / std::sqrt(rd),
         quadScale = 1.0 / (std::sqrt(2.0) * rd);
  auto eq = [&](Value a, int64_t v) {
    return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, a, idx(v));
  };
  auto sub = [&](Value a, int64_t v) {
    return arith::SubIOp::create(b, loc, a, idx(v));
  };
  auto div = [&](Value a, Value v) {
    return arith::DivUIOp::create(b, loc, a, v);
  };
  // a[i] = 1 for i = 0, else x[i - 1].
  auto a = [&](Value i) {
    Value at = arith::MaxUIOp::create(b, loc, i, idx(1));
    return select(eq(i, 0), f(1.0), xAt(sub(at, 1)));
  };
  forLaneFeatures(cfg.padded, [&](Value n) {
    Value lin = ule(n, idx(d));
    Value quad = ult(n, idx(cfg.width));
    // Index of n within the product block (0 outside it).
    Value m = select(lin, idx(0), sub(select(quad, n, idx(d + 1)), d + 1));
    Value i, j;
    Value scale = select(quad, f(quadScale), f(0.0));
    if (!symmetric) {
      i = add(div(m, idx(d)), 1);
      j = add(arith::RemUIOp::create(b, loc, m, idx(d)), 1);
    } else {
      // Squares first (m < d), then the pairs i < j.
      Value square = ult(m, idx(d));
      Value p = select(square, idx(0), sub(m, d));
      Value row = idx(0);
      for (int64_t r = 1; r < d; ++r) {
        Value past = ule(idx(r * d - r * (r + 1) / 2), p);
        row = add(row, select(past, idx(1), idx(0)));
      }
      // rowStart(row) = row·(2d − row − 1) / 2.
      Value start = div(
          mul(row, arith::SubIOp::create(b, loc, idx(2 * d - 1), row)), idx(2));
      Value col = add(add(arith::SubIOp::create(b, loc, p, start), row), 1);
      i = add(select(square, m, row), 1);
      j = add(select(square, m, col), 1);
      scale = select(square, scale, select(quad, f(1.0 / rd), f(0.0)));
    }
    i = select(lin, idx(0), i);
    j = select(lin, n, j);
    scale = select(lin, select(eq(n, 0), f(1.0), f(linScale)), scale);
    put(n, fmul(fmul(a(i), a(j)), scale));
  });
}

void MapEmitter::emitHedgehog() {
  bool joint = cfg.kind == FeatureMapKind::HedgehogJoint;
  int64_t d = cfg.d, nf = cfg.f, slots = (nf + 31) / 32;
  Value wBase = select(perHead, mul(head, d * nf), idx(0));
  Value bBase = select(perHead, mul(head, nf), idx(0));
  SmallVector<Value> col(slots), valid(slots), y(slots);
  for (int64_t s = 0; s < slots; ++s) {
    Value j = add(lane, 32 * s);
    valid[s] = ult(j, idx(nf));
    col[s] = select(valid[s], j, idx(0));
    y[s] = ifElse(
        hasBias, f32, [&] { return load(bias, add(bBase, col[s])); },
        [&] { return f(0.0); });
  }
  // y = x W + b, one column per slot.
  auto dot = scf::ForOp::create(b, loc, idx(0), idx(d), idx(1), y);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(dot.getBody());
    Value i = dot.getInductionVar();
    Value xi = xAt(i);
    Value rowBase = add(wBase, mul(i, nf));
    SmallVector<Value> next;
    for (int64_t s = 0; s < slots; ++s)
      next.push_back(fadd(dot.getRegionIterArgs()[s],
                          fmul(xi, load(weight, add(rowBase, col[s])))));
    scf::YieldOp::create(b, loc, next);
  }
  Value lowest = f(-3.0e38);
  SmallVector<Value> pos(slots), neg(slots);
  Value maxPos = lowest, maxNeg = lowest;
  for (int64_t s = 0; s < slots; ++s) {
    Value v = dot.getResult(s);
    if (joint)
      v = fmul(v, f(2.0));
    pos[s] = select(valid[s], v, lowest);
    neg[s] = select(valid[s], arith::NegFOp::create(b, loc, v), lowest);
    maxPos = arith::MaximumFOp::create(b, loc, maxPos, pos[s]);
    maxNeg = arith::MaximumFOp::create(b, loc, maxNeg, neg[s]);
  }
  maxPos = warpReduce(maxPos, /*max=*/true);
  maxNeg = warpReduce(maxNeg, /*max=*/true);
  if (joint) // one softmax over [2y, −2y]
    maxPos = maxNeg = arith::MaximumFOp::create(b, loc, maxPos, maxNeg);
  Value sumPos = f(0.0), sumNeg = f(0.0);
  for (int64_t s = 0; s < slots; ++s) {
    pos[s] = select(valid[s], exp(fsub(pos[s], maxPos)), f(0.0));
    neg[s] = select(valid[s], exp(fsub(neg[s], maxNeg)), f(0.0));
    sumPos = fadd(sumPos, pos[s]);
    sumNeg = fadd(sumNeg, neg[s]);
  }
  sumPos = warpReduce(sumPos, /*max=*/false);
  sumNeg = warpReduce(sumNeg, /*max=*/false);
  if (joint)
    sumPos = sumNeg = fadd(sumPos, sumNeg);
  Value invPos = arith::DivFOp::create(b, loc, f(1.0), sumPos);
  Value invNeg = arith::DivFOp::create(b, loc, f(1.0), sumNeg);
  for (int64_t s = 0; s < slots; ++s)
    ifThen(valid[s], [&] {
      put(col[s], fmul(pos[s], invPos));
      put(add(col[s], nf), fmul(neg[s], invNeg));
    });
}

void MapEmitter::emitPerformer() {
  bool hyperbolic = cfg.kind == FeatureMapKind::PerformerHyperbolic;
  int64_t d = cfg.d, m = cfg.f, slots = (m + 31) / 32;
  double inv = 1.0 / std::sqrt(std::sqrt(static_cast<double>(d)));
  double norm = std::sqrt(static_cast<double>(hyperbolic ? 2 * m : m));
  Value wBase = select(perHead, mul(head, m * d), idx(0));
  SmallVector<Value> rowOf(slots), valid(slots);
  // Iteration values: ‖x‖², then one projection w_r · x per slot.
  SmallVector<Value> init(slots + 1, f(0.0));
  for (int64_t s = 0; s < slots; ++s) {
    Value r = add(lane, 32 * s);
    valid[s] = ult(r, idx(m));
    rowOf[s] = mul(select(valid[s], r, idx(0)), d);
  }
  auto dot = scf::ForOp::create(b, loc, idx(0), idx(d), idx(1), init);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(dot.getBody());
    Value i = dot.getInductionVar();
    auto acc = dot.getRegionIterArgs();
    Value xi = xAt(i);
    SmallVector<Value> next = {fadd(acc[0], fmul(xi, xi))};
    Value row = add(wBase, i);
    for (int64_t s = 0; s < slots; ++s)
      next.push_back(
          fadd(acc[s + 1], fmul(xi, load(weight, add(row, rowOf[s])))));
    scf::YieldOp::create(b, loc, next);
  }
  // exp(w·x̂ − ‖x̂‖²/2) with x̂ = x·inv.
  Value half = fmul(dot.getResult(0), f(-0.5 * inv * inv));
  for (int64_t s = 0; s < slots; ++s)
    ifThen(valid[s], [&] {
      Value proj = fmul(dot.getResult(s + 1), f(inv));
      Value r = add(lane, 32 * s);
      put(r, fmul(exp(fadd(proj, half)), f(1.0 / norm)));
      if (hyperbolic)
        put(add(r, m), fmul(exp(fsub(half, proj)), f(1.0 / norm)));
    });
}

void MapEmitter::emit(gpu::GPUFuncOp func) {
  Block &entry = func.getBody().front();
  b.setInsertionPointToStart(&entry);
  auto args = entry.getArguments();
  x = args[0], weight = args[1], bias = args[2], out = args[3];
  Value rows = toIndex(args[4]), seqLen = toIndex(args[5]);
  Value heads = toIndex(args[6]);
  Value zero64 = arith::ConstantIntOp::create(b, loc, 0, 64);
  auto flag = [&](Value v) {
    return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ne, v, zero64);
  };
  perHead = flag(args[7]);
  hasBias = flag(args[8]);

  Value tid = gpu::ThreadIdOp::create(b, loc, gpu::Dimension::x);
  lane = arith::RemUIOp::create(b, loc, tid, idx(32));
  Value warp = arith::DivUIOp::create(b, loc, tid, idx(32));
  Value block = gpu::BlockIdOp::create(b, loc, gpu::Dimension::x);
  Value row = add(mul(block, GpuMapConfig::kRowsPerBlock), warp);
  ifThen(ult(row, rows), [&] {
    // Rows are [B, T, H] (bthd) or [B, H, T] in memory order.
    Value h = cfg.layout == Layout::BTHD
                  ? row
                  : Value(arith::DivUIOp::create(b, loc, row, seqLen));
    head = arith::RemUIOp::create(b, loc, h, heads);
    xBase = mul(row, cfg.d);
    outBase = mul(row, cfg.padded);
    switch (cfg.kind) {
    case FeatureMapKind::Identity:
    case FeatureMapKind::EluPlusOne:
    case FeatureMapKind::Relu:
      emitElementwise();
      return;
    case FeatureMapKind::Taylor2:
    case FeatureMapKind::Taylor2Symmetric:
      emitTaylor();
      return;
    case FeatureMapKind::Hedgehog:
    case FeatureMapKind::HedgehogJoint:
      emitHedgehog();
      break;
    case FeatureMapKind::Performer:
    case FeatureMapKind::PerformerHyperbolic:
      emitPerformer();
      break;
    }
    zeroPadding();
  });
  gpu::ReturnOp::create(b, loc);
}

} // namespace

gpu::GPUFuncOp mlir::linattn::emitFeatureMapKernel(OpBuilder &b, Location loc,
                                                   const GpuMapConfig &cfg) {
  auto tensor = [&](Type t) {
    return MemRefType::get({ShapedType::kDynamic}, t);
  };
  SmallVector<Type> argTypes = {tensor(cfg.elt), tensor(b.getF32Type()),
                                tensor(b.getF32Type()), tensor(cfg.elt)};
  argTypes.append(5, b.getI64Type());
  auto func = gpu::GPUFuncOp::create(b, loc, "linattn_map",
                                     b.getFunctionType(argTypes, {}));
  func->setAttr(gpu::GPUDialect::getKernelFuncAttrName(), b.getUnitAttr());
  func.setKnownBlockSizeAttr(b.getDenseI32ArrayAttr(
      {static_cast<int32_t>(32 * GpuMapConfig::kRowsPerBlock), 1, 1}));
  OpBuilder::InsertionGuard guard(b);
  MapEmitter(b, loc, cfg).emit(func);
  return func;
}
