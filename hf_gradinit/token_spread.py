"""How much an encoder–decoder's hidden states still differ between tokens.

A stack whose hidden states are (almost) one vector at every position can no longer tell its inputs apart there:
its predictions fall to one distribution for every position. In the no-warmup runs of BENCHMARKS.md that happened
to the network evaluated with dropout off, while dropout's noise kept the tokens apart in the network being
trained.

The spread of a stack is the share of its hidden states' energy that differs between tokens, over the n real
(non-padding) positions h_1 … h_n of all batches:

    spread = Σ_t |h_t − h̄|² / Σ_t |h_t|²  =  1 − |Σ_t h_t|² / (n · Σ_t |h_t|²)

0 when every token has the same hidden state, 1 when they cancel out on average. It is measured on the encoder's
output ("encoder") and on each decoder layer's output ("decoder_0", "decoder_1", …).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch


class SpreadSums:
    """Running Σ h, Σ |h|² and n per stack, added to batch by batch; `spreads()` gives the shares."""

    def __init__(self):
        self.sums: dict[str, torch.Tensor] = {}
        self.squares: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def add(self, outputs, batch: Mapping[str, Any]) -> None:
        """Add a forward pass's `outputs` (run with `output_hidden_states=True`) on `batch`."""
        stacks = {"encoder": (outputs.encoder_hidden_states[-1], batch["attention_mask"] == 1)}
        real = batch["labels"] != -100
        stacks.update({f"decoder_{i}": (h, real) for i, h in enumerate(outputs.decoder_hidden_states[1:])})
        for name, (states, mask) in stacks.items():
            h = states[mask].double()
            self.sums[name] = self.sums.get(name, 0) + h.sum(0)
            self.squares[name] = self.squares.get(name, 0.0) + h.pow(2).sum().item()
            self.counts[name] = self.counts.get(name, 0) + h.shape[0]

    def spreads(self) -> dict[str, float]:
        return {
            name: 1 - self.sums[name].pow(2).sum().item() / (self.counts[name] * self.squares[name])
            for name in self.sums
        }


@torch.no_grad()
def token_spread(model, batches: Iterable[Mapping[str, Any]], train_mode: bool) -> dict[str, float]:
    """The spread of each stack over `batches` (dicts with `input_ids`, `attention_mask`, `labels` and decoder
    inputs), with dropout on (`train_mode`) or off. Leaves the model in that mode."""
    model.train(train_mode)
    sums = SpreadSums()
    for batch in batches:
        sums.add(model(**{k: v for k, v in batch.items() if k != "labels"}, output_hidden_states=True), batch)
    return sums.spreads()
