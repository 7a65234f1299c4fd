//===- Passes.td - linattn transformation passes ------------*- tablegen -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//

#ifndef LINATTN_TRANSFORMS_PASSES_TD
#define LINATTN_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def LinAttnChunk : Pass<"linattn-chunk"> {
  let summary = "Rewrite linattn.attention into the chunked form (MATH.md 6)";
  let description = [{
    Replaces every `linattn.attention` op by explicit loops: over sequences
    (batch entries, or the packed sequences of `offsets`) and heads, then
    over chunks of `chunk-size` tokens carrying the state S in an fp32
    scratch buffer. Each chunk step loads Q, K, V (elementwise feature map,
    query scale and the dtype conversion fused into the load; rows past the
    end of the sequence are zero), builds the chunk-local cumulative
    log-decays, and computes

      P = Q·Kᵀ (masked, decayed), O = P·V + diag(γq)·Q·S,
      S ← γc·S + (diag(γk)·K)ᵀ·V

    with `linalg.matmul` on static-shaped scratch buffers, so a later stage
    can tile them for the target. Vector gates use secondary chunking with
    `sub-chunk-size` (MATH.md 6.3); the normalized form carries the
    normalizer as an extra value column (MATH.md 6.4).

    The delta rules (`delta`, `gated_delta`) use the WY/UT form (MATH.md
    5.2): per chunk A = strict_tril(diag(β)·K·Kᵀ ⊙ Γ), T = (I + A)⁻¹ by
    forward substitution (scalar loops, C³/6 multiply-adds), then the
    matmuls W = T·diag(β·γq)·K, U = T·diag(β)·V, Ṽ = U − W·S, and the output
    and state update above with Ṽ in place of V.

    A matmul whose left operand is lower triangular carries
    `linattn.lower_triangular_lhs`; one whose result is masked to its lower
    triangle afterwards carries `linattn.lower_triangular_result` (entries
    strictly above the diagonal tiles may be left unspecified). Target
    lowerings may use them to skip work.

    Results that are only materialized into a memref destination
    (`bufferization.materialize_in_destination`) are written there directly.
  }];
  let options = [
    Option<"chunkSize", "chunk-size", "int64_t", /*default=*/"0",
           "Chunk size C (0: the op's chunking attribute, else 64)">,
    Option<"subChunkSize", "sub-chunk-size", "int64_t", /*default=*/"0",
           "Secondary chunk size for vector gates (0: the op's, else 16)">,
    Option<"padTo", "pad-to", "int64_t", /*default=*/"16",
           "Pad the column dims of scratch buffers to a multiple of this">
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::bufferization::BufferizationDialect",
    "::mlir::linalg::LinalgDialect", "::mlir::math::MathDialect",
    "::mlir::memref::MemRefDialect", "::mlir::scf::SCFDialect",
    "::mlir::tensor::TensorDialect"
  ];
}

def LinAttnLowerFeatureMap : Pass<"linattn-lower-feature-map"> {
  let summary = "Rewrite linattn.feature_map into linalg ops on tensors";
  let description = [{
    Replaces every `linattn.feature_map` by `linalg.generic` ops that compute
    φ of MATH.md 3 on the last dim, in f32 (f64 for f64 inputs), converting
    to the input element type only at the end:

    - `elu_plus_one`, `relu`: one elementwise op; `identity` folds away.
    - `taylor2`, `taylor2_symmetric`: a = [1, x], then each output column is
      a[i]·a[j]·c read from constant (i, j, c) tables.
    - `hedgehog`, `hedgehog_joint`: y = x·W + b as a reduction, then the
      row max and min of y, the sums of the exponentials and the normalized
      halves; every exponent is shifted by its softmax's maximum.
    - `performer`, `performer_hyperbolic`: |x̂|² and x̂·Wᵀ as reductions,
      then the exponentials (no stabilizer; see MATH.md 3).

    Weights may be shared ([d, f], [m, d]) or per head ([H, ...], read at
    input dim 1). Run it before `--linattn-chunk`, which then sees the
    mapped queries and keys as ordinary operands of width Dφ.
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::linalg::LinalgDialect",
    "::mlir::math::MathDialect", "::mlir::tensor::TensorDialect"
  ];
}

def LinAttnFreeTemporaries : Pass<"linattn-free-temporaries"> {
  let summary = "Free the buffers one-shot bufferization allocates";
  let description = [{
    Inserts a `memref.dealloc` at the end of the block of every
    `memref.alloc` that is not freed yet and does not reach a terminator
    (returned or yielded) or a call, directly or through views. Run after
    one-shot bufferization: the temporaries of lowered feature maps would
    otherwise leak on every kernel call. The chunk pass's own scratch
    buffers are already freed and are left alone.
  }];
  let dependentDialects = ["::mlir::memref::MemRefDialect"];
}

def LinAttnCPUVectorize : Pass<"linattn-cpu-vectorize"> {
  let summary = "Register-tile the chunk matmuls into vector FMA micro-kernels";
  let description = [{
    Rewrites every `linalg.matmul` on static-shaped memrefs into a
    register-blocked micro-kernel in the vector dialect: an mr × nr block of
    the result lives in vector registers (nr/W vectors of W lanes per row)
    across the whole reduction loop; each reduction step loads nr elements
    of a row of B as vectors, broadcasts mr elements of a column of A and
    issues mr·nr/W `vector.fma`s. Remainder rows and columns get their own
    smaller blocks. The triangular hints of `--linattn-chunk` shorten the
    reduction or skip column blocks. A zero `linalg.fill` of the result right
    before the matmul is folded into the accumulator initialization.

    Also expands `math.exp`/`math.log1p`-style functions into polynomial
    approximations that vectorize (LLVM's loop vectorizer then handles the
    remaining elementwise loops).
  }];
  let options = [
    Option<"tileM", "tile-m", "int64_t", /*default=*/"6",
           "Rows of the register block (mr)">,
    Option<"tileN", "tile-n", "int64_t", /*default=*/"16",
           "Columns of the register block (nr, a multiple of vector-width)">,
    Option<"vectorWidth", "vector-width", "int64_t", /*default=*/"8",
           "f32 lanes per vector register (8: AVX2, 16: AVX-512)">
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::memref::MemRefDialect",
    "::mlir::scf::SCFDialect", "::mlir::vector::VectorDialect"
  ];
}

def LinAttnToGPU : Pass<"convert-linattn-to-gpu", "::mlir::ModuleOp"> {
  let summary = "Generate a tensor-core GPU kernel for each linattn.attention";
  let description = [{
    Replaces every function holding a `linattn.attention` op by a
    `gpu.module` (with an NVVM target for `chip`) that holds one kernel,
    `linattn_fwd`, following the ABI of docs/gpu-kernel-abi.md: one thread
    block per (value tile, head, sequence) runs the chunk loop of MATH.md 6
    (Lightning Attention-2 scheme). Per chunk, the block stages Q, K (feature
    map and query scale fused), Vᵀ and the state Sᵀ in shared memory as
    bf16/f16; each warp computes P = Q·Kᵀ for its query rows with
    `mma.sync.m16n8k16`, masks and decays it in registers, reuses the
    accumulator registers as the A operand of P·V, and adds
    diag(γq)·Q·S; the fp32 state lives in mma accumulators, each warp owning
    a slice of the value columns, and is updated with
    S ← γc·S + (diag(γk)·K)ᵀ·V.

    With `mma=wgmma` (the default on sm_90/sm_90a when Dk is a multiple
    of 64), the target becomes sm_90a and every product is a warpgroup
    `wgmma.mma_async` reading its operands from shared memory through
    matrix descriptors (no-swizzle core-matrix layout): each warpgroup owns
    64 query rows and a share of the state's key rows, P is written back to
    shared memory in bf16/f16, and decayed Kᵀ is staged for the state update.

    With `stages=S` > 1, Q, K, the raw V rows (and raw vector gates) of each
    chunk are copied with `cp.async` into a ring of S shared-memory buffers
    S - 1 chunks ahead of use, so that global loads overlap the tensor-core
    work of the chunks before; Vᵀ, the feature map and the gate clamp are
    applied from the buffer when the chunk starts. Scalar gates are
    prefetched into registers.

    Supported: bf16/f16 inputs, f32 accumulation and state, decays none,
    constant and scalar (both kernels) and vector (mma.sync), elementwise
    feature maps, both layouts, GQA/GVA, varlen offsets, initial/final state
    (key- or value-major), exclusive reads (both kernels), and on mma.sync
    the non-causal form (a state-only pass over the chunks, then Q·S_T per
    chunk) and the normalized form (row sums of P plus q·z, reduced over
    the mma quad with shuffles; z in shared memory, initial/final
    normalizer as four more kernel arguments). With mma=auto the forms the
    wgmma kernel lacks fall back to mma.sync; mma=wgmma rejects them.
    When q and k come from width-changing `linattn.feature_map` ops, the
    gpu.module also gets `linattn_map`, a prepass kernel (one warp per row)
    that writes φ(x) padded with zero features to a multiple of 16; the
    attention kernel then runs at that key width while states and
    normalizers keep Dφ rows.
    Anything else is rejected with a diagnostic, as are tile combinations
    whose shared memory exceeds the chip's per-block limit.
  }];
  let options = [
    Option<"chip", "chip", "std::string", /*default=*/"\"sm_80\"",
           "Target chip: sm_80, sm_86, sm_87, sm_89, sm_90 or sm_90a">,
    Option<"mma", "mma", "std::string", /*default=*/"\"auto\"",
           "Tensor-core instructions: auto (wgmma on sm_90 where the shape "
           "allows, else mma.sync), sync or wgmma">,
    Option<"chunkSize", "chunk-size", "int64_t", /*default=*/"0",
           "Chunk size C (0: 64 per warpgroup for wgmma, else 64)">,
    Option<"blockV", "block-v", "int64_t", /*default=*/"0",
           "Value columns per thread block (0: 64 for wgmma, else 32)">,
    Option<"warps", "warps", "int64_t", /*default=*/"0",
           "Warps per thread block (0: 4)">,
    Option<"stages", "stages", "int64_t", /*default=*/"0",
           "Pipeline stages: chunks in flight (0: 1, each chunk loaded when "
           "it starts; 2-4: cp.async fills a ring of that many shared-memory "
           "buffers ahead of use)">
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::gpu::GPUDialect",
    "::mlir::LLVM::LLVMDialect", "::mlir::NVVM::NVVMDialect",
    "::mlir::memref::MemRefDialect", "::mlir::scf::SCFDialect",
    "::mlir::vector::VectorDialect", "::mlir::nvgpu::NVGPUDialect"
  ];
}

def LinAttnExternDynamicShared : Pass<"linattn-extern-dynamic-shared"> {
  let summary = "Give the dynamic shared memory global external linkage";
  let description = [{
    `gpu.dynamic_shared_memory` lowers to an internal zero-sized global in
    address space 3, which the NVPTX backend demotes to a one-byte static
    `.shared` variable. Dynamic shared memory must be declared
    `.extern .shared .b8 name[]`, which external linkage gives. Run after
    `convert-gpu-to-nvvm`.
  }];
}

def LinAttnGPUToEmulation
    : Pass<"linattn-gpu-to-emulation", "::mlir::ModuleOp"> {
  let summary = "Turn NVVM-level GPU kernels into host code for the emulator";
  let description = [{
    Rewrites the kernels of the module's gpu.module, at the NVVM level (after
    `convert-gpu-to-nvvm` and `finalize-memref-to-llvm`, before
    `convert-nvvm-to-llvm`), into host LLVM-dialect functions that the CPU
    emulator of the CUDA driver (`liblinattn_cuda_emu.so`, docs/gpu-emulator.md)
    runs: every NVVM operation (special registers, barriers, shuffles,
    `mma.sync`, `wgmma.mma_async`, `cp.async`, the `ex2.approx` inline PTX)
    becomes a call into the emulator's `__emu_*` functions, the dynamic
    shared memory becomes the emulator's per-block buffer, and each kernel
    `K` gains an entry `__emu_entry_K(void **params)` taking
    cuLaunchKernel's parameter array. With `check-memory`, every load and
    store is first checked to fall inside a live allocation or the block's
    shared memory. The module keeps only the kernels (the host code is
    dropped). Fails on an NVVM operation the emulator does not model.
  }];
  let options = [
    Option<"checkMemory", "check-memory", "bool", /*default=*/"true",
           "Check every load and store against the live allocations">
  ];
  let dependentDialects = ["::mlir::LLVM::LLVMDialect"];
}

#endif // LINATTN_TRANSFORMS_PASSES_TD
