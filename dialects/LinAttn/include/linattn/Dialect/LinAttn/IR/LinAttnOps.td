//===- LinAttnOps.td - linattn operations ------------------*- tablegen -*-===//

#ifndef LINATTN_DIALECT_LINATTN_IR_LINATTNOPS_TD
#define LINATTN_DIALECT_LINATTN_IR_LINATTNOPS_TD

include "linattn/Dialect/LinAttn/IR/LinAttnAttrs.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def LinAttn_FloatTensor : RankedTensorOf<[F16, BF16, F32, F64]>;
def LinAttn_IndexTensor : RankedTensorOf<[I32, I64]>;

//===----------------------------------------------------------------------===//
// AttentionOp
//===----------------------------------------------------------------------===//

def LinAttn_AttentionOp : LinAttn_Op<"attention",
    [Pure, AttrSizedOperandSegments]> {
  let summary = "Linear attention over a whole sequence (forward)";
  let description = [{
    Computes, for every batch entry and head, o_t = q_t S_t with the state
    recurrence chosen by `decay` (MATH.md 4, 5), starting from
    `initial_state` (zero if absent), and returns the outputs and the final
    state S_T. Queries are multiplied by `scale` first (default Dk^-1/2).

    Shapes, with layout `bhtd` (the default; `bthd` swaps the H and T dims
    of q, k, v, o, gate and beta):

    | value                | shape                              |
    |----------------------|------------------------------------|
    | q                    | [B, Hq, T, Dk]                     |
    | k                    | [B, Hk, T, Dk]                     |
    | v                    | [B, Hv, T, Dv]                     |
    | gate                 | [H] / [B, H, T] / [B, H, T, Dk]    |
    | beta                 | [B, H, T]                          |
    | initial/final state  | [N, H, Dk, Dv] (value_major: [N, H, Dv, Dk]) |
    | initial/final normalizer | [N, H, Dk]                     |
    | offsets              | [N + 1] (cu_seqlens; B must be 1)  |
    | output               | [B, H, T, Dv]                      |

    H = max(Hq, Hk, Hv) and each of Hq, Hk, Hv divides H: head h reads
    query head h / (H / Hq) and likewise for k and v (grouped-query and
    grouped-value attention). N is B, or the number of packed sequences when
    `offsets` is given. q, k and v share one element type (f16, bf16, f32 or
    f64); the output has it too; states are f32 (f64 for f64 inputs); gates
    and beta are f32 or the input type. Head and feature dims must be static.

    `feature_map` applies a parameter-free elementwise map (identity,
    elu_plus_one, relu) to q and k inside the kernel; width-changing or
    learned maps use `linattn.feature_map` first. `normalization =
    #linattn.norm<katharopoulos>` divides by q_t·z_t + `eps` and carries the
    normalizer z. `causal = false` gives bidirectional attention (no decay).
    `exclusive` reads the state after the decay of step t but before token t
    is written (strictly causal). `chunking` is a hint for the lowering.

    ```mlir
    %o, %s = linattn.attention %q, %k, %v gate(%g : tensor<2x4x128xf32>)
        {decay = #linattn.decay<scalar>, scale = 0.125 : f64}
        : tensor<2x4x128x64xbf16>, tensor<2x4x128x64xbf16>,
          tensor<2x4x128x64xbf16>
        -> tensor<2x4x128x64xbf16>, tensor<2x4x64x64xf32>
    ```
  }];

  let arguments = (ins
    LinAttn_FloatTensor:$q,
    LinAttn_FloatTensor:$k,
    LinAttn_FloatTensor:$v,
    Optional<LinAttn_FloatTensor>:$gate,
    Optional<LinAttn_FloatTensor>:$beta,
    Optional<LinAttn_FloatTensor>:$initial_state,
    Optional<LinAttn_FloatTensor>:$initial_normalizer,
    Optional<LinAttn_IndexTensor>:$offsets,
    DefaultValuedAttr<LinAttn_DecayAttr,
        "::mlir::linattn::DecayKind::None">:$decay,
    DefaultValuedAttr<LinAttn_FeatureMapKindAttr,
        "::mlir::linattn::FeatureMapKind::Identity">:$feature_map,
    DefaultValuedAttr<LinAttn_NormalizationAttr,
        "::mlir::linattn::Normalization::None">:$normalization,
    DefaultValuedAttr<F64Attr, "1e-10">:$eps,
    OptionalAttr<F64Attr>:$scale,
    DefaultValuedAttr<BoolAttr, "true">:$causal,
    UnitAttr:$exclusive,
    DefaultValuedAttr<LinAttn_LayoutAttr,
        "::mlir::linattn::Layout::BHTD">:$layout,
    DefaultValuedAttr<LinAttn_StateLayoutAttr,
        "::mlir::linattn::StateLayout::KeyMajor">:$state_layout,
    OptionalAttr<LinAttn_ChunkingAttr>:$chunking
  );
  let results = (outs
    LinAttn_FloatTensor:$output,
    LinAttn_FloatTensor:$final_state,
    Optional<LinAttn_FloatTensor>:$final_normalizer
  );

  let assemblyFormat = [{
    $q `,` $k `,` $v
    (`gate` `(` $gate^ `:` type($gate) `)`)?
    (`beta` `(` $beta^ `:` type($beta) `)`)?
    (`initial_state` `(` $initial_state^ `:` type($initial_state) `)`)?
    (`initial_normalizer` `(` $initial_normalizer^ `:`
        type($initial_normalizer) `)`)?
    (`offsets` `(` $offsets^ `:` type($offsets) `)`)?
    attr-dict `:` type($q) `,` type($k) `,` type($v)
    `->` type($output) `,` type($final_state)
    (`,` type($final_normalizer)^)?
  }];
  let hasVerifier = 1;

  let extraClassDeclaration = [{
    /// The number of heads of the output and state: max(Hq, Hk, Hv).
    int64_t getNumHeads();
    /// The query scale, with the Dk^-1/2 default applied.
    double getScaleOrDefault();
    /// The logical [B, H, T, D] dims of a q/k/v-like operand in `layout`.
    static SmallVector<int64_t> toBHTD(ArrayRef<int64_t> shape, Layout layout);
  }];
}

//===----------------------------------------------------------------------===//
// FeatureMapOp
//===----------------------------------------------------------------------===//

def LinAttn_FeatureMapOp : LinAttn_Op<"feature_map", [Pure, AttrSizedOperandSegments]> {
  let summary = "Applies a feature map φ to the last dim of queries or keys";
  let description = [{
    Maps x of shape [..., d] to φ(x) of shape [..., Dφ] (MATH.md 3):

    | kind                   | Dφ                 | weight        | bias  |
    |------------------------|--------------------|---------------|-------|
    | `identity`, `elu_plus_one`, `relu` | d      | none          | none  |
    | `taylor2`              | 1 + d + d²         | none          | none  |
    | `taylor2_symmetric`    | 1 + d + d(d+1)/2   | none          | none  |
    | `hedgehog`             | 2f                 | [d, f]        | [f]   |
    | `hedgehog_joint`       | 2d                 | [d, d]        | [d]   |
    | `performer`            | m                  | [m, d]        | none  |
    | `performer_hyperbolic` | 2m                 | [m, d]        | none  |

    A weight may carry a leading head dim ([H, ...]) when x is a
    [B, H, T, d] tensor; then H must match x's dim 1. The result has x's
    element type.

    ```mlir
    %phi = linattn.feature_map %k weight(%w : tensor<4x16x32xf32>)
        {kind = #linattn.feature_map<hedgehog>}
        : tensor<2x4x128x16xbf16> -> tensor<2x4x128x64xbf16>
    ```
  }];
  let arguments = (ins
    LinAttn_FloatTensor:$input,
    Optional<LinAttn_FloatTensor>:$weight,
    Optional<LinAttn_FloatTensor>:$bias,
    LinAttn_FeatureMapKindAttr:$kind
  );
  let results = (outs LinAttn_FloatTensor:$result);
  let assemblyFormat = [{
    $input
    (`weight` `(` $weight^ `:` type($weight) `)`)?
    (`bias` `(` $bias^ `:` type($bias) `)`)?
    attr-dict `:` type($input) `->` type($result)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// Output width Dφ for input width d and weight feature count f (m).
    static int64_t getOutputWidth(FeatureMapKind kind, int64_t d, int64_t f);
  }];
}

#endif // LINATTN_DIALECT_LINATTN_IR_LINATTNOPS_TD
