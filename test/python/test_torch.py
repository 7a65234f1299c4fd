"""PyTorch CPU tensors through DLPack: results come back as torch tensors
and match the reference. Skipped when torch is not installed (CI does not
install it: PyPI's Linux wheels pull in the CUDA libraries)."""

import numpy as np
import pytest

import linattn
from linattn import reference
from conftest import check_close

torch = pytest.importorskip("torch")


def gla(dtype=torch.float32, B=2, T=33, H=2, K=16, V=8):
    gen = torch.Generator().manual_seed(0)
    q = (torch.randn(B, T, H, K, generator=gen) / 2).to(dtype)
    k = (torch.randn(B, T, H, K, generator=gen) / 2).to(dtype)
    v = torch.randn(B, T, H, V, generator=gen).to(dtype)
    g = torch.nn.functional.logsigmoid(torch.randn(B, T, H, K,
                                                   generator=gen)) / 16
    return q, k, v, g


@pytest.mark.parametrize("dtype,name", [(torch.float32, "float32"),
                                        (torch.bfloat16, "bfloat16"),
                                        (torch.float16, "float16")])
def test_torch_gla(dtype, name):
    q, k, v, g = gla(dtype)
    o, s = linattn.chunk_gla(q, k, v, g, output_final_state=True)
    assert isinstance(o, torch.Tensor) and o.dtype == dtype
    assert s.dtype == torch.float32 and s.shape == (2, 2, 16, 8)
    ro, rs, _ = reference.attention(q, k, v, decay="vector", gate=g)
    check_close("o", o, ro, name)
    check_close("S", s, rs, name)


def test_torch_views_without_copies():
    q, k, v, g = gla()
    qh = q.transpose(1, 2).contiguous().transpose(1, 2)  # head-first memory
    before = linattn.stats()["input_copies"]
    o, _ = linattn.chunk_gla(qh, k, v, g)
    assert linattn.stats()["input_copies"] == before
    check_close("o", o, reference.attention(q, k, v, decay="vector",
                                            gate=g)[0], "float32")


def test_torch_requires_grad_is_rejected():
    q, k, v, g = gla()
    with pytest.raises(TypeError, match="requires grad"):
        linattn.chunk_gla(q.requires_grad_(), k, v, g)


def test_torch_varlen_cu_seqlens_tensor():
    q, k, v, g = gla(B=1, T=40)
    cu = torch.tensor([0, 15, 40], dtype=torch.int32)
    o, s = linattn.chunk_gla(q, k, v, g, cu_seqlens=cu,
                             output_final_state=True)
    ro, rs, _ = reference.attention(q, k, v, decay="vector", gate=g,
                                    cu_seqlens=np.array([0, 15, 40]))
    check_close("o", o, ro, "float32")
    check_close("S", s, rs, "float32")
