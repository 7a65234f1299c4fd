"""FLA-compatible forward functions.

Same names, argument names and layout as flash-linear-attention
(``fla.ops``): q, k ``[B, T, H, K]``, v ``[B, T, H, V]`` (``head_first=True``
for ``[B, H, T, D]``), log-space gates, ``scale`` defaulting to K^-1/2,
``initial_state`` / final state ``[N, H, K, V]`` float32, ``cu_seqlens`` for
packed variable-length batches (B = 1). Every function returns
``(o, final_state)``; final_state is None unless ``output_final_state``.
Forward only: there is no backward pass yet. NumPy arrays and CPU tensors
run on the CPU; torch CUDA tensors (bfloat16/float16) run a kernel compiled
for their GPU (:mod:`linattn.gpu`).

The general entry point is :func:`attention` with a :class:`~linattn.Spec`.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

import functools

from . import gpu
from .compiler import CompileOptions, Spec, call_cache, compile
from .runtime import _is_torch, check_map_args, check_tensor, resolve_spec


def attention(spec: Spec, q, k, v, gate=None, beta=None, initial_state=None,
              output_final_state: bool = False, cu_seqlens=None,
              num_threads: Optional[int] = None,
              options: Optional[CompileOptions] = None, map_weight=None,
              map_bias=None, key_map_weight=None, key_map_bias=None,
              **option_overrides):
    """Runs any spec: fills its dims/dtypes from the tensors, compiles it (or
    takes the cached kernel) and calls it. Returns ``(o, final_state)``.

    A feature map with weights (hedgehog, hedgehog_joint, performer,
    performer_hyperbolic) takes ``map_weight`` (and ``map_bias``), applied
    to q and, unless ``key_map_weight`` / ``key_map_bias`` are given, to k;
    see :meth:`linattn.Kernel.__call__` for the shapes. q and k have width d
    (``key_dim``); states, normalizers and vector gates have width D_phi
    (``Spec.feature_dim``). ``Spec.feature_count`` 0 takes f (m) from
    ``map_weight``.

    When q is a torch CUDA tensor the spec is JIT-compiled for that GPU and
    run there (:mod:`linattn.gpu`: bfloat16/float16 q, k, v; forward only).
    ``options``, the CPU option overrides and ``num_threads`` then do not
    apply; the GPU options are the overrides ``gpu_chunk_size``,
    ``block_v``, ``warps``, ``stages`` and ``mma`` (which CPU calls
    ignore)."""
    if getattr(q, "is_cuda", False) is True and _is_torch(q):
        return gpu.attention(spec, q, k, v, gate=gate, beta=beta,
                             initial_state=initial_state,
                             output_final_state=output_final_state,
                             cu_seqlens=cu_seqlens, map_weight=map_weight,
                             map_bias=map_bias, key_map_weight=key_map_weight,
                             key_map_bias=key_map_bias, options=options,
                             **option_overrides)
    if option_overrides and any(n in option_overrides
                                for n in gpu.OPTION_NAMES):
        option_overrides = {n: x for n, x in option_overrides.items()
                            if n not in gpu.OPTION_NAMES}
    # Fast path: the kernel of an earlier call with the same spec, head dims,
    # dtypes and options (the tensors are still checked by the kernel call).
    try:
        key = (spec, type(q), q.dtype, q.shape[-1], v.shape[-1],
               None if gate is None else gate.dtype,
               None if map_weight is None else tuple(map_weight.shape),
               options, tuple(sorted(option_overrides.items())))
        kernel = call_cache.get(key)
    except (AttributeError, IndexError, TypeError):
        key = kernel = None
    if kernel is None:
        for name, x in (("q", q), ("k", k), ("v", v), ("gate", gate),
                        ("beta", beta)):
            check_tensor(name, x)
        # Before compiling: a hedgehog/performer spec without map_weight
        # has no feature count to compile with.
        check_map_args(spec, map_weight, map_bias, key_map_weight,
                       key_map_bias)
        kernel = compile(resolve_spec(spec, q, v, gate, map_weight), options,
                         **option_overrides)
        if key is not None:
            call_cache[key] = kernel
    return kernel(q, k, v, gate=gate, beta=beta, initial_state=initial_state,
                  output_final_state=output_final_state,
                  cu_seqlens=cu_seqlens, num_threads=num_threads,
                  map_weight=map_weight, map_bias=map_bias,
                  key_map_weight=key_map_weight, key_map_bias=key_map_bias)


def _layout(head_first: bool) -> str:
    return "bhtd" if head_first else "bthd"


@functools.lru_cache(maxsize=256)
def _spec(**fields) -> Spec:
    """Spec construction validates every field; the FLA functions ask for the
    same few specs over and over."""
    return Spec(**fields)


def _run(spec, q, k, v, gate, beta, initial_state, output_final_state,
         cu_seqlens, chunk_size):
    return attention(spec, q, k, v, gate=gate, beta=beta,
                     initial_state=initial_state,
                     output_final_state=output_final_state,
                     cu_seqlens=cu_seqlens, chunk_size=chunk_size)


def chunk_simple_gla(q, k, v, g=None, g_gamma=None, scale=None,
                     initial_state=None, output_final_state=False,
                     cu_seqlens=None, head_first=False, chunk_size=64):
    """Scalar-gated linear attention: ``g`` [B, T, H] per-step log-gates, or
    ``g_gamma`` [H] constant per-head log-decays (or neither: no decay)."""
    if g is not None and g_gamma is not None:
        raise ValueError("linattn: give g or g_gamma, not both")
    decay = "scalar" if g is not None else (
        "constant" if g_gamma is not None else "none")
    spec = _spec(decay=decay, scale=scale, layout=_layout(head_first))
    return _run(spec, q, k, v, g if g is not None else g_gamma, None,
                initial_state, output_final_state, cu_seqlens, chunk_size)


def chunk_gla(q, k, v, g, scale=None, initial_state=None,
              output_final_state=False, cu_seqlens=None, head_first=False,
              chunk_size=64):
    """Gated linear attention: ``g`` [B, T, H, K] per-key log-gates."""
    spec = _spec(decay="vector", scale=scale, layout=_layout(head_first))
    return _run(spec, q, k, v, g, None, initial_state, output_final_state,
                cu_seqlens, chunk_size)


def chunk_linear_attn(q, k, v, scale=None, initial_state=None,
                      output_final_state=False, normalize=True,
                      cu_seqlens=None, head_first=False, chunk_size=64):
    """Plain causal linear attention. ``normalize`` (FLA's default True)
    divides by scale * q . cumsum(k) + 1e-10."""
    spec = _spec(decay="none", scale=scale, normalized=bool(normalize),
                layout=_layout(head_first))
    o, final = _run(spec, q, k, v, None, None, initial_state,
                    output_final_state, cu_seqlens, chunk_size)
    if normalize and final is not None:
        final = final[0]  # FLA returns the state only
    return o, final


def chunk_retention(q, k, v, scale=None, initial_state=None,
                    output_final_state=False, cu_seqlens=None,
                    head_first=False, chunk_size=64):
    """RetNet: constant per-head decay 1 - 2^(-5-h)."""
    spec = _spec(decay="constant", schedule="retnet", scale=scale,
                layout=_layout(head_first))
    return _run(spec, q, k, v, None, None, initial_state, output_final_state,
                cu_seqlens, chunk_size)


def chunk_lightning_attn(q, k, v, layer_idx, num_layers, scale=None,
                         initial_state=None, output_final_state=False,
                         cu_seqlens=None, head_first=False, chunk_size=64):
    """Lightning attention as FLA implements it: constant per-head decay
    exp(-(8h/H)(1 - layer_idx/num_layers)) (the "transnormer" schedule)."""
    spec = _spec(decay="constant", schedule="transnormer", layer=layer_idx,
                num_layers=num_layers, scale=scale,
                layout=_layout(head_first))
    return _run(spec, q, k, v, None, None, initial_state, output_final_state,
                cu_seqlens, chunk_size)


def l2norm(x, eps: float = 1e-6):
    """x / sqrt(sum(x^2, -1) + eps) in float32 (MATH.md 9.6), same library
    and dtype as x."""
    if _is_torch(x):
        xf = x.float()
        y = xf * (xf * xf).sum(-1, keepdim=True).add(eps).rsqrt()
        return y.to(x.dtype)
    xf = np.asarray(x, dtype=np.float32)
    y = xf / np.sqrt((xf * xf).sum(-1, keepdims=True) + eps)
    return y.astype(x.dtype)


def chunk_delta_rule(q, k, v, beta, scale=None, initial_state=None,
                     output_final_state=False, cu_seqlens=None,
                     head_first=False, use_qk_l2norm_in_kernel=False,
                     chunk_size=64):
    """DeltaNet: ``beta`` [B, T, H] write strengths; keys should be
    L2-normalized (``use_qk_l2norm_in_kernel`` does it here)."""
    if use_qk_l2norm_in_kernel:
        q, k = l2norm(q), l2norm(k)
    spec = _spec(decay="delta", scale=scale, layout=_layout(head_first))
    return _run(spec, q, k, v, None, beta, initial_state, output_final_state,
                cu_seqlens, chunk_size)


def chunk_gated_delta_rule(q, k, v, g, beta, scale=None, initial_state=None,
                           output_final_state=False, cu_seqlens=None,
                           head_first=False, use_qk_l2norm_in_kernel=False,
                           chunk_size=64):
    """Gated DeltaNet: ``g`` [B, T, H] log-gates and ``beta`` [B, T, H]."""
    if use_qk_l2norm_in_kernel:
        q, k = l2norm(q), l2norm(k)
    spec = _spec(decay="gated_delta", scale=scale, layout=_layout(head_first))
    return _run(spec, q, k, v, g, beta, initial_state, output_final_state,
                cu_seqlens, chunk_size)


def fused_recurrent_linear_attn(q, k, v, scale=None, initial_state=None,
                                output_final_state=False, normalize=False,
                                cu_seqlens=None, head_first=False):
    """As :func:`chunk_linear_attn`, with FLA's recurrent default
    normalize=False (same math; the kernels are always chunked)."""
    return chunk_linear_attn(q, k, v, scale, initial_state,
                             output_final_state, normalize, cu_seqlens,
                             head_first)


# The fused-recurrent kernels of FLA compute the same forward as the chunked
# ones; here both names run the same (chunked) kernel.
fused_recurrent_simple_gla = chunk_simple_gla
fused_recurrent_gla = chunk_gla
fused_recurrent_retention = chunk_retention
fused_recurrent_delta_rule = chunk_delta_rule
fused_recurrent_gated_delta_rule = chunk_gated_delta_rule
