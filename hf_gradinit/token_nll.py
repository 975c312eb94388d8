"""The evaluation loss fairseq reports as `nll_loss`: plain cross-entropy summed over the target tokens and divided
by their count.

The Trainer's `eval_loss` is the training loss (label-smoothed when `label_smoothing_factor` > 0) averaged per
batch, so short and long batches weigh the same. `TokenNll` watches the model's own forward passes during an
evaluation (no pass of its own) and adds up the per-token negative log-likelihood of the labels.
"""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def nll_sums(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """`[Σ −log p(label), token count]` over the labelled tokens (labels ≠ −100), float64 on the CPU."""
    real = labels != -100
    log_probs = torch.log_softmax(logits[real].double(), dim=-1)
    picked = log_probs.gather(-1, labels[real].unsqueeze(-1))
    return torch.stack([-picked.sum().cpu(), real.sum().double().cpu()])


class TokenNll:
    """`with TokenNll(model) as nll: ...` sums −log p(label) over every labelled token (labels ≠ −100) of each
    forward pass of `model` that gets `labels`, or that follows `nll.expect(labels)` (a Trainer whose loss is
    computed outside the model takes the labels out of the batch first); `nll.totals()` returns `[sum, token
    count]` as a float64 tensor. Generation's passes (no labels) are not counted."""

    def __init__(self, model: nn.Module):
        self.model = model
        self._totals = torch.zeros(2, dtype=torch.float64)
        self._handle = None
        self._expected: torch.Tensor | None = None

    def expect(self, labels: torch.Tensor | None) -> None:
        """The labels of the next forward pass, if it is not given them."""
        self._expected = labels

    def __enter__(self) -> TokenNll:
        self._handle = self.model.register_forward_hook(self._add, with_kwargs=True)
        return self

    def __exit__(self, *exc) -> None:
        self._handle.remove()

    @torch.no_grad()
    def _add(self, module, args, kwargs, output) -> None:
        labels, self._expected = kwargs.get("labels", self._expected), None
        logits = getattr(output, "logits", None)
        if labels is None or logits is None:
            return
        self._totals += nll_sums(logits, labels)

    def totals(self) -> torch.Tensor:
        return self._totals.clone()
