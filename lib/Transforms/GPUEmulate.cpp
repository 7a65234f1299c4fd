//===- GPUEmulate.cpp - NVVM kernels as host code for the emulator -------===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
//
// linattn-gpu-to-emulation: the GPU kernels at the NVVM level become host
// LLVM-dialect functions. Each NVVM operation turns into a call to the CUDA
// driver emulator (lib/GpuEmu), which runs every GPU thread of a block as a
// fiber and performs the warp- and warpgroup-wide operations (shuffles,
// mma.sync, wgmma) once all participating threads have arrived. The
// kernel's own arithmetic, control flow and memory accesses are compiled
// for the host unchanged, so the emulator checks the generated code itself,
// not a model of it. docs/gpu-emulator.md describes the contract.
//
//===----------------------------------------------------------------------===//

#include "linattn/Transforms/Passes.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/SymbolTable.h"

namespace mlir::linattn {
#define GEN_PASS_DEF_LINATTNGPUTOEMULATION
#include "linattn/Transforms/Passes.h.inc"
} // namespace mlir::linattn

using namespace mlir;

namespace {

/// Codes of the special registers, as the emulator's __emu_sreg reads them.
int sregCode(StringRef name) {
  return llvm::StringSwitch<int>(name)
      .Case("nvvm.read.ptx.sreg.tid.x", 0)
      .Case("nvvm.read.ptx.sreg.tid.y", 1)
      .Case("nvvm.read.ptx.sreg.tid.z", 2)
      .Case("nvvm.read.ptx.sreg.ctaid.x", 3)
      .Case("nvvm.read.ptx.sreg.ctaid.y", 4)
      .Case("nvvm.read.ptx.sreg.ctaid.z", 5)
      .Case("nvvm.read.ptx.sreg.ntid.x", 6)
      .Case("nvvm.read.ptx.sreg.ntid.y", 7)
      .Case("nvvm.read.ptx.sreg.ntid.z", 8)
      .Case("nvvm.read.ptx.sreg.nctaid.x", 9)
      .Case("nvvm.read.ptx.sreg.nctaid.y", 10)
      .Case("nvvm.read.ptx.sreg.nctaid.z", 11)
      .Case("nvvm.read.ptx.sreg.laneid", 12)
      .Case("nvvm.read.ptx.sreg.warpsize", 13)
      .Default(-1);
}

/// Bytes a load or store of `type` touches.
int64_t accessBytes(Type type) {
  if (isa<LLVM::LLVMPointerType>(type))
    return 8;
  if (auto vec = dyn_cast<VectorType>(type))
    return vec.getNumElements() * accessBytes(vec.getElementType());
  if (type.isIntOrFloat())
    return (type.getIntOrFloatBitWidth() + 7) / 8;
  return 0;
}

class Rewriter {
public:
  Rewriter(ModuleOp module, bool checkMemory)
      : module(module), checkMemory(checkMemory), b(module.getContext()) {
    ctx = module.getContext();
    ptr = LLVM::LLVMPointerType::get(ctx);
    i32 = b.getI32Type();
    i64 = b.getI64Type();
    f32 = b.getF32Type();
    voidTy = LLVM::LLVMVoidType::get(ctx);
  }

  LogicalResult run();

private:
  /// Declares (once) `void/ret @name(args)` in the module.
  LLVM::LLVMFuncOp declare(StringRef name, Type ret, ArrayRef<Type> args) {
    if (auto f = module.lookupSymbol<LLVM::LLVMFuncOp>(name))
      return f;
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToEnd(module.getBody());
    return LLVM::LLVMFuncOp::create(b, module.getLoc(), name,
                                    LLVM::LLVMFunctionType::get(ret, args));
  }
  Value call(Location loc, StringRef name, Type ret, ValueRange args) {
    SmallVector<Type> types(args.getTypes());
    LLVM::LLVMFuncOp f = declare(name, ret, types);
    auto op = LLVM::CallOp::create(b, loc, f, args);
    return op.getNumResults() ? op.getResult() : Value();
  }
  Value c32(Location loc, int64_t v) {
    return LLVM::ConstantOp::create(b, loc, i32, b.getI32IntegerAttr(v));
  }
  Value c64(Location loc, int64_t v) {
    return LLVM::ConstantOp::create(b, loc, i64, b.getI64IntegerAttr(v));
  }
  /// `v` as a generic (address space 0) pointer.
  Value generic(Location loc, Value v) {
    if (cast<LLVM::LLVMPointerType>(v.getType()).getAddressSpace() == 0)
      return v;
    return LLVM::AddrSpaceCastOp::create(b, loc, ptr, v);
  }
  /// A 32-bit register operand as i32 (vector<2 x 16-bit> is bitcast).
  Value asI32(Location loc, Value v) {
    if (v.getType() == i32)
      return v;
    return LLVM::BitcastOp::create(b, loc, i32, v);
  }
  /// The function's stack array of f32 for struct operands and results
  /// (one per function, in its entry block, reused by every call: each use
  /// stores, calls and loads back before the next).
  Value floats(Location loc, int64_t n) {
    assert(n <= kScratchFloats && "scratch array too small");
    if (!scratch) {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(&currentFunc.getBody().front());
      scratch = LLVM::AllocaOp::create(b, loc, ptr, f32,
                                       c32(loc, kScratchFloats), 16);
    }
    return scratch;
  }
  void storeStruct(Location loc, Value agg, Value buf, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
      Value x = LLVM::ExtractValueOp::create(b, loc, agg, i);
      Value p = LLVM::GEPOp::create(b, loc, ptr, f32, buf,
                                    ArrayRef<LLVM::GEPArg>{int32_t(i)});
      LLVM::StoreOp::create(b, loc, x, p);
    }
  }
  Value loadStruct(Location loc, Type type, Value buf, int64_t n) {
    Value agg = LLVM::UndefOp::create(b, loc, type);
    for (int64_t i = 0; i < n; ++i) {
      Value p = LLVM::GEPOp::create(b, loc, ptr, f32, buf,
                                    ArrayRef<LLVM::GEPArg>{int32_t(i)});
      Value x = LLVM::LoadOp::create(b, loc, f32, p);
      agg = LLVM::InsertValueOp::create(b, loc, agg, x, i);
    }
    return agg;
  }

  LogicalResult rewrite(Operation *op);
  LogicalResult rewriteMma(NVVM::MmaOp op);
  LogicalResult rewriteWgmma(NVVM::WgmmaMmaAsyncOp op);
  void instrument(LLVM::LLVMFuncOp func);
  void addEntry(LLVM::LLVMFuncOp kernel);

  /// wgmma's accumulators at N = 256.
  static constexpr int64_t kScratchFloats = 128;
  ModuleOp module;
  bool checkMemory;
  LLVM::LLVMFuncOp currentFunc;
  Value scratch;
  OpBuilder b;
  MLIRContext *ctx;
  Type ptr, i32, i64, f32, voidTy;
};

LogicalResult Rewriter::rewriteMma(NVVM::MmaOp op) {
  Location loc = op.getLoc();
  NVVM::MMAShapeAttr shape = op.getShapeAttr();
  auto typeA = op.getMultiplicandAPtxType();
  if (shape.getM() != 16 || shape.getN() != 8 || shape.getK() != 16 ||
      op.getLayoutA() != NVVM::MMALayout::row ||
      op.getLayoutB() != NVVM::MMALayout::col || !typeA ||
      (*typeA != NVVM::MMATypes::bf16 && *typeA != NVVM::MMATypes::f16) ||
      op.getOperandA().size() != 4 || op.getOperandB().size() != 2 ||
      op.getOperandC().size() != 4 ||
      !llvm::all_of(op.getOperandC().getTypes(),
                    [&](Type t) { return t == f32; }))
    return op.emitOpError("the emulator models mma.sync m16n8k16 row.col "
                          "with bf16 or f16 inputs and f32 accumulators only");
  Value out = floats(loc, 4);
  SmallVector<Value> args{out};
  for (Value a : op.getOperandA())
    args.push_back(asI32(loc, a));
  for (Value x : op.getOperandB())
    args.push_back(asI32(loc, x));
  llvm::append_range(args, op.getOperandC());
  args.push_back(c32(loc, *typeA == NVVM::MMATypes::f16));
  call(loc, "__emu_mma_m16n8k16", voidTy, args);
  op.getResult().replaceAllUsesWith(
      loadStruct(loc, op.getResult().getType(), out, 4));
  op.erase();
  return success();
}

LogicalResult Rewriter::rewriteWgmma(NVVM::WgmmaMmaAsyncOp op) {
  Location loc = op.getLoc();
  auto structTy = cast<LLVM::LLVMStructType>(op.getInouts().getType());
  int64_t n = structTy.getBody().size();
  NVVM::MMAShapeAttr shape = op.getShapeAttr();
  bool f16 = op.getTypeA() == NVVM::WGMMATypes::f16;
  if (shape.getM() != 64 || shape.getK() != 16 || n != shape.getN() / 2 ||
      op.getTypeD() != NVVM::WGMMATypes::f32 ||
      (!f16 && op.getTypeA() != NVVM::WGMMATypes::bf16) ||
      op.getTypeB() != op.getTypeA() ||
      op.getScaleA() != NVVM::WGMMAScaleIn::one ||
      op.getScaleB() != NVVM::WGMMAScaleIn::one ||
      op.getLayoutA() != NVVM::MMALayout::row ||
      op.getLayoutB() != NVVM::MMALayout::col)
    return op.emitOpError(
        "the emulator models wgmma m64nNk16 with bf16 or f16 K-major "
        "operands from shared memory and f32 accumulators only");
  Value acc = floats(loc, n);
  storeStruct(loc, op.getInouts(), acc, n);
  call(loc, "__emu_wgmma", voidTy,
       {acc, op.getDescriptorA(), op.getDescriptorB(), c32(loc, shape.getN()),
        c32(loc, f16), c32(loc, op.getScaleD() == NVVM::WGMMAScaleOut::one)});
  op.getResult().replaceAllUsesWith(loadStruct(loc, structTy, acc, n));
  op.erase();
  return success();
}

LogicalResult Rewriter::rewrite(Operation *op) {
  Location loc = op->getLoc();
  b.setInsertionPoint(op);
  StringRef name = op->getName().getStringRef();
  if (int code = sregCode(name); code >= 0) {
    Value v = call(loc, "__emu_sreg", i32, {c32(loc, code)});
    op->getResult(0).replaceAllUsesWith(v);
    op->erase();
    return success();
  }
  if (isa<NVVM::Barrier0Op>(op)) {
    call(loc, "__emu_barrier", voidTy, {});
    op->erase();
    return success();
  }
  // Asynchronous copies and matrix products complete when they are issued,
  // so their fences, commits and waits have nothing left to order.
  if (isa<NVVM::FenceProxyOp, NVVM::WgmmaFenceAlignedOp,
          NVVM::WgmmaGroupSyncAlignedOp, NVVM::WgmmaWaitGroupSyncOp,
          NVVM::CpAsyncCommitGroupOp, NVVM::CpAsyncWaitGroupOp>(op)) {
    op->erase();
    return success();
  }
  if (auto shfl = dyn_cast<NVVM::ShflOp>(op)) {
    Type valTy = shfl.getVal().getType();
    if ((valTy != i32 && valTy != f32) || shfl.getReturnValueAndIsValid())
      return op->emitOpError("the emulator models shfl.sync of i32 or f32 "
                             "without the valid flag only");
    Value val = valTy == f32
                    ? LLVM::BitcastOp::create(b, loc, i32, shfl.getVal())
                    : shfl.getVal();
    Value r = call(loc, "__emu_shfl", i32,
                   {c32(loc, int(shfl.getKind())), shfl.getThreadMask(), val,
                    shfl.getOffset(), shfl.getMaskAndClamp()});
    if (valTy == f32)
      r = LLVM::BitcastOp::create(b, loc, f32, r);
    shfl.getResult().replaceAllUsesWith(r);
    op->erase();
    return success();
  }
  if (auto cp = dyn_cast<NVVM::CpAsyncOp>(op)) {
    Value srcSize =
        cp.getCpSize() ? asI32(loc, cp.getCpSize()) : c32(loc, cp.getSize());
    call(loc, "__emu_cp_async", voidTy,
         {generic(loc, cp.getDst()), generic(loc, cp.getSrc()),
          c32(loc, cp.getSize()), srcSize});
    op->erase();
    return success();
  }
  if (auto asmOp = dyn_cast<NVVM::InlinePtxOp>(op)) {
    if (asmOp.getPtxCode() == "ex2.approx.ftz.f32 $0, $1;" &&
        asmOp.getReadOnlyArgs().size() == 1 && op->getNumResults() == 1 &&
        asmOp.getReadWriteArgs().empty() && !asmOp.getPredicate()) {
      Value r =
          call(loc, "__emu_ex2_approx_ftz", f32, {asmOp.getReadOnlyArgs()[0]});
      op->getResult(0).replaceAllUsesWith(r);
      op->erase();
      return success();
    }
    return op->emitOpError("the emulator does not model the inline PTX '")
           << asmOp.getPtxCode() << "'";
  }
  if (auto mma = dyn_cast<NVVM::MmaOp>(op))
    return rewriteMma(mma);
  if (auto wgmma = dyn_cast<NVVM::WgmmaMmaAsyncOp>(op))
    return rewriteWgmma(wgmma);
  return op->emitOpError("the GPU emulator does not model this operation");
}

void Rewriter::instrument(LLVM::LLVMFuncOp func) {
  SmallVector<Operation *> accesses;
  func.walk([&](Operation *op) {
    if (isa<LLVM::LoadOp, LLVM::StoreOp>(op))
      accesses.push_back(op);
  });
  for (Operation *op : accesses) {
    Value addr;
    Type type;
    bool store = false;
    if (auto load = dyn_cast<LLVM::LoadOp>(op)) {
      addr = load.getAddr();
      type = load.getType();
    } else {
      auto st = cast<LLVM::StoreOp>(op);
      addr = st.getAddr();
      type = st.getValue().getType();
      store = true;
    }
    if (addr.getDefiningOp<LLVM::AllocaOp>())
      continue; // the thread's own stack
    Location loc = op->getLoc();
    b.setInsertionPoint(op);
    call(loc, "__emu_check", voidTy,
         {generic(loc, addr), c64(loc, accessBytes(type)), c32(loc, store)});
  }
}

void Rewriter::addEntry(LLVM::LLVMFuncOp kernel) {
  // __emu_entry_K(void **params): params[i] points at argument i.
  Location loc = kernel.getLoc();
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToEnd(module.getBody());
  auto entry = LLVM::LLVMFuncOp::create(
      b, loc, ("__emu_entry_" + kernel.getSymName()).str(),
      LLVM::LLVMFunctionType::get(voidTy, {ptr}));
  Block *body = entry.addEntryBlock(b);
  b.setInsertionPointToStart(body);
  SmallVector<Value> args;
  for (auto [i, type] : llvm::enumerate(kernel.getFunctionType().getParams())) {
    Value slot = LLVM::GEPOp::create(b, loc, ptr, ptr, body->getArgument(0),
                                     ArrayRef<LLVM::GEPArg>{int32_t(i)});
    Value at = LLVM::LoadOp::create(b, loc, ptr, slot);
    args.push_back(LLVM::LoadOp::create(b, loc, type, at));
  }
  LLVM::CallOp::create(b, loc, kernel, args);
  LLVM::ReturnOp::create(b, loc, ValueRange());
}

LogicalResult Rewriter::run() {
  auto gpuModules = llvm::to_vector(module.getOps<gpu::GPUModuleOp>());
  if (gpuModules.size() != 1)
    return module.emitError("expected one gpu.module to emulate, found ")
           << gpuModules.size();
  gpu::GPUModuleOp gpuModule = gpuModules.front();

  // The kernels become plain host functions at the top level; everything
  // else (host code, the gpu.module) goes.
  for (Operation &op : llvm::make_early_inc_range(*module.getBody()))
    if (&op != gpuModule)
      op.erase();
  Block &kernelBody = gpuModule.getBodyRegion().front();
  for (Operation &op : llvm::make_early_inc_range(kernelBody))
    op.moveBefore(module.getBody(), module.getBody()->end());
  gpuModule.erase();
  module->removeAttr("gpu.container_module");

  // Dynamic shared memory: the emulator's per-block buffer.
  SmallVector<LLVM::GlobalOp> shared;
  for (auto global : module.getOps<LLVM::GlobalOp>())
    if (global.getAddrSpace() == 3)
      shared.push_back(global);
  for (LLVM::GlobalOp global : shared) {
    if (!global.getSymName().starts_with("__dynamic_shmem__"))
      return global.emitOpError(
          "the emulator supports dynamic shared memory only");
    std::optional<SymbolTable::UseRange> uses =
        SymbolTable::getSymbolUses(global, module);
    for (const SymbolTable::SymbolUse &use : *uses) {
      auto addr = dyn_cast<LLVM::AddressOfOp>(use.getUser());
      if (!addr)
        return use.getUser()->emitOpError("unexpected use of shared memory");
      b.setInsertionPoint(addr);
      Value base = call(addr.getLoc(), "__emu_shared", ptr, {});
      addr.getResult().replaceAllUsesWith(LLVM::AddrSpaceCastOp::create(
          b, addr.getLoc(), addr.getType(), base));
      addr.erase();
    }
    global.erase();
  }

  SmallVector<LLVM::LLVMFuncOp> kernels;
  for (auto func : module.getOps<LLVM::LLVMFuncOp>())
    if (!func.isExternal())
      kernels.push_back(func);
  for (LLVM::LLVMFuncOp func : kernels) {
    currentFunc = func;
    scratch = nullptr;
    // Memory checks first: they see the kernel's own accesses only.
    if (checkMemory)
      instrument(func);
    SmallVector<Operation *> nvvmOps;
    func.walk([&](Operation *op) {
      if (isa_and_nonnull<NVVM::NVVMDialect>(op->getDialect()))
        nvvmOps.push_back(op);
    });
    for (Operation *op : nvvmOps)
      if (failed(rewrite(op)))
        return failure();
    bool isKernel = func->hasAttr("gpu.kernel");
    for (NamedAttribute attr : llvm::to_vector(func->getDiscardableAttrs()))
      if (attr.getName().strref().starts_with("nvvm.") ||
          attr.getName().strref().starts_with("gpu."))
        func->removeAttr(attr.getName());
    if (isKernel) {
      func.setLinkage(LLVM::Linkage::Internal);
      addEntry(func);
    }
  }
  return success();
}

struct LinAttnGPUToEmulationPass
    : public mlir::linattn::impl::LinAttnGPUToEmulationBase<
          LinAttnGPUToEmulationPass> {
  using Base::Base;
  void runOnOperation() override {
    Rewriter rewriter(getOperation(), checkMemory);
    if (failed(rewriter.run()))
      signalPassFailure();
  }
};

} // namespace
