"""linattn: compiled linear-attention kernels for NumPy and DLPack tensors.

Quick start (FLA layout [B, T, H, D], log-space gates)::

    import numpy as np, linattn
    o, state = linattn.chunk_gla(q, k, v, g, output_final_state=True)

Everything the ``linattn.attention`` op expresses is available through
:class:`Spec`, :func:`attention` and :func:`compile`; :mod:`linattn.reference`
is a float64 NumPy reference of the same math.
"""

import atexit as _atexit

from . import reference
from .compiler import (CompileOptions, Spec, cache_info, clear_cache,
                       compile)
from .ops import (attention, chunk_delta_rule, chunk_gated_delta_rule,
                  chunk_gla, chunk_lightning_attn, chunk_linear_attn,
                  chunk_retention, chunk_simple_gla, fused_recurrent_delta_rule,
                  fused_recurrent_gated_delta_rule, fused_recurrent_gla,
                  fused_recurrent_linear_attn, fused_recurrent_retention,
                  fused_recurrent_simple_gla, l2norm)
from .runtime import Kernel, get_num_threads, set_num_threads, stats

__version__ = "0.1.0"

# JIT engines must be destroyed while LLVM's static data still exists, i.e.
# before the C++ static destructors run at process exit.
_atexit.register(clear_cache)


def host_description() -> str:
    """The CPU the kernels are compiled for ("znver3 +avx2 +fma")."""
    from . import _linattn
    return _linattn.host_description()


__all__ = [
    "CompileOptions", "Kernel", "Spec", "attention", "cache_info",
    "chunk_delta_rule", "chunk_gated_delta_rule", "chunk_gla",
    "chunk_lightning_attn", "chunk_linear_attn", "chunk_retention",
    "chunk_simple_gla", "clear_cache", "compile", "fused_recurrent_delta_rule",
    "fused_recurrent_gated_delta_rule", "fused_recurrent_gla",
    "fused_recurrent_linear_attn", "fused_recurrent_retention",
    "fused_recurrent_simple_gla", "get_num_threads", "host_description",
    "l2norm", "reference", "set_num_threads", "stats",
]
