"""Array handling: zero-copy views, DLPack producers, the kernel cache, and
clear exceptions for bad tensors, shapes, dtypes, devices and specs."""

import threading

import numpy as np
import pytest

import linattn
from linattn import Spec, reference
from conftest import check_close


def gla_inputs(rng, B=2, T=20, H=2, K=16, V=8):
    q = rng.standard_normal((B, T, H, K)).astype(np.float32) / 2
    k = rng.standard_normal((B, T, H, K)).astype(np.float32) / 2
    v = rng.standard_normal((B, T, H, V)).astype(np.float32)
    g = -rng.uniform(0, 0.1, (B, T, H, K)).astype(np.float32)
    return q, k, v, g


def test_strided_views_are_used_without_copies(rng):
    q, k, v, g = gla_inputs(rng)
    # q is a slice of a wider feature dim, k a head-first array seen as
    # [B, T, H, K], v every other batch row: all have a unit inner stride.
    wide = np.concatenate([q, np.ones_like(q)], axis=-1)
    kt = np.ascontiguousarray(k.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)
    vv = np.repeat(v, 2, axis=0)[::2]
    qv = wide[..., :16]
    assert not qv.flags.c_contiguous and not kt.flags.c_contiguous
    before = linattn.stats()["input_copies"]
    o, s = linattn.chunk_gla(qv, kt, vv, g, output_final_state=True)
    assert linattn.stats()["input_copies"] == before
    ro, rs, _ = reference.attention(q, k, v, decay="vector", gate=g)
    check_close("o", o, ro, "float32")
    check_close("S", s, rs, "float32")


def test_non_unit_inner_stride_is_copied_once(rng):
    q, k, v, g = gla_inputs(rng)
    spread = np.zeros(q.shape[:-1] + (32,), np.float32)
    spread[..., ::2] = q
    before = linattn.stats()["input_copies"]
    o, _ = linattn.chunk_gla(spread[..., ::2], k, v, g)
    assert linattn.stats()["input_copies"] == before + 1
    check_close("o", o, reference.attention(q, k, v, decay="vector",
                                            gate=g)[0], "float32")


def test_read_only_inputs(rng):
    q, k, v, g = gla_inputs(rng)
    for x in (q, k, v, g):
        x.setflags(write=False)
    o, _ = linattn.chunk_gla(q, k, v, g)
    check_close("o", o, reference.attention(q, k, v, decay="vector",
                                            gate=g)[0], "float32")


class DLPackOnly:
    """A tensor library that only speaks DLPack (no buffer protocol)."""

    def __init__(self, a, device=(1, 0)):
        self._a, self._device = a, device
        self.shape, self.dtype = a.shape, a.dtype

    def __dlpack__(self, **kwargs):
        return self._a.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._device


def test_dlpack_producer(rng):
    q, k, v, g = gla_inputs(rng)
    o, s = linattn.chunk_gla(DLPackOnly(q), DLPackOnly(k), DLPackOnly(v),
                             DLPackOnly(g), output_final_state=True)
    assert isinstance(o, np.ndarray)
    ro, rs, _ = reference.attention(q, k, v, decay="vector", gate=g)
    check_close("o", o, ro, "float32")
    check_close("S", s, rs, "float32")


def test_gpu_tensor_is_rejected_with_its_device(rng):
    q, k, v, g = gla_inputs(rng)
    with pytest.raises(ValueError, match=r"tensor 'k' is on device cuda:0; "
                       r"the CPU kernels take only CPU tensors \(GPU kernels "
                       r"run when q, k, v are torch CUDA tensors\)"):
        linattn.chunk_gla(q, DLPackOnly(k, device=(2, 0)), v, g)


def test_kernels_are_cached(rng):
    q, k, v, g = gla_inputs(rng, K=8, V=8)
    linattn.chunk_gla(q, k, v, g)
    n = linattn.cache_info()["compilations"]
    for _ in range(3):
        linattn.chunk_gla(q, k, v, g)
    linattn.chunk_gla(q[:1, :7], k[:1, :7], v[:1, :7], g[:1, :7])
    assert linattn.cache_info()["compilations"] == n
    kernel = linattn.compile(Spec(decay="vector", dtype="float32", key_dim=8,
                                  value_dim=8))
    assert linattn.cache_info()["compilations"] == n
    assert "linattn.attention" in kernel.source_ir


def test_concurrent_calls(rng):
    q, k, v, g = gla_inputs(rng, T=100)
    want = reference.attention(q, k, v, decay="vector", gate=g)[0]
    results = [None] * 4

    def work(i):
        results[i] = linattn.chunk_gla(q, k, v, g)[0]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        check_close("o", r, want, "float32")


def test_bad_inputs_raise_clear_errors(rng):
    q, k, v, g = gla_inputs(rng)
    with pytest.raises(TypeError, match="tensor 'q' has dtype int32"):
        linattn.chunk_gla(q.astype(np.int32), k, v, g)
    with pytest.raises(TypeError, match="'v' must be a NumPy array or a "
                       "DLPack tensor, got list"):
        linattn.chunk_gla(q, k, v.tolist(), g)
    with pytest.raises(ValueError, match=r"k: key dim 8 does not match"):
        linattn.chunk_gla(q, k[..., :8], v, g)
    with pytest.raises(ValueError, match=r"gate: expected shape \[2, 2, 20, "
                       r"16\] \(logical \[B, H, T, D\] order\), got"):
        linattn.chunk_gla(q, k, v, g[:, :, :1])
    with pytest.raises(ValueError, match=r"gate: value 0.5 at \[0, 0, 0, 0\]"):
        linattn.chunk_gla(q, k, v, np.full_like(g, 0.5))
    with pytest.raises(ValueError, match="'q' must be \\[B, T, H, D\\]"):
        linattn.chunk_gla(q[0], k, v, g)
    with pytest.raises(ValueError, match="dtype float64 does not match the "
                       "kernel's f32|k: dtype f64"):
        linattn.chunk_gla(q, k.astype(np.float64), v, g)
    with pytest.raises(ValueError, match="decay 'vector' needs a gate"):
        linattn.attention(Spec(decay="vector"), q, k, v)
    with pytest.raises(ValueError, match="takes no gate"):
        linattn.attention(Spec(decay="none"), q, k, v, gate=g)
    with pytest.raises(ValueError, match="cu_seqlens|offsets"):
        linattn.chunk_gla(q, k, v, g, cu_seqlens=[0, 5, 20])  # B = 2
    with pytest.raises(ValueError, match=r"initialState: expected shape"):
        linattn.chunk_gla(q, k, v, g, initial_state=np.zeros(
            (2, 2, 8, 16), np.float32))


def test_bad_specs_raise_clear_errors():
    with pytest.raises(ValueError, match="Spec.decay = 'gla' is not one of"):
        Spec(decay="gla")
    with pytest.raises(ValueError, match="Spec.layout"):
        Spec(layout="tbhd")
    with pytest.raises(ValueError, match="non-causal"):
        Spec(decay="scalar", causal=False)
    with pytest.raises(ValueError, match="need decay 'constant'"):
        Spec(decay="scalar", schedule="retnet")
    with pytest.raises(ValueError, match="compile\\(\\) needs a complete "
                       "spec; key_dim, value_dim, dtype not set"):
        linattn.compile(Spec())
    with pytest.raises(ValueError, match="chunkSize must be in"):
        linattn.compile(Spec(dtype="f32", key_dim=8, value_dim=8),
                        chunk_size=0)
    with pytest.raises(ValueError, match="unsupported dtype"):
        Spec(dtype="int8")


def test_bfloat16_numpy_roundtrip(rng):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    q, k, v, g = gla_inputs(rng)
    qb, kb, vb = (x.astype(ml_dtypes.bfloat16) for x in (q, k, v))
    o, s = linattn.chunk_gla(qb, kb, vb, g, output_final_state=True)
    assert o.dtype == ml_dtypes.bfloat16 and s.dtype == np.float32
    ro, rs, _ = reference.attention(qb, kb, vb, decay="vector", gate=g)
    check_close("o", o, ro, "bfloat16")
    check_close("S", s, rs, "bfloat16")
