"""linattn.attention on CUDA tensors (linattn.gpu): the extension's
compile_gpu (PTX and manifest; ptxas assembles the PTX without spills where
the CUDA toolkit is installed), the compiler's errors, the choice of chip
for each compute capability, the GPU options, the routing of CUDA tensors
and of the GPU options in linattn.attention, the errors of the dispatch
without a runtime library or driver, the whole JIT path up to the launch on
a fake driver, and (on a GPU) results against linattn.reference.
"""

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import linattn
from linattn import aot, gpu, reference
from linattn.compiler import CompileOptions, _to_cpp
from conftest import check_close, make_inputs, np_dtype

#: The package's parent directory, not resolved: an installed package or a
#: directory of links to the sources with the built extension.
PKG_PARENT = str(Path(linattn.__file__).parent.parent)
PTXAS = os.environ.get("PTXAS") or shutil.which("ptxas") or \
    "/usr/local/cuda/bin/ptxas"


def _ext():
    from linattn import _linattn
    return _linattn


def _spec(**fields):
    base = dict(dtype="bfloat16", key_dim=64, value_dim=64,
                gate_dtype="float32")
    return linattn.Spec(**{**base, **fields})


# ---- compile_gpu: PTX and manifest

#: id, spec fields, chip asked for, manifest chip, the PTX's entries.
KERNELS = [
    ("scalar_bf16_bthd_sm90", dict(decay="scalar"), "sm_90", "sm_90a",
     {"linattn_fwd"}),
    ("scalar_bf16_bthd_sm80", dict(decay="scalar"), "sm_80", "sm_80",
     {"linattn_fwd"}),
    ("gla_f16_sm86", dict(decay="vector", dtype="float16"), "sm_86", "sm_86",
     {"linattn_fwd"}),
    ("hedgehog_norm_sm89", dict(feature_map="hedgehog", normalized=True,
                                feature_count=32, gate_dtype=None),
     "sm_89", "sm_89", {"linattn_fwd", "linattn_map"}),
]


def _assemble(tmp_path, ptx, chip, entries):
    """ptxas -arch=chip -v: every entry assembles without spills."""
    if not os.path.isfile(PTXAS) and not shutil.which(PTXAS):
        return None
    src = tmp_path / "kernel.ptx"
    src.write_text(ptx)
    r = subprocess.run([PTXAS, f"-arch={chip}", "-v", str(src), "-o",
                        str(tmp_path / "kernel.cubin")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    compiled = set(re.findall(r"Compiling entry function '(\w+)'", r.stderr))
    assert compiled == entries, r.stderr
    spills = re.findall(r"(\d+) bytes spill stores, (\d+) bytes spill loads",
                        r.stderr)
    assert len(spills) == len(entries), r.stderr
    assert all(s == ("0", "0") for s in spills), r.stderr
    return r.stderr


@pytest.mark.parametrize("name,fields,chip,target,entries", KERNELS,
                         ids=[k[0] for k in KERNELS])
def test_compile_gpu(name, fields, chip, target, entries, tmp_path):
    spec = _spec(**fields)
    cpp_spec, _ = _to_cpp(spec, CompileOptions())
    ptx, text = _ext().compile_gpu(cpp_spec, chip)
    assert set(re.findall(r"^(?:\.visible\s+)?\.entry\s+(\w+)\(", ptx,
                          re.M)) == entries
    assert re.search(rf"^\.target {target}\b", ptx, re.M), ptx[:400]
    m = json.loads(text)
    assert m["format"] == "linattn-aot" and m["entry"] == "linattn_fwd"
    assert m["chip"] == target
    s = m["spec"]
    want = {"decay": spec.decay, "feature_map": spec.feature_map,
            "layout": "bthd", "key_dim": 64, "value_dim": 64,
            "normalized": spec.normalized,
            "dtype": {"bfloat16": "bf16", "float16": "f16"}[spec.dtype],
            "gate_dtype": "f32", "feature_dim": spec.feature_dim}
    assert {k: s[k] for k in want} == want
    assert s["scale"] == pytest.approx(1 / math.sqrt(spec.feature_dim))
    if "linattn_map" in entries:
        assert s["feature_count"] == 32
        assert m["map"]["entry"] == "linattn_map"
        assert m["map"]["padded_dim"] == 64
    else:
        assert "map" not in m
    assert (m["launch"]["mma"] == "wgmma") == (target == "sm_90a")
    # The manifest is what linattn.aot reads.
    assert aot.parse_manifest(text, name)["spec"] == s
    _assemble(tmp_path, ptx, target, entries)


def _ptxas_knows(arch):
    r = subprocess.run([PTXAS, "--help"], capture_output=True, text=True)
    return arch in r.stdout


@pytest.mark.parametrize("capability", [(10, 0), (12, 0)])
def test_newer_gpus_get_portable_sm90_ptx(capability, tmp_path):
    """What gpu_target picks for a GPU newer than 9.0 is sm_90 PTX (no
    wgmma), which ptxas (as the driver's JIT) compiles for that GPU; the
    sm_90a PTX of the 9.0 default would not."""
    spec = _spec(decay="scalar")
    ptx, text = gpu.compile_kernel(spec, gpu.gpu_options(capability))
    assert json.loads(text)["chip"] == "sm_90"
    assert re.search(r"^\.target sm_90$", ptx, re.M)
    assert "wgmma" not in ptx
    arch = f"sm_{capability[0]}{capability[1]}"
    if not os.path.isfile(PTXAS) or not _ptxas_knows(arch):
        pytest.skip(f"no ptxas for {arch}")
    _assemble(tmp_path, ptx, arch, {"linattn_fwd"})
    wgmma, _ = gpu.compile_kernel(spec, gpu.gpu_options((9, 0)))
    assert re.search(r"^\.target sm_90a$", wgmma, re.M)
    (tmp_path / "a.ptx").write_text(wgmma)
    r = subprocess.run([PTXAS, f"-arch={arch}", str(tmp_path / "a.ptx"),
                        "-o", str(tmp_path / "a.cubin")],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "wgmma" in r.stderr


def test_compile_gpu_options_and_cache():
    spec = _spec(decay="scalar")
    cpp_spec, _ = _to_cpp(spec, CompileOptions())
    before = _ext().gpu_kernel_cache_stats()
    ptx, text = _ext().compile_gpu(cpp_spec, "sm_90", mma="sync",
                                   chunk_size=32, block_v=32, warps=2,
                                   stages=2)
    launch = json.loads(text)["launch"]
    assert launch["mma"] == "sync" and json.loads(text)["chip"] == "sm_90"
    assert (launch["chunk_size"], launch["block_v"], launch["threads"],
            launch["stages"]) == (32, 32, 64, 2)
    again = _ext().compile_gpu(cpp_spec, "sm_90", mma="sync", chunk_size=32,
                               block_v=32, warps=2, stages=2)
    assert again == (ptx, text)
    after = _ext().gpu_kernel_cache_stats()
    assert set(after) == {"compiled", "memory_hits", "disk_hits",
                          "disk_writes", "disk_rejected"}
    assert after["memory_hits"] >= before["memory_hits"] + 1


@pytest.mark.parametrize("fields,message", [
    (dict(dtype="float32"),
     "linattn: spec.dtype: GPU kernels take bf16 or f16 inputs, got f32"),
    (dict(key_dim=60), "linattn: GPU kernel options: key dim 60 must be a "
     "multiple of 16 and at most 256"),
    (dict(feature_map="hedgehog", feature_count=200),
     "linattn: GPU kernel options: feature map 'hedgehog' gives 400 "
     "features (padded to 400), over the GPU kernel's key width limit of "
     "256"),
], ids=["f32", "key_dim_60", "hedgehog_too_wide"])
def test_compile_gpu_errors(fields, message):
    cpp_spec, _ = _to_cpp(_spec(decay="scalar", **fields), CompileOptions())
    with pytest.raises(ValueError, match=re.escape(message)):
        _ext().compile_gpu(cpp_spec, "sm_80")
    with pytest.raises(ValueError, match=re.escape(message)):
        gpu.compile_kernel(_spec(decay="scalar", **fields),
                           gpu.GPUOptions("sm_80"))


def test_compile_kernel_is_cached():
    spec = _spec(decay="vector", dtype="float16", key_dim=32, value_dim=32)
    n = gpu.cache_info()["compilations"]
    image = gpu.compile_kernel(spec, gpu.GPUOptions("sm_80"))
    assert gpu.compile_kernel(spec, gpu.GPUOptions("sm_80")) is image
    # gate_dtype None is float32: the same kernel.
    assert gpu.compile_kernel(spec.replace(gate_dtype=None),
                              gpu.GPUOptions("sm_80")) is image
    assert gpu.cache_info()["compilations"] == n + 1
    other = gpu.compile_kernel(spec, gpu.GPUOptions("sm_80", stages=2))
    assert other != image and gpu.cache_info()["compilations"] == n + 2


# ---- The chip for a compute capability, and the GPU options


@pytest.mark.parametrize("capability,want", [
    ((8, 0), ("sm_80", "auto")), ((8, 6), ("sm_86", "auto")),
    ((8, 7), ("sm_87", "auto")), ((8, 9), ("sm_89", "auto")),
    ((9, 0), ("sm_90", "auto")),
    # Newer GPUs JIT sm_90 PTX; sm_90a (wgmma) PTX would not load there.
    ((10, 0), ("sm_90", "sync")), ((12, 0), ("sm_90", "sync")),
    ((9, 1), ("sm_90", "sync")),
    # An 8.x without a chip of its own: the newest older one.
    ((8, 8), ("sm_87", "auto")),
])
def test_gpu_target(capability, want):
    assert gpu.gpu_target(capability) == want


@pytest.mark.parametrize("capability", [(7, 5), (7, 0), (6, 1)])
def test_gpu_target_too_old(capability):
    with pytest.raises(ValueError, match=re.escape(
            "GPU kernels need compute capability 8.0 (sm_80) or newer; this "
            f"GPU has {capability[0]}.{capability[1]}")):
        gpu.gpu_target(capability)


def test_gpu_options():
    assert gpu.gpu_options((8, 6)) == gpu.GPUOptions("sm_86", "auto")
    o = gpu.gpu_options((9, 0), gpu_chunk_size=128, block_v=32, warps=8,
                        stages=2, mma="wgmma")
    assert o == gpu.GPUOptions("sm_90", "wgmma", 128, 32, 8, 2)
    assert gpu.gpu_options((9, 0), mma="sync").mma == "sync"
    # "auto" on a GPU newer than 9.0 stays sync (no sm_90a there).
    assert gpu.gpu_options((12, 0), mma="auto") == \
        gpu.GPUOptions("sm_90", "sync")
    with pytest.raises(ValueError, match=r"mma='wgmma' needs compute "
                       r"capability 9\.0 .* this GPU has 12\.0"):
        gpu.gpu_options((12, 0), mma="wgmma")
    with pytest.raises(ValueError, match="mma = 'tensor' is not one of"):
        gpu.gpu_options((9, 0), mma="tensor")
    with pytest.raises(ValueError, match=r"warps = -1 must be an integer "
                       ">= 0"):
        gpu.gpu_options((9, 0), warps=-1)
    with pytest.raises(ValueError, match="stages = 1.5"):
        gpu.gpu_options((9, 0), stages=1.5)
    with pytest.raises(TypeError, match="unknown GPU option.*tile_m"):
        gpu.gpu_options((9, 0), tile_m=4)


# ---- Routing in linattn.attention (no GPU needed)


class _CudaLike:
    """Stands in for a torch CUDA tensor as far as the routing looks."""

    __module__ = "torch"
    is_cuda = True

    def __init__(self, array):
        self.array = array
        self.shape = array.shape


def test_cuda_tensors_go_to_the_gpu_path(monkeypatch):
    calls = []
    monkeypatch.setattr(gpu, "attention", lambda *a, **kw: calls.append(
        (a, kw)) or ("o", None))
    spec = linattn.Spec(decay="scalar")
    q = _CudaLike(np.zeros((1, 4, 2, 16), np.float32))
    assert linattn.attention(spec, q, q, q, gate=q, block_v=32, warps=4,
                             tile_m=4) == ("o", None)
    # The FLA functions call linattn.attention.
    assert linattn.chunk_simple_gla(q, q, q, g=q, output_final_state=True) \
        == ("o", None)
    (args1, kw1), (args2, kw2) = calls
    assert args1 == (spec, q, q, q) and args2 == (spec, q, q, q)
    # GPU and CPU overrides go on together; gpu.attention tells them apart.
    assert {k: kw1[k] for k in ("block_v", "warps", "tile_m")} == \
        {"block_v": 32, "warps": 4, "tile_m": 4}
    assert kw1["gate"] is q and kw1["output_final_state"] is False
    assert kw2["chunk_size"] == 64 and kw2["output_final_state"] is True
    # A CPU q keeps the CPU path, whatever k is.
    with pytest.raises(ValueError, match="tensor 'k' is on device"):
        class _Dev(_CudaLike):
            def __dlpack__(self, stream=None):
                raise AssertionError("not read")

            def __dlpack_device__(self):
                return (2, 0)
        qc = np.zeros((1, 4, 2, 16), np.float32)
        linattn.attention(spec, qc, _Dev(qc), qc, gate=qc[..., 0])
    assert len(calls) == 2


def test_gpu_options_are_ignored_on_the_cpu(rng):
    spec = linattn.Spec(decay="scalar")
    q, k, v, g, _, _ = make_inputs(rng, spec, dk=16, dv=16)
    o1, _ = linattn.attention(spec, q, k, v, gate=g)
    o2, _ = linattn.attention(spec, q, k, v, gate=g, gpu_chunk_size=128,
                              block_v=32, warps=8, stages=2, mma="sync")
    np.testing.assert_array_equal(o1, o2)
    with pytest.raises(TypeError, match="tile_q"):
        linattn.attention(spec, q, k, v, gate=g, block_v=32, tile_q=3)


# ---- The dispatch's errors without a GPU (numpy arrays stand in for the
# tensors: kernel_for reads only their dtypes and head dims)


def _bf16(*shape):
    return np.zeros(shape, np_dtype("bfloat16"))


def test_float32_q_is_refused_before_anything_else():
    q = np.zeros((1, 8, 2, 64), np.float32)
    with pytest.raises(ValueError, match=re.escape(
            "linattn: GPU kernels take bfloat16 or float16 q, k, v; q is "
            "float32")):
        gpu.kernel_for(linattn.Spec(decay="scalar"), q, q, ordinal=0)


def test_missing_runtime_library(monkeypatch, tmp_path):
    monkeypatch.setattr(aot, "_lib", None)
    monkeypatch.setattr(gpu, "_devices", {})
    monkeypatch.setenv(aot.LIBRARY_ENV, str(tmp_path / "missing.so"))
    q = _bf16(1, 8, 2, 64)
    with pytest.raises(RuntimeError) as e:
        gpu.kernel_for(linattn.Spec(decay="scalar"), q, q,
                       np.zeros((1, 8, 2), np.float32), ordinal=0)
    msg = str(e.value)
    assert msg.startswith("linattn: CUDA tensors need liblinattn_cuda_rt.so, "
                          "the thin CUDA runtime: linattn.aot: "), msg
    assert "missing.so ($LINATTN_CUDA_RT) does not exist" in msg
    assert "scripts/build-launch.sh" in msg and "LINATTN_CUDA_RT" in msg


def _run_python(code, rt_path, libcuda):
    r = subprocess.run([sys.executable, "-c", code],
                       env=dict(os.environ, PYTHONPATH=PKG_PARENT,
                                LINATTN_CUDA_RT=rt_path,
                                LINATTN_LIBCUDA=libcuda),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, (r.returncode, r.stderr)
    return r.stdout


_NO_DRIVER = """
import numpy as np, ml_dtypes, linattn
from linattn import aot, gpu
q = np.zeros((1, 8, 2, 64), ml_dtypes.bfloat16)
try:
    gpu.kernel_for(linattn.Spec(), q, q, ordinal=0)
except aot.Unavailable as e:
    print("UNAVAILABLE", e)
"""


def test_no_driver(rt_path):
    pytest.importorskip("ml_dtypes")
    out = _run_python(_NO_DRIVER, rt_path, "/nonexistent/libcuda.so.1")
    assert out.startswith("UNAVAILABLE linattn: CUDA tensors need a CUDA "
                          "driver and GPU: linattn.aot: CUDA driver not "
                          "found: dlopen(/nonexistent/libcuda.so.1)"), out


#: The JIT path up to the launch on the fake driver (compute capability
#: 9.0): compile, load through the runtime (which checks the manifest), the
#: caches, and the options.
_FAKE_JIT = """
import json
import numpy as np, ml_dtypes, linattn
from linattn import gpu
bf16 = ml_dtypes.bfloat16
q = np.zeros((1, 8, 2, 64), bf16)
g = np.zeros((1, 8, 2), np.float32)
out = {}
m = gpu.kernel_for(linattn.Spec(decay="scalar"), q, q, g, ordinal=0)
out["scalar"] = [m.manifest["chip"], m.manifest["launch"]["mma"], m.path,
                 m.spec.key_dim, m.spec.dtype, m.device.sm]
info = gpu.cache_info()
again = gpu.kernel_for(linattn.Spec(decay="scalar"), q, q, g, ordinal=0)
out["cached"] = [again is m, gpu.cache_info()["compilations"] ==
                 info["compilations"], info["devices"], info["modules"]]
w = np.zeros((64, 16), np.float32)
m = gpu.kernel_for(linattn.Spec(feature_map="hedgehog", normalized=True),
                   q, q, None, w, ordinal=0)
out["hedgehog"] = [m.manifest["spec"]["feature_count"],
                   m.manifest["spec"]["feature_dim"],
                   m.manifest["map"]["entry"]]
m = gpu.kernel_for(linattn.Spec(decay="vector"), q.astype(np.float16),
                   q, ordinal=0, gpu_chunk_size=32, warps=2, mma="sync")
out["options"] = [m.manifest["chip"], m.manifest["spec"]["dtype"],
                  m.manifest["launch"]["chunk_size"],
                  m.manifest["launch"]["threads"]]
try:
    gpu.kernel_for(linattn.Spec(decay="scalar"), q, q, g, ordinal=0,
                   gpu_chunk_size=48)
except ValueError as e:
    out["error"] = str(e)
print(json.dumps(out))
"""


def test_jit_path_on_fake_driver(rt_path, fake_libcuda):
    pytest.importorskip("ml_dtypes")
    out = json.loads(_run_python(_FAKE_JIT, rt_path, fake_libcuda))
    assert out["scalar"] == ["sm_90a", "wgmma", "jit-scalar-identity-sm_90",
                             64, "bfloat16", 90]
    assert out["cached"] == [True, True, 1, 1]
    assert out["hedgehog"] == [16, 32, "linattn_map"]
    assert out["options"] == ["sm_90", "f16", 32, 64]
    assert out["error"].startswith("linattn: GPU kernel options: chunk-size "
                                   "48 must be a multiple of"), out


# ---- On a GPU: linattn.attention on CUDA tensors against the reference


def _cuda_available():
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def _gpu_cases():
    return [
        pytest.param(dict(decay="scalar"), 64, 64, None, id="scalar_bf16"),
        pytest.param(dict(decay="vector"), 64, 64, None, id="gla_bf16"),
        pytest.param(dict(feature_map="hedgehog", normalized=True), 64, 64,
                     32, id="hedgehog_norm_bf16"),
    ]


@pytest.mark.skipif(not _cuda_available(), reason="no CUDA device (torch)")
@pytest.mark.parametrize("fields,dk,dv,f", _gpu_cases())
def test_attention_on_cuda_tensors(fields, dk, dv, f, rng):
    import torch
    spec = linattn.Spec(**fields)
    q, k, v, g, beta, s0 = make_inputs(rng, spec, B=2, T=130, dk=dk, dv=dv,
                                       initial_state=not spec.normalized)
    dev = torch.device("cuda", torch.cuda.current_device())

    def cuda(x, dtype=torch.float32):
        return None if x is None else torch.tensor(
            np.asarray(x, np.float32), dtype=dtype, device=dev)

    qc, kc, vc = (cuda(x, torch.bfloat16) for x in (q, k, v))
    kw = dict(gate=cuda(g), initial_state=cuda(s0))
    if f:
        w = rng.standard_normal((dk, f)) / math.sqrt(dk)
        b = rng.standard_normal(f) * 0.1
        kw.update(map_weight=cuda(w), map_bias=cuda(b))
    o, st = linattn.attention(spec, qc, kc, vc, output_final_state=True, **kw)
    assert o.device == dev and o.dtype == torch.bfloat16
    ro, rs, rz = reference.run(spec, qc, kc, vc, **kw)
    check_close("o", o, ro, "bfloat16")
    if spec.normalized:
        st, zt = st
        check_close("final_normalizer", zt, rz, "bfloat16")
    check_close("final_state", st, rs, "bfloat16")
