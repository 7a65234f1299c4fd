"""Pure-NumPy float64 reference of the linattn math (``shared/MATH.md``).

The token-by-token recurrence of MATH.md sections 2.3, 4, 5.1 and 8, the
definition every kernel is checked against:

    S_t = G_t (.) S_{t-1} + k_t^T u_t,   o_t = q_t S_t   [/(q_t . z_t + eps)]

with ``u_t = v_t`` for the decays none / constant / scalar / vector, and the
delta-rule write ``u_t = beta_t (v_t - k_t Sbar_t)``, ``Sbar_t = alpha_t
S_{t-1}`` for delta / gated_delta. ``q`` is ``scale * phi(q)``, ``k`` is
``phi(k)``. Gates are log-decays ``g <= 0`` (``-inf`` is a hard reset); data-
dependent gates are clamped from below at ``clamp_min`` when given. The
normalized form carries ``z`` as the extra state column of ``[V | 1]``
(MATH.md 2.5), so it decays (and, for the delta rules, is overwritten) like
S. ``exclusive`` reads ``q_t (G_t (.) S_{t-1})``: after the decay of step t,
before token t is written. Non-causal attention reads ``S_T`` everywhere.

Everything is vectorized over batch and heads; the loop runs over time, so
keep T in the hundreds for tests.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

from .compiler import Spec

__all__ = ["attention", "run", "log_decay_schedule", "alibi_slopes",
           "feature_map", "ratio"]


def alibi_slopes(num_heads: int) -> np.ndarray:
    """ALiBi slopes (MATH.md 4.b), including the non-power-of-two rule."""
    pow2 = 1
    while pow2 * 2 <= num_heads:
        pow2 *= 2
    slopes = [2.0 ** (-8.0 * (i + 1) / pow2) for i in range(pow2)]
    i = 0
    while len(slopes) < num_heads:
        slopes.append(2.0 ** (-8.0 * (2 * i + 1) / (2 * pow2)))
        i += 1
    return np.array(slopes[:num_heads])


def log_decay_schedule(schedule: str, num_heads: int, layer: int = 0,
                       num_layers: int = 1) -> np.ndarray:
    """ln(lambda_h), h = 0..H-1, of a MATH.md 4.b schedule."""
    h = np.arange(num_heads, dtype=np.float64)
    if schedule == "retnet":
        return np.log1p(-np.exp2(-5.0 - h))
    if schedule == "retnet_linspace":
        lo, hi = math.log(1 / 32), math.log(1 / 512)
        frac = h / (num_heads - 1) if num_heads > 1 else np.zeros_like(h)
        return np.log1p(-np.exp(lo + (hi - lo) * frac))
    if schedule == "transnormer":
        return -(8.0 * h / num_heads) * (1.0 - layer / num_layers)
    if schedule == "lightning":
        depth = layer / (num_layers - 1) if num_layers > 1 else 0.0
        return -alibi_slopes(num_heads) * (1.0 - depth + 1e-5)
    raise ValueError(f"linattn.reference: unknown schedule {schedule!r}")


_WEIGHTED = ("hedgehog", "hedgehog_joint", "performer",
             "performer_hyperbolic")


def _softmax(y: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, max-subtracted."""
    e = np.exp(y - y.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _taylor2(x: np.ndarray, symmetric: bool) -> np.ndarray:
    """Based: [1, x / d^(1/4), second-order terms] (MATH.md 3)."""
    d = x.shape[-1]
    rd = math.sqrt(d)
    parts = [np.ones(x.shape[:-1] + (1,)), x / math.sqrt(rd)]
    if symmetric:
        i, j = np.triu_indices(d, 1)  # i < j in row-major order
        parts += [x * x / (math.sqrt(2.0) * rd), x[..., i] * x[..., j] / rd]
    else:
        outer = x[..., :, None] * x[..., None, :]
        parts.append(outer.reshape(x.shape[:-1] + (d * d,)) /
                     (math.sqrt(2.0) * rd))
    return np.concatenate(parts, axis=-1)


def _check_map_params(name, x, weight, bias, wname, bname):
    """Validates the parameters of map ``name`` for x [..., d]; returns
    (weight, bias) as float64 arrays shaped to broadcast against x (a
    per-head weight [H, a, b] against x [B, H, T, d])."""
    d = x.shape[-1]
    if name not in _WEIGHTED:
        for n, t in ((wname, weight), (bname, bias)):
            if t is not None:
                _err(f"{n}: feature map '{name}' takes no parameters")
        return None, None
    if weight is None:
        _err(f"{wname}: required for feature map '{name}'")
    w = to_numpy(weight)
    b = to_numpy(bias)
    performer = name.startswith("performer")
    if performer and b is not None:
        _err(f"{bname}: feature map '{name}' takes no bias")
    per_head = w.ndim == 3 or (b is not None and b.ndim == 2)
    if per_head:
        if x.ndim != 4:
            _err(f"{wname}: per-head weights need x [B, H, T, d], got shape "
                 f"{list(x.shape)}")
        heads = x.shape[1]
        for n, t, rank in ((wname, w, 3), (bname, b, 2)):
            if t is not None and (t.ndim != rank or t.shape[0] != heads):
                _err(f"{n}: expected a leading head dim of {heads} (rank "
                     f"{rank}), got shape {list(t.shape)}")
        w_shape = list(w.shape[1:])
    else:
        if w.ndim != 2:
            _err(f"{wname}: expected a rank-2 weight for feature map "
                 f"'{name}', got shape {list(w.shape)}")
        w_shape = list(w.shape)
    if performer:
        if w_shape[1] != d or w_shape[0] < 1:
            _err(f"{wname}: expected shape [m, {d}] for feature map "
                 f"'{name}', got {w_shape}")
    else:
        f = d if name == "hedgehog_joint" else "f"
        if w_shape[0] != d or w_shape[1] < 1 or \
                (name == "hedgehog_joint" and w_shape[1] != d):
            _err(f"{wname}: expected shape [{d}, {f}] for feature map "
                 f"'{name}', got {w_shape}")
        if b is not None and list(b.shape[int(per_head):]) != [w_shape[1]]:
            _err(f"{bname}: expected shape [{w_shape[1]}] for feature map "
                 f"'{name}', got {list(b.shape[int(per_head):])}")
    if per_head:  # [H, ...] -> [H, 1, ...]: broadcasts over T (and B)
        w = w[:, None]
        b = None if b is None else b[:, None]
    return w, b


def _apply_map(name, x, weight=None, bias=None, wname="weight",
               bname="bias"):
    x = to_numpy(x)
    w, b = _check_map_params(name, x, weight, bias, wname, bname)
    if name == "identity":
        return x
    if name == "elu_plus_one":
        return np.where(x > 0, x + 1.0, np.exp(np.minimum(x, 0.0)))
    if name == "relu":
        return np.maximum(x, 0.0)
    if name in ("taylor2", "taylor2_symmetric"):
        return _taylor2(x, name == "taylor2_symmetric")
    if name in ("hedgehog", "hedgehog_joint"):
        y = np.einsum("...i,...ij->...j", x, w)
        if b is not None:
            y = y + b
        if name == "hedgehog_joint":
            return _softmax(np.concatenate([2 * y, -2 * y], axis=-1))
        return np.concatenate([_softmax(y), _softmax(-y)], axis=-1)
    if name in ("performer", "performer_hyperbolic"):
        m = w.shape[-2]
        xh = x / math.sqrt(math.sqrt(x.shape[-1]))
        half_sq = 0.5 * np.sum(xh * xh, axis=-1, keepdims=True)
        proj = np.einsum("...i,...ri->...r", xh, w)
        if name == "performer":
            return np.exp(proj - half_sq) / math.sqrt(m)
        return np.concatenate([np.exp(proj - half_sq),
                               np.exp(-proj - half_sq)],
                              axis=-1) / math.sqrt(2.0 * m)
    _err(f"unknown feature map {name!r}")


def feature_map(name: str, x, weight=None, bias=None) -> np.ndarray:
    """Feature map ``name`` of MATH.md 3 on the last dim of ``x`` ([..., d]
    -> [..., D_phi]) in float64.

    identity, elu_plus_one, relu (D_phi = d); taylor2 (1 + d + d^2) and
    taylor2_symmetric (1 + d + d(d+1)/2), Based's second-order Taylor
    features; hedgehog: weight [d, f], optional bias [f], [softmax(y),
    softmax(-y)] with y = xW + b (2f); hedgehog_joint: weight [d, d], bias
    [d], softmax([2y, -2y]) (2d); performer: weight [m, d], exp(W x^ -
    |x^|^2/2) / sqrt(m) with x^ = x / d^(1/4) (m); performer_hyperbolic:
    [exp(W x^), exp(-W x^)] exp(-|x^|^2/2) / sqrt(2m) (2m). A weight with a
    leading head dim ([H, d, f], bias [H, f]) needs x [B, H, T, d]: head h
    uses slice h."""
    return _apply_map(name, x, weight, bias)


def ratio(x, ref) -> float:
    """||x - ref||_2 / ||ref||_2 (||x||_2 if ref is all zeros)."""
    x = to_numpy(x)
    ref = to_numpy(ref)
    if x.shape != ref.shape:
        raise ValueError(f"ratio: shapes {list(x.shape)} and "
                         f"{list(ref.shape)} differ")
    den = np.linalg.norm(ref)
    num = np.linalg.norm(x - ref)
    return float(num / den) if den > 0 else float(num)


def to_numpy(x) -> Optional[np.ndarray]:
    """float64 NumPy copy of an array, torch tensor or DLPack tensor."""
    if x is None:
        return None
    if type(x).__module__.split(".")[0] == "torch":
        return x.detach().cpu().double().numpy()
    if not isinstance(x, np.ndarray) and hasattr(x, "__dlpack__"):
        x = np.from_dlpack(x)
    return np.asarray(x).astype(np.float64)


def _to_bhtd(x: np.ndarray, layout: str) -> np.ndarray:
    return np.swapaxes(x, 1, 2) if layout == "bthd" else x


def _err(msg: str):
    raise ValueError("linattn.reference: " + msg)


def _expect(name: str, x: np.ndarray, shape: Sequence[int], note: str = ""):
    if list(x.shape) != list(shape):
        _err(f"{name}: expected shape {list(shape)}{note}, got "
             f"{list(x.shape)}")


def attention(q, k, v, *, decay: str = "none", gate=None, beta=None,
              feature_map_name: str = "identity", scale: Optional[float] = None,
              normalized: bool = False, eps: float = 1e-10,
              causal: bool = True, exclusive: bool = False,
              initial_state=None, initial_normalizer=None, cu_seqlens=None,
              layout: str = "bthd", state_layout: str = "key_major",
              schedule: Optional[str] = None, layer: int = 0,
              num_layers: int = 1, log_decay=None,
              clamp_min: Optional[float] = None, map_weight=None,
              map_bias=None, key_map_weight=None, key_map_bias=None):
    """Runs the reference; returns ``(o, final_state, final_normalizer)``
    (float64; the normalizer is None unless ``normalized``).

    Shapes as in the kernels: q ``[B, T, Hq, Dk]``, k ``[B, T, Hk, Dk]``, v
    ``[B, T, Hv, Dv]`` for ``layout="bthd"`` (``[B, H, T, D]`` for
    ``"bhtd"``), H = max(Hq, Hk, Hv) with each dividing H; gate ``[H]``
    (constant), ``[B, T, H]`` (scalar, gated_delta) or ``[B, T, H, Dk]``
    (vector); beta ``[B, T, H]``; states ``[N, H, Dk, Dv]`` (``[N, H, Dv,
    Dk]`` value-major) and normalizers ``[N, H, Dk]`` with N = B or the
    number of sequences of ``cu_seqlens`` (which needs B = 1).

    With a width-changing feature map (:func:`feature_map`) q and k have
    width d and the gates, states and normalizers width D_phi (written Dk
    above), and the default scale is D_phi^-1/2. ``map_weight`` /
    ``map_bias`` apply to q and, unless ``key_map_weight`` is given, to k;
    per-head ones are ``[Hq, ...]`` (``[Hk, ...]`` for the key ones).
    """
    if layout not in ("bthd", "bhtd"):
        _err(f"layout must be 'bthd' or 'bhtd', got {layout!r}")
    if state_layout not in ("key_major", "value_major"):
        _err(f"state_layout must be 'key_major' or 'value_major', got "
             f"{state_layout!r}")
    q, k, v = (to_numpy(x) for x in (q, k, v))
    for name, x in (("q", q), ("k", k), ("v", v)):
        if x.ndim != 4:
            _err(f"{name}: expected rank 4, got shape {list(x.shape)}")
    q, k, v = (_to_bhtd(x, layout) for x in (q, k, v))
    B, _, T, d = q.shape
    dv = v.shape[3]
    if k.shape[3] != d:
        _err(f"k: key dim {k.shape[3]} does not match q's {d}")
    if k.shape[0] != B or v.shape[0] != B or k.shape[2] != T or \
            v.shape[2] != T:
        _err(f"q, k, v: batch/length differ: {list(q.shape)}, "
             f"{list(k.shape)}, {list(v.shape)} (logical [B, H, T, D])")
    heads = max(q.shape[1], k.shape[1], v.shape[1])
    if any(x.shape[1] == 0 or heads % x.shape[1] for x in (q, k, v)):
        _err(f"heads: q, k, v have {q.shape[1]}, {k.shape[1]}, "
             f"{v.shape[1]}; each must divide the largest")
    if not causal and (decay != "none" or exclusive):
        _err("non-causal attention needs decay 'none' and exclusive=False")
    if normalized and not eps > 0:
        _err(f"eps must be > 0, got {eps}")

    if key_map_bias is not None and key_map_weight is None:
        _err("key_map_bias: given without key_map_weight (k uses map_weight "
             "and map_bias unless key_map_weight is given)")
    q = _apply_map(feature_map_name, q, map_weight, map_bias, "map_weight",
                   "map_bias")
    if key_map_weight is not None:
        k = _apply_map(feature_map_name, k, key_map_weight, key_map_bias,
                       "key_map_weight", "key_map_bias")
    else:
        if map_weight is not None and q.shape[1] != k.shape[1] and (
                np.ndim(to_numpy(map_weight)) == 3 or
                np.ndim(to_numpy(map_bias)) == 2):
            _err(f"map_weight: one map per q head ({q.shape[1]}) cannot be "
                 f"applied to the {k.shape[1]} k heads; pass key_map_weight")
        k = _apply_map(feature_map_name, k, map_weight, map_bias,
                       "map_weight", "map_bias")
    dk = q.shape[3]  # D_phi
    if k.shape[3] != dk:
        _err(f"key_map_weight: k's feature width {k.shape[3]} does not "
             f"match q's {dk}")
    scale = 1.0 / math.sqrt(dk) if scale is None else float(scale)
    q = scale * q
    q, k, v = (np.repeat(x, heads // x.shape[1], axis=1) for x in (q, k, v))
    if normalized:  # the normalizer is the extra value column [V | 1]
        v = np.concatenate([v, np.ones(v.shape[:3] + (1,))], axis=3)

    # Gates as [B, H, T, 1 or Dk] log-decays.
    note = " (layout bthd)" if layout == "bthd" else ""
    g = None
    if decay == "constant":
        if log_decay is not None:
            lg = np.asarray(log_decay, dtype=np.float64)
        elif schedule is not None:
            lg = log_decay_schedule(schedule, heads, layer, num_layers)
        elif gate is not None:
            lg = to_numpy(gate)
        else:
            _err("decay 'constant' needs a schedule, log_decay or a [H] gate")
        _expect("gate", lg, [heads], " (ln lambda per head)")
        g = np.broadcast_to(lg[None, :, None, None], (B, heads, T, 1))
    elif decay in ("scalar", "vector", "gated_delta"):
        if gate is None:
            _err(f"decay '{decay}' needs a gate")
        g = to_numpy(gate)
        if decay == "vector":
            _expect("gate", g, [B, T, heads, dk] if layout == "bthd"
                    else [B, heads, T, dk], note)
            g = _to_bhtd(g, layout)
        else:
            _expect("gate", g, [B, T, heads] if layout == "bthd"
                    else [B, heads, T], note)
            g = (np.swapaxes(g, 1, 2) if layout == "bthd" else g)[..., None]
        if clamp_min is not None:
            g = np.maximum(g, clamp_min)
    elif decay not in ("none", "delta"):
        _err(f"unknown decay {decay!r}")
    elif gate is not None:
        _err(f"decay '{decay}' takes no gate")
    if g is not None and not np.all(g <= 0):
        bad = np.argwhere(~(g <= 0))[0]
        _err(f"gate: value {g[tuple(bad)]} at logical [B, H, T, D] index "
             f"{bad.tolist()} is not a log-decay <= 0")

    delta = decay in ("delta", "gated_delta")
    bt = None
    if delta:
        if beta is None:
            _err(f"decay '{decay}' needs beta")
        bt = to_numpy(beta)
        _expect("beta", bt, [B, T, heads] if layout == "bthd"
                else [B, heads, T], note)
        bt = np.swapaxes(bt, 1, 2) if layout == "bthd" else bt
    elif beta is not None:
        _err(f"decay '{decay}' takes no beta")

    # Sequences: (state index, batch row, begin, length).
    if cu_seqlens is not None:
        off = [int(i) for i in np.asarray(
            cu_seqlens.tolist() if hasattr(cu_seqlens, "tolist")
            else cu_seqlens)]
        if B != 1:
            _err(f"cu_seqlens: packed sequences need batch 1, got {B}")
        if len(off) < 2 or off[0] != 0 or off[-1] != T or \
                any(b < a for a, b in zip(off, off[1:])):
            _err(f"cu_seqlens: must start at 0, be nondecreasing and end at "
                 f"T = {T}, got {off}")
        seqs = [(n, 0, off[n], off[n + 1] - off[n])
                for n in range(len(off) - 1)]
    else:
        seqs = [(b, b, 0, T) for b in range(B)]
    N = len(seqs)

    vm = state_layout == "value_major"
    s_shape = [N, heads, dv, dk] if vm else [N, heads, dk, dv]
    S0 = np.zeros((N, heads, dk, v.shape[3]))
    if initial_state is not None:
        s = to_numpy(initial_state)
        _expect("initial_state", s, s_shape)
        S0[..., :dv] = np.swapaxes(s, 2, 3) if vm else s
    if initial_normalizer is not None:
        if not normalized:
            _err("initial_normalizer: only the normalized form has one")
        z = to_numpy(initial_normalizer)
        _expect("initial_normalizer", z, [N, heads, dk])
        S0[..., dv] = z

    o = np.zeros((B, heads, T, v.shape[3]))
    ST = np.zeros_like(S0)
    if cu_seqlens is None:  # every sequence has length T: all at once
        o[:], ST[:] = _recurrent(q, k, v, g, bt, S0, causal, exclusive)
    else:
        for n, b, t0, length in seqs:
            sl = slice(t0, t0 + length)
            part = lambda x: None if x is None else x[b:b + 1, :, sl]  # noqa
            o_n, s_n = _recurrent(part(q), part(k), part(v), part(g),
                                  part(bt), S0[n:n + 1], causal, exclusive)
            o[b:b + 1, :, sl] = o_n
            ST[n] = s_n[0]

    zT = None
    if normalized:
        o = o[..., :dv] / (o[..., dv:] + eps)
        zT = ST[..., dv].copy()
        ST = ST[..., :dv]
    final = np.swapaxes(ST, 2, 3).copy() if vm else ST.copy()
    o = np.swapaxes(o, 1, 2).copy() if layout == "bthd" else o
    return o, final, zT


def _recurrent(q, k, v, g, beta, S0, causal, exclusive):
    """The recurrence over [N, H, L, D] slices; returns (o, S_L)."""
    S = S0.copy()
    N, H, L, _ = q.shape
    o = np.zeros((N, H, L, v.shape[3]))
    for t in range(L):
        if g is not None:
            S *= np.exp(g[:, :, t])[..., None]  # [N, H, 1 or Dk, 1]
        if causal and exclusive:
            o[:, :, t] = np.einsum("nhk,nhkv->nhv", q[:, :, t], S)
        kt = k[:, :, t]
        u = v[:, :, t]
        if beta is not None:
            u = beta[:, :, t, None] * (u - np.einsum("nhk,nhkv->nhv", kt, S))
        S += kt[..., :, None] * u[..., None, :]
        if causal and not exclusive:
            o[:, :, t] = np.einsum("nhk,nhkv->nhv", q[:, :, t], S)
    if not causal:
        o = np.einsum("nhtk,nhkv->nhtv", q, S)
    return o, S


def run(spec: Spec, q, k, v, gate=None, beta=None, initial_state=None,
        cu_seqlens=None, map_weight=None, map_bias=None, key_map_weight=None,
        key_map_bias=None):
    """The reference for a :class:`~linattn.Spec`; ``initial_state`` may be a
    ``(S, z)`` pair for a normalized spec. Returns ``(o, final_state,
    final_normalizer)`` in float64."""
    s0, z0 = initial_state, None
    if isinstance(initial_state, (tuple, list)):
        s0, z0 = initial_state
    return attention(
        q, k, v, decay=spec.decay, gate=gate, beta=beta,
        feature_map_name=spec.feature_map, scale=spec.scale,
        normalized=spec.normalized, eps=spec.eps, causal=spec.causal,
        exclusive=spec.exclusive, initial_state=s0, initial_normalizer=z0,
        cu_seqlens=cu_seqlens, layout=spec.layout,
        state_layout=spec.state_layout, schedule=spec.schedule,
        layer=spec.layer, num_layers=spec.num_layers,
        log_decay=spec.log_decay, clamp_min=spec.clamp_min,
        map_weight=map_weight, map_bias=map_bias,
        key_map_weight=key_map_weight, key_map_bias=key_map_bias)
