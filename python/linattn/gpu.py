"""linattn.attention on PyTorch CUDA tensors: kernels JIT-compiled for the
GPU the tensors live on.

When q is a torch CUDA tensor, :func:`linattn.attention` (and the FLA-style
functions of :mod:`linattn.ops`) call :func:`attention` here, which

1. fills the spec's dims and dtypes from the tensors as the CPU path does
   (:func:`linattn.runtime.resolve_spec`);
2. opens the tensors' GPU through the thin CUDA runtime
   (:class:`linattn.aot.Device`; ``liblinattn_cuda_rt.so`` and a driver)
   and picks the chip to compile for from its compute capability
   (:func:`gpu_target`);
3. compiles the spec to PTX and a manifest with the extension
   (``_linattn.compile_gpu``, the pipeline of ``linattn-run --emit-aot``),
   once per (spec, options): cached here, and in memory and on disk by the
   C++ side;
4. loads the PTX once per (device, kernel) (:meth:`linattn.aot.Module.
   from_text`, kept in a module-level cache) and calls it, which checks the
   tensors, launches on the default stream and synchronizes.

GPU kernels take bfloat16 or float16 q, k, v and float32 gates (or the
input dtype), states, normalizers, beta and feature-map weights; forward
only. The CPU code-generation options (:class:`linattn.CompileOptions`,
``chunk_size``, tile sizes, vector width, ``num_threads``) do not apply;
the GPU ones are the keyword overrides of :data:`OPTION_NAMES`.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from typing import Optional, Tuple

from . import aot
from .compiler import CompileOptions, Spec, _ext, _to_cpp
from .runtime import (_count, _count_run, array_dtype, check_gate_args,
                      check_map_args, check_tensor, resolve_spec)

#: Keyword overrides of :func:`linattn.attention` that set GPU options
#: (``gpu_chunk_size`` is the GPU kernel's chunk; FLA's ``chunk_size``
#: is the CPU one). The CPU path ignores them.
OPTION_NAMES = ("gpu_chunk_size", "block_v", "warps", "stages", "mma")
MMA_MODES = ("auto", "sync", "wgmma")
#: The chips the GPU compiler targets, by compute capability.
CHIPS = {(8, 0): "sm_80", (8, 6): "sm_86", (8, 7): "sm_87", (8, 9): "sm_89",
         (9, 0): "sm_90"}
#: The q, k, v dtypes of GPU kernels.
DTYPES = ("bfloat16", "float16")


def gpu_target(capability) -> Tuple[str, str]:
    """``(chip, mma)`` to compile for a GPU of compute capability
    ``(major, minor)``.

    A capability the compiler has a chip for gets that chip with mma
    "auto" (wgmma kernels for sm_90 where the shape allows; their PTX
    targets sm_90a, which runs on 9.0 only). A newer GPU (10.0, 12.0, ...)
    gets sm_90 PTX, which the driver JIT-compiles for it, with mma "sync",
    since sm_90a PTX does not run there; an 8.x without a chip of its own
    gets the newest older 8.x chip. ValueError below 8.0 (the kernels need
    bf16 mma.sync and cp.async)."""
    major, minor = (int(x) for x in capability)
    cap = (major, minor)
    if cap < (8, 0):
        raise ValueError(f"linattn: GPU kernels need compute capability 8.0 "
                         f"(sm_80) or newer; this GPU has {major}.{minor}")
    if cap in CHIPS:
        return CHIPS[cap], "auto"
    if cap > (9, 0):
        return "sm_90", "sync"
    return CHIPS[max(c for c in CHIPS if c <= cap)], "auto"


@dataclass(frozen=True)
class GPUOptions:
    """What a GPU kernel is compiled with (0: the compiler's default for the
    chip and shape); see include/linattn/Runtime/GPUCompile.h."""

    chip: str
    mma: str = "auto"
    chunk_size: int = 0
    block_v: int = 0
    warps: int = 0
    stages: int = 0


def gpu_options(capability, **overrides) -> GPUOptions:
    """The options for a GPU of ``capability`` (see :func:`gpu_target`) with
    the keyword overrides of :data:`OPTION_NAMES`. ``mma="wgmma"`` needs
    capability 9.0; ``mma="auto"`` is the target's choice."""
    unknown = sorted(set(overrides) - set(OPTION_NAMES))
    if unknown:
        raise TypeError(f"linattn: unknown GPU option(s) {', '.join(unknown)}"
                        f"; expected {', '.join(OPTION_NAMES)}")
    chip, mma = gpu_target(capability)
    want = overrides.get("mma")
    if want is not None:
        if want not in MMA_MODES:
            raise ValueError(f"linattn: mma = {want!r} is not one of "
                             f"{', '.join(map(repr, MMA_MODES))}")
        if want == "wgmma" and tuple(capability) != (9, 0):
            raise ValueError("linattn: mma='wgmma' needs compute capability "
                             "9.0 (its sm_90a PTX runs nowhere else); this "
                             f"GPU has {capability[0]}.{capability[1]}")
        if want != "auto":
            mma = want
    sizes = {}
    for name, field in (("gpu_chunk_size", "chunk_size"),
                        ("block_v", "block_v"), ("warps", "warps"),
                        ("stages", "stages")):
        value = overrides.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"linattn: {name} = {value!r} must be an "
                             "integer >= 0 (0: the default)")
        sizes[field] = value
    return GPUOptions(chip=chip, mma=mma, **sizes)


# ---- Caches: images per (spec, options), devices per ordinal, loaded
# modules per (ordinal, spec, options), and attention()'s fast path.

_lock = threading.Lock()
_images: dict = {}
_devices: dict = {}
_modules: dict = {}
_calls: dict = {}
_compile_count = 0


def compile_kernel(spec: Spec, options: GPUOptions) -> Tuple[str, str]:
    """``(ptx, manifest_json)`` of a complete spec (dims and dtype set),
    compiled once per (spec, options). ValueError carries the compiler's
    message (unsupported dtype or shape, illegal option combination)."""
    if spec.gate_dtype is None:  # same kernel as an explicit float32
        spec = spec.replace(gate_dtype="float32")
    key = (spec, options)
    with _lock:
        image = _images.get(key)
    if image is not None:
        return image
    cpp_spec, _ = _to_cpp(spec, CompileOptions())
    image = _ext().compile_gpu(cpp_spec, options.chip, options.mma,
                               options.chunk_size, options.block_v,
                               options.warps, options.stages)
    global _compile_count
    with _lock:
        image = _images.setdefault(key, image)
        _compile_count += 1
    return image


def device(ordinal: int) -> aot.Device:
    """The :class:`linattn.aot.Device` of CUDA device ``ordinal``, opened
    once. RuntimeError saying how to get ``liblinattn_cuda_rt.so`` when it
    cannot be loaded; :class:`linattn.aot.Unavailable` without a driver or
    GPU."""
    ordinal = int(ordinal)
    with _lock:
        dev = _devices.get(ordinal)
    if dev is not None:
        return dev
    try:
        lib = aot.load_library()
    except (OSError, RuntimeError) as e:  # FileNotFoundError is an OSError
        msg = (f"linattn: CUDA tensors need {aot.LIBRARY_NAME}, the thin "
               f"CUDA runtime: {e}")
        if "build-launch.sh" not in msg:
            msg += ("; build it (CMake target LinAttnCudaRuntimeShared, or "
                    f"scripts/build-launch.sh) and set {aot.LIBRARY_ENV} to "
                    "its path")
        raise RuntimeError(msg) from e
    try:
        dev = aot.Device(ordinal, lib)
    except aot.Unavailable as e:
        raise aot.Unavailable(f"linattn: CUDA tensors need a CUDA driver and "
                              f"GPU: {e}") from e
    with _lock:
        return _devices.setdefault(ordinal, dev)


def capability(dev: aot.Device) -> Tuple[int, int]:
    """(major, minor) of an opened device (the driver's, as
    ``torch.cuda.get_device_capability`` reports it)."""
    return dev.sm // 10, dev.sm % 10


def load(spec: Spec, options: GPUOptions, ordinal: int) -> aot.Module:
    """The kernel of a complete spec loaded on device ``ordinal``; compiled
    and loaded once per (ordinal, spec, options)."""
    key = (int(ordinal), spec, options)
    with _lock:
        module = _modules.get(key)
    if module is not None:
        return module
    dev = device(ordinal)
    ptx, manifest = compile_kernel(spec, options)
    name = f"jit-{spec.decay}-{spec.feature_map}-{options.chip}"
    module = aot.Module.from_text(dev, ptx, manifest, name=name)
    with _lock:
        return _modules.setdefault(key, module)


def kernel_for(spec: Spec, q, v, gate=None, map_weight=None,
               ordinal: int = 0, **overrides) -> aot.Module:
    """The loaded kernel for a call with these tensors on device
    ``ordinal`` (only their dtypes and head dims are read): checks q's
    dtype, resolves the spec as the CPU path does, picks the options for
    the device's capability and compiles/loads (cached)."""
    dtype = array_dtype("q", q)
    if dtype not in DTYPES:
        raise ValueError(f"linattn: GPU kernels take bfloat16 or float16 q, "
                         f"k, v; q is {dtype} (convert with .bfloat16() or "
                         ".half(), or run on the CPU)")
    spec = resolve_spec(spec, q, v, gate, map_weight)
    dev = device(ordinal)
    return load(spec, gpu_options(capability(dev), **overrides), ordinal)


def _input(name: str, x, torch):
    """A tensor as the kernel takes it: a torch tensor that needs no grad,
    made contiguous (counted in linattn.stats()["input_copies"])."""
    if x is None:
        return None
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"linattn: '{name}' must be a torch tensor on the "
                        f"GPU like q, got {type(x).__name__}")
    if x.requires_grad:
        raise TypeError(f"linattn: tensor '{name}' requires grad; linattn "
                        f"has no backward pass yet, pass {name}.detach()")
    if not x.is_contiguous():
        x = x.contiguous()
        _count("input_copies")
    return x


def _offsets(cu_seqlens, dev, torch):
    """cu_seqlens as an int64 tensor on the device."""
    if cu_seqlens is None:
        return None
    if isinstance(cu_seqlens, torch.Tensor):
        return cu_seqlens.to(device=dev, dtype=torch.int64).contiguous()
    return torch.as_tensor([int(i) for i in cu_seqlens], dtype=torch.int64,
                           device=dev)


def attention(spec: Spec, q, k, v, gate=None, beta=None, initial_state=None,
              output_final_state: bool = False, cu_seqlens=None,
              map_weight=None, map_bias=None, key_map_weight=None,
              key_map_bias=None, options: Optional[CompileOptions] = None,
              **option_overrides):
    """:func:`linattn.attention` for torch CUDA tensors (see the module
    docstring); returns ``(o, final_state)``. ``options`` and the CPU
    option overrides are checked for their names and otherwise ignored;
    beta is converted to float32 (as FLA callers pass it in the input
    dtype)."""
    torch = aot._torch()
    check_gate_args(spec, gate, beta)
    gpu_overrides = {n: option_overrides.pop(n) for n in OPTION_NAMES
                     if n in option_overrides}
    ordinal = q.device.index
    if ordinal is None:
        ordinal = torch.cuda.current_device()
    try:
        key = (ordinal, spec, q.dtype, q.shape[-1], v.shape[-1],
               None if gate is None else gate.dtype,
               None if map_weight is None else tuple(map_weight.shape),
               tuple(sorted(gpu_overrides.items())), options,
               tuple(sorted(option_overrides.items())))
        module = _calls.get(key)
    except (AttributeError, IndexError, TypeError):
        key = module = None
    if module is None:
        # The CPU options only have their names checked.
        dataclasses.replace(options or CompileOptions(), **option_overrides)
        for name, x in (("q", q), ("k", k), ("v", v), ("gate", gate),
                        ("beta", beta)):
            check_tensor(name, x, cpu=False)
        check_map_args(spec, map_weight, map_bias, key_map_weight,
                       key_map_bias, cpu=False)
        module = kernel_for(spec, q, v, gate, map_weight, ordinal,
                            **gpu_overrides)
        if key is not None:
            _calls[key] = module
    if isinstance(beta, torch.Tensor) and beta.dtype != torch.float32:
        beta = beta.float()
    s0 = initial_state
    if isinstance(s0, (tuple, list)):
        s0 = tuple(_input(f"initial_state[{i}]", x, torch)
                   for i, x in enumerate(s0))
    else:
        s0 = _input("initial_state", s0, torch)
    out = module(_input("q", q, torch), _input("k", k, torch),
                 _input("v", v, torch), gate=_input("gate", gate, torch),
                 beta=_input("beta", beta, torch), initial_state=s0,
                 output_final_state=output_final_state,
                 cu_seqlens=_offsets(cu_seqlens, q.device, torch),
                 map_weight=_input("map_weight", map_weight, torch),
                 map_bias=_input("map_bias", map_bias, torch),
                 key_map_weight=_input("key_map_weight", key_map_weight,
                                       torch),
                 key_map_bias=_input("key_map_bias", key_map_bias, torch))
    _count_run()
    return out


def cache_info() -> dict:
    """Compiled images, compilations, open devices and loaded modules of
    this module, and the C++ compiler's counters (``compile_gpu``: memory
    and disk cache hits)."""
    with _lock:
        info = {"kernels": len(_images), "compilations": _compile_count,
                "devices": len(_devices), "modules": len(_modules)}
    info["compiler"] = dict(_ext().gpu_kernel_cache_stats())
    return info


def clear_cache() -> None:
    """Drops the cached images and modules (modules still referenced stay
    loaded; devices stay open)."""
    with _lock:
        _images.clear()
        _modules.clear()
        _calls.clear()


__all__ = ["CHIPS", "DTYPES", "GPUOptions", "MMA_MODES", "OPTION_NAMES",
           "attention", "cache_info", "capability", "clear_cache",
           "compile_kernel", "device", "gpu_options", "gpu_target",
           "kernel_for", "load"]
