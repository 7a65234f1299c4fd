"""linattn.aot: the C API's shared library through ctypes, the structure
layouts against the header, the errors without a driver, the argument checks
before any driver call, the GPU checker's inputs and verdicts on the CPU, the
whole host path (the runtime's shape checks, launch geometry and parameters)
on a fake libcuda, and (on a GPU) AOT kernels on torch CUDA tensors against
linattn.reference.

The library is $LINATTN_CUDA_RT (scripts/test-python.sh sets it to the CMake
build's lib/liblinattn_cuda_rt.so), else the first of
aot.library_candidates(); without either the library tests skip. The GPU test
runs the manifests of $LINATTN_AOT_KERNELS (directories, os.pathsep
separated), default the hand-written kernels of test/GPU/kernels.
"""

import copy
import ctypes
import glob
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from linattn import aot, reference
from conftest import c_compiler as _c_compiler

ROOT = Path(__file__).resolve().parents[2]
HEADER = ROOT / "include" / "linattn" / "Runtime" / "CudaRuntime.h"
ABI_KERNELS = ROOT / "test" / "GPU" / "kernels"
PKG_PARENT = str(Path(aot.__file__).resolve().parents[1])


def _load_checker():
    """bench/gpu/aot_torch_check.py, the GPU check shared with device runs."""
    spec = importlib.util.spec_from_file_location(
        "aot_torch_check", ROOT / "bench" / "gpu" / "aot_torch_check.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


checker = _load_checker()


def _run_python(code, **env):
    """Runs `code` in a fresh interpreter (the runtime keeps a loaded driver
    for the process, so each driver scenario gets its own)."""
    full = dict(os.environ, PYTHONPATH=PKG_PARENT, **env)
    r = subprocess.run([sys.executable, "-c", code], env=full,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


# ---- The library and the structure layouts


def test_api_version_matches_header_and_library(rt_path, monkeypatch):
    monkeypatch.setattr(aot, "_lib", None)
    header = HEADER.read_text()
    version = int(re.search(r"#define LINATTN_RT_API_VERSION (\d+)",
                            header).group(1))
    assert aot.API_VERSION == version
    lib = aot.load_library(rt_path)
    assert lib.linattnRtApiVersion() == version
    # Every function the header exports is in the library.
    for name in re.findall(r"LINATTN_RT_EXPORT[^;(]*?\b(linattnRt\w+)\(",
                           header):
        assert hasattr(lib, name), name


def test_library_exports_only_the_c_api(rt_path):
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("no nm")
    out = subprocess.run([nm, "-D", "--defined-only", rt_path],
                         capture_output=True, text=True, check=True).stdout
    names = [line.split()[-1] for line in out.splitlines() if line.strip()]
    assert "linattnRtLaunchEx" in names
    assert [n for n in names if not n.startswith("linattnRt")] == []


def test_load_library_errors(rt_path, tmp_path, monkeypatch):
    monkeypatch.setattr(aot, "_lib", None)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        aot.load_library(str(tmp_path / "missing.so"))
    bogus = tmp_path / "liblinattn_cuda_rt.so"
    bogus.write_text("not a shared library\n")
    with pytest.raises(OSError, match="cannot load"):
        aot.load_library(str(bogus))
    monkeypatch.setenv(aot.LIBRARY_ENV, str(tmp_path / "nope.so"))
    with pytest.raises(FileNotFoundError, match=r"\$LINATTN_CUDA_RT"):
        aot.load_library()
    monkeypatch.setattr(aot, "API_VERSION", aot.API_VERSION + 1)
    with pytest.raises(RuntimeError, match="C API version"):
        aot.load_library(rt_path)
    assert aot._lib is None  # nothing half-loaded became the default


def test_load_library_from_environment(rt_path, monkeypatch):
    monkeypatch.setattr(aot, "_lib", None)
    monkeypatch.setenv(aot.LIBRARY_ENV, rt_path)
    lib = aot.load_library()
    assert lib.linattnRtApiVersion() == aot.API_VERSION
    assert aot.load_library() is lib  # the default from now on


def _c_layout(tmp_path):
    """{name: value} of sizeof/offsetof of the structures, from a C program
    compiled against the real header with the system C compiler. The field
    names come from the Python structures, so a renamed or missing field
    fails the compile."""
    cc = _c_compiler()
    lines = ['#include "linattn/Runtime/CudaRuntime.h"', "#include <stdio.h>",
             "#include <stddef.h>", "int main(void) {"]
    for cname, py in (("LinattnRtTensor", aot.RtTensor),
                      ("LinattnRtArgs", aot.RtArgs),
                      ("LinattnRtExtraArgs", aot.RtExtraArgs)):
        lines.append(f'  printf("{cname} %zu\\n", sizeof({cname}));')
        for field, _ in py._fields_:
            lines.append(f'  printf("{cname}.{field} %zu %zu\\n", '
                         f"offsetof({cname}, {field}), "
                         f"sizeof((({cname} *)0)->{field}));")
    lines += ['  printf("API %d\\n", LINATTN_RT_API_VERSION);', "  return 0;",
              "}"]
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines) + "\n")
    exe = tmp_path / "layout"
    r = subprocess.run([cc, "-std=c99", "-Wall", "-Werror",
                        f"-I{ROOT / 'include'}", str(src), "-o", str(exe)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = subprocess.run([str(exe)], capture_output=True, text=True,
                         check=True).stdout
    return {line.split(" ", 1)[0]: line.split(" ", 1)[1]
            for line in out.splitlines()}


def test_installed_package_ships_the_library():
    """`pip install ./python` puts liblinattn_cuda_rt.so next to the package,
    where load_library() finds it without LINATTN_CUDA_RT."""
    pkg = Path(aot.__file__).resolve().parent
    if "site-packages" not in pkg.parts:
        pytest.skip(f"linattn is not an installed package here ({pkg})")
    env = {k: v for k, v in os.environ.items() if k != aot.LIBRARY_ENV}
    run = subprocess.run(
        [sys.executable, "-c",
         "import linattn.aot as a; print(a.load_library()._name)"],
        capture_output=True, text=True, env=env, cwd="/", timeout=60)
    assert run.returncode == 0, run.stderr
    assert Path(run.stdout.strip()) == pkg / aot.LIBRARY_NAME


def test_struct_layouts_match_header(tmp_path):
    c = _c_layout(tmp_path)
    py = {}
    for cname, cls in (("LinattnRtTensor", aot.RtTensor),
                       ("LinattnRtArgs", aot.RtArgs),
                       ("LinattnRtExtraArgs", aot.RtExtraArgs)):
        py[cname] = str(ctypes.sizeof(cls))
        for field, _ in cls._fields_:
            d = getattr(cls, field)
            py[f"{cname}.{field}"] = f"{d.offset} {d.size}"
    py["API"] = str(aot.API_VERSION)
    assert py == c
    # The header's field lists, not just the ones Python knows: a field
    # added to the C structure changes its size, caught above; these pin
    # the C API's view of an absent tensor and of `size`.
    assert c["LinattnRtTensor"] == "48"
    assert c["LinattnRtExtraArgs.size"].split()[0] == "0"


# ---- No driver here: Device raises Unavailable with the runtime's message

_OPEN = """
from linattn import aot
aot.load_library()
for make in (lambda: aot.Device(), lambda: aot.Module(0, "unused.json")):
    try:
        make()
    except aot.Unavailable as e:
        print("UNAVAILABLE", isinstance(e, RuntimeError), e)
    else:
        print("OPENED")
"""


def test_device_without_driver_is_unavailable(rt_path):
    out = _run_python(_OPEN, LINATTN_CUDA_RT=rt_path,
                      LINATTN_LIBCUDA="/nonexistent/libcuda.so.1")
    lines = out.splitlines()
    assert len(lines) == 2, out
    for line in lines:
        assert line.startswith("UNAVAILABLE True linattn.aot: CUDA driver not "
                               "found: dlopen(/nonexistent/libcuda.so.1)"), out


def test_device_with_stub_driver_is_unavailable(rt_path):
    stubs = [p for p in ("/usr/local/cuda/lib64/stubs/libcuda.so",
                         "/usr/local/cuda/targets/x86_64-linux/lib/stubs/"
                         "libcuda.so") if os.path.isfile(p)]
    if not stubs:
        pytest.skip("no CUDA toolkit stub libcuda.so")
    out = _run_python(_OPEN, LINATTN_CUDA_RT=rt_path, LINATTN_LIBCUDA=stubs[0])
    assert out.count("UNAVAILABLE True linattn.aot: CUDA driver not found: "
                     "the loaded libcuda is the toolkit's stub") == 2, out


# ---- Manifests


def _manifest(name):
    m, _, _ = aot.read_manifest(str(ABI_KERNELS / f"{name}.json"))
    return m


@pytest.mark.parametrize("path", sorted(glob.glob(str(ABI_KERNELS /
                                                      "*.json"))))
def test_read_manifest_of_abi_kernels(path):
    m, text, ptx = aot.read_manifest(path)
    assert json.loads(text) == m
    assert f".entry {m['entry']}(" in ptx
    spec = aot.manifest_spec(m)
    assert spec.key_dim == m["spec"]["key_dim"]
    assert spec.layout == m["spec"]["layout"]
    want = m["spec"].get("feature_dim", m["spec"]["key_dim"])
    assert aot.feature_dim(m) == spec.feature_dim == want


def test_read_manifest_errors(tmp_path):
    good = json.loads((ABI_KERNELS / "naive_none_bf16_bhtd.json").read_text())
    shutil.copy(ABI_KERNELS / "naive.ptx", tmp_path / "naive.ptx")

    def write(m, text=None):
        p = tmp_path / "k.json"
        p.write_text(text if text is not None else json.dumps(m))
        return str(p)

    with pytest.raises(ValueError, match="not JSON"):
        aot.read_manifest(write(None, "{"))
    with pytest.raises(ValueError, match="not a 'linattn-aot' manifest"):
        aot.read_manifest(write(dict(good, format="other")))
    with pytest.raises(ValueError, match="manifest version 2"):
        aot.read_manifest(write(dict(good, version=2)))
    bad = copy.deepcopy(good)
    del bad["spec"]["dtype"]
    with pytest.raises(ValueError, match="missing field 'spec.dtype'"):
        aot.read_manifest(write(bad))
    bad["spec"]["dtype"] = "f64"
    with pytest.raises(ValueError, match="spec.dtype 'f64'"):
        aot.read_manifest(write(bad))
    with pytest.raises(FileNotFoundError):
        aot.read_manifest(write(dict(good, ptx="missing.ptx")))
    m, _, _ = aot.read_manifest(write(good))
    assert m == good


# ---- Argument checks and C structures before any driver call (CPU tensors)


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _dims(t):
    return list(t.shape[:t.rank])


def test_prepare_fills_the_structures(torch):
    # Hedgehog (d = 16, f = 20, Dphi = 40), bthd, bf16, scalar gate; GQA
    # 4/2/1 heads, two packed sequences.
    m = _manifest("naive_hedgehog_scalar_bf16_bthd")
    cpu = torch.device("cpu")
    bf16, f32 = torch.bfloat16, torch.float32
    q = torch.randn(1, 10, 4, 16).to(bf16)
    k = torch.randn(1, 10, 2, 16).to(bf16)
    v = torch.randn(1, 10, 1, 48).to(bf16)
    g = -torch.rand(1, 10, 4)
    s0 = torch.randn(2, 4, 40, 48)
    w, b = torch.randn(16, 20), torch.randn(20)
    off = torch.tensor([0, 3, 10])
    L = aot.prepare(m, cpu, q, k, v, gate=g, initial_state=s0,
                    output_final_state=True, cu_seqlens=off, map_weight=w,
                    map_bias=b)
    a = L.args
    for field, x in (("q", q), ("k", k), ("v", v), ("gate", g),
                     ("initialState", s0), ("offsets", off), ("o", L.o),
                     ("finalState", L.final_state)):
        t = getattr(a, field)
        assert (t.ptr, _dims(t)) == (x.data_ptr(), list(x.shape)), field
    assert list(L.o.shape) == [1, 10, 4, 48] and L.o.dtype == bf16
    assert list(L.final_state.shape) == [2, 4, 40, 48]
    assert L.final_state.dtype == f32 and L.final_normalizer is None
    x = L.extra
    assert x.size == ctypes.sizeof(aot.RtExtraArgs)
    assert (x.mapWeight.ptr, _dims(x.mapWeight)) == (w.data_ptr(), [16, 20])
    assert (x.mapBias.ptr, _dims(x.mapBias)) == (b.data_ptr(), [20])
    for field in ("initialNormalizer", "finalNormalizer", "beta",
                  "keyMapWeight", "keyMapBias"):
        assert getattr(x, field).rank == 0, field
    o, S = L.result()
    assert o is L.o and S is L.final_state


def test_prepare_normalized_value_major(torch):
    m = copy.deepcopy(_manifest("naive_none_bf16_bhtd"))  # Dk 32, Dv 48
    m["spec"].update(normalized=True, state_value_major=True)
    cpu = torch.device("cpu")
    q, k = (torch.rand(2, 3, 7, 32).to(torch.bfloat16) for _ in range(2))
    v = torch.randn(2, 3, 7, 48).to(torch.bfloat16)
    s0, z0 = torch.randn(2, 3, 48, 32), torch.rand(2, 3, 32)
    L = aot.prepare(m, cpu, q, k, v, initial_state=(s0, z0),
                    output_final_state=True)
    assert L.args.gate.rank == 0 and L.args.offsets.rank == 0
    assert _dims(L.args.initialState) == [2, 3, 48, 32]
    assert _dims(L.extra.initialNormalizer) == [2, 3, 32]
    assert L.extra.initialNormalizer.ptr == z0.data_ptr()
    o, (S, z) = L.result()
    assert list(o.shape) == [2, 3, 7, 48]
    assert list(S.shape) == [2, 3, 48, 32] and list(z.shape) == [2, 3, 32]
    assert _dims(L.extra.finalNormalizer) == [2, 3, 32]
    # Without extra tensors the call takes linattnRtLaunch (no extra struct).
    L = aot.prepare(m, cpu, q, k, v)
    assert L.extra is None and L.args.finalState.rank == 0
    assert L.result() == (L.o, None)


def _bad_calls(torch):
    """(label, manifest name, change to the keyword arguments, message)."""
    bf16 = torch.bfloat16
    return [
        ("cpu tensor", None, {}, r"q: expected a tensor on cuda:0 \(the "
         r"module's device\), got one on cpu"),
        ("q dtype", "cpu", {"q": torch.randn(1, 10, 2, 32)},
         r"q: expected dtype torch.bfloat16, got torch.float32"),
        ("gate dtype", "cpu", {"gate": torch.zeros(1, 10, 2, dtype=bf16)},
         r"gate: expected dtype torch.float32, got torch.bfloat16"),
        ("state dtype", "cpu",
         {"initial_state": torch.zeros(1, 2, 32, 48, dtype=bf16)},
         r"initial_state: expected dtype torch.float32"),
        ("beta dtype", "cpu", {"beta": torch.zeros(1, 10, 2,
                                                   dtype=torch.float64)},
         r"beta: expected dtype torch.float32, got torch.float64"),
        ("weight dtype", "cpu", {"map_weight": torch.zeros(32, 8, dtype=bf16)},
         r"map_weight: expected dtype torch.float32"),
        ("offsets dtype", "cpu", {"cu_seqlens": torch.tensor(
            [0, 10], dtype=torch.int32)},
         r"cu_seqlens: expected dtype torch.int64, got torch.int32"),
        ("offsets order", "cpu", {"cu_seqlens": torch.tensor([0, 5, 3, 10])},
         r"cu_seqlens: .*nondecreasing, ending at T = 10, got "
         r"\[0, 5, 3, 10\]"),
        ("offsets end", "cpu", {"cu_seqlens": torch.tensor([0, 9])},
         r"ending at T = 10, got \[0, 9\]"),
        ("strided", "cpu", {"q": torch.zeros(1, 2, 10, 32,
                                             dtype=bf16).transpose(1, 2)},
         r"q: must be contiguous"),
        ("rank 3", "cpu", {"q": torch.zeros(10, 2, 32, dtype=bf16)},
         r"q: expected \[B, T, H, D\], got shape \[10, 2, 32\]"),
        ("rank 0", "cpu", {"gate": torch.tensor(0.0)},
         r"gate: expected rank 1 to 4, got shape \[\]"),
        ("grad", "cpu", {"initial_state": torch.zeros(
            1, 2, 32, 48, requires_grad=True)}, r"forward-only"),
        ("pair", "cpu", {"initial_state": (torch.zeros(1, 2, 32, 48),
                                           torch.zeros(1, 2, 32))},
         r"pair is only an initial_state of a normalized kernel"),
        ("normalizer", "cpu", {"initial_normalizer": torch.zeros(1, 2, 32)},
         r"initial_normalizer: the kernel is not normalized"),
    ]


def test_prepare_rejects_bad_tensors(torch):
    """dtype/device/layout errors are raised in Python: the runtime sees
    only pointers and shapes, so a wrong dtype would reach the kernel."""
    m = _manifest("naive_scalar_f32_bthd")
    m = copy.deepcopy(m)
    m["spec"]["dtype"] = "bf16"  # q/k/v bf16, gate f32
    base = dict(q=torch.zeros(1, 10, 2, 32, dtype=torch.bfloat16),
                k=torch.zeros(1, 10, 2, 32, dtype=torch.bfloat16),
                v=torch.zeros(1, 10, 2, 48, dtype=torch.bfloat16),
                gate=torch.zeros(1, 10, 2))
    aot.prepare(m, torch.device("cpu"), **base)  # the baseline is fine
    for label, where, change, message in _bad_calls(torch):
        device = torch.device("cuda", 0) if where is None else \
            torch.device(where)
        try:
            with pytest.raises(ValueError, match=message):
                aot.prepare(m, device, **dict(base, **change))
        except BaseException as e:  # noqa: BLE001 (name the case)
            pytest.fail(f"{label}: {e}")
    with pytest.raises(ValueError, match="packed sequences need batch 1"):
        aot.prepare(m, torch.device("cpu"),
                    **{x: torch.cat([t, t]) for x, t in base.items()},
                    cu_seqlens=torch.tensor([0, 10]))
    with pytest.raises(TypeError, match="q: expected a torch.Tensor, got "
                       "ndarray"):
        aot.prepare(m, torch.device("cpu"),
                    **dict(base, q=base["q"].float().numpy()))


# ---- The GPU checker (bench/gpu/aot_torch_check.py) on the CPU, with a fake
# kernel: its inputs must pass prepare()'s checks and the reference's shape
# checks, its outputs must fit prepare()'s allocations, and it must flag a
# wrong kernel.


def _variants():
    """Manifests over the spec axes the checker draws inputs for."""
    base = _manifest("naive_none_bf16_bhtd")
    out = []

    def add(name, **spec):
        m = copy.deepcopy(base)
        m["spec"].update(spec)
        out.append(pytest.param(m, id=name))

    add("none_bf16_bhtd")
    add("retnet_bf16_bthd", decay="constant", schedule="retnet",
        layout="bthd")
    add("constant_gate_f16", decay="constant", dtype="f16")
    add("scalar_f32_vm", decay="scalar", dtype="f32", state_value_major=True)
    add("vector_bf16_bthd_excl", decay="vector", layout="bthd",
        exclusive=True)
    add("delta_bf16", decay="delta")
    add("gated_delta_f16_bthd", decay="gated_delta", dtype="f16",
        layout="bthd")
    add("noncausal_norm_elu", causal=False, normalized=True,
        feature_map="elu_plus_one", eps=1e-6)
    add("norm_scalar_f16", decay="scalar", normalized=True, dtype="f16")
    add("based_bf16_bthd", feature_map="taylor2_symmetric", key_dim=4,
        layout="bthd", feature_dim=15)
    add("hedgehog_norm", feature_map="hedgehog", key_dim=16,
        feature_count=8, normalized=True)
    add("hedgehog_joint_scalar", decay="scalar", feature_map="hedgehog_joint",
        key_dim=8)
    add("performer_hyp_gla", decay="vector",
        feature_map="performer_hyperbolic", key_dim=8, feature_count=8)
    return out


class _FakeModule:
    """Called like aot.Module, on CPU tensors: prepare() checks and
    allocates, the reference fills the outputs, `bump` corrupts them."""

    path = "fake.json"

    def __init__(self, manifest, bump=0.0):
        self.manifest, self.bump = manifest, bump

    def __call__(self, q, k, v, output_final_state=False, **kw):
        import torch
        L = aot.prepare(self.manifest, torch.device("cpu"), q, k, v,
                        output_final_state=output_final_state, **kw)
        spec = aot.manifest_spec(self.manifest)
        s0, z0 = kw.pop("initial_state", None), kw.pop("initial_normalizer",
                                                       None)
        off = kw.pop("cu_seqlens", None)
        o, S, z = reference.run(
            spec, q, k, v, initial_state=s0 if z0 is None else (s0, z0),
            cu_seqlens=None if off is None else off.tolist(), **kw)
        for dst, src in ((L.o, o), (L.final_state, S),
                         (L.final_normalizer, z)):
            if dst is not None:
                dst.copy_(torch.from_numpy(src) * (1 + self.bump))
        return L.result()


@pytest.mark.parametrize("manifest", _variants())
def test_checker_inputs_and_verdicts(manifest, torch):
    ok, line = checker.check_kernel(_FakeModule(manifest),
                                    torch.device("cpu"))
    assert ok, line
    assert line.startswith("PASS fake ")
    want = {"o", "S", "z"} if manifest["spec"]["normalized"] else {"o", "S"}
    assert set(re.findall(r"\b([oSz]) \d", line)) == want
    tol = checker.TOLERANCE[manifest["spec"]["dtype"]]
    ok, line = checker.check_kernel(_FakeModule(manifest, bump=3 * tol),
                                    torch.device("cpu"))
    assert not ok and line.startswith("FAIL fake ")
    assert re.search(r"B=2 T=130 s0: o ratio [\d.e-]+ > ", line), line
    ok, line = checker.check_kernel(_FakeModule(manifest, bump=float("nan")),
                                    torch.device("cpu"))
    assert not ok and "ratio inf" in line, line


# ---- The whole host path on a fake driver: a libcuda that accepts every
# call, so the runtime's own shape checks (validateArgs) judge what
# prepare() and the checker's inputs pass, and the launch geometry and
# parameters show what the kernel would have received.

#: Runs in a fresh interpreter (the runtime keeps the fake driver loaded):
#: every manifest of argv[1] and every case of the checker, prepared on CPU
#: tensors and launched on the fake driver; prints JSON.
_FAKE_RUN = """
import ctypes, json, sys
import torch
from linattn import aot
sys.path.insert(0, sys.argv[3])
import aot_torch_check as checker
fake = ctypes.CDLL(sys.argv[2])
fake.fake_slot.restype = ctypes.c_ulonglong
dev = aot.Device(0)
out = {"device": [dev.name, dev.sm, dev.driver_version], "runs": []}
cpu = torch.device("cpu")
for path in json.load(open(sys.argv[1])):
    mod = aot.Module(dev, path)
    for i, case in enumerate(checker.CASES):
        kw = checker.make_inputs(mod.manifest, case, cpu, i)
        L = aot.prepare(mod.manifest, cpu, output_final_state=True, **kw)
        before = fake.fake_launches()
        try:
            mod._launch(L)
            err = None
        except ValueError as e:
            err = str(e)
        out["runs"].append({
            "path": path, "case": case[0], "error": err,
            "launches": fake.fake_launches() - before,
            "grid": [fake.fake_grid(j) for j in range(3)],
            "slots": [fake.fake_slot(j) for j in range(48)],
            "o": L.o.data_ptr(), "S": L.final_state.data_ptr(),
            "v": kw["v"].data_ptr(), "T": case[5],
            "H": max(case[2:5]), "N": len(case[7]) - 1 if case[7] else case[1],
            "dv": mod.manifest["spec"]["value_dim"],
            "block_v": mod.manifest["launch"]["block_v"]})
    # A shape only the runtime checks: v's value dim.
    kw = checker.make_inputs(mod.manifest, checker.CASES[0], cpu, 0)
    kw["v"] = kw["v"][..., :-1].contiguous()
    before = fake.fake_launches()
    try:
        mod._launch(aot.prepare(mod.manifest, cpu, **kw))
        out["runs"].append({"path": path, "bad_v": "launched"})
    except ValueError as e:
        out["runs"].append({"path": path, "bad_v": str(e),
                            "launches": fake.fake_launches() - before})
print(json.dumps(out))
"""


def _with_map(m):
    """A manifest of a width-changing map needs the prepass object."""
    fm = m["spec"]["feature_map"]
    if fm in ("identity", "elu_plus_one", "relu"):
        return m
    dphi = aot.feature_dim(m)
    m["spec"]["feature_dim"] = dphi
    m["map"] = {"entry": "linattn_map", "threads": 128, "rows_per_block": 4,
                "padded_dim": (dphi + 15) // 16 * 16}
    return m


def test_host_path_on_fake_driver(rt_path, tmp_path, torch, fake_libcuda):
    fake = fake_libcuda
    shutil.copy(ABI_KERNELS / "naive.ptx", tmp_path / "naive.ptx")
    paths = [str(p) for p in sorted(ABI_KERNELS.glob("*.json"))]
    for param in _variants():
        m = _with_map(copy.deepcopy(param.values[0]))
        paths.append(str(tmp_path / f"{param.id}.json"))
        Path(paths[-1]).write_text(json.dumps(m))
    (tmp_path / "paths.json").write_text(json.dumps(paths))
    r = subprocess.run(
        [sys.executable, "-c", _FAKE_RUN, str(tmp_path / "paths.json"),
         str(fake), str(ROOT / "bench" / "gpu")],
        env=dict(os.environ, PYTHONPATH=PKG_PARENT, LINATTN_CUDA_RT=rt_path,
                 LINATTN_LIBCUDA=str(fake)),
        capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["device"] == ["linattn fake GPU", 90, 12080]
    runs = [x for x in out["runs"] if "case" in x]
    assert len(runs) == len(paths) * len(checker.CASES)
    for x in runs:
        where = f"{os.path.basename(x['path'])} {x['case']}"
        assert x["error"] is None, f"{where}: {x['error']}"
        mapped = "map" in json.loads(Path(x["path"]).read_text())
        # The map prepass runs on q and on k before linattn_fwd.
        assert x["launches"] == (3 if mapped else 1), where
        assert x["grid"] == [-(-x["dv"] // x["block_v"]), x["H"], x["N"]], \
            where
        s = x["slots"]
        # Tensors are (allocated, aligned, offset, size, stride) x 8, then
        # num_seqs, seq_len, heads_q/k/v, has_initial_state,
        # has_final_state, has_offsets.
        assert s[10] == s[11] == x["v"], where
        assert s[25] == s[26] == x["o"], where
        assert s[30] == s[31] == x["S"], where
        assert s[40] == x["N"] and s[41] == x["T"], where
        assert s[45:48] == [1 if x["case"].endswith("s0") else 0, 1,
                            1 if x["case"].startswith("varlen") else 0], where
    bad = [x for x in out["runs"] if "bad_v" in x]
    assert len(bad) == len(paths)
    for x in bad:
        assert x["launches"] == 0, x
        assert re.search(r"^linattn\.aot: \S+\.json: v: expected value dim "
                         r"\d+ \(manifest\)", x["bad_v"]), x


#: Module.from_text on the fake driver: the manifest and PTX of argv[1] as
#: text, the Python-side manifest checks, and the runtime's own.
_FROM_TEXT = """
import json, sys
from linattn import aot
m0, text, ptx = aot.read_manifest(sys.argv[1])
dev = aot.Device(0)
mod = aot.Module.from_text(dev, ptx, text, name="in-memory")
print(json.dumps({"path": mod.path, "same": mod.manifest == m0,
                  "loaded": dev._loaded, "repr": repr(mod)}))
bad = dict(m0, spec=dict(m0["spec"], gate_dtype="f16"))
for name, t in (("broken", "{"), ("other", json.dumps({"format": "x"})),
                ("gate", json.dumps(bad))):
    try:
        aot.Module.from_text(dev, ptx, t, name=name)
        print("LOADED", name)
    except ValueError as e:
        print(e)
print(dev._loaded)
"""


def test_module_from_text_on_fake_driver(rt_path, fake_libcuda):
    path = str(ABI_KERNELS / "naive_none_bf16_bhtd.json")
    out = _run_python(f"import sys; sys.argv[1:] = [{path!r}]\n" +
                      _FROM_TEXT, LINATTN_CUDA_RT=rt_path,
                      LINATTN_LIBCUDA=fake_libcuda).splitlines()
    head = json.loads(out[0])
    assert head["path"] == "in-memory" and head["same"], head
    assert head["loaded"] == 1
    assert head["repr"].startswith("linattn.aot.Module('in-memory' on ")
    assert out[1].startswith("linattn.aot: broken: not JSON"), out
    assert out[2] == "linattn.aot: other: not a 'linattn-aot' manifest", out
    # Checked by the runtime (CudaManifest.cpp), not by parse_manifest.
    assert out[3].startswith("linattn.aot: loading gate: manifest: "
                             "spec.gate_dtype 'f16' must be f32 or the dtype"),\
        out
    assert out[4] == "1"  # failed loads leave nothing loaded


#: A device and its modules that become garbage together are finalized in
#: any order (and the weak references of Device._modules are cleared
#: first); the runtime's modules use their device when unloaded, so the
#: handle must be closed after the last unload. Prints the order.
_CYCLE = """
import gc, sys
from linattn import aot
events = []
close, unload = aot.Device._close_handle, aot.Module.unload
def traced_close(self):
    if self._handle is not None:
        events.append("close")
    close(self)
def traced_unload(self):
    if self._handle is not None:
        events.append("unload")
    unload(self)
aot.Device._close_handle, aot.Module.unload = traced_close, traced_unload
gc.disable()
dev = aot.Device(0)
cycle = [dev] + [aot.Module(dev, sys.argv[1]) for _ in range(3)]
cycle.append(cycle)
del dev, cycle
gc.collect()
print(" ".join(events))
dev = aot.Device(0)
mods = [aot.Module(dev, sys.argv[1]) for _ in range(2)]
events.clear()
dev.close()   # explicit: unloads its modules first
mods[0].unload()
print(" ".join(events), dev._loaded)
"""


def test_device_closed_after_its_modules(rt_path, fake_libcuda):
    path = str(ABI_KERNELS / "naive_none_bf16_bhtd.json")
    r = subprocess.run([sys.executable, "-c", _CYCLE, path],
                       env=dict(os.environ, PYTHONPATH=PKG_PARENT,
                                LINATTN_CUDA_RT=rt_path,
                                LINATTN_LIBCUDA=fake_libcuda),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, (r.returncode, r.stderr)
    assert r.stdout.splitlines() == ["unload unload unload close",
                                     "unload unload close 0"], r.stdout


# ---- On a GPU: every kernel against the reference


def _gpu_manifests():
    dirs = os.environ.get("LINATTN_AOT_KERNELS")
    dirs = dirs.split(os.pathsep) if dirs else [str(ABI_KERNELS)]
    return [p for d in dirs for p in sorted(glob.glob(os.path.join(
        d, "*.json"))) if not p.endswith(".variants.json")]


def _cuda_available():
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.fixture(scope="module")
def gpu_device(rt_path):
    aot.load_library(rt_path)
    try:
        return aot.Device(0)
    except aot.Unavailable as e:
        pytest.skip(str(e))


@pytest.mark.skipif(not _cuda_available(), reason="no CUDA device (torch)")
@pytest.mark.parametrize("path", _gpu_manifests(),
                         ids=lambda p: os.path.basename(p)[:-5])
def test_aot_kernel_on_cuda_tensors(path, gpu_device, torch):
    module = aot.Module(gpu_device, path)
    ok, line = checker.check_kernel(module, torch.device("cuda", 0))
    assert ok, line
