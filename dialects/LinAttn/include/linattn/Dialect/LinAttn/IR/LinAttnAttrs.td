//===- LinAttnAttrs.td - linattn attributes ----------------*- tablegen -*-===//

#ifndef LINATTN_DIALECT_LINATTN_IR_LINATTNATTRS_TD
#define LINATTN_DIALECT_LINATTN_IR_LINATTNATTRS_TD

include "linattn/Dialect/LinAttn/IR/LinAttnEnums.td"
include "mlir/IR/BuiltinAttributes.td"

def LinAttn_DecayAttr : LinAttn_Attr<"Decay", "decay"> {
  let summary = "Decay or gate of the state recurrence";
  let description = [{
    Selects the transition G_t of S_t = G_t ⊙ S_{t-1} + k_tᵀ v_t (MATH.md 4)
    or the delta-rule update (MATH.md 5):

    | kind          | gate operand              | meaning                          |
    |---------------|---------------------------|----------------------------------|
    | `none`        | none                      | S_t = S_{t-1} + k_tᵀ v_t         |
    | `constant`    | `[H]` (if no schedule)    | G_t = λ_h, ln λ_h per head       |
    | `scalar`      | `[B, H, T]`               | G_t = exp(g_t), Mamba2 / SGLA    |
    | `vector`      | `[B, H, T, Dk]`           | row-wise exp(g_t), GLA / HGRN2   |
    | `delta`       | none (β operand)          | DeltaNet                         |
    | `gated_delta` | `[B, H, T]` (β operand)   | Gated DeltaNet                   |

    Gates are in log space (g ≤ 0). A constant decay takes ln λ_h from a
    named schedule (`retnet`, `retnet_linspace`, `transnormer`, `lightning`;
    the last two need `layer` and `num_layers`), from an explicit
    `log_decay` list, or, with neither, from the gate operand. `clamp_min`
    clamps data-dependent log-gates from below (FLA's `clamp_min`).

    ```mlir
    #linattn.decay<none>
    #linattn.decay<constant, schedule = retnet>
    #linattn.decay<constant, schedule = transnormer, layer = 3, num_layers = 24>
    #linattn.decay<constant, log_decay = [-0.5, -0.25]>
    #linattn.decay<vector, clamp_min = -5.0>
    ```
  }];
  let parameters = (ins
    "::mlir::linattn::DecayKind":$kind,
    OptionalParameter<"std::optional<::mlir::linattn::DecaySchedule>">:$schedule,
    DefaultValuedParameter<"int64_t", "0">:$layer,
    DefaultValuedParameter<"int64_t", "0">:$numLayers,
    OptionalParameter<"::mlir::DenseF64ArrayAttr">:$logDecay,
    OptionalParameter<"::mlir::FloatAttr">:$clampMin
  );
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
  // Lets ops default the attribute from a DecayKind.
  let constBuilderCall =
      "::mlir::linattn::DecayAttr::get($_builder.getContext(), $0)";
  let builders = [
    AttrBuilder<(ins "::mlir::linattn::DecayKind":$kind), [{
      return $_get($_ctxt, kind, std::nullopt, 0, 0, nullptr, nullptr);
    }]>
  ];
  let extraClassDeclaration = [{
    /// True for the kinds whose gate is data dependent (an operand per token).
    bool isDataDependent() const;
    /// True for the delta and gated delta rules (which take a beta operand).
    bool isDeltaRule() const;
    /// True when the op must carry a gate operand for this decay.
    bool needsGateOperand() const;
  }];
}

def LinAttn_ChunkingAttr : LinAttn_Attr<"Chunking", "chunking"> {
  let summary = "Chunk size hint for the chunked (chunkwise-parallel) form";
  let description = [{
    `size` is the chunk length C of MATH.md 6; `sub_size` the secondary
    chunk c used by vector gates (0: the lowering's default). `sub_size`
    must divide `size`.

    ```mlir
    #linattn.chunking<size = 64>
    #linattn.chunking<size = 64, sub_size = 16>
    ```
  }];
  let parameters = (ins "int64_t":$size,
                        DefaultValuedParameter<"int64_t", "0">:$sub_size);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

#endif // LINATTN_DIALECT_LINATTN_IR_LINATTNATTRS_TD
