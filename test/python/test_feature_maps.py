"""The width-changing feature maps of MATH.md 3 (taylor2, taylor2_symmetric,
hedgehog, hedgehog_joint, performer, performer_hyperbolic) through the
Python package: the NumPy reference maps against the C++ fp64 ones and the
kernel identities of MATH.md 3, and the compiled f32/f64 kernels against the
fp64 reference (MATH.md 9.7 tolerances, conftest.check_close). q and k have
width d; gates, states and normalizers have width D_phi."""

import math

import numpy as np
import pytest

import linattn
from linattn import Spec, reference
from linattn.compiler import FEATURE_MAPS, WEIGHTED_MAPS
from conftest import check_close, logsigmoid

ext = pytest.importorskip("linattn._linattn")

WIDTH_CHANGING = ("taylor2", "taylor2_symmetric", "hedgehog",
                  "hedgehog_joint", "performer", "performer_hyperbolic")


def hedgehog_weights(rng, d, f, heads=None, dtype=np.float32):
    """W ~ N(0, 1/d) [d, f], b ~ N(0, 0.1^2) [f] (with a leading head dim
    when `heads`), as linattn-run --random draws them."""
    lead = () if heads is None else (heads,)
    w = rng.standard_normal(lead + (d, f)) / math.sqrt(d)
    b = rng.standard_normal(lead + (f,)) * 0.1
    return w.astype(dtype), b.astype(dtype)


def performer_weights(rng, d, m, dtype=np.float32):
    """Orthogonal random features [m, d]: blocks of d orthonormal rows, each
    rescaled to the norm of a d-dim Gaussian vector (MATH.md 3)."""
    rows = []
    while len(rows) < m:
        qf, r = np.linalg.qr(rng.standard_normal((d, d)))
        qf = qf * np.sign(np.diag(r))  # Haar: Gram-Schmidt's signs
        norms = np.linalg.norm(rng.standard_normal((d, d)), axis=1)
        rows.extend(qf.T * norms[:, None])
    return np.array(rows[:m]).astype(dtype)


def map_weights(rng, name, d, f, dtype=np.float32):
    """(map_weight, map_bias) for `name` (None, None without weights)."""
    if name == "hedgehog":
        return hedgehog_weights(rng, d, f, dtype=dtype)
    if name == "hedgehog_joint":
        return hedgehog_weights(rng, d, d, dtype=dtype)
    if name.startswith("performer"):
        return performer_weights(rng, d, f, dtype), None
    return None, None


def draw(rng, spec, B, T, H, d, dv, dphi, dtype=np.float32, qk_scale=0.5,
         gate_scale=1 / 16):
    """q, k, v [B, T, H, d/dv] (bthd), the gate (width D_phi for vector
    gates), and an initial state (S, or (S, z) when normalized) of width
    D_phi."""
    q = (rng.standard_normal((B, T, H, d)) * qk_scale).astype(dtype)
    k = (rng.standard_normal((B, T, H, d)) * qk_scale).astype(dtype)
    v = rng.standard_normal((B, T, H, dv)).astype(dtype)
    if spec.layout == "bhtd":
        q, k, v = (np.ascontiguousarray(np.swapaxes(x, 1, 2))
                   for x in (q, k, v))
    gate = None
    if spec.decay in ("vector", "scalar"):
        shape = (B, T, H) if spec.decay == "scalar" else (B, T, H, dphi)
        gate = (logsigmoid(rng.standard_normal(shape)) *
                gate_scale).astype(np.float32)
        if spec.layout == "bhtd":
            gate = np.ascontiguousarray(np.swapaxes(gate, 1, 2))
    sdt = np.float64 if dtype == np.float64 else np.float32
    s_shape = (B, H, dv, dphi) if spec.state_layout == "value_major" \
        else (B, H, dphi, dv)
    s0 = (rng.standard_normal(s_shape) * 0.1).astype(sdt)
    if spec.normalized:
        s0 = (np.abs(s0), rng.uniform(0.5, 2, (B, H, dphi)).astype(sdt))
    return q, k, v, gate, s0


def run_both(spec, q, k, v, gate, s0, dtype="float32", **maps):
    """Kernel and fp64 reference with the same inputs; checks o, the final
    state and (normalized) the final normalizer. Returns (o, S)."""
    o, st = linattn.attention(spec, q, k, v, gate=gate, initial_state=s0,
                              output_final_state=True, **maps)
    ro, rs, rz = reference.run(spec, q, k, v, gate=gate, initial_state=s0,
                               **maps)
    check_close("o", o, ro, dtype)
    if spec.normalized:
        st, zt = st
        check_close("final_normalizer", zt, rz, dtype)
    check_close("final_state", st, rs, dtype)
    return o, st


#: (spec fields, d, f or m (0: none), D_phi)
KERNEL_CASES = [
    (dict(feature_map="taylor2", decay="scalar"), 8, 0, 73),
    (dict(feature_map="taylor2", decay="none", layout="bhtd",
          state_layout="value_major", scale=1.0), 8, 0, 73),
    (dict(feature_map="taylor2_symmetric", decay="vector"), 8, 0, 45),
    (dict(feature_map="hedgehog", decay="none", normalized=True), 16, 8, 16),
    (dict(feature_map="hedgehog", decay="scalar"), 16, 12, 24),
    (dict(feature_map="hedgehog_joint", decay="constant",
          schedule="retnet"), 8, 0, 16),
    (dict(feature_map="performer", decay="none", normalized=True), 16, 32,
     32),
    (dict(feature_map="performer_hyperbolic", decay="scalar",
          normalized=True), 8, 16, 32),
]


def case_id(case):
    fields, d, f, dphi = case
    return "-".join([f"{k}={x}" for k, x in fields.items()] +
                    [f"d{d}", f"f{f}", f"Dphi{dphi}"])


@pytest.mark.parametrize("case", KERNEL_CASES, ids=case_id)
def test_kernel_matches_reference(case, rng):
    fields, d, f, dphi = case
    spec = Spec(**fields)
    B, T, H, dv = 2, 37, 2, 16
    q, k, v, gate, s0 = draw(rng, spec, B, T, H, d, dv, dphi)
    w, b = map_weights(rng, spec.feature_map, d, f)
    maps = {} if w is None else dict(map_weight=w)
    if b is not None:
        maps["map_bias"] = b
    o, s = run_both(spec, q, k, v, gate, s0, **maps)
    # The states have width D_phi, not d.
    assert s.shape == ((B, H, dv, dphi) if spec.state_layout == "value_major"
                       else (B, H, dphi, dv))
    assert o.shape == v.shape and o.dtype == np.float32


def test_default_scale_is_dphi(rng):
    # MATH.md 0 / README: the default query scale is D_phi^-1/2, not d^-1/2.
    spec = Spec(feature_map="taylor2")
    q, k, v, _, _ = draw(rng, spec, 1, 20, 2, 8, 8, 73)
    o, _ = linattn.attention(spec, q, k, v)
    ro, _, _ = reference.run(spec.replace(scale=73 ** -0.5), q, k, v)
    check_close("o", o, ro, "float32")
    wrong, _, _ = reference.run(spec.replace(scale=8 ** -0.5), q, k, v)
    assert reference.ratio(o, wrong) > 1e-2


def test_hedgehog_per_head_weights(rng):
    # One map per head ([H, d, f], bias [H, f]), shared by q and k, against
    # the reference; and not the same as head 0's map for every head.
    spec = Spec(feature_map="hedgehog", decay="scalar", normalized=True)
    B, T, H, d, f, dv = 2, 37, 3, 16, 8, 16
    q, k, v, gate, s0 = draw(rng, spec, B, T, H, d, dv, 2 * f)
    w, b = hedgehog_weights(rng, d, f, heads=H)
    o, _ = run_both(spec, q, k, v, gate, s0, map_weight=w, map_bias=b)
    shared, _, _ = reference.run(spec, q, k, v, gate=gate, initial_state=s0,
                                 map_weight=w[0], map_bias=b[0])
    assert reference.ratio(o, shared) > 1e-2


def test_hedgehog_separate_key_weights(rng):
    # Hedgehog keeps one map per side: k uses key_map_weight/key_map_bias
    # (here per head) while q uses the shared map_weight/map_bias.
    spec = Spec(feature_map="hedgehog", decay="vector", normalized=True)
    B, T, H, d, f, dv = 2, 37, 2, 16, 8, 16
    q, k, v, gate, s0 = draw(rng, spec, B, T, H, d, dv, 2 * f)
    wq, bq = hedgehog_weights(rng, d, f)
    wk, bk = hedgehog_weights(rng, d, f, heads=H)
    o, _ = run_both(spec, q, k, v, gate, s0, map_weight=wq, map_bias=bq,
                    key_map_weight=wk, key_map_bias=bk)
    same, _, _ = reference.run(spec, q, k, v, gate=gate, initial_state=s0,
                               map_weight=wq, map_bias=bq)
    assert reference.ratio(o, same) > 1e-2


def test_gqa_with_key_weights(rng):
    # Hq = 4 q heads with their own maps, Hk = 2 k heads with theirs.
    spec = Spec(feature_map="hedgehog", decay="none", normalized=True)
    d, f, dv, T = 8, 4, 8, 21
    q = (rng.standard_normal((1, T, 4, d)) / 2).astype(np.float32)
    k = (rng.standard_normal((1, T, 2, d)) / 2).astype(np.float32)
    v = rng.standard_normal((1, T, 4, dv)).astype(np.float32)
    wq, bq = hedgehog_weights(rng, d, f, heads=4)
    wk, bk = hedgehog_weights(rng, d, f, heads=2)
    run_both(spec, q, k, v, None, None, map_weight=wq, map_bias=bq,
             key_map_weight=wk, key_map_bias=bk)
    with pytest.raises(ValueError, match=r"map_weight: one map per q head "
                       r"\(4\) cannot be applied to the 2 k heads"):
        linattn.attention(spec, q, k, v, map_weight=wq, map_bias=bq)
    with pytest.raises(ValueError, match="map_weight: one map per q head"):
        reference.run(spec, q, k, v, map_weight=wq, map_bias=bq)


def test_float64_kernel(rng):
    spec = Spec(feature_map="hedgehog_joint", decay="scalar")
    q, k, v, gate, s0 = draw(rng, spec, 2, 37, 2, 8, 16, 16,
                             dtype=np.float64)
    w, b = hedgehog_weights(rng, 8, 8, dtype=np.float64)
    run_both(spec, q, k, v, gate, s0, dtype="float64", map_weight=w,
             map_bias=b)


def test_feature_count_from_the_weight(rng):
    # feature_count 0 takes f from map_weight; a different f compiles a
    # different kernel (the call cache keys on the weight's shape).
    spec = Spec(feature_map="performer", normalized=True)
    q, k, v, _, _ = draw(rng, spec, 1, 30, 2, 8, 8, 8)
    for m in (8, 24):
        w = performer_weights(rng, 8, m)
        o, (s, z) = linattn.attention(spec, q, k, v, map_weight=w,
                                      output_final_state=True)
        assert s.shape == (1, 2, m, 8) and z.shape == (1, 2, m)
        ro, rs, _ = reference.run(spec, q, k, v, map_weight=w)
        check_close("o", o, ro, "float32")
        check_close("final_state", s, rs, "float32")
    # An explicit feature_count must match the weight.
    kernel = linattn.compile(spec.replace(feature_count=16, key_dim=8,
                                          value_dim=8, dtype="float32"))
    with pytest.raises(ValueError, match=r"map_weight: expected shape "
                       r"\[16, 8\]"):
        kernel(q, k, v, map_weight=performer_weights(rng, 8, 24))


def test_python_feature_dim_matches_cpp():
    for name in FEATURE_MAPS:
        assert ext.feature_map_name(getattr(ext.FeatureMap, name)) == name
        for d, f in ((8, 0), (16, 4), (5, 5)):
            if name in ("hedgehog", "performer", "performer_hyperbolic") \
                    and not f:
                continue
            if name not in WEIGHTED_MAPS or name == "hedgehog_joint":
                f = 0
            spec = Spec(feature_map=name, key_dim=d, value_dim=4,
                        feature_count=f, dtype="float32")
            cpp = linattn.compiler._to_cpp(spec, linattn.CompileOptions())[0]
            assert spec.feature_dim == ext.feature_dim(cpp), (name, d, f)
    assert Spec(feature_map="taylor2", key_dim=16).feature_dim == 273
    assert Spec(feature_map="taylor2_symmetric", key_dim=16).feature_dim \
        == 153


@pytest.mark.parametrize(
    "name,per_head",
    [(n, False) for n in FEATURE_MAPS] + [(n, True) for n in WEIGHTED_MAPS],
    ids=lambda x: x if isinstance(x, str) else ("heads" if x else "shared"))
def test_reference_map_matches_cpp(name, per_head, rng):
    B, H, T, d, f = 2, 3, 5, 6, 4
    x = rng.standard_normal((B, H, T, d))
    heads = H if per_head else None
    w = b = None
    if name in ("hedgehog", "hedgehog_joint"):
        w, b = hedgehog_weights(rng, d, f if name == "hedgehog" else d,
                                heads=heads, dtype=np.float64)
    elif name.startswith("performer"):
        w = rng.standard_normal(((H,) if per_head else ()) + (f, d))
    got = reference.feature_map(name, x, w, b)
    want = ext.cref.feature_map(getattr(ext.FeatureMap, name), x, w, b)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-14)


def test_reference_map_identities(rng):
    # MATH.md 3: Taylor features give phi(q).phi(k) = 1 + s + s^2/2 with
    # s = q.k/sqrt(d); each hedgehog half sums to 1 (the joint one sums to
    # 1 as a whole); Performer's features estimate exp(q.k/sqrt(d)).
    d = 6
    q, k = rng.standard_normal((2, d)) / 2
    s = q @ k / math.sqrt(d)
    for name in ("taylor2", "taylor2_symmetric"):
        pq, pk = (reference.feature_map(name, x) for x in (q, k))
        assert pq.shape == (linattn.compiler.feature_map_width(name, d),)
        assert pq @ pk == pytest.approx(1 + s + s * s / 2, rel=1e-12)
    w, b = hedgehog_weights(rng, d, 5, dtype=np.float64)
    p = reference.feature_map("hedgehog", q, w, b)
    np.testing.assert_allclose([p[:5].sum(), p[5:].sum()], [1, 1])
    wj, bj = hedgehog_weights(rng, d, d, dtype=np.float64)
    assert reference.feature_map("hedgehog_joint", q, wj, bj).sum() == \
        pytest.approx(1.0)
    w = performer_weights(rng, d, 20000, np.float64)
    for name in ("performer", "performer_hyperbolic"):
        est = reference.feature_map(name, q, w) @ reference.feature_map(
            name, k, w)
        assert est == pytest.approx(math.exp(s), rel=0.03), name


def test_map_argument_errors(rng):
    d, f = 16, 8
    q = (rng.standard_normal((1, 9, 2, d)) / 2).astype(np.float32)
    v = rng.standard_normal((1, 9, 2, 8)).astype(np.float32)
    w, b = hedgehog_weights(rng, d, f)
    hh = Spec(feature_map="hedgehog", normalized=True)
    # A missing weight, before anything compiles and from a compiled kernel.
    with pytest.raises(ValueError, match="map_weight: feature map 'hedgehog' "
                       r"needs a weight of shape \[d, f\]"):
        linattn.attention(hh, q, q, v)
    perf = linattn.compile(Spec(feature_map="performer", feature_count=8,
                                key_dim=d, value_dim=8, dtype="float32",
                                normalized=True))
    with pytest.raises(ValueError, match="map_weight: feature map "
                       r"'performer' needs a weight of shape \[m, d\]"):
        perf(q, q, v)
    # Weights for maps without weights.
    for name in ("relu", "taylor2"):
        with pytest.raises(ValueError, match=f"map_weight: feature map "
                           f"'{name}' takes no weights"):
            linattn.attention(Spec(feature_map=name), q, q, v, map_weight=w)
    with pytest.raises(ValueError, match="key_map_bias: feature map "
                       "'identity' takes no weights"):
        linattn.attention(Spec(), q, q, v, key_map_bias=b)
    # Wrong shapes and dtypes, from the runtime, named as the arguments.
    with pytest.raises(ValueError, match=r"map_weight: expected shape "
                       r"\[16, 8\] \(shared\) or \[2, 16, 8\]"):
        linattn.attention(hh.replace(feature_count=f), q, q, v,
                          map_weight=w[:8])
    with pytest.raises(ValueError, match=r"map_bias: expected shape \[8\]"):
        linattn.attention(hh, q, q, v, map_weight=w, map_bias=b[:4])
    with pytest.raises(ValueError, match=r"key_map_weight: expected shape"):
        linattn.attention(hh, q, q, v, map_weight=w, key_map_weight=w.T)
    with pytest.raises(ValueError, match="map_weight: dtype f64 does not "
                       "match the kernel's f32"):
        linattn.attention(hh, q, q, v, map_weight=w.astype(np.float64))
    with pytest.raises(ValueError, match="map_bias: feature map 'performer' "
                       "takes no bias"):
        perf(q, q, v, map_weight=performer_weights(rng, d, 8), map_bias=b)
    with pytest.raises(ValueError, match="key_map_bias: given without "
                       "key_map_weight"):
        linattn.attention(hh, q, q, v, map_weight=w, key_map_bias=b)
    with pytest.raises(ValueError, match=r"map_weight: expected shape \[d, f\]"
                       r" or \[Hq, d, f\]"):
        linattn.attention(hh, q, q, v, map_weight=b)
    with pytest.raises(TypeError, match="'map_weight' must be a NumPy array"):
        linattn.attention(hh, q, q, v, map_weight=[[1.0]])
    # States of width d instead of D_phi = 2f = 16 (here d = 16 too, so use
    # taylor2: D_phi = 273).
    t2 = Spec(feature_map="taylor2", decay="vector")
    g = np.full((1, 9, 2, d), -0.1, np.float32)
    with pytest.raises(ValueError, match="gate: expected shape"):
        linattn.attention(t2, q, q, v, gate=g)
    with pytest.raises(ValueError, match="initialState: expected shape"):
        linattn.attention(t2.replace(decay="none"), q, q, v,
                          initial_state=np.zeros((1, 2, d, 8), np.float32))
    # The reference names the same arguments.
    with pytest.raises(ValueError, match="map_weight: required for feature "
                       "map 'hedgehog'"):
        reference.run(hh, q, q, v)
    with pytest.raises(ValueError, match="map_weight: feature map 'relu' "
                       "takes no parameters"):
        reference.run(Spec(feature_map="relu"), q, q, v, map_weight=w)
    with pytest.raises(ValueError, match=r"key_map_weight: expected shape "
                       r"\[16, f\]"):
        reference.run(hh, q, q, v, map_weight=w, key_map_weight=w.T)


def test_spec_feature_count_validation():
    assert Spec(feature_map="hedgehog", feature_count=8).feature_count == 8
    assert Spec(feature_map="hedgehog_joint", key_dim=8,
                feature_count=8).feature_dim == 16
    with pytest.raises(ValueError, match="'relu' takes none, so it must be 0"):
        Spec(feature_map="relu", feature_count=4)
    with pytest.raises(ValueError, match="'taylor2' takes none"):
        Spec(feature_map="taylor2", feature_count=4)
    with pytest.raises(ValueError, match="must be an integer >= 0"):
        Spec(feature_map="hedgehog", feature_count=-1)
    with pytest.raises(ValueError, match="must be an integer >= 0"):
        Spec(feature_map="hedgehog", feature_count=2.5)
    with pytest.raises(ValueError, match="must be 0 or key_dim = 8"):
        Spec(feature_map="hedgehog_joint", key_dim=8, feature_count=4)
    with pytest.raises(ValueError, match=r"compile\(\) needs "
                       r"Spec.feature_count >= 1 for feature map 'hedgehog'"):
        linattn.compile(Spec(feature_map="hedgehog", key_dim=8, value_dim=8,
                             dtype="float32"))
    with pytest.raises(ValueError, match="Spec.feature_map = 'dpfp'"):
        Spec(feature_map="dpfp")


def test_torch_tensors(rng):
    torch = pytest.importorskip("torch")
    spec = Spec(feature_map="hedgehog", decay="scalar", normalized=True)
    q, k, v, gate, s0 = draw(rng, spec, 2, 37, 2, 16, 16, 16)
    w, b = hedgehog_weights(rng, 16, 8)
    t = torch.from_numpy
    o, (s, z) = linattn.attention(
        spec, t(q), t(k), t(v), gate=t(gate),
        initial_state=(t(s0[0]), t(s0[1])), output_final_state=True,
        map_weight=t(w), map_bias=t(b))
    assert isinstance(o, torch.Tensor) and s.shape == (2, 2, 16, 16)
    ro, rs, rz = reference.run(spec, q, k, v, gate=gate, initial_state=s0,
                               map_weight=w, map_bias=b)
    check_close("o", o, ro, "float32")
    check_close("final_state", s, rs, "float32")
    check_close("final_normalizer", z, rz, "float32")
