//===- linattn-reference.cpp - Run the fp64 reference on a spec -*- C++ -*-===//
//
// Evaluates one linear-attention variant with the fp64 reference in its
// recurrent, parallel and chunked forms on seeded random inputs, checks that
// the forms agree and prints the timing of each. It is the oracle side of
// every kernel check, runnable on its own.
//
//===----------------------------------------------------------------------===//

#include "linattn/Reference/Reference.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>
#include <cmath>
#include <random>

using namespace linattn::reference;
namespace cl = llvm::cl;

static cl::opt<std::string>
    decayName("decay",
              cl::desc("none, constant, scalar, vector, delta or "
                       "gated_delta"),
              cl::init("constant"));
static cl::opt<int64_t> batch("B", cl::desc("batch"), cl::init(1));
static cl::opt<int64_t> heads("H", cl::desc("heads"), cl::init(4));
static cl::opt<int64_t> seqLen("T", cl::desc("sequence length"), cl::init(500));
static cl::opt<int64_t> keyDim("dk", cl::desc("key dim"), cl::init(32));
static cl::opt<int64_t> valueDim("dv", cl::desc("value dim"), cl::init(32));
static cl::opt<int64_t> chunk("chunk", cl::desc("chunk size"), cl::init(64));
static cl::opt<double> tolerance("tol", cl::desc("max allowed ratio"),
                                 cl::init(1e-10));

/// Fills the inputs of `kind` the way MATH.md 9.7 prescribes for tests.
static Inputs makeInputs(DecayKind kind, std::mt19937_64 &rng) {
  std::normal_distribution<double> normal;
  auto randn = [&](std::vector<int64_t> shape) {
    Tensor t(std::move(shape));
    for (double &x : t.data)
      x = normal(rng);
    return t;
  };
  int64_t B = batch, H = heads, T = seqLen;
  Inputs in;
  in.q = randn({B, H, T, keyDim});
  in.k = randn({B, H, T, keyDim});
  in.v = randn({B, H, T, valueDim});
  auto logsigmoid16 = [](double x) {
    return (std::min(x, 0.0) - std::log1p(std::exp(-std::abs(x)))) / 16.0;
  };
  if (kind == DecayKind::Constant)
    in.gate = Tensor({H});
  if (kind == DecayKind::Constant)
    in.gate->data = logDecaySchedule(Schedule::RetNet, H);
  if (kind == DecayKind::Scalar || kind == DecayKind::GatedDelta)
    in.gate = randn({B, H, T});
  if (kind == DecayKind::Vector)
    in.gate = randn({B, H, T, keyDim});
  if (in.gate && kind != DecayKind::Constant)
    for (double &g : in.gate->data)
      g = logsigmoid16(g);
  if (kind == DecayKind::Delta || kind == DecayKind::GatedDelta) {
    in.beta = randn({B, H, T});
    for (double &b : in.beta->data)
      b = 1.0 / (1.0 + std::exp(-b));
    for (int64_t row = 0; row < B * H * T; ++row) { // L2-normalize keys.
      double *k = &in.k.data[row * keyDim], norm = 0;
      for (int64_t i = 0; i < keyDim; ++i)
        norm += k[i] * k[i];
      for (int64_t i = 0; i < keyDim; ++i)
        k[i] /= std::sqrt(norm) + 1e-6;
    }
  }
  return in;
}

static std::optional<DecayKind> parseDecay(llvm::StringRef name) {
  for (DecayKind k :
       {DecayKind::None, DecayKind::Constant, DecayKind::Scalar,
        DecayKind::Vector, DecayKind::Delta, DecayKind::GatedDelta})
    if (name == decayKindName(k))
      return k;
  return std::nullopt;
}

int main(int argc, char **argv) {
  cl::ParseCommandLineOptions(argc, argv,
                              "linattn fp64 reference: forms agree + timing\n");
  std::optional<DecayKind> kind = parseDecay(decayName);
  if (!kind) {
    llvm::errs() << "error: unknown --decay '" << decayName
                 << "' (expected none, constant, scalar, vector, delta or "
                    "gated_delta)\n";
    return 2;
  }
  std::mt19937_64 rng(0);
  Spec spec;
  spec.decay = *kind;
  spec.scale = 1.0 / std::sqrt(static_cast<double>(keyDim));
  Inputs in = makeInputs(*kind, rng);
  if (std::string err = validate(spec, in); !err.empty()) {
    llvm::errs() << "error: " << err << "\n";
    return 2;
  }
  llvm::outs() << "spec: decay=" << decayName << " B=" << batch
               << " H=" << heads << " T=" << seqLen << " Dk=" << keyDim
               << " Dv=" << valueDim << " C=" << chunk << " (fp64)\n";
  Outputs outs[3];
  const char *names[3] = {"recurrent", "parallel", "chunked"};
  bool ok = true;
  for (int f = 0; f < 3; ++f) {
    auto start = std::chrono::steady_clock::now();
    std::string err = run(spec, in, static_cast<Form>(f), outs[f], chunk);
    double ms = std::chrono::duration<double, std::milli>(
                    std::chrono::steady_clock::now() - start)
                    .count();
    if (!err.empty()) {
      llvm::errs() << "error: " << err << "\n";
      return 1;
    }
    double ro = ratio(outs[f].o, outs[0].o);
    double rs = ratio(outs[f].finalState, outs[0].finalState);
    bool pass = ro <= tolerance && rs <= tolerance;
    ok &= pass;
    llvm::outs() << llvm::format("%-10s %9.2f ms   o ratio %.2e   S_T ratio "
                                 "%.2e   %s\n",
                                 names[f], ms, ro, rs, pass ? "ok" : "FAIL");
  }
  llvm::outs() << (ok ? "all forms agree" : "MISMATCH") << " (tolerance "
               << tolerance << ")\n";
  return ok ? 0 : 1;
}
