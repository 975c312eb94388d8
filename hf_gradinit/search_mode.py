"""Put a model into the state the search needs, and give it back exactly as it was."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

# Attention implementations whose kernels have a double backward (SDPA only through its math backend).
_DOUBLE_BACKWARD_ATTENTION = ("eager", "sdpa")
_HALF = (torch.float16, torch.bfloat16)


def _attn_implementation(model: nn.Module) -> str | None:
    config = getattr(model, "config", None)
    impl = getattr(config, "_attn_implementation", None)
    return impl if isinstance(impl, str) else None


@contextlib.contextmanager
def search_mode(model: nn.Module) -> Iterator[None]:
    """Dropout off, float32 math, attention that supports double backward; restored on exit, error or not.

    Half-precision tensors are upcast to float32 (exact), so casting back on exit gives the same bits where the
    search did not change a value. float64 models stay float64.
    """
    was_training = model.training
    half_tensors = [t for t in list(model.parameters()) + list(model.buffers()) if t.dtype in _HALF]
    dtypes = [t.dtype for t in half_tensors]
    impl = _attn_implementation(model)
    switch_attention = impl is not None and impl not in _DOUBLE_BACKWARD_ATTENTION
    try:
        model.eval()
        for t in half_tensors:
            t.data = t.data.float()
        if switch_attention:
            model.set_attn_implementation("eager")
        yield
    finally:
        if switch_attention:
            model.set_attn_implementation(impl)
        for t, dtype in zip(half_tensors, dtypes):
            t.data = t.data.to(dtype)
        model.train(was_training)


def double_backward_attention() -> contextlib.AbstractContextManager:
    """SDPA's fused kernels have no double backward; its math backend does. Only needed where a graph of the
    gradient is built, so the first-order passes keep the fast kernels."""
    return sdpa_kernel([SDPBackend.MATH])
