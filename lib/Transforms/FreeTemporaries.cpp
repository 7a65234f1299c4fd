//===- FreeTemporaries.cpp - Free bufferization's temporaries --*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
//
// Implements --linattn-free-temporaries. One-shot bufferization allocates a
// buffer for every tensor.empty (the lowered feature maps have several) and
// never frees it; a JIT kernel called once per (sequence, head) would leak
// them on every call. The chunk pass frees its own scratch buffers, so the
// upstream ownership-based deallocation (which rejects IR that already
// deallocates) does not fit; this pass frees the rest at the end of their
// block instead.
//
//===----------------------------------------------------------------------===//

#include "linattn/Transforms/Passes.h"

#include "mlir/Interfaces/CallInterfaces.h"

namespace mlir::linattn {
#define GEN_PASS_DEF_LINATTNFREETEMPORARIES
#include "linattn/Transforms/Passes.h.inc"
} // namespace mlir::linattn

using namespace mlir;
using namespace mlir::linattn;

namespace {

/// Whether `alloc` is neither freed already nor reachable from a terminator
/// (returned or yielded, directly or through views or other memref-producing
/// users), so that freeing it at the end of its block is safe.
static bool isUnfreedTemporary(memref::AllocOp alloc) {
  SmallVector<Value> work = {alloc.getResult()};
  DenseSet<Value> seen;
  while (!work.empty()) {
    Value v = work.pop_back_val();
    if (!seen.insert(v).second)
      continue;
    for (Operation *user : v.getUsers()) {
      if (isa<memref::DeallocOp>(user) ||
          user->hasTrait<OpTrait::IsTerminator>() ||
          isa<CallOpInterface, bufferization::ToTensorOp>(user))
        return false;
      for (Value r : user->getResults())
        if (isa<BaseMemRefType>(r.getType()))
          work.push_back(r);
    }
  }
  return true;
}

struct LinAttnFreeTemporariesPass
    : public mlir::linattn::impl::LinAttnFreeTemporariesBase<
          LinAttnFreeTemporariesPass> {
  void runOnOperation() override {
    SmallVector<memref::AllocOp> allocs;
    getOperation()->walk([&](memref::AllocOp a) {
      if (isUnfreedTemporary(a))
        allocs.push_back(a);
    });
    for (memref::AllocOp a : allocs) {
      OpBuilder b(a->getBlock()->getTerminator());
      memref::DeallocOp::create(b, a.getLoc(), a.getResult());
    }
  }
};

} // namespace
