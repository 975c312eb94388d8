"""`StabilityCallback`: at each evaluation, the network being trained beside the network evaluated, and a warning
when the evaluated one collapses.

Without warmup a Post-LN Transformer can fail in a way its curves hide: the network evaluated with dropout off
collapses, the hidden states of all its tokens merging into nearly one vector, while the network being trained
(dropout on) does not. The validation loss climbs while the training loss stays flat, which looks like
overfitting or divergence. BENCHMARKS.md ("the eval-mode collapse") shows it in runs without warmup, in GradInit
runs and in warmup runs at a constant learning rate.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import torch
from transformers import TrainerCallback

from .decoder_inputs import with_decoder_inputs
from .random_state import restored_random_state
from .token_nll import nll_sums
from .token_spread import SpreadSums

logger = logging.getLogger(__name__)

# The rule, fixed from what BENCHMARKS.md §2V's demo recorded at its 36 evaluations (see the class docstring).
COLLAPSED_SPREAD = 0.03  # a stack whose spread with dropout off is below this has (nearly) one vector for all tokens
TRAINED_SPREAD_RATIO = 3.0  # ... while with dropout on it keeps at least this many times more
LOSS_GAP = 0.2  # and the evaluated loss is at least this much above the trained network's


def collapsed_stacks(record: dict[str, float], prefix: str = "eval") -> list[str]:
    """The stacks of an evaluation record in which the evaluated network has collapsed while the trained network
    has not, if the evaluated loss is also `LOSS_GAP` above the trained one's; else `[]`."""
    off, on = record.get(f"{prefix}_subset_nll"), record.get(f"{prefix}_train_mode_nll")
    if off is None or on is None or not off - on >= LOSS_GAP:
        return []
    stacks = []
    for key, spread_off in record.items():
        if not key.startswith(f"{prefix}_spread/"):
            continue
        spread_on = record.get(key.replace(f"{prefix}_spread/", f"{prefix}_train_mode_spread/", 1))
        if spread_on is not None and spread_off < COLLAPSED_SPREAD and spread_on >= TRAINED_SPREAD_RATIO * spread_off:
            stacks.append(key.split("/", 1)[1])
    return stacks


class StabilityCallback(TrainerCallback):
    """Measures, at every evaluation of a [`~transformers.Seq2SeqTrainer`], the network being trained beside the
    network evaluated, and warns once when the evaluated one collapses.

    On the first `max_rows` rows of the evaluation set (the same rows every time), with dropout off (the network
    `evaluate()` scores) and with dropout on (the network the optimizer trains), it adds to the evaluation's record:

    - `eval_subset_nll`, `eval_train_mode_nll`: the plain cross-entropy per target token, dropout off / on;
    - `eval_spread/<stack>`, `eval_train_mode_spread/<stack>`: each stack's token spread (`hf_gradinit.token_spread`:
      the share of the hidden states' energy that differs between tokens) for the encoder's output and each
      decoder layer's output, dropout off / on;
    - `eval_collapsed`: 1.0 when the rule below holds at this evaluation, else 0.0.

    The numbers enter the record before it reaches the reporting callbacks (TensorBoard, W&B), so they are logged
    with `eval_loss`; the callback moves itself to the head of the trainer's callbacks when training starts. The
    measurement runs inside `restored_random_state()` (torch's `fork_rng` plus Python's and numpy's streams), its
    dropout-on pass seeded with `args.seed`: attaching the callback changes no training, and every evaluation draws
    the same dropout masks.

    **The rule.** The evaluated network has collapsed at an evaluation when its loss on the rows is at least
    `LOSS_GAP` (0.2) above the trained network's and, in at least one stack, the spread with dropout off is below
    `COLLAPSED_SPREAD` (0.03) while with dropout on it is at least `TRAINED_SPREAD_RATIO` (3) times larger. Every
    run, warmup included, goes through a brief collapse in its first updates (the plateau it starts on): there the
    spreads alone would flag it, but the two networks' losses are equal, so it does not count. The thresholds were
    set from BENCHMARKS.md §2V's demo and then fixed: the spread condition held at 12 of its 36 evaluations (the
    plateau of the run without warmup, updates 100–500, and of the warmup run at update 100; the run without warmup
    from update 700), the loss gap was at most +0.006 at every evaluation but the last six of the run without
    warmup, where it was +0.25 to +1.25. So the rule flags that run from update 700 and no evaluation of the
    warmup or GradInit runs.

    Args:
        trainer: the trainer to watch (its model, collator, evaluation set and accelerator).
        max_rows: how many rows of the evaluation set to measure on.
        warn: log a warning, once, the first time the rule holds.

    Example:

    ```python
    trainer = Seq2SeqTrainer(model, args, train_dataset=train, eval_dataset=validation, data_collator=collator)
    trainer.add_callback(StabilityCallback(trainer))
    ```
    """

    def __init__(self, trainer, max_rows: int = 256, warn: bool = True):
        if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
            raise ValueError(f"StabilityCallback: max_rows must be a positive number of rows, got {max_rows!r}.")
        self.trainer = trainer
        self.max_rows = max_rows
        self.warn = warn
        self.collapsed_at: int | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self._go_first()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "eval_loss" not in logs or "eval_subset_nll" in logs:
            return
        measures = self.measure()
        stacks = collapsed_stacks(measures)
        measures["eval_collapsed"] = float(bool(stacks))
        logs.update(measures)
        if state.log_history and "eval_loss" in state.log_history[-1]:
            state.log_history[-1].update(measures)
        if stacks and self.collapsed_at is None:
            self.collapsed_at = state.global_step
            if self.warn and self.trainer.is_world_process_zero():
                logger.warning(_warning(state.global_step, stacks, measures))
        self._go_first()

    def _go_first(self) -> None:
        # A new list, not an edit of the one the handler may be iterating over right now.
        handler = self.trainer.callback_handler
        handler.callbacks = [self] + [c for c in handler.callbacks if c is not self]

    @torch.no_grad()
    def measure(self) -> dict[str, float]:
        """The record's numbers (without `eval_collapsed`) for the model as it is now. Every random stream is put
        back afterwards (the dataloader draws from them too), so that training goes on as without the callback."""
        trainer = self.trainer
        model = trainer.accelerator.unwrap_model(trainer.model)
        was_training = model.training
        measures = {}
        with restored_random_state():
            try:
                batches = list(self._batches(model))
                for nll_key, spread_key, train_mode in (
                    ("eval_subset_nll", "eval_spread", False),
                    ("eval_train_mode_nll", "eval_train_mode_spread", True),
                ):
                    torch.manual_seed(trainer.args.seed)  # the same dropout masks at every evaluation
                    measures[nll_key], spreads = self._pass(model, batches, train_mode)
                    measures.update({f"{spread_key}/{stack}": value for stack, value in spreads.items()})
            finally:
                model.train(was_training)
        return measures

    def _batches(self, model):
        trainer = self.trainer
        dataset = trainer.eval_dataset
        if dataset is None or isinstance(dataset, dict):
            raise ValueError(
                "StabilityCallback measures on the trainer's eval_dataset: give the trainer one evaluation dataset "
                f"(got {type(dataset).__name__})."
            )
        rows = min(self.max_rows, len(dataset))
        subset = dataset.select(range(rows)) if hasattr(dataset, "select") else [dataset[i] for i in range(rows)]
        for batch in trainer.get_eval_dataloader(subset):
            yield with_decoder_inputs(model, trainer._prepare_inputs(batch))

    def _pass(self, model, batches, train_mode: bool) -> tuple[float, dict[str, float]]:
        """Token-weighted cross-entropy and spreads over `batches`, summed across processes."""
        model.train(train_mode)
        sums = SpreadSums()
        nll = torch.zeros(2, dtype=torch.float64)
        for batch in batches:
            out = model(**{k: v for k, v in batch.items() if k != "labels"}, output_hidden_states=True)
            nll += nll_sums(out.logits, batch["labels"])
            sums.add(out, batch)
        nll, sums = self._sum_across_processes(nll, sums)
        return (nll[0] / nll[1]).item() if nll[1] > 0 else math.nan, sums.spreads()

    def _sum_across_processes(self, nll: torch.Tensor, sums: SpreadSums) -> tuple[torch.Tensor, SpreadSums]:
        accelerator = self.trainer.accelerator
        if accelerator.num_processes == 1:
            return nll, sums
        names = sorted(sums.sums)
        parts = [nll] + [
            torch.cat([sums.sums[n].cpu(), torch.tensor([sums.squares[n], sums.counts[n]], dtype=torch.float64)])
            for n in names
        ]
        flat = accelerator.reduce(torch.cat(parts).to(accelerator.device), reduction="sum").cpu()
        nll, offset = flat[:2], 2
        for n in names:
            size = sums.sums[n].numel()
            sums.sums[n] = flat[offset : offset + size]
            sums.squares[n], sums.counts[n] = flat[offset + size].item(), int(flat[offset + size + 1].item())
            offset += size + 2
        return nll, sums


def _warning(step: int, stacks: list[str], measures: dict[str, Any]) -> str:
    where = ", ".join(
        f"{s} ({measures[f'eval_spread/{s}']:.3f} with dropout off, {measures[f'eval_train_mode_spread/{s}']:.3f} "
        "with dropout on)"
        for s in stacks
    )
    return (
        f"At step {step} the network evaluated with dropout off has collapsed while the network being trained "
        f"has not: in {where}, the hidden states of all tokens have merged into nearly one vector. Its loss "
        f"is {measures['eval_subset_nll']:.3f}, against {measures['eval_train_mode_nll']:.3f} with dropout on. "
        "This is not overfitting and not a divergence of training: the validation loss will keep rising while the "
        "training loss stays flat. Learning-rate warmup usually prevents it; `hf-gradinit compare` runs your task "
        "with and without warmup side by side (docs/compare.md). This warning is given once."
    )
