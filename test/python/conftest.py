"""Shared helpers of the linattn Python tests: MATH.md 9.7 random inputs and
tolerances."""

import os
import shutil
import zlib
from pathlib import Path

import numpy as np
import pytest

import linattn
from linattn import aot, reference

ROOT = Path(__file__).resolve().parents[2]

#: MATH.md 9.7: forward ratio bound per kernel dtype.
RATIO = {"float64": 1e-12, "float32": 1e-5, "float16": 1e-3,
         "bfloat16": 5e-3}


def np_dtype(name):
    if name == "bfloat16":
        ml_dtypes = pytest.importorskip("ml_dtypes")
        return ml_dtypes.bfloat16
    return np.dtype(name)


def logsigmoid(x):
    return np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))


def make_inputs(rng, spec, B=1, T=16, hq=2, hk=2, hv=2, dk=16, dv=8,
                dtype="float32", offsets=None, initial_state=False,
                gate_scale=1 / 16):
    """q, k, v, gate, beta, initial state for `spec`, in its layout, rounded
    to `dtype` (the reference then sees the same rounded values)."""
    dt = np_dtype(dtype)
    bthd = spec.layout == "bthd"

    def shape(h, d):
        return (B, T, h, d) if bthd else (B, h, T, d)

    q = (rng.standard_normal(shape(hq, dk)) / 2).astype(dt)
    k = (rng.standard_normal(shape(hk, dk)) / 2).astype(dt)
    v = rng.standard_normal(shape(hv, dv)).astype(dt)
    H = max(hq, hk, hv)
    gate = beta = None
    if spec.decay == "vector":
        gate = (logsigmoid(rng.standard_normal(shape(H, dk))) *
                gate_scale).astype(np.float32)
    elif spec.decay in ("scalar", "gated_delta"):
        gate = (logsigmoid(rng.standard_normal(shape(H, 1))[..., 0]) *
                gate_scale).astype(np.float32)
    elif spec.decay == "constant" and spec.has_gate:
        gate = np.log(rng.uniform(0.8, 0.999, H)).astype(np.float32)
    if spec.has_beta:
        beta = rng.uniform(0, 1, shape(H, 1)[:-1]).astype(dt)
    s0 = None
    if initial_state:
        n = len(offsets) - 1 if offsets is not None else B
        sdt = np.float64 if dtype == "float64" else np.float32
        s_shape = (n, H, dv, dk) if spec.state_layout == "value_major" \
            else (n, H, dk, dv)
        s0 = rng.standard_normal(s_shape).astype(sdt)
        if spec.normalized:
            s0 = (np.abs(s0), rng.uniform(0.5, 2, (n, H, dk)).astype(sdt))
    return q, k, v, gate, beta, s0


def check_close(name, got, want, dtype):
    """ratio <= the MATH.md 9.7 bound and no NaN/Inf; for float32 also the
    elementwise rtol 1e-4, atol 1e-5 max|ref| check."""
    got = reference.to_numpy(got)
    assert got.shape == want.shape, name
    assert np.all(np.isfinite(got)), f"{name}: NaN/Inf in the kernel output"
    r = reference.ratio(got, want)
    assert r <= RATIO[dtype], f"{name}: ratio {r:.3g} > {RATIO[dtype]}"
    if dtype == "float32" and want.size:
        atol = 1e-5 * np.abs(want).max()
        bad = np.abs(got - want) > atol + 1e-4 * np.abs(want)
        assert not bad.any(), f"{name}: {bad.sum()} elements off"


def run_and_check(spec, inputs, dtype, offsets=None, **options):
    q, k, v, gate, beta, s0 = inputs
    o, st = linattn.attention(spec, q, k, v, gate=gate, beta=beta,
                              initial_state=s0, output_final_state=True,
                              cu_seqlens=offsets, **options)
    ro, rs, rz = reference.run(spec, q, k, v, gate=gate, beta=beta,
                               initial_state=s0, cu_seqlens=offsets)
    check_close("o", o, ro, dtype)
    if spec.normalized:
        st, zt = st
        check_close("final_normalizer", zt, rz, dtype)
    check_close("final_state", st, rs, dtype)
    return o, st


@pytest.fixture
def rng(request):
    # One seed per test, stable across runs.
    return np.random.default_rng(zlib.crc32(request.node.name.encode()))


# ---- The CUDA runtime's shared library and a fake libcuda (test_aot.py,
# test_gpu_jit.py)


@pytest.fixture(scope="module")
def rt_path():
    """liblinattn_cuda_rt.so: $LINATTN_CUDA_RT (scripts/test-python.sh sets
    it), else the CMake build's or aot.library_candidates(); skips if none."""
    path = os.environ.get(aot.LIBRARY_ENV)
    if path:
        assert os.path.isfile(path), f"{aot.LIBRARY_ENV}={path} does not exist"
        return path
    for c in [str(ROOT / "build" / "lib" / aot.LIBRARY_NAME)] + \
            aot.library_candidates():
        if os.path.isfile(c):
            return c
    pytest.skip(f"{aot.LIBRARY_NAME} is not built (ninja -C build "
                "LinAttnCudaRuntimeShared, or set LINATTN_CUDA_RT)")


def c_compiler():
    """$CC, cc, or the clang-22 the project's setup installs (a fresh Debian
    with only those packages has no `cc`); skips the test if none."""
    for name in (os.environ.get("CC"), "cc", "clang-22", "clang", "gcc"):
        path = shutil.which(name) if name else None
        if path:
            return path
    pytest.skip("no C compiler ($CC, cc, clang-22)")


@pytest.fixture(scope="module")
def fake_libcuda(tmp_path_factory):
    """test/GPU/fake-libcuda.c built as a shared library: a driver that
    accepts every call (one device of compute capability 9.0) and runs
    nothing; the runtime loads it when LINATTN_LIBCUDA names it."""
    import subprocess  # noqa: PLC0415
    cc = c_compiler()
    out = tmp_path_factory.mktemp("fake-libcuda") / "libcuda_fake.so"
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(out),
                    str(ROOT / "test" / "GPU" / "fake-libcuda.c")],
                   check=True)
    return str(out)
