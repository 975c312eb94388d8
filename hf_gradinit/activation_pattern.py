"""Hold the kinks of ReLU-type activations still between two forward passes.

A finite difference of gradients, (∇L(θ + εv) − ∇L(θ))/ε, estimates the Hessian-vector product H·v that autograd
computes only where L is smooth along εv. A ReLU network is piecewise smooth: moving every weight by ε sends a
fraction ∝ ε of the pre-activations across zero, each crossing changes the gradient by O(1), and so the quotient
picks up an O(1) term that autograd's H·v (which takes ReLU'' = 0) does not have, however small ε is (a smaller ε
only makes that term noisier). Measured on fairseq's ReLU Transformer at its initialization in float32: a median
relative error of 170% per scale's α-gradient, 34 of 104 signs wrong (BENCHMARKS.md, "Hessian-vector products").

Replaying, in the perturbed pass, the activation pattern of the pass at θ (which side of zero each pre-activation
was on) computes the gradient of the network restricted to θ's linear region, which is smooth, so the quotient
converges to autograd's H·v again. For ReLU and LeakyReLU, act(x) = slope(x)·x, so the pattern is one boolean per
activation.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import Iterator

import torch
from torch import nn

logger = logging.getLogger(__name__)

# Piecewise-linear activations with a kink the pattern cannot hold (an offset beside the slope): their crossings
# stay in the finite difference.
_UNHANDLED_KINKS = (nn.ReLU6, nn.Hardtanh, nn.Hardshrink, nn.Softshrink, nn.Threshold, nn.PReLU, nn.RReLU)


class ActivationPattern:
    """Record, in one forward pass, whether each input of the model's `nn.ReLU` / `nn.LeakyReLU` modules was
    positive, and make a later pass on the same batch use that pattern instead of its own inputs' signs.

    Each module keeps its recorded masks in call order, so a module called several times per pass (or again
    when gradient checkpointing recomputes a layer) replays each call's own mask.
    """

    def __init__(self, model: nn.Module):
        self.modules = [m for m in model.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU))]
        self.masks: dict[int, deque[torch.Tensor]] = {}
        unhandled = sorted({type(m).__name__ for m in model.modules() if isinstance(m, _UNHANDLED_KINKS)})
        if unhandled:
            logger.warning(
                "gradinit_hvp='finite_difference' holds the kinks of ReLU and LeakyReLU still, not those of %s: "
                "their crossings add error to the Hessian-vector products. gradinit_hvp='exact' has none.",
                ", ".join(unhandled),
            )

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        """Forward passes inside record each activation's pattern (replacing any earlier record)."""
        self.clear()

        def record(module: nn.Module, original):
            masks = self.masks.setdefault(id(module), deque())

            def forward(x: torch.Tensor) -> torch.Tensor:
                masks.append(x.detach() > 0)
                return original(x)

            return forward

        with self._patched(record):
            yield

    @contextlib.contextmanager
    def replaying(self) -> Iterator[None]:
        """Forward passes inside compute act(x) as slope·x with the recorded slopes: x where the recorded input
        was positive, negative_slope·x (0 for ReLU) elsewhere. The record is used up."""

        def replay(module: nn.Module, original):
            masks = self.masks.get(id(module), deque())
            negative_slope = getattr(module, "negative_slope", 0.0)

            def forward(x: torch.Tensor) -> torch.Tensor:
                if not masks:
                    raise RuntimeError(
                        f"{type(module).__name__} was called more often than in the recorded pass: the replayed "
                        "forward pass must run the same batch through the same modules."
                    )
                mask = masks.popleft()
                if mask.shape != x.shape:
                    raise RuntimeError(
                        f"recorded activation pattern of shape {tuple(mask.shape)}, input {tuple(x.shape)}"
                    )
                return x * mask if negative_slope == 0 else torch.where(mask, x, x * negative_slope)

            return forward

        try:
            with self._patched(replay):
                yield
        finally:
            self.clear()

    def clear(self) -> None:
        self.masks = {}

    @contextlib.contextmanager
    def _patched(self, make_forward) -> Iterator[None]:
        # An instance attribute `forward` takes precedence over the class's; the one found (if any) is put back.
        before = [m.__dict__.get("forward") for m in self.modules]
        try:
            for m in self.modules:
                m.forward = make_forward(m, m.forward)
            yield
        finally:
            for m, previous in zip(self.modules, before):
                if previous is None:
                    m.__dict__.pop("forward", None)
                else:
                    m.forward = previous
