//===- Reference.h - fp64 reference for linear attention -------*- C++ -*-===//
//
// Part of the linattn project.
//
//===----------------------------------------------------------------------===//
///
/// \file
/// The float64 "oracle" that every linattn kernel is tested against. It
/// implements the math of MATH.md (sections 2-6, 8, 9) three independent ways:
/// the token-by-token recurrence, the explicit masked T x T parallel form, and
/// the chunkwise-parallel form (including secondary chunking for vector gates
/// and the WY/UT form of the delta rule).
///
/// The library depends on the C++17 standard library only (no MLIR/LLVM) and
/// never throws: errors are reported as non-empty strings.
///
/// Conventions (MATH.md section 0): per (batch, head) slice the state is
/// S in R^{Dk x Dv} ("key-major"), writing token t adds k_t^T v_t, reading is
/// o_t = q_t S_t, gates are log-decays g <= 0 (validated; -inf is a hard
/// reset). Decays between positions are never differences of a global
/// cumulative sum: the recurrent form multiplies exp(g_t) step by step, the
/// parallel form sums g over each segment (s, t] directly, and the chunked
/// forms use chunk-local cumulative sums (MATH.md 6.1) of g clamped at -1000
/// (exp(-1000) is 0 in fp64, so a clamped -inf gives the same factors but no
/// NaN). Diagonal decay factors are exactly 1.
///
/// Semantic choices that MATH.md leaves open:
///  - Exclusive (strictly causal) read: o_t = q_t (G_t (.) S_{t-1}), i.e. the
///    state is read after the decay of step t and before token t is written.
///    Its parallel form is the strictly lower part of the inclusive decay
///    matrix; the initial-state term exp(b_t) q_t S_0 is unchanged. For the
///    delta rules o_t = q_t Sbar_t with Sbar_t = alpha_t S_{t-1}.
///  - Normalized form: the normalizer z is the extra state column obtained by
///    running the kernel on V_aug = [V | 1] (MATH.md 2.5 / 6.4). For the
///    decays (a)-(d) this is z_t = G_t (.) z_{t-1} + k_t. For the delta rules
///    the ones column follows the delta recurrence as well.
///  - Lightning schedule with numLayers == 1 uses the factor 1 + 1e-5
///    (l / (L - 1) is taken as 0).
///  - Sequences of length 0 (T = 0, or equal offsets) are allowed: their final
///    state is the initial state.
///  - A sub-chunk size c >= C makes each chunk a single diagonal sub-block.
///
//===----------------------------------------------------------------------===//

#ifndef LINATTN_REFERENCE_REFERENCE_H
#define LINATTN_REFERENCE_REFERENCE_H

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace linattn::reference {

//===----------------------------------------------------------------------===//
// Tensor
//===----------------------------------------------------------------------===//

/// Dense row-major float64 tensor.
struct Tensor {
  std::vector<int64_t> shape;
  std::vector<double> data;

  Tensor() = default;
  /// Creates a tensor of the given shape with every element set to `fill`.
  explicit Tensor(std::vector<int64_t> shape, double fill = 0.0);

  /// Number of elements implied by `shape` (1 for rank 0).
  int64_t numel() const;
  /// Extent of dimension `i`.
  int64_t dim(size_t i) const { return shape[i]; }
  /// Element at a full multi-index (asserts the rank and the bounds).
  double &at(std::initializer_list<int64_t> idx);
  /// Element at a full multi-index (asserts the rank and the bounds).
  double at(std::initializer_list<int64_t> idx) const;
};

/// Formats a shape as "[2, 4, 17]".
std::string formatShape(const std::vector<int64_t> &shape);

/// Copy of `t` with dims `a` and `b` exchanged (e.g. 1 and 2 turns
/// [B, T, H, D] into [B, H, T, D]; 2 and 3 turns a key-major state into a
/// value-major one). Asserts that both dims exist.
Tensor swapDims(const Tensor &t, size_t a, size_t b);

//===----------------------------------------------------------------------===//
// Enumerations
//===----------------------------------------------------------------------===//

/// Feature maps phi of MATH.md section 3.
enum class FeatureMap {
  Identity,
  EluPlusOne,
  Relu,
  Taylor2,
  Taylor2Symmetric,
  Hedgehog,
  HedgehogJoint,
  Performer,
  PerformerHyperbolic
};

/// Decay / update rule of MATH.md sections 4 and 5.
enum class DecayKind { None, Constant, Scalar, Vector, Delta, GatedDelta };

/// Constant per-head decay schedules of MATH.md 4.b.
enum class Schedule { RetNet, RetNetLinspace, TransNormer, Lightning };

/// Which of the equivalent evaluation orders the reference uses.
enum class Form { Recurrent, Parallel, Chunked };

/// snake_case name of a decay kind ("none", "gated_delta", ...).
const char *decayKindName(DecayKind kind);
/// Every decay kind, in declaration order.
std::vector<DecayKind> allDecayKinds();
/// The decay kind named `name` (as decayKindName() spells it), if any.
std::optional<DecayKind> parseDecayKind(const std::string &name);
/// snake_case name of a constant-decay schedule ("retnet", "retnet_linspace",
/// "transnormer", "lightning").
const char *scheduleName(Schedule schedule);
/// Every schedule, in declaration order.
std::vector<Schedule> allSchedules();
/// The schedule named `name` (as scheduleName() spells it), if any.
std::optional<Schedule> parseSchedule(const std::string &name);
/// snake_case name of a feature map ("elu_plus_one", "hedgehog_joint", ...).
const char *featureMapName(FeatureMap map);

//===----------------------------------------------------------------------===//
// Decay schedules
//===----------------------------------------------------------------------===//

/// ALiBi slopes s_h for h = 0..numHeads-1: 2^{-8(h+1)/H} for H a power of two;
/// otherwise the slopes of the nearest lower power of two followed by every
/// other slope of twice that power. Empty if numHeads <= 0.
std::vector<double> alibiSlopes(int64_t numHeads);

/// ln(lambda_h) for h = 0..numHeads-1, MATH.md 4.b (layer/numLayers used by
/// TransNormer and Lightning; Lightning's ALiBi slopes incl. non-power-of-2
/// H). Returns an empty vector if numHeads <= 0, numLayers <= 0 or layer is
/// outside [0, numLayers).
std::vector<double> logDecaySchedule(Schedule s, int64_t numHeads,
                                     int64_t layer = 0, int64_t numLayers = 1);

//===----------------------------------------------------------------------===//
// Feature maps
//===----------------------------------------------------------------------===//

/// Output width D_phi of a feature map for input width d (f = weight feature
/// count for Hedgehog/Performer; ignored otherwise).
int64_t featureMapWidth(FeatureMap m, int64_t d, int64_t f = 0);

/// Applies phi to the last dim of x ([..., d]) -> [..., D_phi]. weight:
/// Hedgehog [d, f] (HedgehogJoint [d, d]) and optional bias [f] ([d]);
/// Performer: random projection [m, d], no bias. Maps without parameters
/// reject a weight or bias. Returns "" or an error string (out untouched).
std::string applyFeatureMap(FeatureMap m, const Tensor &x, Tensor &out,
                            const Tensor *weight = nullptr,
                            const Tensor *bias = nullptr);

/// applyFeatureMap on a [B, H, T, d] tensor whose weight (and bias) may carry
/// a leading head dim ([H, d, f], bias [H, f]; Performer [H, m, d]): head h
/// uses slice h. 2-D weights are shared by all heads.
std::string applyFeatureMapPerHead(FeatureMap m, const Tensor &x, Tensor &out,
                                   const Tensor *weight = nullptr,
                                   const Tensor *bias = nullptr);

/// Maps q and k ([B, H, T, d]) in place with applyFeatureMapPerHead: q by
/// (weight, bias), k by (keyWeight, keyBias) when keyWeight is given, else
/// by q's. Errors start with "feature map on q: " / "feature map on k: ".
std::string applyFeatureMapsQK(FeatureMap m, Tensor &q, Tensor &k,
                               const Tensor *weight, const Tensor *bias,
                               const Tensor *keyWeight, const Tensor *keyBias);

//===----------------------------------------------------------------------===//
// Linear attention
//===----------------------------------------------------------------------===//

/// Static configuration of one linear-attention op.
struct Spec {
  DecayKind decay = DecayKind::None;
  /// Katharopoulos denominator o = n / (q.z + eps).
  bool normalized = false;
  /// Added to the denominator; must be > 0 when normalized.
  double eps = 1e-10;
  /// s_q, multiplies q before anything else.
  double scale = 1.0;
  /// false: o_t = q_t S_T for all t (decay must be None, exclusive false).
  bool causal = true;
  /// Strictly causal read o_t = q_t (G_t (.) S_{t-1}): after the decay of
  /// step t, before token t is written (see the file comment).
  bool exclusive = false;
  /// Initial/final state stored [N, H, Dv, Dk] instead of [N, H, Dk, Dv].
  bool stateValueMajor = false;
};

/// Runtime operands of one linear-attention op.
struct Inputs {
  /// [B, Hq, T, Dk] (already feature-mapped).
  Tensor q;
  /// [B, Hk, T, Dk].
  Tensor k;
  /// [B, Hv, T, Dv].
  Tensor v;
  // H = max(Hq, Hk, Hv); each of Hq, Hk, Hv must divide H; head h reads q
  // head h / (H / Hq), same for k, v (covers GQA and GVA).
  /// Constant: [H] = ln(lambda_h); Scalar, GatedDelta: [B, H, T]; Vector:
  /// [B, H, T, Dk]. Log-space, <= 0 (may be -inf).
  std::optional<Tensor> gate;
  /// Delta, GatedDelta: [B, H, T].
  std::optional<Tensor> beta;
  /// [N, H, Dk, Dv] (or [N, H, Dv, Dk] if stateValueMajor); N = B, or the
  /// number of sequences with offsets.
  std::optional<Tensor> initialState;
  /// [N, H, Dk], normalized form only.
  std::optional<Tensor> initialNormalizer;
  /// cu_seqlens: B must be 1, offsets[0] = 0, nondecreasing, back() == T.
  std::optional<std::vector<int64_t>> offsets;
};

/// Results of one linear-attention op.
struct Outputs {
  /// [B, H, T, Dv].
  Tensor o;
  /// [N, H, Dk, Dv] (or value-major).
  Tensor finalState;
  /// [N, H, Dk], only when normalized (else empty).
  Tensor finalNormalizer;
};

/// Checks every shape/argument; returns "" or a message naming the bad value,
/// e.g. "gate: expected shape [2, 4, 17] for decay 'scalar', got [2, 4, 16]".
std::string validate(const Spec &spec, const Inputs &in);

/// Runs the reference. chunkSize (C >= 1) and subChunk (c, vector gates,
/// 0 = min(C, 16)) only matter for Form::Chunked but are checked for every
/// form. For the delta rules Form::Parallel is the WY/UT chunked form with a
/// single chunk covering each sequence. Returns "" or the validate() message
/// (out untouched on error).
std::string run(const Spec &spec, const Inputs &in, Form form, Outputs &out,
                int64_t chunkSize = 64, int64_t subChunk = 0);

/// Error metric ||x - ref||_2 / ||ref||_2 (MATH.md 0). Returns ||x||_2 if ref
/// is all zeros, +inf on a shape mismatch and NaN if x contains NaN.
double ratio(const Tensor &x, const Tensor &ref);

/// max |x - ref| over all elements; +inf on a shape mismatch, NaN if any
/// difference is NaN, 0 for empty tensors.
double maxAbsDiff(const Tensor &x, const Tensor &ref);

//===----------------------------------------------------------------------===//
// Random problems (tests, tools and benchmarks)
//===----------------------------------------------------------------------===//

/// Problem sizes of a random problem.
struct RandomDims {
  int64_t batch = 1;
  int64_t hq = 2;
  int64_t hk = 2;
  int64_t hv = 2;
  int64_t seqLen = 16;
  int64_t dk = 4;
  int64_t dv = 3;
};

/// Parses the tools' `--random` value, "B,H,T" or "B,Hq,Hk,Hv,T"
/// (non-negative integers), into the batch, head counts and sequence length
/// of `d` (the widths are left alone). Returns "" or the error message.
std::string parseRandomDims(const std::string &text, RandomDims &d);

/// Options for randomInputs().
struct RandomOptions {
  /// Random initial state (and normalizer when `normalizer` is set).
  bool initialState = true;
  /// Positive (elu+1) queries and keys, as the normalized form requires.
  bool positive = false;
  /// Also draw a positive initial normalizer.
  bool normalizer = false;
};

/// Tensor with i.i.d. N(0, scale^2) entries.
Tensor randn(std::vector<int64_t> shape, std::mt19937_64 &rng,
             double scale = 1.0);

/// Random inputs for `kind` following MATH.md 9.7: q, k ~ N(0, 1) / 2,
/// gates logsigmoid(randn) / 16, delta keys L2-normalized, beta in (0, 1).
Inputs randomInputs(DecayKind kind, const RandomDims &d, uint64_t seed,
                    const RandomOptions &opts = RandomOptions());

} // namespace linattn::reference

#endif // LINATTN_REFERENCE_REFERENCE_H
