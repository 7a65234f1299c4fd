"""Specs and compilation: what a kernel computes, and how it is compiled.

A :class:`Spec` holds everything the ``linattn.attention`` op can express
(decay/gate kind, feature map, schedule, normalization, causality, layouts,
dtype, head dims). :func:`compile` turns a complete spec into a
:class:`~linattn.runtime.Kernel` for this CPU; compiled kernels are cached per
(spec, options), so asking again is free.

This module imports the C++ extension lazily, so :mod:`linattn.reference`
(pure NumPy) can use :class:`Spec` without it.
"""

from __future__ import annotations

import dataclasses
import math
import operator
import threading
from dataclasses import dataclass
from typing import Optional, Tuple

DECAYS = ("none", "constant", "scalar", "vector", "delta", "gated_delta")
FEATURE_MAPS = ("identity", "elu_plus_one", "relu", "taylor2",
                "taylor2_symmetric", "hedgehog", "hedgehog_joint", "performer",
                "performer_hyperbolic")
#: Feature maps that change the width of q and k (MATH.md 3): the states,
#: normalizers and vector gates have width ``feature_dim`` (D_phi).
WIDTH_CHANGING_MAPS = FEATURE_MAPS[3:]
#: Feature maps that take a weight (``map_weight`` at call time).
WEIGHTED_MAPS = ("hedgehog", "hedgehog_joint", "performer",
                 "performer_hyperbolic")
SCHEDULES = ("retnet", "retnet_linspace", "transnormer", "lightning")
LAYOUTS = ("bthd", "bhtd")
STATE_LAYOUTS = ("key_major", "value_major")
DTYPES = ("float32", "float64", "float16", "bfloat16")

_DTYPE_ALIASES = {
    "f32": "float32", "fp32": "float32", "float": "float32",
    "f64": "float64", "fp64": "float64", "double": "float64",
    "f16": "float16", "fp16": "float16", "half": "float16",
    "bf16": "bfloat16",
}
_FEATURE_MAP_ALIASES = {"elu+1": "elu_plus_one", "1+elu": "elu_plus_one",
                        "elu": "elu_plus_one"}


def feature_map_width(name: str, d: int, f: int = 0) -> int:
    """Output width D_phi of feature map ``name`` on inputs of width ``d``
    (``f``: the weight's feature count, f for hedgehog, m for performer;
    hedgehog_joint ignores it)."""
    if name in ("identity", "elu_plus_one", "relu"):
        return d
    if name == "taylor2":
        return 1 + d + d * d
    if name == "taylor2_symmetric":
        return 1 + d + d * (d + 1) // 2
    if name == "hedgehog":
        return 2 * f
    if name == "hedgehog_joint":
        return 2 * d
    if name == "performer":
        return f
    if name == "performer_hyperbolic":
        return 2 * f
    raise ValueError(f"linattn: unknown feature map {name!r}")
#: Runtime dtype names (the C++ DType enum).
RUNTIME_DTYPE = {"float32": "f32", "float64": "f64", "float16": "f16",
                 "bfloat16": "bf16"}


def dtype_name(dtype) -> str:
    """Canonical dtype name ("float32", ...) of a string, NumPy or torch dtype."""
    if dtype is None:
        raise ValueError("linattn: dtype is not set")
    name = str(dtype)
    name = name.replace("torch.", "")
    if name.startswith("<class"):  # np.float32 the type
        name = getattr(dtype, "__name__", name)
    name = _DTYPE_ALIASES.get(name, name)
    if name not in DTYPES:
        raise ValueError(f"linattn: unsupported dtype {dtype!r}; expected one "
                         f"of {', '.join(DTYPES)}")
    return name


def _check(field: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"linattn: Spec.{field} = {value!r} is not one of "
                         f"{', '.join(map(repr, allowed))}")


@dataclass(frozen=True)
class Spec:
    """Static description of one linear-attention op (see the README table).

    Fields left as None (``key_dim``, ``value_dim``, ``dtype``,
    ``gate_dtype``) are taken from the tensors by :func:`linattn.attention`.
    The default layout is FLA's ``[B, T, H, D]`` (``"bthd"``).
    """

    decay: str = "none"
    feature_map: str = "identity"
    #: Constant decay: where ln(lambda_h) comes from. A schedule name, an
    #: explicit per-head list (``log_decay``), or neither: a ``[H]`` gate
    #: tensor at call time.
    schedule: Optional[str] = None
    layer: int = 0
    num_layers: int = 1
    log_decay: Optional[Tuple[float, ...]] = None
    #: Data-dependent gates are clamped from below at this log-gate.
    clamp_min: Optional[float] = None
    normalized: bool = False
    eps: float = 1e-10
    #: Query scale; None means Dk^-1/2.
    scale: Optional[float] = None
    causal: bool = True
    exclusive: bool = False
    layout: str = "bthd"
    state_layout: str = "key_major"
    dtype: Optional[str] = None
    gate_dtype: Optional[str] = None
    #: Width d of q and k as passed in (before the feature map).
    key_dim: Optional[int] = None
    value_dim: Optional[int] = None
    #: Feature count of a map with a weight: f for hedgehog (weight
    #: ``[d, f]``), m for performer / performer_hyperbolic (weight
    #: ``[m, d]``). 0 means "from ``map_weight``" at call time (and d for
    #: hedgehog_joint); maps without weights need 0.
    feature_count: int = 0

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        set_("feature_map", _FEATURE_MAP_ALIASES.get(self.feature_map,
                                                     self.feature_map))
        _check("decay", self.decay, DECAYS)
        _check("feature_map", self.feature_map, FEATURE_MAPS)
        if self.schedule is not None:
            _check("schedule", self.schedule, SCHEDULES)
        _check("layout", self.layout, LAYOUTS)
        _check("state_layout", self.state_layout, STATE_LAYOUTS)
        if self.dtype is not None:
            set_("dtype", dtype_name(self.dtype))
        if self.gate_dtype is not None:
            set_("gate_dtype", dtype_name(self.gate_dtype))
        if self.log_decay is not None:
            set_("log_decay", tuple(float(x) for x in self.log_decay))
        if (self.schedule is not None or self.log_decay is not None) and \
                self.decay != "constant":
            raise ValueError("linattn: Spec.schedule/log_decay need decay "
                             f"'constant', got {self.decay!r}")
        if self.schedule is not None and self.log_decay is not None:
            raise ValueError("linattn: give Spec.schedule or Spec.log_decay, "
                             "not both")
        if not 0 <= self.layer < self.num_layers:
            raise ValueError(f"linattn: Spec.layer = {self.layer} must be in "
                             f"[0, num_layers = {self.num_layers})")
        if self.normalized and not self.eps > 0:
            raise ValueError(f"linattn: Spec.eps = {self.eps} must be > 0")
        if not self.causal and (self.decay != "none" or self.exclusive):
            raise ValueError("linattn: non-causal attention needs decay "
                             "'none' and exclusive=False")
        for f in ("key_dim", "value_dim"):
            v = getattr(self, f)
            if v is not None and (int(v) != v or v <= 0):
                raise ValueError(f"linattn: Spec.{f} = {v!r} must be a "
                                 "positive integer")
        fc = self.feature_count
        try:
            fc = -1 if isinstance(fc, bool) else operator.index(fc)
        except TypeError:
            fc = -1
        if fc < 0:
            raise ValueError("linattn: Spec.feature_count = "
                             f"{self.feature_count!r} must be an integer >= 0")
        set_("feature_count", fc)
        if fc and self.feature_map not in WEIGHTED_MAPS:
            raise ValueError(f"linattn: Spec.feature_count = {fc} needs a "
                             "feature map with a weight ("
                             f"{', '.join(WEIGHTED_MAPS)}); "
                             f"'{self.feature_map}' takes none, so it must "
                             "be 0")
        if fc and self.feature_map == "hedgehog_joint" and \
                self.key_dim is not None and fc != self.key_dim:
            raise ValueError(f"linattn: Spec.feature_count = {fc} must be 0 "
                             "or key_dim = "
                             f"{self.key_dim} for feature map "
                             "'hedgehog_joint' (its weight is [d, d])")

    @property
    def has_gate(self) -> bool:
        """Whether the op reads a gate tensor at call time."""
        return self.decay in ("scalar", "vector", "gated_delta") or (
            self.decay == "constant" and self.schedule is None
            and self.log_decay is None)

    @property
    def has_beta(self) -> bool:
        return self.decay in ("delta", "gated_delta")

    @property
    def has_map_weight(self) -> bool:
        """Whether the feature map reads ``map_weight`` at call time."""
        return self.feature_map in WEIGHTED_MAPS

    @property
    def feature_dim(self) -> Optional[int]:
        """D_phi, the key width of the states, normalizers and vector gates
        (``key_dim`` for the elementwise maps); None while ``key_dim`` (or
        the feature count of hedgehog/performer) is not known."""
        if self.key_dim is None:
            return None
        f = self.feature_count
        if self.feature_map == "hedgehog_joint":
            f = f or self.key_dim
        elif self.feature_map in WEIGHTED_MAPS and not f:
            return None
        return feature_map_width(self.feature_map, self.key_dim, f)

    def effective_scale(self, key_dim: int) -> float:
        """The query scale; the default is D_phi^-1/2, where ``key_dim``
        is D_phi (the width after the feature map)."""
        return 1.0 / math.sqrt(key_dim) if self.scale is None else self.scale

    def replace(self, **changes) -> "Spec":
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class CompileOptions:
    """Code-generation options (see include/linattn/Runtime/Runtime.h)."""

    chunk_size: int = 64
    sub_chunk_size: int = 16
    tile_m: int = 6
    tile_n: int = 0
    vector_width: int = 0
    opt_level: int = 3


def _ext():
    from . import _linattn  # noqa: PLC0415 (lazy: reference needs no C++)
    return _linattn


def _to_cpp(spec: Spec, options: CompileOptions):
    ext = _ext()
    missing = [f for f in ("key_dim", "value_dim", "dtype")
               if getattr(spec, f) is None]
    if missing:
        raise ValueError("linattn: compile() needs a complete spec; "
                         f"{', '.join(missing)} not set")
    s = ext.AttentionSpec()
    s.decay = getattr(ext.DecayKind, spec.decay)
    s.feature_map = getattr(ext.FeatureMap, spec.feature_map)
    s.schedule = (getattr(ext.Schedule, spec.schedule)
                  if spec.schedule is not None else None)
    s.layer, s.num_layers = int(spec.layer), int(spec.num_layers)
    s.log_decay = list(spec.log_decay or ())
    s.clamp_min = spec.clamp_min
    s.normalized, s.eps = bool(spec.normalized), float(spec.eps)
    s.scale = None if spec.scale is None else float(spec.scale)
    s.causal, s.exclusive = bool(spec.causal), bool(spec.exclusive)
    s.layout = getattr(ext.Layout, spec.layout)
    s.state_value_major = spec.state_layout == "value_major"
    s.dtype = getattr(ext.DType, RUNTIME_DTYPE[spec.dtype])
    s.gate_dtype = getattr(ext.DType,
                           RUNTIME_DTYPE[spec.gate_dtype or "float32"])
    s.key_dim, s.value_dim = int(spec.key_dim), int(spec.value_dim)
    if spec.feature_map in ("hedgehog", "performer", "performer_hyperbolic") \
            and spec.feature_count < 1:
        raise ValueError(f"linattn: compile() needs Spec.feature_count >= 1 "
                         f"for feature map '{spec.feature_map}' (f of the "
                         "[d, f] hedgehog weight, m of the [m, d] performer "
                         "weight)")
    s.feature_count = int(spec.feature_count)
    o = ext.CompileOptions()
    for f in dataclasses.fields(options):
        setattr(o, f.name, int(getattr(options, f.name)))
    return s, o


_cache: dict = {}
_cache_lock = threading.Lock()
_compile_count = 0


def compile(spec: Spec, options: Optional[CompileOptions] = None,
            **option_overrides):
    """Compiles ``spec`` for this CPU (about a second), or returns the cached
    kernel of an earlier call with the same spec and options.

    Raises ValueError for an invalid spec or options and NotImplementedError
    for a spec the code generator does not support.
    """
    from .runtime import Kernel  # noqa: PLC0415

    options = dataclasses.replace(options or CompileOptions(),
                                  **option_overrides)
    if spec.gate_dtype is None:  # same kernel as an explicit float32
        spec = spec.replace(gate_dtype="float32")
    key = (spec, options)
    with _cache_lock:
        kernel = _cache.get(key)
    if kernel is not None:
        return kernel
    cpp_spec, cpp_options = _to_cpp(spec, options)
    cpp_kernel = _ext().Kernel.compile(cpp_spec, cpp_options)
    kernel = Kernel(spec, options, cpp_kernel)
    global _compile_count
    with _cache_lock:
        # Two threads may have compiled the same spec; keep the first.
        kernel = _cache.setdefault(key, kernel)
        _compile_count += 1
    return kernel


def cache_info() -> dict:
    """Number of cached kernels and of compilations so far."""
    with _cache_lock:
        return {"kernels": len(_cache), "compilations": _compile_count}


#: attention()'s fast path: (spec, tensor dims/dtypes, options) -> Kernel.
call_cache: dict = {}


def clear_cache() -> None:
    """Drops every cached kernel (kernels still referenced stay usable)."""
    with _cache_lock:
        _cache.clear()
        call_cache.clear()
