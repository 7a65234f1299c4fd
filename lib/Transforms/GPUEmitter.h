//===- GPUEmitter.h - Shared helpers of the GPU kernel emitters -*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
//
// Scalar and control-flow builders shared by the emitters of the GPU kernels
// (the attention kernel in GPUKernel.cpp, the feature-map prepass in
// GPUFeatureMap.cpp). Private to lib/Transforms.
//
//===----------------------------------------------------------------------===//

#ifndef LINATTN_LIB_TRANSFORMS_GPUEMITTER_H
#define LINATTN_LIB_TRANSFORMS_GPUEMITTER_H

#include "linattn/Dialect/LinAttn/IR/LinAttnOps.h"
#include "linattn/Transforms/Passes.h"

#include "mlir/AsmParser/AsmParser.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/Builders.h"

namespace mlir::linattn {

constexpr double kLog2e = 1.4426950408889634;

/// Builders for index and f32 arithmetic, memory access and structured
/// control flow at the insertion point of `b`.
class EmitterBase {
protected:
  EmitterBase(OpBuilder &b, Location loc)
      : b(b), loc(loc), f32(b.getF32Type()) {}

  Value idx(int64_t v) { return arith::ConstantIndexOp::create(b, loc, v); }
  Value f(double v) {
    return arith::ConstantOp::create(b, loc, f32, b.getF32FloatAttr(v));
  }
  Value add(Value x, Value y) { return arith::AddIOp::create(b, loc, x, y); }
  Value mul(Value x, Value y) { return arith::MulIOp::create(b, loc, x, y); }
  Value add(Value x, int64_t y) { return y ? add(x, idx(y)) : x; }
  Value mul(Value x, int64_t y) { return y == 1 ? x : mul(x, idx(y)); }
  Value fadd(Value x, Value y) { return arith::AddFOp::create(b, loc, x, y); }
  Value fsub(Value x, Value y) { return arith::SubFOp::create(b, loc, x, y); }
  Value fmul(Value x, Value y) { return arith::MulFOp::create(b, loc, x, y); }
  Value ult(Value x, Value y) {
    return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, x, y);
  }
  Value ule(Value x, Value y) {
    return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ule, x, y);
  }
  Value select(Value c, Value x, Value y) {
    return arith::SelectOp::create(b, loc, c, x, y);
  }
  Value toIndex(Value i64) {
    return arith::IndexCastOp::create(b, loc, b.getIndexType(), i64);
  }
  Value toF32(Value x) {
    return x.getType() == f32 ? x : arith::ExtFOp::create(b, loc, f32, x);
  }
  /// exp(x) with the SFU's ex2.approx (no libdevice needed).
  Value exp(Value x) {
    Value s = fmul(x, f(kLog2e));
    auto op = NVVM::InlinePtxOp::create(b, loc, TypeRange{f32}, ValueRange{s},
                                        ValueRange{},
                                        "ex2.approx.ftz.f32 $0, $1;", Value());
    return op->getResult(0);
  }
  Value load(Value m, ValueRange ivs) {
    return memref::LoadOp::create(b, loc, m, ivs);
  }
  void store(Value x, Value m, ValueRange ivs) {
    memref::StoreOp::create(b, loc, x, m, ivs);
  }
  /// if (cond) then() else zero of `type`, as a value.
  Value ifElse(Value cond, Type type, function_ref<Value()> then,
               function_ref<Value()> otherwise) {
    auto op = scf::IfOp::create(b, loc, TypeRange{type}, cond, true);
    {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(&op.getThenRegion().front());
      scf::YieldOp::create(b, loc, then());
      b.setInsertionPointToStart(&op.getElseRegion().front());
      scf::YieldOp::create(b, loc, otherwise());
    }
    return op.getResult(0);
  }
  void ifThen(Value cond, function_ref<void()> then) {
    auto op = scf::IfOp::create(b, loc, TypeRange{}, cond, false);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(op.thenBlock()->getTerminator());
    then();
  }
  /// for (i = 0; i < n; ++i) body(i). `rolled` keeps LLVM from unrolling
  /// it (the loop's registers stay those of one iteration).
  void loop(int64_t n, function_ref<void(Value)> body, bool rolled = false) {
    loopTo(idx(n), body, rolled);
  }
  void loopTo(Value n, function_ref<void(Value)> body, bool rolled = false) {
    auto op = scf::ForOp::create(b, loc, idx(0), n, idx(1));
    if (rolled)
      keepRolled(op);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(op.getBody()->getTerminator());
    body(op.getInductionVar());
  }
  /// for (i = 0; i < n; ++i) values = body(i, values), from `init`; the
  /// final values. Rolled (see loop()).
  SmallVector<Value>
  rolledLoop(int64_t n, ValueRange init,
             function_ref<SmallVector<Value>(Value, ValueRange)> body) {
    auto op = scf::ForOp::create(b, loc, idx(0), idx(n), idx(1), init);
    keepRolled(op);
    {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(op.getBody());
      scf::YieldOp::create(b, loc,
                           body(op.getInductionVar(), op.getRegionIterArgs()));
    }
    return SmallVector<Value>(op.getResults());
  }
  void keepRolled(scf::ForOp op) {
    // scf-to-cf moves the annotation to the latch branch.
    op->setAttr("llvm.loop_annotation",
                parseAttribute("#llvm.loop_annotation<unroll = <disable = "
                               "true>>",
                               b.getContext()));
  }

  OpBuilder &b;
  Location loc;
  Type f32;
};

/// The feature-map prepass kernel `linattn_map` (docs/gpu-kernel-abi.md):
/// maps rows of width d to `width` = Dφ features padded with zeros to
/// `padded` (a multiple of 16).
struct GpuMapConfig {
  /// One warp per row (the launch shape the plan reports).
  static constexpr int64_t kRowsPerBlock = GpuKernelPlan::kMapRowsPerBlock;
  FeatureMapKind kind = FeatureMapKind::Identity;
  Layout layout = Layout::BHTD;
  Type elt;
  /// Input width d, weight feature count f (m; d for hedgehog_joint).
  int64_t d = 0, f = 0;
  int64_t width = 0, padded = 0;
};

/// Creates `linattn_map` at the insertion point of `b` (inside a
/// gpu.module); the insertion point is left after it.
gpu::GPUFuncOp emitFeatureMapKernel(OpBuilder &b, Location loc,
                                    const GpuMapConfig &cfg);

} // namespace mlir::linattn

#endif // LINATTN_LIB_TRANSFORMS_GPUEMITTER_H
