//===- LowerFeatureMap.cpp - linattn.feature_map -> linalg ------*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
//
// Implements --linattn-lower-feature-map: every `linattn.feature_map` becomes
// `linalg.generic` ops on tensors computing phi of MATH.md 3 row by row. The
// arithmetic runs in the compute type (f32, or f64 for f64 inputs), and only
// the final op converts to the input's element type, so bf16 inputs lose
// precision once, not at every step. Softmax-based maps (Hedgehog) subtract
// the row maximum before exponentiating.
//
//===----------------------------------------------------------------------===//

#include "linattn/Transforms/Passes.h"

#include "linattn/Dialect/LinAttn/IR/LinAttnOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/PatternMatch.h"

#include <cmath>
#include <limits>

namespace mlir::linattn {
#define GEN_PASS_DEF_LINATTNLOWERFEATUREMAP
#include "linattn/Transforms/Passes.h.inc"
} // namespace mlir::linattn

using namespace mlir;
using namespace mlir::linattn;

namespace {

using utils::IteratorType;

/// Builds the linalg ops of one feature map. `x` is the input [..., d] and
/// the iteration spaces below always start with its leading (row) dims.
class MapBuilder {
public:
  MapBuilder(OpBuilder &b, Location loc, FeatureMapOp op)
      : b(b), loc(loc), x(op.getInput()), weight(op.getWeight()),
        bias(op.getBias()) {
    auto t = cast<RankedTensorType>(x.getType());
    elt = t.getElementType();
    ct = elt.isF64() ? b.getF64Type() : b.getF32Type();
    rows = t.getRank() - 1;
    d = t.getShape().back();
    for (int64_t i = 0; i < rows; ++i) {
      rowShape.push_back(t.getDimSize(i));
      if (t.isDynamicDim(i))
        rowSizes.push_back(tensor::DimOp::create(b, loc, x, i));
    }
  }

  Value lower(FeatureMapKind kind, int64_t width);

private:
  //===--- Small builders ---------------------------------------------===//
  Value cst(double v) {
    return arith::ConstantOp::create(b, loc, ct, b.getFloatAttr(ct, v));
  }
  /// Converts a float scalar between widths (no-op when equal).
  Value convert(OpBuilder &nb, Value v, Type to) {
    Type from = v.getType();
    if (from == to)
      return v;
    if (from.getIntOrFloatBitWidth() < to.getIntOrFloatBitWidth())
      return arith::ExtFOp::create(nb, loc, to, v);
    return arith::TruncFOp::create(nb, loc, to, v);
  }
  /// An uninitialized tensor of the row dims followed by `last` (if >= 0).
  Value empty(std::optional<int64_t> last, Type type) {
    SmallVector<int64_t> shape(rowShape);
    if (last)
      shape.push_back(*last);
    return tensor::EmptyOp::create(b, loc, shape, type, rowSizes);
  }
  Value filled(std::optional<int64_t> last, double v) {
    return linalg::FillOp::create(b, loc, ValueRange{cst(v)},
                                  ValueRange{empty(last, ct)})
        .getResult(0);
  }
  /// Map from an iteration space of `n` dims to the given dims.
  AffineMap map(unsigned n, ArrayRef<unsigned> dims) {
    SmallVector<AffineExpr> exprs;
    for (unsigned i : dims)
      exprs.push_back(b.getAffineDimExpr(i));
    return AffineMap::get(n, 0, exprs, b.getContext());
  }
  /// The row dims 0..rows-1 followed by `extra`.
  SmallVector<unsigned> rowDims(ArrayRef<unsigned> extra = {}) {
    SmallVector<unsigned> r;
    for (unsigned i = 0; i < rows; ++i)
      r.push_back(i);
    r.append(extra.begin(), extra.end());
    return r;
  }
  /// Row dims, then the reduction over the input width, then the features:
  /// the innermost loop runs over independent outputs (no dependence chain
  /// through one accumulator, and LLVM can vectorize it).
  SmallVector<IteratorType> projectionIterators() {
    SmallVector<IteratorType> r(rows, IteratorType::parallel);
    r.push_back(IteratorType::reduction);
    r.push_back(IteratorType::parallel);
    return r;
  }
  SmallVector<IteratorType> iterators(unsigned parallel, unsigned reduction) {
    SmallVector<IteratorType> r(parallel, IteratorType::parallel);
    r.append(reduction, IteratorType::reduction);
    return r;
  }
  using Body = function_ref<void(OpBuilder &, Location, ValueRange)>;
  ValueRange generic(ValueRange ins, ValueRange outs, ArrayRef<AffineMap> maps,
                     ArrayRef<IteratorType> its, Body body) {
    SmallVector<Type> types;
    for (Value o : outs)
      types.push_back(o.getType());
    return linalg::GenericOp::create(b, loc, types, ins, outs, maps, its, body)
        .getResults();
  }
  /// Concatenates [..., w] parts along the last dim into one tensor.
  Value concat(ArrayRef<Value> parts, int64_t w) {
    Value r = empty(w * static_cast<int64_t>(parts.size()), elt);
    for (auto [i, p] : llvm::enumerate(parts)) {
      SmallVector<OpFoldResult> offsets(rows + 1, b.getIndexAttr(0));
      offsets.back() = b.getIndexAttr(static_cast<int64_t>(i) * w);
      SmallVector<OpFoldResult> sizes = tensor::getMixedSizes(b, loc, p);
      SmallVector<OpFoldResult> strides(rows + 1, b.getIndexAttr(1));
      r = tensor::InsertSliceOp::create(b, loc, p, r, offsets, sizes, strides);
    }
    return r;
  }
  /// Dims a weight [.., a, b] is read at: the head dim (input dim 1) when it
  /// has three dims, then `inner`.
  AffineMap weightMap(unsigned n, ArrayRef<unsigned> inner) {
    SmallVector<unsigned> dims;
    if (cast<RankedTensorType>(weight.getType()).getRank() == 3)
      dims.push_back(1);
    dims.append(inner.begin(), inner.end());
    return map(n, dims);
  }

  Value elementwise(FeatureMapKind kind);
  Value taylor(bool symmetric, int64_t width);
  Value hedgehog(bool joint, int64_t f);
  Value performer(bool hyperbolic, int64_t m);

  OpBuilder &b;
  Location loc;
  Value x, weight, bias;
  Type elt, ct;
  unsigned rows = 0;
  int64_t d = 0;
  SmallVector<int64_t> rowShape;
  SmallVector<Value> rowSizes;
};

//===----------------------------------------------------------------------===//
// Elementwise maps
//===----------------------------------------------------------------------===//

Value MapBuilder::elementwise(FeatureMapKind kind) {
  unsigned n = rows + 1;
  AffineMap id = b.getMultiDimIdentityMap(n);
  return generic(
      x, empty(d, elt), {id, id}, iterators(n, 0),
      [&](OpBuilder &nb, Location l, ValueRange args) {
        Value v = convert(nb, args[0], ct);
        Value zero =
            arith::ConstantOp::create(nb, l, ct, nb.getFloatAttr(ct, 0.0));
        Value r;
        if (kind == FeatureMapKind::Relu) {
          r = arith::MaximumFOp::create(nb, l, v, zero);
        } else {
          // elu(x) + 1: x + 1 above zero, exp(x) below.
          Value one =
              arith::ConstantOp::create(nb, l, ct, nb.getFloatAttr(ct, 1.0));
          Value pos =
              arith::CmpFOp::create(nb, l, arith::CmpFPredicate::OGT, v, zero);
          r = arith::SelectOp::create(nb, l, pos,
                                      arith::AddFOp::create(nb, l, v, one),
                                      math::ExpOp::create(nb, l, v));
        }
        linalg::YieldOp::create(nb, l, convert(nb, r, elt));
      })[0];
}

//===----------------------------------------------------------------------===//
// Taylor-2 (Based)
//===----------------------------------------------------------------------===//

/// Every Taylor feature is a[i]·a[j]·c with a = [1, x]: the constant (0, 0,
/// 1), the linear terms (0, i+1, d^-1/4) and the quadratic ones. A table of
/// (i, j, c) per output column turns both storage orders into one gather.
Value MapBuilder::taylor(bool symmetric, int64_t width) {
  double rd = std::sqrt(static_cast<double>(d));
  double lin = 1.0 / std::sqrt(rd), quad = 1.0 / (std::sqrt(2.0) * rd);
  SmallVector<int32_t> ti, tj;
  SmallVector<double> tc;
  auto term = [&](int64_t i, int64_t j, double c) {
    ti.push_back(static_cast<int32_t>(i));
    tj.push_back(static_cast<int32_t>(j));
    tc.push_back(c);
  };
  term(0, 0, 1.0);
  for (int64_t i = 0; i < d; ++i)
    term(0, i + 1, lin);
  if (!symmetric) {
    for (int64_t i = 0; i < d; ++i)
      for (int64_t j = 0; j < d; ++j)
        term(i + 1, j + 1, quad);
  } else {
    for (int64_t i = 0; i < d; ++i)
      term(i + 1, i + 1, quad);
    for (int64_t i = 0; i < d; ++i)
      for (int64_t j = i + 1; j < d; ++j)
        term(i + 1, j + 1, 1.0 / rd);
  }
  assert(static_cast<int64_t>(tc.size()) == width && "Taylor width");

  auto indexTable = [&](ArrayRef<int32_t> v) -> Value {
    auto type = RankedTensorType::get({width}, b.getI32Type());
    return arith::ConstantOp::create(b, loc, type,
                                     DenseElementsAttr::get(type, v));
  };
  auto coefType = RankedTensorType::get({width}, ct);
  SmallVector<Attribute> coefs;
  for (double c : tc)
    coefs.push_back(b.getFloatAttr(ct, c));
  Value coef = arith::ConstantOp::create(
      b, loc, coefType, DenseElementsAttr::get(coefType, coefs));

  // a = [1, x] in the compute type.
  unsigned n = rows + 1;
  AffineMap id = b.getMultiDimIdentityMap(n);
  Value xc = x;
  if (elt != ct)
    xc = generic(x, empty(d, ct), {id, id}, iterators(n, 0),
                 [&](OpBuilder &nb, Location l, ValueRange args) {
                   linalg::YieldOp::create(nb, l, convert(nb, args[0], ct));
                 })[0];
  SmallVector<OpFoldResult> offsets(n, b.getIndexAttr(0));
  offsets.back() = b.getIndexAttr(1);
  SmallVector<OpFoldResult> strides(n, b.getIndexAttr(1));
  Value a =
      tensor::InsertSliceOp::create(b, loc, xc, filled(d + 1, 1.0), offsets,
                                    tensor::getMixedSizes(b, loc, xc), strides);

  AffineMap col = map(n, {rows});
  return generic(
      ValueRange{indexTable(ti), indexTable(tj), coef}, empty(width, elt),
      {col, col, col, id}, iterators(n, 0),
      [&](OpBuilder &nb, Location l, ValueRange args) {
        SmallVector<Value> at;
        for (unsigned i = 0; i < rows; ++i)
          at.push_back(linalg::IndexOp::create(nb, l, i));
        auto gather = [&](Value i32) {
          SmallVector<Value> ix(at);
          ix.push_back(
              arith::IndexCastOp::create(nb, l, nb.getIndexType(), i32));
          return tensor::ExtractOp::create(nb, l, a, ix).getResult();
        };
        Value r = arith::MulFOp::create(
            nb, l,
            arith::MulFOp::create(nb, l, gather(args[0]), gather(args[1])),
            args[2]);
        linalg::YieldOp::create(nb, l, convert(nb, r, elt));
      })[0];
}

//===----------------------------------------------------------------------===//
// Hedgehog
//===----------------------------------------------------------------------===//

/// y = x·W + b, then [softmax(y), softmax(-y)] (paper) or softmax([2y, -2y])
/// (joint, FLA). The row max and min of y give the maxima of both halves, so
/// every exponent is <= 0.
Value MapBuilder::hedgehog(bool joint, int64_t f) {
  unsigned n = rows + 1;
  AffineMap id = b.getMultiDimIdentityMap(n);
  AffineMap row = map(n, rowDims());
  // y starts as the bias (or zero) and accumulates x·W.
  Value y = filled(f, 0.0);
  if (bias) {
    bool perHead = cast<RankedTensorType>(bias.getType()).getRank() == 2;
    AffineMap bm = perHead ? map(n, {1, rows}) : map(n, {rows});
    y = generic(bias, y, {bm, id}, iterators(n, 0),
                [&](OpBuilder &nb, Location l, ValueRange args) {
                  linalg::YieldOp::create(nb, l, convert(nb, args[0], ct));
                })[0];
  }
  // Iteration space (rows..., i, j): y[.., j] += x[.., i] * W[i, j].
  y = generic(
      ValueRange{x, weight}, y,
      {map(n + 1, rowDims({rows})), weightMap(n + 1, {rows, rows + 1}),
       map(n + 1, rowDims({rows + 1}))},
      projectionIterators(), [&](OpBuilder &nb, Location l, ValueRange args) {
        Value p = arith::MulFOp::create(nb, l, convert(nb, args[0], ct),
                                        convert(nb, args[1], ct));
        linalg::YieldOp::create(
            nb, l, ValueRange{arith::AddFOp::create(nb, l, args[2], p)});
      })[0];

  double inf = std::numeric_limits<double>::infinity();
  ValueRange mm = generic(
      y, ValueRange{filled(std::nullopt, -inf), filled(std::nullopt, inf)},
      {id, row, row}, iterators(rows, 1),
      [&](OpBuilder &nb, Location l, ValueRange args) {
        linalg::YieldOp::create(
            nb, l,
            ValueRange{arith::MaximumFOp::create(nb, l, args[0], args[1]),
                       arith::MinimumFOp::create(nb, l, args[0], args[2])});
      });
  Value mx = mm[0], mn = mm[1];

  // The exponents of both halves: (y - max y, min y - y), or for the joint
  // softmax (2y - M, -2y - M) with M = max(2 max y, -2 min y).
  auto exponents = [&](OpBuilder &nb, Location l, Value yv, Value hi,
                       Value lo) -> std::pair<Value, Value> {
    if (!joint)
      return {arith::SubFOp::create(nb, l, yv, hi),
              arith::SubFOp::create(nb, l, lo, yv)};
    Value two = arith::ConstantOp::create(nb, l, ct, nb.getFloatAttr(ct, 2.0));
    Value y2 = arith::MulFOp::create(nb, l, yv, two);
    Value m = arith::MaximumFOp::create(
        nb, l, arith::MulFOp::create(nb, l, hi, two),
        arith::NegFOp::create(nb, l, arith::MulFOp::create(nb, l, lo, two)));
    return {arith::SubFOp::create(nb, l, y2, m),
            arith::SubFOp::create(nb, l, arith::NegFOp::create(nb, l, y2), m)};
  };
  ValueRange sums = generic(
      ValueRange{y, mx, mn},
      ValueRange{filled(std::nullopt, 0.0), filled(std::nullopt, 0.0)},
      {id, row, row, row, row}, iterators(rows, 1),
      [&](OpBuilder &nb, Location l, ValueRange args) {
        auto [e1, e2] = exponents(nb, l, args[0], args[1], args[2]);
        linalg::YieldOp::create(
            nb, l,
            ValueRange{arith::AddFOp::create(nb, l, args[3],
                                             math::ExpOp::create(nb, l, e1)),
                       arith::AddFOp::create(nb, l, args[4],
                                             math::ExpOp::create(nb, l, e2))});
      });

  ValueRange halves = generic(
      ValueRange{y, mx, mn, sums[0], sums[1]},
      ValueRange{empty(f, elt), empty(f, elt)},
      {id, row, row, row, row, id, id}, iterators(n, 0),
      [&](OpBuilder &nb, Location l, ValueRange args) {
        auto [e1, e2] = exponents(nb, l, args[0], args[1], args[2]);
        Value s1 = args[3], s2 = args[4];
        if (joint)
          s1 = s2 = arith::AddFOp::create(nb, l, s1, s2);
        Value h1 =
            arith::DivFOp::create(nb, l, math::ExpOp::create(nb, l, e1), s1);
        Value h2 =
            arith::DivFOp::create(nb, l, math::ExpOp::create(nb, l, e2), s2);
        linalg::YieldOp::create(
            nb, l, ValueRange{convert(nb, h1, elt), convert(nb, h2, elt)});
      });
  return concat({halves[0], halves[1]}, f);
}

//===----------------------------------------------------------------------===//
// Performer (FAVOR+)
//===----------------------------------------------------------------------===//

/// exp(w_r·x̂ - |x̂|²/2) / sqrt(m) with x̂ = x / d^{1/4}; the hyperbolic form
/// adds exp(-w_r·x̂ - |x̂|²/2) and divides by sqrt(2m). No stabilizer is
/// subtracted: for keys it would have to be shared by the whole sequence
/// (MATH.md 3), which a row-wise op cannot know.
Value MapBuilder::performer(bool hyperbolic, int64_t m) {
  unsigned n = rows + 1;
  AffineMap id = b.getMultiDimIdentityMap(n);
  AffineMap row = map(n, rowDims());
  double inv = 1.0 / std::sqrt(std::sqrt(static_cast<double>(d)));
  double norm = std::sqrt(static_cast<double>(hyperbolic ? 2 * m : m));
  Value sq = generic(
      x, filled(std::nullopt, 0.0), {id, row}, iterators(rows, 1),
      [&](OpBuilder &nb, Location l, ValueRange args) {
        Value v = arith::MulFOp::create(
            nb, l, convert(nb, args[0], ct),
            arith::ConstantOp::create(nb, l, ct, nb.getFloatAttr(ct, inv)));
        Value s = arith::MulFOp::create(nb, l, v, v);
        linalg::YieldOp::create(
            nb, l, ValueRange{arith::AddFOp::create(nb, l, args[1], s)});
      })[0];
  // Iteration space (rows..., i, r): proj[.., r] += x[.., i] * W[r, i].
  Value proj = generic(
      ValueRange{x, weight}, filled(m, 0.0),
      {map(n + 1, rowDims({rows})), weightMap(n + 1, {rows + 1, rows}),
       map(n + 1, rowDims({rows + 1}))},
      projectionIterators(), [&](OpBuilder &nb, Location l, ValueRange args) {
        Value p = arith::MulFOp::create(nb, l, convert(nb, args[0], ct),
                                        convert(nb, args[1], ct));
        linalg::YieldOp::create(
            nb, l, ValueRange{arith::AddFOp::create(nb, l, args[2], p)});
      })[0];

  SmallVector<Value> outs = {empty(m, elt)};
  SmallVector<AffineMap> maps = {id, row, id};
  if (hyperbolic) {
    outs.push_back(empty(m, elt));
    maps.push_back(id);
  }
  ValueRange parts = generic(
      ValueRange{proj, sq}, outs, maps, iterators(n, 0),
      [&](OpBuilder &nb, Location l, ValueRange args) {
        // p·x̂ = inv · (x·w), and |x̂|²/2.
        Value p = arith::MulFOp::create(
            nb, l, args[0],
            arith::ConstantOp::create(nb, l, ct, nb.getFloatAttr(ct, inv)));
        Value half = arith::MulFOp::create(
            nb, l, args[1],
            arith::ConstantOp::create(nb, l, ct, nb.getFloatAttr(ct, 0.5)));
        Value rn =
            arith::ConstantOp::create(nb, l, ct, nb.getFloatAttr(ct, 1 / norm));
        auto feature = [&](Value e) {
          Value v =
              arith::MulFOp::create(nb, l, math::ExpOp::create(nb, l, e), rn);
          return convert(nb, v, elt);
        };
        SmallVector<Value> r = {feature(arith::SubFOp::create(nb, l, p, half))};
        if (hyperbolic)
          r.push_back(feature(arith::SubFOp::create(
              nb, l, arith::NegFOp::create(nb, l, p), half)));
        linalg::YieldOp::create(nb, l, r);
      });
  return hyperbolic ? concat({parts[0], parts[1]}, m) : parts[0];
}

Value MapBuilder::lower(FeatureMapKind kind, int64_t width) {
  switch (kind) {
  case FeatureMapKind::Identity:
    return x;
  case FeatureMapKind::EluPlusOne:
  case FeatureMapKind::Relu:
    return elementwise(kind);
  case FeatureMapKind::Taylor2:
  case FeatureMapKind::Taylor2Symmetric:
    return taylor(kind == FeatureMapKind::Taylor2Symmetric, width);
  case FeatureMapKind::Hedgehog:
    return hedgehog(/*joint=*/false, width / 2);
  case FeatureMapKind::HedgehogJoint:
    return hedgehog(/*joint=*/true, width / 2);
  case FeatureMapKind::Performer:
    return performer(/*hyperbolic=*/false, width);
  case FeatureMapKind::PerformerHyperbolic:
    return performer(/*hyperbolic=*/true, width / 2);
  }
  llvm_unreachable("unknown feature map kind");
}

//===----------------------------------------------------------------------===//
// The pass
//===----------------------------------------------------------------------===//

struct LinAttnLowerFeatureMapPass
    : public mlir::linattn::impl::LinAttnLowerFeatureMapBase<
          LinAttnLowerFeatureMapPass> {
  using LinAttnLowerFeatureMapBase::LinAttnLowerFeatureMapBase;

  void runOnOperation() override {
    SmallVector<FeatureMapOp> ops;
    getOperation()->walk([&](FeatureMapOp op) { ops.push_back(op); });
    for (FeatureMapOp op : ops) {
      auto out = cast<RankedTensorType>(op.getResult().getType());
      OpBuilder b(op);
      MapBuilder mb(b, op.getLoc(), op);
      Value r = mb.lower(op.getKind(), out.getShape().back());
      op.getResult().replaceAllUsesWith(r);
      op->erase();
    }
  }
};

} // namespace
