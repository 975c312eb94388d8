"""`GradInitConfig`: `Seq2SeqTrainingArguments` plus the `gradinit_*` arguments."""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field

import torch
from transformers import Seq2SeqTrainingArguments

from .arguments import GradInitArguments

logger = logging.getLogger(__name__)

# η = ETA_PER_LR × learning_rate when gradinit_eta is unset: the paper's run script (η 1e-3 for lr 5e-4), and the
# ratio that let the paper's Post-LN model train without warmup in benchmarks/stability_log.md, "η at twice the
# training lr" (η = lr: 0 of 3 seeds; 2 × lr: 2 of 3; 4 × lr: slow and unsteady, one seed), all at lr 1e-3. At lr
# 2e-3 (BENCHMARKS.md, "Beyond one cell") GradInit failed with η = 2 × lr and η = 2e-3 alike, so "ratio or value"
# is open; the paper's ratio stays.
ETA_PER_LR = 2.0
WITHOUT_WARMUP_WARNING = (
    "GradInit is on and learning-rate warmup is off (warmup_steps=0), as in the paper. In the tests of BENCHMARKS.md "
    '("Does GradInit let the paper\'s Post-LN Transformer train without warmup?") GradInit did not reliably '
    "replace warmup: compare with a warmup run on your task, or set warmup_steps to keep warmup after the search."
)


def _has_accelerator() -> bool:
    accelerator = getattr(torch, "accelerator", None)  # torch >= 2.6
    if accelerator is not None and hasattr(accelerator, "is_available"):
        return bool(accelerator.is_available())
    return torch.cuda.is_available()


# An explicit η outside this multiple of the training lr gets a warning: the range that section measured.
ETA_PER_LR_MEASURED = (1.0, 4.0)


@dataclass
class GradInitConfig(Seq2SeqTrainingArguments, GradInitArguments):
    r"""
    Configuration class for [`GradInitTrainer`].

    Every field of [`~transformers.Seq2SeqTrainingArguments`] plus the `gradinit_*` fields of
    [`GradInitArguments`] (one definition, inherited), so it parses with
    [`~transformers.HfArgumentParser`] from the command line or a JSON file like any training arguments.

    Parameters that differ from [`~transformers.Seq2SeqTrainingArguments`] and [`GradInitArguments`]:
        warmup_steps (`float`, *optional*, defaults to `0`):
            Learning-rate warmup. GradInit aims to make warmup unnecessary, so it is off by default, as in the
            paper; a value you set is kept (the search runs, then training warms up as usual). In the tests so far
            GradInit without warmup did not reliably match warmup (BENCHMARKS.md). Left at 0 with
            GradInit on, `train()` says so in a warning when training starts.
        gradinit_eta (`float` or `None`, *optional*, defaults to `None`):
            η, the learning rate of the search's simulated first step. `None` sets it to 2 × `learning_rate` when
            the config is built: the paper's ratio (η 1e-3 for lr 5e-4); what it rests on is in
            docs/eta-gamma.md. A value you set is kept; outside 1–4 × `learning_rate` (the range measured) it gets
            a warning.

        ddp_find_unused_parameters (`bool` or `None`, *optional*, defaults to `None`):
            `None` becomes `False`: an encoder-decoder uses every parameter, and DDP's search for unused ones only
            makes every process warn. Set `True` for a model that leaves some unused.
        dataloader_pin_memory (`bool`, *optional*, defaults to `True`):
            Turned off where there is no accelerator (pinned memory only speeds up copies to one).

    Token-budget batches (fairseq's `--max-tokens`; see docs/token-budgets.md):
        max_tokens (`int` or `None`, *optional*, defaults to `None`):
            Per-device token budget of each training batch, batched as fairseq's `--max-tokens`, batch for batch:
            pairs ordered by source length, then labels length, and packed while rows × the batch's longest example
            (the longer of source and labels) stays within it, full batches cut back to multiples of 8 rows, the
            batches shuffled every epoch. Replaces `per_device_train_batch_size` for training (evaluation keeps
            rows). `None`: rows.
        skip_invalid_size_inputs (`bool`, *optional*, defaults to `False`):
            Drop training examples longer than `max_tokens` (or `gradinit_max_tokens`), with a logged count,
            instead of raising a `ValueError` that names the first of them.

    Evaluation (every evaluation also reports `eval_nll`, the plain cross-entropy per target token, beside the
    Trainer's label-smoothed `eval_loss`):
        stability_monitor (`bool`, *optional*, defaults to `False`):
            Attach a [`StabilityCallback`] when an evaluation set is given: at every evaluation the loss and token
            spread of the network being trained (dropout on) beside the evaluated one, and a warning when the
            evaluated network collapses. Off by default because it costs 0.57× an evaluation of 1,000 rows
            (BENCHMARKS.md, "What the stability monitor costs"); `hf_gradinit.compare` turns it on for every arm.
        stability_monitor_rows (`int`, *optional*, defaults to `256`):
            Rows of the evaluation set (its first ones) the monitor measures on.

    Hub parameters of the initialized checkpoint (the trained model uses `push_to_hub` / `hub_model_id` as usual):
        gradinit_push_to_hub (`bool`, *optional*, defaults to `False`):
            Push `output_dir/gradinit/` (model, tokenizer, `scales.json`, a plot and a model card) to the Hub right
            after the search. The repo is created, and the token checked, when the trainer is built.
        gradinit_hub_model_id (`str` or `None`, *optional*, defaults to `None`):
            Repo of the initialized checkpoint. `None` uses `hub_model_id` (or the name of `output_dir`) followed
            by `-gradinit-init`.

    GradInit parameters, described in full in [`GradInitArguments`]; every default is the GradInit authors' run
    except `gradinit_eta` (above):
        gradinit (`bool`, defaults to `True`): run the scale search before training.
        gradinit_defaults (`str`, defaults to `"paper"`): defaults of the fields below left unset; `"0.1"` restores
            hf_gradinit 0.1's.
        gradinit_iters (`int`, defaults to `780`): number of search iterations.
        gradinit_batch_size (`int` or `None`, defaults to `None`): per-device search batch size in rows.
        gradinit_max_tokens (`int` or `None`, defaults to `None`): per-device token budget of the search's batches.
        gradinit_alg (`str`, defaults to `"adam"`): simulated optimizer, `"adam"` or `"sgd"`.
        gradinit_eta (`float` or `None`, defaults to `None`): η of the simulated step, see above.
        gradinit_gamma (`float`, defaults to `1000.0`): γ, bound on the gradient norm.
        gradinit_step_moves_tied_output (`bool` or `None`, defaults to `None`): whether θ′ moves a tied output
            projection (`None`: `False` for Adam, as the paper's code; `True` for SGD).
        gradinit_hvp (`str` or `None`, defaults to `None`): Hessian-vector products, `"finite_difference"` (the
            default) or `"exact"`.
        gradinit_lr (`float` or `None`, defaults to `None`): learning rate of the scales (`None`: 2.5e-3).
        gradinit_ln_lr (`float` or `None`, defaults to `None`): learning rate of LayerNorm-weight scales.
        gradinit_beta1 (`float`, defaults to `0.9`), gradinit_beta2 (`float` or `None`, defaults to `None`, i.e.
            0.98): Adam betas of the scales.
        gradinit_grad_clip (`float`, defaults to `0.0`): clip of dL/dα, 0 = off.
        gradinit_freeze_zero_biases (`bool` or `None`, defaults to `None`, i.e. `True`): keep biases whose scale
            reached 0 at 0.
        gradinit_min_scale (`float`, defaults to `0.01`): lower bound of weight and LayerNorm scales.
        gradinit_ln_min_scale (`float` or `None`, defaults to `None`): lower bound of LayerNorm scales alone.
        gradinit_max_scale (`float`, defaults to `100.0`): upper bound of LayerNorm scales.
    """

    warmup_steps: float = field(
        default=0,
        metadata={
            "help": "Linear warmup over warmup_steps (a ratio of the total steps if < 1). Off by default, as in the "
            "paper: the GradInit search aims to replace it. In the tests so far it did not reliably (BENCHMARKS.md). "
            "Set it to keep warmup after the search."
        },
    )

    max_tokens: int | None = field(
        default=None,
        metadata={
            "help": "Per-device token budget of each training batch (rows x longest example), batched as fairseq's "
            "--max-tokens; replaces per_device_train_batch_size for training. The paper used 4096."
        },
    )
    skip_invalid_size_inputs: bool = field(
        default=False,
        metadata={
            "help": "Drop training examples longer than max_tokens or gradinit_max_tokens (logged) instead of raising."
        },
    )

    gradinit_eta: float | None = field(
        default=None,
        metadata={
            "help": "eta, learning rate of the search's simulated first step. Default: 2 x learning_rate, the paper's "
            "ratio (1e-3 beside lr 5e-4); see docs/eta-gamma.md."
        },
    )

    stability_monitor: bool = field(
        default=False,
        metadata={
            "help": "Attach a StabilityCallback when an evaluation set is given: at every evaluation, the loss and "
            "token spread of the network being trained (dropout on) beside the evaluated one, and a warning when "
            "the evaluated network collapses. Off by default: it costs 0.57x an evaluation of 1,000 rows "
            "(BENCHMARKS.md, 'What the stability monitor costs')."
        },
    )
    stability_monitor_rows: int = field(
        default=256,
        metadata={"help": "Rows of the evaluation set (its first ones) the stability monitor measures on."},
    )

    gradinit_push_to_hub: bool = field(
        default=False,
        metadata={"help": "Push the initialized checkpoint (output_dir/gradinit) to the Hub right after the search."},
    )
    gradinit_hub_model_id: str | None = field(
        default=None,
        metadata={
            "help": "Hub repo for the initialized checkpoint. Defaults to hub_model_id (or the output_dir name) "
            "followed by '-gradinit-init'."
        },
    )

    def __post_init__(self):
        super().__post_init__()
        if self.output_dir is not None and os.path.exists(self.output_dir) and not os.path.isdir(self.output_dir):
            raise ValueError(f"output_dir {self.output_dir}: this is a file; give a folder (new or existing).")
        rows = self.stability_monitor_rows
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
            raise ValueError(f"stability_monitor_rows must be a positive number of rows, got {rows!r}.")
        self._resolve_gradinit_eta()
        if self.gradinit_hub_model_id is not None and not self.gradinit_hub_model_id.strip():
            raise ValueError("gradinit_hub_model_id must not be empty (leave it unset for the default).")
        self.validate_gradinit_arguments()
        self._validate_token_budget()
        if self.gradinit_push_to_hub and not self.gradinit:
            raise ValueError(
                "gradinit_push_to_hub needs gradinit=True: there is no search whose result could be pushed."
            )
        if self.gradinit and self.gradinit_iters == 0:
            logger.warning(
                "gradinit=True with gradinit_iters=0: no GradInit search will run, and training starts from the "
                "model's own initialization%s. Set gradinit_iters > 0 (780 is the paper's), or gradinit=False.",
                " without warmup" if self.warmup_steps == 0 else f" with {self.warmup_steps:g} warmup steps",
            )
        if self.ddp_find_unused_parameters is None:
            # The Trainer's default (True without gradient checkpointing) makes every rank warn, at every run, that
            # no parameter was unused: encoder-decoders use them all.
            self.ddp_find_unused_parameters = False
        if self.dataloader_pin_memory and (self.use_cpu or not _has_accelerator()):
            # Pinned memory only speeds up copies to an accelerator; without one torch warns at every dataloader.
            self.dataloader_pin_memory = False

    @property
    def trains_without_warmup(self) -> bool:
        """GradInit on and warmup off: the paper's setting, which the tests here did not bear out (warned about
        when training starts)."""
        return bool(self.gradinit) and self.gradinit_iters > 0 and self.warmup_steps == 0

    def _resolve_gradinit_eta(self) -> None:
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
            raise ValueError(f"learning_rate must be a positive finite number, got {lr!r}.")
        if self.gradinit_eta is None:
            self.gradinit_eta = ETA_PER_LR * lr
            self.gradinit_eta_rule = f"{ETA_PER_LR:g} × learning_rate {lr:g}"
            return
        self.gradinit_eta_rule = "set"
        low, high = ETA_PER_LR_MEASURED
        ratio = self.gradinit_eta / lr if isinstance(self.gradinit_eta, (int, float)) else None
        if self.gradinit and ratio is not None and not low <= ratio <= high:
            logger.warning(
                "gradinit_eta=%g is %.3g × learning_rate=%g, outside the %g–%g × measured: without warmup, GradInit "
                "matched warmup at %g × the training lr, failed at 1 × and trained slowly at 4 × (docs/eta-gamma.md). "
                "Leave gradinit_eta unset for %g × learning_rate.",
                self.gradinit_eta,
                ratio,
                lr,
                low,
                high,
                ETA_PER_LR,
                ETA_PER_LR,
            )

    def _validate_token_budget(self) -> None:
        if self.max_tokens is None:
            return
        if isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise ValueError(
                f"max_tokens must be a positive number of tokens (or None for rows), got {self.max_tokens!r}."
            )
        if str(self.train_sampling_strategy) != "random":
            raise ValueError(
                f"max_tokens makes its own batches (grouped by length, shuffled every epoch); "
                f"train_sampling_strategy={self.train_sampling_strategy!r} cannot apply. Leave it at 'random'."
            )
        if self.dataloader_drop_last:
            raise ValueError("max_tokens batches keep every example; dataloader_drop_last does not apply.")

    @property
    def search_max_tokens(self) -> int | None:
        """The token budget of the search's batches: `gradinit_max_tokens`, else `max_tokens` unless the search
        has its own row count (`gradinit_batch_size`); `None` means rows."""
        if self.gradinit_max_tokens is not None:
            return self.gradinit_max_tokens
        return self.max_tokens if self.gradinit_batch_size is None else None

    @property
    def gradinit_repo_id(self) -> str:
        """Where `gradinit_push_to_hub` pushes the initialized checkpoint."""
        if self.gradinit_hub_model_id:
            return self.gradinit_hub_model_id
        base = self.hub_model_id or os.path.basename(os.path.normpath(self.output_dir))
        return f"{base}-gradinit-init"
