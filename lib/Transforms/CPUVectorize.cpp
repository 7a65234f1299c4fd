//===- CPUVectorize.cpp - Register-tiled matmul micro-kernels --*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
//
// Implements --linattn-cpu-vectorize: every static linalg.matmul on memrefs
// becomes an mr x nr register block of vector accumulators carried through
// the reduction loop (broadcast of A, vector loads of B, vector.fma), the
// classic outer-product micro-kernel that LLVM maps to vbroadcastss +
// vfmadd231ps on x86. Static f32 2-D transposes become 8x8 register
// transposes (vector loads, shuffles, vector stores).
//
//===----------------------------------------------------------------------===//

#include "linattn/Transforms/Passes.h"

#include "mlir/Dialect/Math/Transforms/Approximation.h"
#include "mlir/Dialect/Math/Transforms/Passes.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::linattn {
#define GEN_PASS_DEF_LINATTNCPUVECTORIZE
#include "linattn/Transforms/Passes.h.inc"
} // namespace mlir::linattn

using namespace mlir;
using namespace mlir::linattn;

namespace {

/// Emits the micro-kernel loops of one matmul.
class MicroKernel {
public:
  MicroKernel(OpBuilder &b, Location loc, Value a, Value bm, Value c,
              int64_t mr, int64_t nr, int64_t w)
      : b(b), loc(loc), A(a), B(bm), Cm(c), mr(mr), nr(nr), w(w) {
    auto ct = cast<MemRefType>(c.getType());
    M = ct.getDimSize(0);
    N = ct.getDimSize(1);
    K = cast<MemRefType>(a.getType()).getDimSize(1);
    elt = ct.getElementType();
  }

  bool zeroInit = false, lowerLhs = false, lowerOut = false;

  void emit() {
    int64_t mMain = M - M % mr;
    if (mMain > 0)
      loop(idx(0), idx(mMain), mr, [&](Value i0) { rowBlock(i0, mr); });
    if (M % mr)
      rowBlock(idx(mMain), M % mr);
  }

private:
  Value idx(int64_t v) { return arith::ConstantIndexOp::create(b, loc, v); }
  void loop(Value lo, Value hi, int64_t step, function_ref<void(Value)> body) {
    auto forOp = scf::ForOp::create(b, loc, lo, hi, idx(step));
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(forOp.getBody()->getTerminator());
    body(forOp.getInductionVar());
  }

  /// Rows [i0, i0 + rows) against every column block.
  void rowBlock(Value i0, int64_t rows) {
    int64_t nMain = N - N % nr;
    if (lowerOut) {
      // Only column blocks that start at or left of the last row are needed.
      Value bound = arith::MinSIOp::create(
          b, loc, arith::AddIOp::create(b, loc, i0, idx(rows)), idx(N));
      loop(idx(0), bound, nr, [&](Value n0) { block(i0, rows, n0, nr); });
      return;
    }
    if (nMain > 0)
      loop(idx(0), idx(nMain), nr, [&](Value n0) { block(i0, rows, n0, nr); });
    if (N % nr)
      block(i0, rows, idx(nMain), N % nr);
  }

  /// One rows x cols register block at (i0, n0).
  void block(Value i0, int64_t rows, Value n0, int64_t cols) {
    int64_t nv = cols / w;
    auto vt = VectorType::get({w}, elt);
    SmallVector<Value> rowIdx, colIdx;
    for (int64_t i = 0; i < rows; ++i)
      rowIdx.push_back(
          i == 0 ? i0 : Value(arith::AddIOp::create(b, loc, i0, idx(i))));
    for (int64_t j = 0; j < nv; ++j)
      colIdx.push_back(
          j == 0 ? n0 : Value(arith::AddIOp::create(b, loc, n0, idx(j * w))));

    SmallVector<Value> init;
    Value zero;
    if (zeroInit)
      zero = arith::ConstantOp::create(
          b, loc, vt, DenseElementsAttr::get(vt, b.getFloatAttr(elt, 0.0)));
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < nv; ++j)
        init.push_back(
            zeroInit ? zero
                     : Value(vector::LoadOp::create(
                           b, loc, vt, Cm, ValueRange{rowIdx[i], colIdx[j]})));

    Value kEnd = idx(K);
    if (lowerLhs)
      kEnd = arith::MinSIOp::create(
          b, loc, arith::AddIOp::create(b, loc, i0, idx(rows)), kEnd);
    auto forOp = scf::ForOp::create(b, loc, idx(0), kEnd, idx(1), init);
    {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(forOp.getBody());
      Value k = forOp.getInductionVar();
      ValueRange acc = forOp.getRegionIterArgs();
      SmallVector<Value> bRow;
      for (int64_t j = 0; j < nv; ++j)
        bRow.push_back(
            vector::LoadOp::create(b, loc, vt, B, ValueRange{k, colIdx[j]}));
      SmallVector<Value> next;
      for (int64_t i = 0; i < rows; ++i) {
        Value a = memref::LoadOp::create(b, loc, A, ValueRange{rowIdx[i], k});
        Value ab = vector::BroadcastOp::create(b, loc, vt, a);
        for (int64_t j = 0; j < nv; ++j)
          next.push_back(
              vector::FMAOp::create(b, loc, ab, bRow[j], acc[i * nv + j]));
      }
      scf::YieldOp::create(b, loc, next);
    }
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < nv; ++j)
        vector::StoreOp::create(b, loc, forOp.getResult(i * nv + j), Cm,
                                ValueRange{rowIdx[i], colIdx[j]});
  }

  OpBuilder &b;
  Location loc;
  Value A, B, Cm;
  int64_t mr, nr, w;
  int64_t M = 0, N = 0, K = 0;
  Type elt;
};

/// True for a zero splat constant.
static bool isZero(Value v) {
  auto c = v.getDefiningOp<arith::ConstantOp>();
  if (!c)
    return false;
  auto f = dyn_cast<FloatAttr>(c.getValue());
  return f && f.getValue().isZero();
}

struct LinAttnCPUVectorizePass
    : public mlir::linattn::impl::LinAttnCPUVectorizeBase<
          LinAttnCPUVectorizePass> {
  using LinAttnCPUVectorizeBase::LinAttnCPUVectorizeBase;

  void runOnOperation() override {
    if (tileM <= 0 || tileN <= 0 || vectorWidth <= 0 ||
        tileN % vectorWidth != 0) {
      getOperation()->emitError()
          << "linattn-cpu-vectorize: tile-n (" << tileN
          << ") must be a positive multiple of vector-width (" << vectorWidth
          << ") and tile-m (" << tileM << ") positive";
      return signalPassFailure();
    }
    // A memref.copy between strided memrefs (tensor.insert_slice of a
    // feature map's halves) lowers to a call of memrefCopy from MLIR's
    // runner utilities, which the JIT does not link; as linalg.copy it
    // becomes plain loops.
    SmallVector<memref::CopyOp> copies;
    getOperation()->walk([&](memref::CopyOp op) {
      auto identity = [](Value m) {
        return cast<MemRefType>(m.getType()).getLayout().isIdentity();
      };
      if (!identity(op.getSource()) || !identity(op.getTarget()))
        copies.push_back(op);
    });
    for (memref::CopyOp op : copies) {
      OpBuilder b(op);
      linalg::CopyOp::create(b, op.getLoc(), ValueRange{op.getSource()},
                             ValueRange{op.getTarget()});
      op->erase();
    }

    SmallVector<linalg::MatmulOp> ops;
    getOperation()->walk([&](linalg::MatmulOp op) { ops.push_back(op); });
    for (linalg::MatmulOp op : ops)
      rewrite(op);
    SmallVector<linalg::TransposeOp> transposes;
    getOperation()->walk(
        [&](linalg::TransposeOp op) { transposes.push_back(op); });
    for (linalg::TransposeOp op : transposes)
      rewriteTranspose(op);

    RewritePatternSet patterns(&getContext());
    populateMathPolynomialApproximationPatterns(patterns);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      return signalPassFailure();
  }

  /// A static 2-D f32 transpose on memrefs with unit inner strides and both
  /// dims multiples of 8 becomes 8x8 blocks of vector loads, a 24-shuffle
  /// register transpose and vector stores. Left as a linalg op (scalar
  /// loops), the column stores hit a new cache line per element; the
  /// profile showed that copy at 10-16 % of the Lightning kernel.
  void rewriteTranspose(linalg::TransposeOp op) {
    constexpr int64_t w = 8;
    if (!op.hasPureBufferSemantics() || op.getPermutation().size() != 2 ||
        op.getPermutation()[0] != 1)
      return;
    Value src = op.getInput(), dst = op.getInit();
    auto st = cast<MemRefType>(src.getType()),
         dt = cast<MemRefType>(dst.getType());
    if (!st.hasStaticShape() || !dt.hasStaticShape() ||
        !st.getElementType().isF32() || !isUnitInner(st) || !isUnitInner(dt))
      return;
    int64_t rows = st.getDimSize(0), cols = st.getDimSize(1);
    if (rows % w != 0 || cols % w != 0 || vectorWidth < w)
      return;
    OpBuilder b(op);
    Location loc = op.getLoc();
    auto vt = VectorType::get({w}, st.getElementType());
    auto cIdx = [&](int64_t v) {
      return Value(arith::ConstantIndexOp::create(b, loc, v));
    };
    auto shuffle = [&](Value x, Value y, ArrayRef<int64_t> mask) {
      return Value(vector::ShuffleOp::create(b, loc, x, y, mask));
    };
    auto forI = scf::ForOp::create(b, loc, cIdx(0), cIdx(rows), cIdx(w));
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(forI.getBody()->getTerminator());
    Value i0 = forI.getInductionVar();
    auto forJ = scf::ForOp::create(b, loc, cIdx(0), cIdx(cols), cIdx(w));
    b.setInsertionPoint(forJ.getBody()->getTerminator());
    Value j0 = forJ.getInductionVar();
    auto plus = [&](Value base, int64_t k) {
      return k == 0 ? base
                    : Value(arith::AddIOp::create(b, loc, base, cIdx(k)));
    };
    SmallVector<Value> r, t(w), u(w), out(w);
    for (int64_t k = 0; k < w; ++k)
      r.push_back(
          vector::LoadOp::create(b, loc, vt, src, ValueRange{plus(i0, k), j0}));
    // Interleave pairs of rows (unpcklps/unpckhps per 128-bit lane) ...
    for (int64_t k = 0; k < w; k += 2) {
      t[k] = shuffle(r[k], r[k + 1], {0, 8, 1, 9, 4, 12, 5, 13});
      t[k + 1] = shuffle(r[k], r[k + 1], {2, 10, 3, 11, 6, 14, 7, 15});
    }
    // ... then pairs of pairs (shufps) ...
    for (int64_t k = 0; k < w; k += 4)
      for (int64_t h = 0; h < 2; ++h) {
        u[k + 2 * h] =
            shuffle(t[k + h], t[k + h + 2], {0, 1, 8, 9, 4, 5, 12, 13});
        u[k + 2 * h + 1] =
            shuffle(t[k + h], t[k + h + 2], {2, 3, 10, 11, 6, 7, 14, 15});
      }
    // ... and the 128-bit halves (vperm2f128): out[k] is source column k.
    for (int64_t k = 0; k < 4; ++k) {
      out[k] = shuffle(u[k], u[k + 4], {0, 1, 2, 3, 8, 9, 10, 11});
      out[k + 4] = shuffle(u[k], u[k + 4], {4, 5, 6, 7, 12, 13, 14, 15});
    }
    for (int64_t k = 0; k < w; ++k)
      vector::StoreOp::create(b, loc, out[k], dst, ValueRange{plus(j0, k), i0});
    op->erase();
  }

  static bool isUnitInner(MemRefType t) {
    SmallVector<int64_t> strides;
    int64_t offset;
    return succeeded(t.getStridesAndOffset(strides, offset)) &&
           strides.back() == 1;
  }

  void rewrite(linalg::MatmulOp op) {
    if (!op.hasPureBufferSemantics() || op.hasUserDefinedMaps())
      return;
    Value a = op.getDpsInputs()[0], bm = op.getDpsInputs()[1],
          c = op.getDpsInits()[0];
    auto at = cast<MemRefType>(a.getType()),
         bt = cast<MemRefType>(bm.getType()),
         ct = cast<MemRefType>(c.getType());
    if (!at.hasStaticShape() || !bt.hasStaticShape() || !ct.hasStaticShape())
      return;
    Type elt = ct.getElementType();
    if (at.getElementType() != elt || bt.getElementType() != elt ||
        !(elt.isF32() || elt.isF64()))
      return;
    // B rows and C rows are read as vectors: unit innermost stride.
    auto unitInner = [](MemRefType t) {
      SmallVector<int64_t> strides;
      int64_t offset;
      return succeeded(t.getStridesAndOffset(strides, offset)) &&
             strides.back() == 1;
    };
    if (!unitInner(bt) || !unitInner(ct))
      return;

    int64_t n = ct.getDimSize(1);
    // Lanes per vector: the register width in this element type, reduced to
    // a power of two dividing N so every column block is whole vectors.
    int64_t w = elt.isF64() ? std::max<int64_t>(vectorWidth / 2, 1)
                            : int64_t(vectorWidth);
    while (w > 1 && n % w != 0)
      w /= 2;
    int64_t nr = std::max<int64_t>(tileN / (elt.isF64() ? 2 : 1), w);
    nr = nr / w * w;

    OpBuilder b(op);
    MicroKernel mk(b, op.getLoc(), a, bm, c, tileM, nr, w);
    mk.lowerLhs = op->hasAttr("linattn.lower_triangular_lhs");
    mk.lowerOut = op->hasAttr("linattn.lower_triangular_result") && n % nr == 0;
    // Fold a preceding zero fill of the whole result into the accumulators
    // (with a triangular-result hint the skipped tiles are unspecified).
    if (auto fill = dyn_cast_or_null<linalg::FillOp>(op->getPrevNode())) {
      if (fill.hasPureBufferSemantics() && fill.getDpsInits()[0] == c &&
          isZero(fill.getInputs()[0])) {
        mk.zeroInit = true;
        fill->erase();
      }
    }
    mk.emit();
    op->erase();
  }
};

} // namespace
