"""How much a seq2seq model's hidden states still differ between tokens.

A network whose hidden states are (almost) the same vector at every position can no longer tell its inputs
apart there: its predictions fall to one distribution for every position. The no-warmup runs of BENCHMARKS.md
§2a‴ end in that state with dropout off, while dropout's noise keeps the tokens apart in training.
"""

from __future__ import annotations

import torch


@torch.no_grad()
def token_spread(model, batches, train_mode: bool) -> dict[str, float]:
    """Share of the hidden states' energy that differs between tokens, for the encoder's output ("encoder") and each
    decoder layer's output ("decoder@i"): sum_t |h_t - mean|^2 / sum_t |h_t|^2 = 1 - |sum_t h_t|^2 / (n sum_t |h_t|^2)
    over the n real (non-padding) positions of all batches. Leaves the model in train mode if `train_mode`, else
    eval."""
    model.train(train_mode)
    sums, squares, counts = {}, {}, {}
    for batch in batches:
        out = model(**{k: v for k, v in batch.items() if k != "labels"}, output_hidden_states=True)
        states = {"encoder": (out.encoder_hidden_states[-1], batch["attention_mask"] == 1)}
        real = batch["labels"] != -100
        states.update({f"decoder@{i}": (h, real) for i, h in enumerate(out.decoder_hidden_states[1:])})
        for name, (h, mask) in states.items():
            h = h[mask].double()
            sums[name] = sums.get(name, 0) + h.sum(0)
            squares[name] = squares.get(name, 0) + h.pow(2).sum().item()
            counts[name] = counts.get(name, 0) + h.shape[0]
    return {name: 1 - sums[name].pow(2).sum().item() / (counts[name] * squares[name]) for name in sums}
