"""Running compiled kernels on NumPy arrays and DLPack tensors.

Inputs are handed to the C++ runtime as pointer + shape + strides, so any
view whose innermost dim is contiguous is used in place (no copy). Other
layouts are copied once (counted in :func:`stats`). Outputs are allocated in
the caller's array library: NumPy in, NumPy out; torch in, torch out; any
other DLPack producer gets its library's ``from_dlpack`` of a NumPy result
when it has one, else NumPy.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, Optional, Sequence

import numpy as np

from .compiler import CompileOptions, Spec, WEIGHTED_MAPS, dtype_name

_DLPACK_DEVICES = {1: "cpu", 2: "cuda", 3: "cuda_host", 4: "opencl",
                   7: "vulkan", 8: "metal", 9: "vpi", 10: "rocm",
                   11: "rocm_host", 13: "cuda_managed", 14: "oneapi"}

_stats_lock = threading.Lock()
_stats = {"input_copies": 0, "runs": 0}


def stats() -> dict:
    """Counters: ``runs`` (kernel calls; approximate under threads) and
    ``input_copies`` (inputs copied because their innermost dim was not
    contiguous)."""
    with _stats_lock:
        return dict(_stats)


_num_threads = 0


def set_num_threads(n: int) -> None:
    """Default thread count of kernel calls (0: all hardware threads)."""
    global _num_threads
    if int(n) != n or n < 0:
        raise ValueError(f"linattn: num_threads must be >= 0, got {n!r}")
    _num_threads = int(n)


def get_num_threads() -> int:
    return _num_threads


def _count(key: str) -> None:
    with _stats_lock:
        _stats[key] += 1


def _count_run() -> None:
    # A lock per call would cost more than the counter is worth; += on a
    # dict entry may drop a count under threads, which only `runs` risks.
    _stats["runs"] += 1


def _is_torch(x) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def array_dtype(name: str, x) -> str:
    """Canonical dtype name of tensor ``name``; TypeError if unsupported."""
    dt = x.dtype.name if isinstance(x, np.ndarray) else getattr(x, "dtype",
                                                                None)
    if dt is None and hasattr(x, "__dlpack__"):
        dt = np.from_dlpack(x).dtype.name
    try:
        return dtype_name(dt)
    except ValueError:
        raise TypeError(f"linattn: tensor '{name}' has dtype "
                        f"{str(dt).replace('torch.', '')}; expected float32, "
                        "float64, float16 or bfloat16") from None


def check_tensor(name: str, x, cpu: bool = True) -> None:
    """TypeError unless ``x`` is an array/tensor; ValueError if not on CPU
    (unless ``cpu`` is False: the GPU path checks devices itself)."""
    if x is None or isinstance(x, np.ndarray):
        return
    if not hasattr(x, "__dlpack__") or not hasattr(x, "shape"):
        raise TypeError(f"linattn: '{name}' must be a NumPy array or a "
                        f"DLPack tensor, got {type(x).__name__}")
    if cpu:
        _check_device(name, x)


def _check_device(name: str, x) -> None:
    dev = getattr(x, "__dlpack_device__", None)
    if dev is None:
        return
    kind, index = dev()
    kind = int(kind)
    if kind not in (1, 3):  # CPU, CUDA-pinned host memory
        label = _DLPACK_DEVICES.get(kind, f"device type {kind}")
        raise ValueError(f"linattn: tensor '{name}' is on device "
                         f"{label}:{index}; the CPU kernels take only CPU "
                         "tensors (GPU kernels run when q, k, v are torch "
                         "CUDA tensors)")


def as_input(name: str, x) -> Any:
    """The object to hand to the C++ runtime for input ``name``."""
    if x is None:
        return None
    if type(x) is np.ndarray or isinstance(x, np.ndarray):
        strides = x.strides
        if x.ndim and x.size > 1 and (
                (strides[-1] != x.itemsize and x.shape[-1] > 1) or
                min(strides) < 0):
            x = np.ascontiguousarray(x)
            _count("input_copies")
        # NumPy has no DLPack code for ml_dtypes.bfloat16: pass the bits.
        # (dtype.kind is cheap; dtype.name is not.)
        if x.dtype.kind == "V" and x.dtype.name == "bfloat16":
            return x.view(np.uint16)
        return x
    if _is_torch(x):
        _check_device(name, x)
        if x.requires_grad:
            raise TypeError(f"linattn: tensor '{name}' requires grad; linattn "
                            "has no backward pass yet, pass "
                            f"{name}.detach()")
        if x.numel() > 1 and x.dim() > 0 and x.shape[-1] > 1 and \
                x.stride(-1) != 1:
            x = x.contiguous()
            _count("input_copies")
        return x
    if hasattr(x, "__dlpack__"):
        _check_device(name, x)
        return x
    raise TypeError(f"linattn: '{name}' must be a NumPy array or a DLPack "
                    f"tensor, got {type(x).__name__}")


def _numpy_dtype(name: str):
    if name == "bfloat16":
        try:
            import ml_dtypes  # noqa: PLC0415
        except ImportError as e:  # pragma: no cover
            raise TypeError("linattn: bfloat16 NumPy arrays need the "
                            "ml_dtypes package") from e
        return ml_dtypes.bfloat16
    return np.dtype(name)


def empty_like_lib(like, shape: Sequence[int], dtype: str):
    """An uninitialized array in ``like``'s library (same device)."""
    if _is_torch(like):
        import torch  # noqa: PLC0415
        return torch.empty(tuple(shape), dtype=getattr(torch, dtype),
                           device=like.device)
    return np.empty(tuple(shape), dtype=_numpy_dtype(dtype))


def _as_output(x):
    if type(x) is np.ndarray and x.dtype.kind == "V" and \
            x.dtype.name == "bfloat16":
        return x.view(np.uint16)
    return x


def _from_numpy_like(like, x):
    """Returns NumPy result ``x`` in ``like``'s library when that is another
    DLPack library with a ``from_dlpack``."""
    if x is None or isinstance(like, np.ndarray) or _is_torch(like):
        return x
    lib = sys.modules.get(type(like).__module__.split(".")[0])
    convert = getattr(lib, "from_dlpack", None)
    if convert is None:
        return x
    try:
        return convert(x)
    except Exception:  # noqa: BLE001 (the NumPy array is still a result)
        return x


def _offsets(cu_seqlens) -> Optional[list]:
    if cu_seqlens is None:
        return None
    if _is_torch(cu_seqlens):
        return [int(i) for i in cu_seqlens.tolist()]
    arr = np.asarray(cu_seqlens)
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise TypeError("linattn: cu_seqlens must be a 1-D integer array, got "
                        f"dtype {arr.dtype} and shape {list(arr.shape)}")
    return [int(i) for i in arr]


#: The feature-map parameter arguments, in the order Kernel.run takes them.
MAP_ARGS = ("map_weight", "map_bias", "key_map_weight", "key_map_bias")


def check_map_args(spec: Spec, map_weight=None, map_bias=None,
                   key_map_weight=None, key_map_bias=None,
                   cpu: bool = True) -> None:
    """ValueError naming the argument when a feature-map weight is missing
    or given to a map without weights (the shapes are checked by the
    runtime); ``cpu`` as for :func:`check_tensor`."""
    given = dict(zip(MAP_ARGS, (map_weight, map_bias, key_map_weight,
                                key_map_bias)))
    for name, x in given.items():
        check_tensor(name, x, cpu)
    fm = spec.feature_map
    if fm not in WEIGHTED_MAPS:
        for name, x in given.items():
            if x is not None:
                raise ValueError(f"linattn: {name}: feature map '{fm}' takes "
                                 "no weights")
        return
    if map_weight is None:
        shape = "[m, d] (or [Hq, m, d])" if fm.startswith("performer") \
            else "[d, f] (or [Hq, d, f])" if fm == "hedgehog" \
            else "[d, d] (or [Hq, d, d])"
        raise ValueError(f"linattn: map_weight: feature map '{fm}' needs a "
                         f"weight of shape {shape}")


def _feature_count_from(spec: Spec, map_weight) -> int:
    """f (hedgehog) or m (performer) of a map weight; ValueError naming
    map_weight if it has the wrong rank."""
    shape = tuple(map_weight.shape)
    performer = spec.feature_map.startswith("performer")
    if len(shape) not in (2, 3):
        want = "[m, d] or [Hq, m, d]" if performer else "[d, f] or [Hq, d, f]"
        raise ValueError(f"linattn: map_weight: expected shape {want} for "
                         f"feature map '{spec.feature_map}', got "
                         f"{list(shape)}")
    return int(shape[-2] if performer else shape[-1])


def check_gate_args(spec: Spec, gate, beta) -> None:
    """ValueError when the spec's decay needs a gate or beta that is missing,
    or takes none and one is given."""
    if spec.has_gate and gate is None:
        raise ValueError(f"linattn: decay '{spec.decay}' needs a gate "
                         "tensor" + (" ([H] log-decays)"
                                     if spec.decay == "constant" else ""))
    if not spec.has_gate and gate is not None:
        raise ValueError(f"linattn: decay '{spec.decay}' takes no gate"
                         + (" (its log-decays come from the spec)"
                            if spec.decay == "constant" else ""))
    if spec.has_beta and beta is None:
        raise ValueError(f"linattn: decay '{spec.decay}' needs beta")
    if not spec.has_beta and beta is not None:
        raise ValueError(f"linattn: decay '{spec.decay}' takes no beta")


class Kernel:
    """A compiled kernel (from :func:`linattn.compile`). Thread-safe; the GIL
    is released while it runs."""

    def __init__(self, spec: Spec, options: CompileOptions, cpp_kernel):
        self.spec = spec
        self.options = options
        self._kernel = cpp_kernel

    @property
    def source_ir(self) -> str:
        """The kernel's linattn IR before lowering."""
        return self._kernel.source_ir

    @property
    def compile_seconds(self) -> float:
        return self._kernel.compile_seconds

    def __repr__(self):
        return f"linattn.Kernel({self.spec}, {self.options})"

    def __call__(self, q, k, v, gate=None, beta=None, initial_state=None,
                 output_final_state: bool = False, cu_seqlens=None,
                 num_threads: Optional[int] = None,
                 check_gate_values: bool = True, map_weight=None,
                 map_bias=None, key_map_weight=None, key_map_bias=None):
        """Runs the kernel; returns ``(o, final_state)``.

        ``final_state`` is None unless ``output_final_state``; for a
        normalized spec it is the pair ``(S, z)`` and ``initial_state`` may
        be such a pair (or S alone, with z = 0). The states, normalizers and
        vector gates have width ``spec.feature_dim`` (D_phi).

        ``map_weight`` / ``map_bias`` are the parameters of a feature map
        with weights (float32; float64 for float64 kernels): hedgehog
        ``[d, f]`` and bias ``[f]``, hedgehog_joint ``[d, d]`` and ``[d]``,
        performer(_hyperbolic) ``[m, d]`` (no bias); a leading head dim
        (``[Hq, d, f]``, ``[Hq, f]``) gives each q head its own map. k uses
        them too unless ``key_map_weight`` / ``key_map_bias`` (``[Hk, ...]``
        per head) are given.
        """
        spec = self.spec
        check_map_args(spec, map_weight, map_bias, key_map_weight,
                       key_map_bias)
        check_gate_args(spec, gate, beta)
        s0, z0 = initial_state, None
        if isinstance(initial_state, (tuple, list)):
            if not spec.normalized or len(initial_state) != 2:
                raise ValueError("linattn: a (state, normalizer) pair is only "
                                 "an initial_state of a normalized spec")
            s0, z0 = initial_state
        q_in, k_in, v_in = as_input("q", q), as_input("k", k), \
            as_input("v", v)
        gate_in = as_input("gate", gate)
        beta_in = as_input("beta", beta)
        maps_in = {name: as_input(name, x) for name, x in zip(
            MAP_ARGS, (map_weight, map_bias, key_map_weight, key_map_bias))}
        s0_in = as_input("initial_state", s0)
        z0_in = as_input("initial_normalizer", z0)
        offsets = _offsets(cu_seqlens)

        qs, ks, vs = q.shape, k.shape, v.shape
        for n, s in (("q", qs), ("k", ks), ("v", vs)):
            if len(s) != 4:
                order = "[B, T, H, D]" if spec.layout == "bthd" \
                    else "[B, H, T, D]"
                raise ValueError(f"linattn: '{n}' must be {order}, got shape "
                                 f"{list(s)}")
        hdim = 2 if spec.layout == "bthd" else 1
        heads = max(qs[hdim], ks[hdim], vs[hdim])
        out_shape = list(vs)
        out_shape[hdim] = heads
        o = empty_like_lib(q, out_shape, spec.dtype)
        state_dtype = "float64" if spec.dtype == "float64" else "float32"
        n_states = len(offsets) - 1 if offsets is not None else qs[0]
        # States and normalizers have the feature map's output width.
        dk, dv = spec.feature_dim, spec.value_dim
        s_shape = [n_states, heads] + ([dv, dk] if spec.state_layout ==
                                       "value_major" else [dk, dv])
        st = zt = None
        if output_final_state:
            st = empty_like_lib(q, s_shape, state_dtype)
            if spec.normalized:
                zt = empty_like_lib(q, [n_states, heads, dk], state_dtype)
        self._kernel.run(
            q_in, k_in, v_in, _as_output(o), gate=gate_in, beta=beta_in,
            **maps_in, initial_state=s0_in, initial_normalizer=z0_in,
            final_state=None if st is None else _as_output(st),
            final_normalizer=None if zt is None else _as_output(zt),
            offsets=offsets,
            num_threads=_num_threads if num_threads is None else num_threads,
            check_gate_values=check_gate_values)
        _count_run()
        o = _from_numpy_like(q, o)
        final = None
        if output_final_state:
            st = _from_numpy_like(q, st)
            final = (st, _from_numpy_like(q, zt)) if spec.normalized else st
        return o, final


def resolve_spec(spec: Spec, q, v, gate=None, map_weight=None) -> Spec:
    """Fills the spec fields that the tensors determine (dims, dtypes, and
    the feature count of a hedgehog/performer ``map_weight``)."""
    changes = {}
    if spec.feature_count == 0 and map_weight is not None and \
            spec.feature_map in ("hedgehog", "performer",
                                 "performer_hyperbolic"):
        changes["feature_count"] = _feature_count_from(spec, map_weight)
    if spec.key_dim is None:
        changes["key_dim"] = int(q.shape[-1])
    if spec.value_dim is None:
        changes["value_dim"] = int(v.shape[-1])
    if spec.dtype is None:
        changes["dtype"] = array_dtype("q", q)
    if spec.gate_dtype is None and gate is not None and \
            spec.decay in ("scalar", "vector", "gated_delta"):
        changes["gate_dtype"] = array_dtype("gate", gate)
    return spec.replace(**changes) if changes else spec


__all__ = ["Kernel", "stats", "resolve_spec", "set_num_threads",
           "get_num_threads", "check_gate_args", "check_map_args"]
