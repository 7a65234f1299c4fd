"""linattn.reference (pure NumPy) against the MATH.md worked examples and the
C++ fp64 reference (lib/Reference), so that the two references agree."""

import numpy as np
import pytest

from linattn import Spec, reference
from conftest import make_inputs

cref = pytest.importorskip("linattn._linattn").cref
ext = pytest.importorskip("linattn._linattn")


def bhtd(x):
    return None if x is None else np.ascontiguousarray(
        np.asarray(x, dtype=np.float64))


def test_worked_example_a():
    # MATH.md 10.2: Dk = 2, Dv = 1, s_q = 1, S_0 = 0.
    q = np.array([[1, 0], [0, 1], [1, 1]], float)[None, None]
    k = np.array([[1, 0], [1, 1], [0, 1]], float)[None, None]
    v = np.array([1, 2, 3], float)[None, None, :, None]
    o, s, _ = reference.attention(q, k, v, scale=1.0, layout="bhtd")
    np.testing.assert_allclose(o.ravel(), [1, 2, 8])
    np.testing.assert_allclose(s.ravel(), [3, 5])
    o, s, _ = reference.attention(q, k, v, scale=1.0, layout="bhtd",
                                  decay="constant", log_decay=[np.log(0.5)])
    np.testing.assert_allclose(o.ravel(), [1, 2, 5.25])
    np.testing.assert_allclose(s.ravel(), [1.25, 4])


def test_worked_example_b_delta():
    # MATH.md 10.3: one-hot keys; beta = 1 overwrites slot e1.
    e = np.eye(2)
    q = k = np.stack([e[0], e[1], e[0]])[None, None]
    v = np.array([1, 2, 3], float)[None, None, :, None]
    for b, want in ((1.0, [1, 2, 3]), (0.5, [0.5, 1, 1.75])):
        beta = np.full((1, 1, 3), b)
        o, _, _ = reference.attention(q, k, v, scale=1.0, layout="bhtd",
                                      decay="delta", beta=beta)
        np.testing.assert_allclose(o.ravel(), want)
    o, _, _ = reference.attention(q, k, v, scale=1.0, layout="bhtd")
    np.testing.assert_allclose(o.ravel(), [1, 2, 4])
    # Gated delta with g = 0 is DeltaNet.
    o2, _, _ = reference.attention(q, k, v, scale=1.0, layout="bhtd",
                                   decay="gated_delta", beta=beta,
                                   gate=np.zeros((1, 1, 3)))
    o1, _, _ = reference.attention(q, k, v, scale=1.0, layout="bhtd",
                                   decay="delta", beta=beta)
    np.testing.assert_allclose(o2, o1)


def test_worked_example_c_normalized_running_mean():
    # MATH.md 10.4: phi = 1 makes o_t the running mean of v.
    T = 5
    ones = np.ones((1, 1, T, 1))
    v = np.array([2, 4, 6, 1, 7], float)[None, None, :, None]
    o, _, z = reference.attention(ones, ones, v, scale=1.0, layout="bhtd",
                                  normalized=True, eps=1e-15)
    np.testing.assert_allclose(o.ravel(), [2, 3, 4, 3.25, 4])
    np.testing.assert_allclose(z.ravel(), [5])


def test_hard_reset_gives_diagonal_only():
    # MATH.md 9.3: g = -inf keeps only the current token, never NaN.
    rng = np.random.default_rng(0)
    q, k = rng.standard_normal((2, 1, 1, 6, 4))
    v = rng.standard_normal((1, 1, 6, 3))
    g = np.full((1, 1, 6), -np.inf)
    o, _, _ = reference.attention(q, k, v, decay="scalar", gate=g, scale=1.0,
                                  layout="bhtd",
                                  initial_state=np.ones((1, 1, 4, 3)))
    want = np.einsum("btk,btk->bt", q[0], k[0])[..., None] * v[0]
    np.testing.assert_allclose(o[0], want)


def test_schedules_match_math_table():
    np.testing.assert_allclose(
        np.exp(reference.log_decay_schedule("retnet", 8)),
        [0.96875, 0.984375, 0.9921875, 0.99609375, 0.998046875,
         0.9990234375, 0.99951171875, 0.999755859375])
    np.testing.assert_allclose(
        np.exp(reference.log_decay_schedule("transnormer", 8)),
        [1, 0.3679, 0.1353, 0.0498, 0.0183, 0.00674, 0.00248, 0.000912],
        rtol=2e-3)
    np.testing.assert_allclose(
        reference.alibi_slopes(12)[-4:], [0.7071, 0.3536, 0.1768, 0.0884],
        rtol=1e-3)


CASES = [
    dict(decay="none"),
    dict(decay="none", normalized=True),
    dict(decay="none", causal=False),
    dict(decay="constant"),
    dict(decay="scalar", exclusive=True),
    dict(decay="scalar", normalized=True, state_layout="value_major"),
    dict(decay="vector"),
    dict(decay="vector", exclusive=True, normalized=True),
    dict(decay="delta"),
    dict(decay="delta", exclusive=True),
    dict(decay="gated_delta"),
    dict(decay="gated_delta", normalized=True),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(
    f"{k}={v}" for k, v in c.items()))
@pytest.mark.parametrize("varlen", [False, True], ids=["batch", "varlen"])
def test_agrees_with_cpp_reference(case, varlen, rng):
    spec = Spec(layout="bhtd", **case)
    B, T = (1, 29) if varlen else (2, 13)
    offsets = [0, 5, 5, 20, 29] if varlen else None
    q, k, v, gate, beta, s0 = make_inputs(
        rng, spec, B=B, T=T, hq=1, hk=2, hv=4, dk=5, dv=3, dtype="float64",
        offsets=offsets, initial_state=True)
    if spec.decay in ("delta", "gated_delta"):
        k = k / np.linalg.norm(k, axis=-1, keepdims=True)
    if spec.normalized:
        q, k = np.abs(q) + 0.1, np.abs(k) + 0.1
    s, z = s0 if spec.normalized else (s0, None)
    if not spec.causal:
        s = None
    ro, rs, rz = reference.run(spec, q, k, v, gate=gate, beta=beta,
                               initial_state=(s, z) if z is not None else s,
                               cu_seqlens=offsets)
    # The C++ reference takes [B, H, T] gates and ln(lambda) per head.
    cg = gate
    if spec.decay == "constant":
        cg = np.asarray(gate, np.float64)
    co, cs, cz = cref.run(
        getattr(ext.DecayKind, spec.decay), bhtd(q), bhtd(k), bhtd(v),
        gate=bhtd(cg), beta=bhtd(beta), initial_state=bhtd(s),
        initial_normalizer=bhtd(z), offsets=offsets, scale=5 ** -0.5,
        normalized=spec.normalized, eps=spec.eps, causal=spec.causal,
        exclusive=spec.exclusive,
        state_value_major=spec.state_layout == "value_major",
        form=ext.Form.recurrent)
    np.testing.assert_allclose(ro, co, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(rs, cs, rtol=1e-12, atol=1e-12)
    if spec.normalized:
        np.testing.assert_allclose(rz, cz, rtol=1e-12, atol=1e-12)


def test_reference_rejects_bad_inputs():
    q = np.zeros((1, 4, 2, 3))
    with pytest.raises(ValueError, match="gate: value 0.5"):
        reference.attention(q, q, q, decay="scalar",
                            gate=np.full((1, 4, 2), 0.5))
    with pytest.raises(ValueError, match=r"gate: expected shape \[1, 4, 2\]"):
        reference.attention(q, q, q, decay="scalar", gate=np.zeros((1, 2, 4)))
    with pytest.raises(ValueError, match="each must divide"):
        reference.attention(q, np.zeros((1, 4, 3, 3)), q)
    with pytest.raises(ValueError, match="cu_seqlens"):
        reference.attention(q, q, q, cu_seqlens=[0, 3])
