"""Compiled kernels against linattn.reference on seeded random shapes
(MATH.md 9.7 inputs and tolerances). Each spec compiles once (the kernel
cache); the shapes B, T, heads (GQA/GVA), cu_seqlens and initial states vary
per draw."""

import numpy as np
import pytest

import linattn
from linattn import Spec, reference
from conftest import check_close, make_inputs, run_and_check

# (spec fields, dk, dv, dtype, gate_scale)
VARIANTS = [
    (dict(decay="none"), 16, 8, "float32", 1 / 16),
    (dict(decay="none", feature_map="elu_plus_one", normalized=True), 16, 16,
     "float32", 1 / 16),
    (dict(decay="none", causal=False), 8, 24, "float32", 1 / 16),
    (dict(decay="none", feature_map="relu", exclusive=True), 16, 8,
     "float32", 1 / 16),
    (dict(decay="constant", schedule="retnet"), 32, 16, "float32", 1 / 16),
    (dict(decay="constant"), 16, 8, "float32", 1 / 16),
    (dict(decay="constant", schedule="lightning", layer=1, num_layers=3), 16,
     8, "float32", 1 / 16),
    (dict(decay="scalar"), 16, 8, "float32", 1 / 16),
    (dict(decay="scalar", clamp_min=-0.05), 16, 8, "float32", 1.0),
    (dict(decay="scalar", exclusive=True, state_layout="value_major"), 8, 16,
     "float32", 1.0),
    (dict(decay="scalar", layout="bhtd"), 16, 8, "float32", 1 / 16),
    (dict(decay="vector"), 16, 8, "float32", 1 / 16),
    (dict(decay="vector", feature_map="elu_plus_one", normalized=True), 16,
     8, "float32", 1 / 16),
    (dict(decay="vector", clamp_min=-0.5), 32, 32, "float32", 1.0),
    (dict(decay="scalar"), 16, 8, "float64", 1 / 16),
    (dict(decay="vector"), 16, 16, "float16", 1 / 16),
    (dict(decay="scalar"), 32, 16, "bfloat16", 1 / 16),
    (dict(decay="vector", layout="bhtd"), 16, 16, "bfloat16", 1 / 16),
]


def variant_id(v):
    fields, dk, dv, dtype, gs = v
    return "-".join([f"{k}={x}" for k, x in fields.items()] +
                    [f"{dk}x{dv}", dtype, f"g{gs:g}"])


def random_shape(rng):
    """B, T, (hq, hk, hv), offsets: GQA/GVA groups, ragged varlen."""
    heads = [(1, 1, 1), (2, 2, 2), (4, 2, 2), (2, 1, 4), (3, 3, 1)]
    hq, hk, hv = heads[rng.integers(len(heads))]
    T = int(rng.choice([1, 7, 16, 33, 64, 65, 130]))
    if rng.random() < 0.3 and T > 2:
        cuts = np.sort(rng.integers(0, T + 1, size=rng.integers(1, 4)))
        return 1, T, (hq, hk, hv), [0, *map(int, cuts), T]
    return int(rng.integers(1, 4)), T, (hq, hk, hv), None


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_kernel_matches_reference(variant, rng):
    fields, dk, dv, dtype, gate_scale = variant
    spec = Spec(**fields)
    for draw in range(3):
        B, T, (hq, hk, hv), offsets = random_shape(rng)
        inputs = make_inputs(rng, spec, B, T, hq, hk, hv, dk, dv, dtype,
                             offsets=offsets, initial_state=draw != 1,
                             gate_scale=gate_scale)
        if not spec.causal:  # bidirectional attention has no state input
            inputs = inputs[:5] + (None,)
        run_and_check(spec, inputs, dtype, offsets=offsets)


def test_chunk_size_does_not_change_the_result(rng):
    spec = Spec(decay="vector")
    inputs = make_inputs(rng, spec, 2, 70, 2, 2, 2, 16, 8, initial_state=True)
    outs = [linattn.attention(spec, *inputs[:3], gate=inputs[3],
                              initial_state=inputs[5],
                              output_final_state=True, chunk_size=c)
            for c in (16, 64)]
    check_close("o", outs[0][0], reference.to_numpy(outs[1][0]), "float32")
    check_close("S", outs[0][1], reference.to_numpy(outs[1][1]), "float32")


def test_state_passing_equals_one_call(rng):
    # MATH.md 8: splitting at T1 and passing final_state on is one call.
    spec = Spec(decay="scalar")
    q, k, v, g, _, _ = make_inputs(rng, spec, 1, 50, 2, 2, 2, 16, 8)
    o, s = linattn.chunk_simple_gla(q, k, v, g, output_final_state=True)
    o1, s1 = linattn.chunk_simple_gla(q[:, :19], k[:, :19], v[:, :19],
                                      g[:, :19], output_final_state=True)
    o2, s2 = linattn.chunk_simple_gla(q[:, 19:], k[:, 19:], v[:, 19:],
                                      g[:, 19:], initial_state=s1,
                                      output_final_state=True)
    check_close("o", np.concatenate([o1, o2], 1), o.astype(np.float64),
                "float32")
    check_close("S", s2, s.astype(np.float64), "float32")


#: FLA function -> (extra arguments builder, reference keyword arguments)
def fla_cases(rng, B, T, H, K, V):
    def ls(*shape):
        return (np.minimum(0, x := rng.standard_normal(shape)) -
                np.log1p(np.exp(-np.abs(x)))).astype(np.float32) / 16
    g3, g4 = ls(B, T, H), ls(B, T, H, K)
    gamma = np.log(rng.uniform(0.9, 0.99, H)).astype(np.float32)
    return [
        ("chunk_simple_gla", dict(g=g3), dict(decay="scalar", gate=g3)),
        ("chunk_simple_gla", dict(g_gamma=gamma),
         dict(decay="constant", gate=gamma)),
        ("chunk_simple_gla", {}, {}),
        ("fused_recurrent_simple_gla", dict(g=g3),
         dict(decay="scalar", gate=g3)),
        ("chunk_gla", dict(g=g4), dict(decay="vector", gate=g4)),
        ("fused_recurrent_gla", dict(g=g4), dict(decay="vector", gate=g4)),
        ("chunk_linear_attn", dict(normalize=False), {}),
        ("fused_recurrent_linear_attn", {}, {}),
        ("chunk_retention", {}, dict(decay="constant", schedule="retnet")),
        ("chunk_lightning_attn", dict(layer_idx=2, num_layers=4),
         dict(decay="constant", schedule="transnormer", layer=2,
              num_layers=4)),
    ]


def test_fla_functions_match_reference(rng):
    B, T, H, K, V = 2, 45, 4, 16, 8
    q = rng.standard_normal((B, T, H, K)).astype(np.float32) / 2
    k = rng.standard_normal((B, T, H, K)).astype(np.float32) / 2
    v = rng.standard_normal((B, T, H, V)).astype(np.float32)
    s0 = rng.standard_normal((B, H, K, V)).astype(np.float32)
    for name, extra, ref_kw in fla_cases(rng, B, T, H, K, V):
        fn = getattr(linattn, name)
        o, s = fn(q, k, v, initial_state=s0, output_final_state=True,
                  **extra)
        assert isinstance(o, np.ndarray) and o.dtype == np.float32, name
        ro, rs, _ = reference.attention(q, k, v, initial_state=s0, **ref_kw)
        check_close(f"{name} o", o, ro, "float32")
        check_close(f"{name} S", s, rs, "float32")
        o2, s2 = fn(q, k, v, **extra)
        assert s2 is None
        np.testing.assert_allclose(o2, reference.attention(
            q, k, v, **ref_kw)[0], rtol=1e-3, atol=1e-4)


def test_fla_normalized_linear_attn(rng):
    # FLA's chunk_linear_attn defaults to normalize=True: o / (q.cumsum(k)
    # + 1e-10), with positive features so the denominator is well away
    # from 0.
    q, k = (np.abs(rng.standard_normal((1, 30, 2, 16))).astype(np.float32)
            + 0.1 for _ in range(2))
    v = rng.standard_normal((1, 30, 2, 8)).astype(np.float32)
    o, s = linattn.chunk_linear_attn(q, k, v, output_final_state=True)
    ro, rs, _ = reference.attention(q, k, v, normalized=True)
    check_close("o", o, ro, "float32")
    check_close("S", s, rs, "float32")


def test_fla_varlen_and_head_first(rng):
    q, k = (rng.standard_normal((1, 3, 40, 16)).astype(np.float32) / 2
            for _ in range(2))
    v = rng.standard_normal((1, 3, 40, 8)).astype(np.float32)
    g = (-rng.uniform(0, 0.1, (1, 3, 40))).astype(np.float32)
    cu = np.array([0, 10, 10, 40], dtype=np.int64)
    o, s = linattn.chunk_simple_gla(q, k, v, g, cu_seqlens=cu,
                                    head_first=True, output_final_state=True)
    assert s.shape == (3, 3, 16, 8)
    ro, rs, _ = reference.attention(q, k, v, decay="scalar", gate=g,
                                    cu_seqlens=cu, layout="bhtd")
    check_close("o", o, ro, "float32")
    check_close("S", s, rs, "float32")


@pytest.mark.parametrize("fn", ["chunk_delta_rule", "chunk_gated_delta_rule"])
def test_delta_rules(fn, rng):
    q, k = (rng.standard_normal((1, 20, 2, 16)).astype(np.float32)
            for _ in range(2))
    v = rng.standard_normal((1, 20, 2, 8)).astype(np.float32)
    beta = rng.uniform(0, 1, (1, 20, 2)).astype(np.float32)
    g = (-rng.uniform(0, 0.1, (1, 20, 2))).astype(np.float32)
    args = (q, k, v, g, beta) if fn == "chunk_gated_delta_rule" \
        else (q, k, v, beta)
    o, s = getattr(linattn, fn)(*args, use_qk_l2norm_in_kernel=True,
                                output_final_state=True)
    qn, kn = linattn.l2norm(q), linattn.l2norm(k)
    ro, rs, _ = reference.attention(
        qn, kn, v, beta=beta,
        decay="gated_delta" if fn == "chunk_gated_delta_rule" else "delta",
        gate=g if fn == "chunk_gated_delta_rule" else None)
    check_close("o", o, ro, "float32")
    check_close("S", s, rs, "float32")


def test_random_shapes_hypothesis():
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies

    @hypothesis.settings(max_examples=25, deadline=None, derandomize=True,
                         database=None)
    @hypothesis.given(B=st.integers(1, 3), T=st.integers(0, 150),
                      group=st.sampled_from([(1, 1), (1, 2), (2, 1), (4, 4)]),
                      seed=st.integers(0, 2**31), with_state=st.booleans())
    def check(B, T, group, seed, with_state):
        rng = np.random.default_rng(seed)
        hq, hv = group
        spec = Spec(decay="vector")
        inputs = make_inputs(rng, spec, B, T, hq, hq, hv, 16, 8,
                             initial_state=with_state)
        run_and_check(spec, inputs, "float32")

    check()
