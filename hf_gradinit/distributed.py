"""Keeping the processes of a data-parallel search in step."""

from __future__ import annotations

import hashlib

import torch
from accelerate.utils import broadcast, gather
from torch import nn


def sync_parameters(model: nn.Module) -> None:
    """Give every process the main process's parameters (as DDP does when it wraps a model)."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(broadcast(p.detach().clone(), from_process=0))


def _fingerprints(model: nn.Module) -> torch.Tensor:
    """An exact fingerprint of each parameter's bits: the first 8 bytes of a BLAKE2 hash of its bytes."""
    digests = []
    for p in model.parameters():
        data = p.detach().contiguous().view(torch.uint8).cpu().numpy().tobytes()
        digests.append(int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little", signed=True))
    device = next(model.parameters()).device
    return torch.tensor(digests, dtype=torch.int64, device=device)


def check_parameters_match(model: nn.Module) -> None:
    """Raise if any process holds different parameters than the others (one small all-gather)."""
    local = _fingerprints(model)
    every = gather(local.unsqueeze(0))
    differ = (every != every[0]).any(dim=0)
    if differ.any():
        names = [n for (n, _), d in zip(model.named_parameters(), differ.tolist()) if d]
        raise RuntimeError(
            f"After the GradInit search the processes hold different values for {len(names)} tensors "
            f"(first: {names[0]}). The search must see the same averaged gradients everywhere; please report this "
            "with your launch command."
        )
