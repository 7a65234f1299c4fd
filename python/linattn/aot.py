"""Ahead-of-time compiled GPU kernels on PyTorch CUDA tensors, without MLIR.

``linattn-run --emit-aot`` writes a kernel as PTX plus a JSON manifest
(docs/gpu-kernel-abi.md). This module launches such kernels through the C API
of the thin CUDA runtime, ``liblinattn_cuda_rt.so`` (CMake target
``LinAttnCudaRuntimeShared``, or ``scripts/build-launch.sh`` on a machine
without LLVM), loaded with ctypes. It needs neither the C++ extension of this
package nor the CUDA toolkit: the runtime dlopens the driver (libcuda).
PyTorch is imported only when a kernel is called::

    from linattn import aot
    dev = aot.Device(0)                      # aot.Unavailable: no driver/GPU
    gla = aot.Module(dev, "aot/gla.json")
    o, S = gla(q, k, v, gate=g, output_final_state=True)   # CUDA tensors

``Module.from_text(dev, ptx, manifest_json)`` loads a kernel held in memory
(linattn.gpu does so with the kernels it JIT-compiles for
:func:`linattn.attention` on CUDA tensors).

Launches run on the CUDA default stream and are synchronous: a call first
waits for the device (``torch.cuda.synchronize``, so kernels that produced
the inputs on any torch stream are done), then launches and waits for the
kernel (and the feature-map prepass) to finish.
"""

from __future__ import annotations

import ctypes
import json
import os
import threading
import weakref
from typing import Optional

from .compiler import Spec

#: The LINATTN_RT_API_VERSION this module is written against
#: (include/linattn/Runtime/CudaRuntime.h); load_library() refuses others.
API_VERSION = 1
#: Newest manifest version this module reads (LINATTN_RT_MANIFEST_VERSION).
MANIFEST_VERSION = 1
MANIFEST_FORMAT = "linattn-aot"
LIBRARY_NAME = "liblinattn_cuda_rt.so"
#: Environment variable naming the library file.
LIBRARY_ENV = "LINATTN_CUDA_RT"
#: What the C API returns when no driver or GPU is present.
RC_UNAVAILABLE = 77

_ERR_SIZE = 4096


class Unavailable(RuntimeError):
    """No CUDA driver, only the toolkit's stub driver, or no GPU (the C API
    returned 77); the message is the runtime's."""


# ---- The C structures (mirror CudaRuntime.h field by field)


class RtTensor(ctypes.Structure):
    """``LinattnRtTensor``: device pointer, rank (0 = absent), extents."""
    _fields_ = [("ptr", ctypes.c_uint64), ("rank", ctypes.c_int32),
                ("shape", ctypes.c_int64 * 4)]


#: LinattnRtArgs's tensors, in declaration order.
ARG_FIELDS = ("q", "k", "v", "gate", "initialState", "o", "finalState",
              "offsets")
#: LinattnRtExtraArgs's tensors (after `size`), in declaration order.
EXTRA_FIELDS = ("initialNormalizer", "finalNormalizer", "beta", "mapWeight",
                "mapBias", "keyMapWeight", "keyMapBias")


class RtArgs(ctypes.Structure):
    """``LinattnRtArgs``: the tensors of every launch."""
    _fields_ = [(name, RtTensor) for name in ARG_FIELDS]


class RtExtraArgs(ctypes.Structure):
    """``LinattnRtExtraArgs``: normalizers, beta, feature-map weights;
    ``size`` must be ``sizeof(LinattnRtExtraArgs)``."""
    _fields_ = [("size", ctypes.c_size_t)] + [(name, RtTensor)
                                               for name in EXTRA_FIELDS]


# ---- The library

_lib_lock = threading.Lock()
_lib: Optional[ctypes.CDLL] = None


def library_candidates() -> list:
    """Where load_library() looks when given no path and LINATTN_CUDA_RT is
    unset: next to this package (an install that ships the library), then
    the build directories of the checkout around it (``build/lib`` of the
    CMake build, ``build-launch`` of scripts/build-launch.sh; ``../../lib``
    from ``build/python_packages/linattn``)."""
    pkg = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(pkg))
    dirs = [pkg, os.path.join(root, "build", "lib"),
            os.path.join(root, "build-launch"), os.path.join(root, "lib")]
    return [os.path.join(d, LIBRARY_NAME) for d in dirs]


def _declare(lib: ctypes.CDLL) -> None:
    c_int, c_size_t, c_char_p, c_void_p = (ctypes.c_int, ctypes.c_size_t,
                                           ctypes.c_char_p, ctypes.c_void_p)
    pp = ctypes.POINTER(c_void_p)
    pi = ctypes.POINTER(c_int)
    sigs = {
        "linattnRtApiVersion": (c_int, []),
        "linattnRtDeviceOpen": (c_int, [c_int, pp, c_char_p, c_size_t]),
        "linattnRtDeviceClose": (None, [c_void_p]),
        "linattnRtDeviceInfo": (c_int, [c_void_p, c_char_p, c_size_t, pi,
                                        pi]),
        "linattnRtModuleLoad": (c_int, [c_void_p, c_char_p, c_char_p, pp,
                                        c_char_p, c_size_t]),
        "linattnRtModuleUnload": (None, [c_void_p]),
        "linattnRtLaunch": (c_int, [c_void_p, ctypes.POINTER(RtArgs),
                                    c_char_p, c_size_t]),
        "linattnRtLaunchEx": (c_int, [c_void_p, ctypes.POINTER(RtArgs),
                                      ctypes.POINTER(RtExtraArgs), c_char_p,
                                      c_size_t]),
    }
    for name, (res, args) in sigs.items():
        fn = getattr(lib, name)  # AttributeError names a missing symbol
        fn.restype, fn.argtypes = res, args


def load_library(path: Optional[str] = None) -> ctypes.CDLL:
    """Loads ``liblinattn_cuda_rt.so`` and checks its C API version.

    The file is ``path`` if given, else ``$LINATTN_CUDA_RT``, else the
    first of :func:`library_candidates` that exists. The library loaded
    last is the default of :class:`Device`. Raises FileNotFoundError when
    there is no such file, OSError when it does not load, and RuntimeError
    when its ``linattnRtApiVersion()`` is not :data:`API_VERSION`."""
    global _lib
    with _lib_lock:
        if path is None and _lib is not None:
            return _lib
        if path is None:
            path = os.environ.get(LIBRARY_ENV) or None
            source = f"${LIBRARY_ENV}"
        else:
            source = "the path given"
        if path is None:
            tried = library_candidates()
            path = next((p for p in tried if os.path.isfile(p)), None)
            if path is None:
                raise FileNotFoundError(
                    f"linattn.aot: {LIBRARY_NAME} not found (tried "
                    f"{', '.join(tried)}); build the CMake target "
                    "LinAttnCudaRuntimeShared or run scripts/build-launch.sh, "
                    f"and pass its path or set {LIBRARY_ENV}")
        elif not os.path.isfile(path):
            raise FileNotFoundError(f"linattn.aot: {path} ({source}) does not "
                                    "exist")
        try:
            lib = ctypes.CDLL(os.path.abspath(path))
            _declare(lib)
        except (OSError, AttributeError) as e:
            raise OSError(f"linattn.aot: cannot load {path}: {e}") from e
        version = lib.linattnRtApiVersion()
        if version != API_VERSION:
            raise RuntimeError(f"linattn.aot: {path} has C API version "
                               f"{version}, this module needs {API_VERSION}")
        _lib = lib
        return lib


def _errbuf():
    return ctypes.create_string_buffer(_ERR_SIZE)


def _msg(buf) -> str:
    return buf.value.decode("utf-8", "replace")


def _check(rc: int, err, error: type, what: str) -> None:
    """Raises Unavailable for RC_UNAVAILABLE (no driver or GPU) and `error`
    ("linattn.aot: <what>: <message>") for any other failure."""
    if rc == RC_UNAVAILABLE:
        raise Unavailable(f"linattn.aot: {_msg(err)}")
    if rc != 0:
        raise error(f"linattn.aot: {what}: {_msg(err)}")


# ---- Device


class Device:
    """One GPU (its primary context, which PyTorch shares) opened through
    the runtime. Raises :class:`Unavailable` when there is no driver or no
    GPU, RuntimeError when a driver call fails."""

    def __init__(self, ordinal: int = 0, library=None):
        lib = library if isinstance(library, ctypes.CDLL) else \
            load_library(library)
        self._lib = lib
        self._handle = None
        self._modules = weakref.WeakSet()
        # Modules loaded and not yet unloaded, and whether __del__ ran: the
        # runtime's modules use their device when unloaded, so the handle
        # is closed after the last of them (see __del__).
        self._loaded = 0
        self._finalized = False
        self.ordinal = int(ordinal)
        handle = ctypes.c_void_p()
        err = _errbuf()
        rc = lib.linattnRtDeviceOpen(self.ordinal, ctypes.byref(handle), err,
                                     len(err))
        _check(rc, err, RuntimeError, f"opening device {self.ordinal}")
        self._handle = handle
        name = ctypes.create_string_buffer(256)
        sm, driver = ctypes.c_int(), ctypes.c_int()
        lib.linattnRtDeviceInfo(handle, name, len(name), ctypes.byref(sm),
                                ctypes.byref(driver))
        #: The driver's device name ("NVIDIA H100 80GB HBM3").
        self.name = _msg(name)
        #: Compute capability, major * 10 + minor (90 for H100).
        self.sm = sm.value
        #: cuDriverGetVersion (12080 for CUDA 12.8).
        self.driver_version = driver.value

    @property
    def chip(self) -> str:
        """"sm_90" for compute capability 9.0."""
        return f"sm_{self.sm}"

    def close(self) -> None:
        """Unloads the modules still loaded on the device and releases it
        (modules keep their device alive, so this is only needed to free
        it early)."""
        for m in list(self._modules):
            m.unload()
        self._close_handle()

    def _close_handle(self) -> None:
        if self._handle is not None:
            self._lib.linattnRtDeviceClose(self._handle)
            self._handle = None

    def __del__(self):
        # A device and its modules that become garbage together (a reference
        # cycle, or interpreter exit) are finalized in any order, and the
        # garbage collector clears the weak references of _modules first:
        # while modules are still loaded, the last Module.unload() closes
        # the handle instead.
        self._finalized = True
        try:
            if self._loaded == 0:
                self._close_handle()
        except Exception:  # noqa: BLE001 (interpreter shutdown)
            pass

    def __repr__(self) -> str:
        return (f"linattn.aot.Device({self.ordinal}: {self.name}, "
                f"{self.chip}, driver {self.driver_version})")


# ---- Manifest

#: Manifest dtype names -> linattn dtype names (torch attribute names).
_DTYPES = {"f32": "float32", "bf16": "bfloat16", "f16": "float16"}


def parse_manifest(text: str, where: str = "manifest") -> dict:
    """Parses and checks manifest JSON text (``where`` names it in errors).
    ValueError names what is wrong (not JSON, another format, a newer
    version, a missing field); the runtime checks the rest when the module
    is loaded."""
    try:
        m = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"linattn.aot: {where}: not JSON: {e}") from e
    if not isinstance(m, dict) or m.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"linattn.aot: {where}: not a '{MANIFEST_FORMAT}' "
                         "manifest")
    version = m.get("version")
    if not isinstance(version, int) or not 1 <= version <= MANIFEST_VERSION:
        raise ValueError(f"linattn.aot: {where}: manifest version "
                         f"{version!r}; this module reads 1 to "
                         f"{MANIFEST_VERSION}")
    spec = m.get("spec")
    for key in ("ptx", "spec"):
        if key not in m:
            raise ValueError(f"linattn.aot: {where}: missing field '{key}'")
    for key in ("decay", "feature_map", "layout", "dtype", "key_dim",
                "value_dim"):
        if not isinstance(spec, dict) or key not in spec:
            raise ValueError(f"linattn.aot: {where}: missing field "
                             f"'spec.{key}'")
    for key in ("dtype", "gate_dtype"):
        if spec.get(key, "f32") not in _DTYPES:
            raise ValueError(f"linattn.aot: {where}: spec.{key} "
                             f"{spec[key]!r} is not one of "
                             f"{', '.join(_DTYPES)}")
    return m


def read_manifest(path: str) -> tuple:
    """Reads a manifest and its PTX: returns ``(manifest, json_text,
    ptx_text)``; the manifest is checked by :func:`parse_manifest`."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    m = parse_manifest(text, path)
    ptx_path = os.path.join(os.path.dirname(os.path.abspath(path)), m["ptx"])
    with open(ptx_path, encoding="utf-8") as f:
        ptx = f.read()
    return m, text, ptx


def manifest_spec(manifest: dict) -> Spec:
    """The :class:`linattn.Spec` of a manifest (for linattn.reference.run)."""
    s = manifest["spec"]
    fm = s["feature_map"]
    return Spec(
        decay=s["decay"], feature_map=fm, schedule=s.get("schedule"),
        layer=s.get("layer", 0), num_layers=s.get("num_layers", 1),
        log_decay=tuple(s["log_decay"]) if s.get("log_decay") else None,
        clamp_min=s.get("clamp_min"), normalized=bool(s.get("normalized")),
        eps=s.get("eps", 1e-6), scale=s.get("scale"),
        causal=s.get("causal", True), exclusive=s.get("exclusive", False),
        layout=s["layout"],
        state_layout="value_major" if s.get("state_value_major")
        else "key_major",
        dtype=_DTYPES[s["dtype"]],
        gate_dtype=_DTYPES[s.get("gate_dtype", "f32")],
        key_dim=s["key_dim"], value_dim=s["value_dim"],
        feature_count=s.get("feature_count", 0))


def feature_dim(manifest: dict) -> int:
    """Dphi: the key width of states, normalizers and vector gates
    (``spec.feature_dim``, which manifests from before the feature-map
    prepass lack: the key dim then)."""
    s = manifest["spec"]
    if s.get("feature_dim"):
        return int(s["feature_dim"])
    width = manifest_spec(manifest).feature_dim
    if width is None:
        raise ValueError(f"linattn.aot: feature map '{s['feature_map']}' "
                         "needs spec.feature_count in the manifest")
    return width


# ---- Launch arguments (no driver needed)


def _torch():
    try:
        import torch  # noqa: PLC0415 (optional dependency)
    except ImportError as e:
        raise ImportError("linattn.aot: calling a kernel needs PyTorch "
                          "(torch CUDA tensors in and out)") from e
    return torch


def _c_tensor(name: str, x, torch, device, dtype) -> RtTensor:
    """Checks one tensor (before any driver call: the runtime sees only
    pointers and shapes) and describes it for the C API."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"linattn.aot: {name}: expected a torch.Tensor, got "
                        f"{type(x).__name__}")
    if x.device != device:
        raise ValueError(f"linattn.aot: {name}: expected a tensor on "
                         f"{device} (the module's device), got one on "
                         f"{x.device}")
    if x.dtype != dtype:
        raise ValueError(f"linattn.aot: {name}: expected dtype {dtype}, got "
                         f"{x.dtype}")
    if not 1 <= x.dim() <= 4:
        raise ValueError(f"linattn.aot: {name}: expected rank 1 to 4, got "
                         f"shape {list(x.shape)}")
    if not x.is_contiguous():
        raise ValueError(f"linattn.aot: {name}: must be contiguous (call "
                         ".contiguous())")
    if x.requires_grad:
        raise ValueError(f"linattn.aot: {name}: requires grad; the AOT "
                         "kernels are forward-only (use .detach())")
    t = RtTensor()
    t.ptr = x.data_ptr()
    t.rank = x.dim()
    for i, n in enumerate(x.shape):
        t.shape[i] = n
    return t


class Launch:
    """The C arguments of one call and its outputs (see :func:`prepare`).

    ``args``/``extra`` are the ctypes structures (``extra`` None when the
    call has no extra tensor), ``o``, ``final_state``, ``final_normalizer``
    the allocated outputs (the last two None when not requested)."""

    def __init__(self):
        self.args = RtArgs()
        self.extra: Optional[RtExtraArgs] = None
        self.o = self.final_state = self.final_normalizer = None

    def result(self):
        """(o, final_state); final_state is (S, z) for normalized kernels."""
        if self.final_state is None:
            return self.o, None
        if self.final_normalizer is not None:
            return self.o, (self.final_state, self.final_normalizer)
        return self.o, self.final_state


def prepare(manifest: dict, device, q, k, v, gate=None, beta=None,
            initial_state=None, output_final_state: bool = False,
            cu_seqlens=None, initial_normalizer=None, map_weight=None,
            map_bias=None, key_map_weight=None, key_map_bias=None) -> Launch:
    """Checks the tensors of a call on ``device`` (a torch.device) against
    the manifest's dtypes, allocates the outputs and fills the C structures;
    shapes are the runtime's to check. Used by :meth:`Module.__call__`;
    touches no driver (cu_seqlens is read back to the host)."""
    torch = _torch()
    s = manifest["spec"]
    dt = getattr(torch, _DTYPES[s["dtype"]])
    gate_dt = torch.float32 if s["decay"] == "constant" else \
        getattr(torch, _DTYPES[s.get("gate_dtype", "f32")])
    f32 = torch.float32
    normalized = bool(s.get("normalized"))
    if isinstance(initial_state, (tuple, list)):
        if not normalized or len(initial_state) != 2:
            raise ValueError("linattn.aot: a (state, normalizer) pair is only "
                             "an initial_state of a normalized kernel")
        if initial_normalizer is not None:
            raise ValueError("linattn.aot: initial_normalizer given twice "
                             "(in initial_state and on its own)")
        initial_state, initial_normalizer = initial_state
    if initial_normalizer is not None and not normalized:
        raise ValueError("linattn.aot: initial_normalizer: the kernel is not "
                         "normalized")

    L = Launch()
    a = L.args
    a.q = _c_tensor("q", q, torch, device, dt)
    a.k = _c_tensor("k", k, torch, device, dt)
    a.v = _c_tensor("v", v, torch, device, dt)
    for n, x in (("q", q), ("k", k), ("v", v)):
        if x.dim() != 4:
            order = "[B, T, H, D]" if s["layout"] == "bthd" else "[B, H, T, D]"
            raise ValueError(f"linattn.aot: {n}: expected {order}, got shape "
                             f"{list(x.shape)}")
    if gate is not None:
        a.gate = _c_tensor("gate", gate, torch, device, gate_dt)
    if initial_state is not None:
        a.initialState = _c_tensor("initial_state", initial_state, torch,
                                   device, f32)
    hdim, tdim = (2, 1) if s["layout"] == "bthd" else (1, 2)
    n_seqs = q.shape[0]
    if cu_seqlens is not None:
        a.offsets = _c_tensor("cu_seqlens", cu_seqlens, torch, device,
                              torch.int64)
        # The kernels trust the offsets (they index memory with them) and
        # the runtime cannot read device memory back: check them here.
        offs = cu_seqlens.tolist()
        T = q.shape[tdim]
        if cu_seqlens.dim() != 1 or len(offs) < 2 or offs[0] != 0 or \
                offs[-1] != T or any(y < x for x, y in zip(offs, offs[1:])):
            raise ValueError("linattn.aot: cu_seqlens: expected [N + 1] "
                             "offsets starting at 0, nondecreasing, ending at "
                             f"T = {T}, got {offs}")
        if q.shape[0] != 1:
            raise ValueError("linattn.aot: cu_seqlens: packed sequences need "
                             f"batch 1, got {q.shape[0]}")
        n_seqs = len(offs) - 1

    heads = max(q.shape[hdim], k.shape[hdim], v.shape[hdim])
    o_shape = list(v.shape)
    o_shape[hdim] = heads
    L.o = torch.empty(o_shape, dtype=dt, device=device)
    a.o = _c_tensor("o", L.o, torch, device, dt)
    dphi, dv = feature_dim(manifest), int(s["value_dim"])
    if output_final_state:
        s_shape = [n_seqs, heads] + ([dv, dphi] if s.get("state_value_major")
                                     else [dphi, dv])
        L.final_state = torch.empty(s_shape, dtype=f32, device=device)
        a.finalState = _c_tensor("final_state", L.final_state, torch, device,
                                 f32)

    extra = {}
    if initial_normalizer is not None:
        extra["initialNormalizer"] = _c_tensor(
            "initial_normalizer", initial_normalizer, torch, device, f32)
    if output_final_state and normalized:
        L.final_normalizer = torch.empty([n_seqs, heads, dphi], dtype=f32,
                                         device=device)
        extra["finalNormalizer"] = _c_tensor(
            "final_normalizer", L.final_normalizer, torch, device, f32)
    for name, field, x in (("beta", "beta", beta),
                           ("map_weight", "mapWeight", map_weight),
                           ("map_bias", "mapBias", map_bias),
                           ("key_map_weight", "keyMapWeight", key_map_weight),
                           ("key_map_bias", "keyMapBias", key_map_bias)):
        if x is not None:
            extra[field] = _c_tensor(name, x, torch, device, f32)
    if extra:
        L.extra = RtExtraArgs()
        L.extra.size = ctypes.sizeof(RtExtraArgs)
        for field, t in extra.items():
            setattr(L.extra, field, t)
    return L


# ---- Module


def _open_device(device) -> Device:
    """``device`` itself, or a new :class:`Device` for an ordinal."""
    if not isinstance(device, Device):
        device = Device(int(device))
    if device._handle is None:
        raise ValueError("linattn.aot: the device is closed")
    return device


class Module:
    """An AOT kernel (``<name>.json`` and the PTX it names) loaded on a
    :class:`Device` (or a device ordinal). Keeps its device open.
    :meth:`from_text` loads PTX and manifest text held in memory (what
    ``linattn._linattn.compile_gpu`` returns)."""

    def __init__(self, device, manifest_path: str):
        device = _open_device(device)
        manifest, text, ptx = read_manifest(manifest_path)
        self._load(device, manifest, text, ptx, manifest_path)

    @classmethod
    def from_text(cls, device, ptx: str, manifest_json: str,
                  name: str = "<memory>") -> "Module":
        """Loads a kernel from PTX and manifest JSON text; the manifest's
        ``ptx`` field is not read. ``name`` stands for the manifest path in
        error messages."""
        device = _open_device(device)
        manifest = parse_manifest(manifest_json, name)
        self = cls.__new__(cls)
        self._load(device, manifest, manifest_json, ptx, name)
        return self

    def _load(self, device, manifest: dict, text: str, ptx: str,
              path: str) -> None:
        self.device = device
        self._handle = None
        self._lock = threading.Lock()
        #: The manifest's path (or :meth:`from_text`'s name).
        self.path = path
        #: The manifest JSON as a dict.
        self.manifest = manifest
        handle = ctypes.c_void_p()
        err = _errbuf()
        rc = device._lib.linattnRtModuleLoad(
            device._handle, ptx.encode(), text.encode(), ctypes.byref(handle),
            err, len(err))
        if rc != 0:
            msg = _msg(err)
            cls = ValueError if msg.startswith("manifest:") else RuntimeError
            raise cls(f"linattn.aot: loading {path}: {msg}")
        self._handle = handle
        device._loaded += 1
        device._modules.add(self)

    @property
    def spec(self) -> Spec:
        """The kernel's :class:`linattn.Spec` (dims and dtype filled in)."""
        return manifest_spec(self.manifest)

    def __call__(self, q, k, v, gate=None, beta=None, initial_state=None,
                 output_final_state: bool = False, cu_seqlens=None,
                 initial_normalizer=None, map_weight=None, map_bias=None,
                 key_map_weight=None, key_map_bias=None):
        """Runs the kernel on contiguous CUDA tensors of the module's device
        and returns ``(o, final_state)`` like :func:`linattn.attention`.

        q, k, v have the manifest's dtype (bf16/f16) and layout
        (``[B, T, H, D]`` or ``[B, H, T, D]``); o is allocated like v with
        H = max(Hq, Hk, Hv) heads. gate (``gate_dtype``, f32 for constant
        decay: ``[H]``, optional when the manifest has a schedule), beta,
        initial_state ``[N, H, Dphi, Dv]`` (value-major ``[N, H, Dv,
        Dphi]``), initial_normalizer ``[N, H, Dphi]`` and the feature-map
        weights are float32; cu_seqlens is int64 on the device (B = 1; its
        values are checked on the host). ``final_state`` is None unless
        ``output_final_state``; for a normalized kernel it is ``(S, z)``,
        and ``initial_state`` may be such a pair.

        The call synchronizes the device before the launch (so producers on
        any torch stream are done; the runtime launches on the default
        stream) and returns once the kernel has finished. Dtype/device
        errors raise ValueError before the launch; the runtime's shape
        checks and launch errors raise ValueError with its message."""
        if self._handle is None:
            raise ValueError("linattn.aot: the module is unloaded")
        torch = _torch()
        device = torch.device("cuda", self.device.ordinal)
        L = prepare(self.manifest, device, q, k, v, gate=gate, beta=beta,
                    initial_state=initial_state,
                    output_final_state=output_final_state,
                    cu_seqlens=cu_seqlens,
                    initial_normalizer=initial_normalizer,
                    map_weight=map_weight, map_bias=map_bias,
                    key_map_weight=key_map_weight, key_map_bias=key_map_bias)
        torch.cuda.synchronize(device)
        self._launch(L)
        return L.result()

    def _launch(self, L: Launch) -> None:
        """Passes prepared arguments to the runtime, which validates the
        shapes, launches and synchronizes. The tensors must live on the
        module's device: prepare() checked that for __call__."""
        if self._handle is None:
            raise ValueError("linattn.aot: the module is unloaded")
        lib = self.device._lib
        err = _errbuf()
        with self._lock:  # the module's prepass workspace is shared
            if L.extra is None:
                rc = lib.linattnRtLaunch(self._handle, ctypes.byref(L.args),
                                         err, len(err))
            else:
                rc = lib.linattnRtLaunchEx(self._handle, ctypes.byref(L.args),
                                           ctypes.byref(L.extra), err,
                                           len(err))
        _check(rc, err, ValueError, os.path.basename(self.path))

    def unload(self) -> None:
        if self._handle is not None:
            dev = self.device
            dev._lib.linattnRtModuleUnload(self._handle)
            self._handle = None
            dev._loaded -= 1
            if dev._finalized and dev._loaded == 0:
                dev._close_handle()

    def __del__(self):
        try:
            self.unload()
        except Exception:  # noqa: BLE001 (interpreter shutdown)
            pass

    def __repr__(self) -> str:
        return f"linattn.aot.Module({self.path!r} on {self.device!r})"


__all__ = ["API_VERSION", "Device", "Launch", "Module", "RtArgs",
           "RtExtraArgs", "RtTensor", "Unavailable", "library_candidates",
           "load_library", "manifest_spec", "parse_manifest", "prepare",
           "read_manifest"]
