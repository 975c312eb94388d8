"""The `gradinit_*` arguments, usable on their own or as part of `GradInitConfig`."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field, fields
from typing import Any

# S̃ and S take the first and the last ⌈2n/3⌉ rows of a batch: with fewer than 3 rows they are the same rows.
MIN_SEARCH_BATCH_ROWS = 3


def help_names_default(default: Any, help_text: str | None) -> bool:
    """Whether a field's help says what its default is, for a field left None that stands for another value
    ("Default: the paper's 2.5e-3"): help screens and the docs then show no "None" beside it."""
    return default is None and "default" in (help_text or "").lower()


def _check_int(name: str, value: Any, minimum: int, why: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}{' ' + why if why else ''}, got {value}.")
    return int(value)


def _check_float(
    name: str,
    value: Any,
    *,
    positive: bool = False,
    non_negative: bool = False,
    allow_inf: bool = False,
    or_none: bool = False,
    note: str = "",
) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}.")
    value = float(value)
    if math.isnan(value) or (math.isinf(value) and not allow_inf):
        raise ValueError(f"{name} must be a finite number, got {value}.")
    if positive and not value > 0:
        raise ValueError(f"{name} must be > 0{' (or None)' if or_none else ''}, got {value}.")
    if non_negative and not value >= 0:
        raise ValueError(f"{name} must be >= 0{note}, got {value}.")
    return value


# The `gradinit_*` values that `gradinit_defaults` chooses between, where its two settings differ. "paper": the
# GradInit authors' IWSLT'14 run (zhuchen03/gradinit, fairseq/gradinit/launch/run_iwslt_14_gradinit_no_clipping.sh,
# and its fork's GradInitParams for what the script leaves unset). "0.1": the defaults of hf_gradinit 0.1.
# Every other field has the same default under both.
DEFAULTS = {
    "paper": {
        "gradinit_lr": 2.5e-3,
        "gradinit_beta2": 0.98,
        # θ′ leaves a tied output projection at θ (Adam; SGD moves it: see `_fill_defaults`), and the paper's
        # optimizer skips tensors of norm 0, so a bias whose scale reached 0 stays there.
        "gradinit_step_moves_tied_output": False,
        "gradinit_freeze_zero_biases": True,
        "gradinit_hvp": "finite_difference",
    },
    "0.1": {
        "gradinit_lr": 1e-3,
        "gradinit_beta2": 0.999,
        "gradinit_step_moves_tied_output": True,
        "gradinit_freeze_zero_biases": False,
        "gradinit_hvp": "finite_difference",
    },
}
DEFAULTS_CHOICES = tuple(DEFAULTS)


@dataclass
class GradInitArguments:
    r"""
    Arguments of the GradInit scale search (Zhu et al., 2021, arXiv:2102.08098).

    GradInit learns one scalar α per parameter tensor so that one step of the target optimizer from the rescaled
    weights gives the lowest loss, under a bound γ on the gradient norm. These fields are the `gradinit_*` part of
    [`GradInitConfig`]; use this class alone with [`gradinit`] when you do not train with the `Trainer`.

    Every default is the GradInit authors' IWSLT'14 run (`gradinit_defaults="paper"`); docs/paper-model.md
    ("Differences from the paper's code") lists what a default run still does differently.
    `gradinit_defaults="0.1"` restores the defaults of hf_gradinit 0.1 for the fields you leave unset.

    Whether to search, and the search's batches:
        gradinit (`bool`, *optional*, defaults to `True`):
            Whether `GradInitTrainer.train()` runs the scale search before training.
        gradinit_defaults (`str`, *optional*, defaults to `"paper"`):
            Which defaults the unset fields below take: `"paper"` (the authors' run) or `"0.1"` (hf_gradinit 0.1:
            scale lr 1e-3, β2 0.999, θ′ moves a tied output projection, zero biases not frozen).
        gradinit_iters (`int`, *optional*, defaults to `780`):
            Number of search iterations (one batch each). The paper's 780.
        gradinit_batch_size (`int` or `None`, *optional*, defaults to `None`):
            Per-device batch size of the search, at least 3 rows (S̃ and S must differ). `None` uses
            `per_device_train_batch_size`. Leave it unset with `gradinit_max_tokens`.
        gradinit_max_tokens (`int` or `None`, *optional*, defaults to `None`):
            Per-device token budget of the search's batches (`GradInitTrainer`): rows × the batch's longest example
            at most this many tokens, batched as fairseq's `batch_by_size` (see `token_batches`); each batch is
            split into S̃ and S by rows. `None`: `gradinit_batch_size` rows if set, else the training batches'
            `max_tokens` if set, else `per_device_train_batch_size` rows. The paper's search used 6000 (the
            `iwslt14` preset sets it).

    The simulated first step:
        gradinit_alg (`str`, *optional*, defaults to `"adam"`):
            Optimizer whose first step the search simulates: `"adam"` (step η·sign(g), L1 gradient norm) or `"sgd"`
            (step η·g, L2 gradient norm). The paper's Transformer runs use `"adam"`.
        gradinit_eta (`float`, *optional*, defaults to `1e-3`):
            η, the learning rate of the simulated step: the paper's 1e-3, beside its training lr 5e-4.
            `GradInitConfig`, which knows the training lr, sets η = 2 × `learning_rate` when this is left unset
            (see docs/eta-gamma.md). Without the Trainer, pass `2 * lr` yourself.
        gradinit_gamma (`float`, *optional*, defaults to `1000.0`):
            γ, the bound on the gradient norm: while ‖g‖ > γ the search lowers ‖g‖ instead of the loss. The
            paper's 1000.
        gradinit_step_moves_tied_output (`bool` or `None`, *optional*, defaults to `None`):
            Whether θ′ moves an output projection tied to the decoder's input embedding (one tensor in two roles).
            `None`: the paper's choice for Adam, `False` (its code hands the embedding module a new tensor, so the
            tied output projection stays at θ); `True` for SGD, the only form implemented for it.
        gradinit_hvp (`str` or `None`, *optional*, defaults to `None`):
            How the constraint step (d‖g‖/dα = ⟨θ⁰, H·u⟩) and the SGD objective (its −η·H·v term) get their
            Hessian-vector products: `"finite_difference"` takes (∇L(θ + εv) − g)/ε, one more first-order pass
            with no second-order graph, holding ReLU kinks still between the two passes; `"exact"` back-propagates
            through a second-order graph of g, as the paper's code does. `None`: `"finite_difference"`, which the
            measurements in BENCHMARKS.md ("Hessian-vector products") found to give the same search as `"exact"`
            in less time and memory. Use `"exact"` for activations with kinks other than ReLU's and LeakyReLU's
            (ReLU6, Hardtanh; a warning names them).

    The optimizer of the scales α (a bias-corrected Adam):
        gradinit_lr (`float` or `None`, *optional*, defaults to `None`):
            Its learning rate. `None`: the paper's 2.5e-3.
        gradinit_ln_lr (`float` or `None`, *optional*, defaults to `None`):
            Learning rate for the scales of LayerNorm weights. `None` uses `gradinit_lr`, as the paper's run does.
        gradinit_beta1 (`float`, *optional*, defaults to `0.9`):
            Its β1: the paper's 0.9.
        gradinit_beta2 (`float` or `None`, *optional*, defaults to `None`):
            Its β2. `None`: the paper's 0.98.
        gradinit_grad_clip (`float`, *optional*, defaults to `0.0`):
            Clip each dL/dα to ±this value before the update; 0 turns clipping off, as the paper's run does (its
            script's clip of 1e8 never binds).
        gradinit_freeze_zero_biases (`bool` or `None`, *optional*, defaults to `None`):
            Whether a bias whose scale reached 0 stays at 0 for the rest of the search. `None`: the paper's
            choice, `True` (its optimizer skips tensors of norm 0).

    Bounds of the scales:
        gradinit_min_scale (`float`, *optional*, defaults to `0.01`):
            Lower bound of the scales of weights and LayerNorm weights (biases have 0). The paper's 0.01.
        gradinit_ln_min_scale (`float` or `None`, *optional*, defaults to `None`):
            Lower bound of the scales of LayerNorm weights alone. `None` uses `gradinit_min_scale`, as the paper
            does. On the paper's Post-LN model the search can shrink a LayerNorm gain to 0.01–0.2, and training
            leaves it there; this keeps the gains above a chosen value (not shown to help: BENCHMARKS.md).
        gradinit_max_scale (`float`, *optional*, defaults to `100.0`):
            Upper bound of the scales of LayerNorm weights: the paper's run script's 100 (`inf` leaves them
            unbounded, as the paper's code default does).
    """

    gradinit: bool = field(
        default=True,
        metadata={"help": "Whether GradInitTrainer.train() runs the GradInit scale search before training."},
    )
    gradinit_defaults: str = field(
        default="paper",
        metadata={
            "help": "Defaults of the gradinit_* fields left unset: 'paper' (the GradInit authors' IWSLT'14 run) or "
            "'0.1' (hf_gradinit 0.1: gradinit_lr 1e-3, gradinit_beta2 0.999, the simulated step moves a tied output "
            "projection, zero biases not frozen).",
            "choices": list(DEFAULTS_CHOICES),
        },
    )
    gradinit_alg: str = field(
        default="adam",
        metadata={
            "help": "Optimizer whose first step the search simulates: 'adam' (step eta*sign(g), L1 gradient norm) "
            "or 'sgd' (step eta*g, L2 gradient norm). The paper's Transformer runs: adam.",
            "choices": ["adam", "sgd"],
        },
    )
    gradinit_iters: int = field(
        default=780, metadata={"help": "Number of search iterations (one batch each). The paper's 780."}
    )
    gradinit_batch_size: int | None = field(
        default=None,
        metadata={
            "help": "Per-device batch size of the search, at least 3 rows. Defaults to per_device_train_batch_size."
        },
    )
    gradinit_max_tokens: int | None = field(
        default=None,
        metadata={
            "help": "Per-device token budget of the search's batches (rows x longest example), fairseq style; the "
            "paper's search used 6000. Defaults to gradinit_batch_size rows if set, else max_tokens if set, else "
            "per_device_train_batch_size rows."
        },
    )
    gradinit_lr: float | None = field(
        default=None,
        metadata={"help": "Learning rate of the Adam optimizer that updates the scales. Default: the paper's 2.5e-3."},
    )
    gradinit_ln_lr: float | None = field(
        default=None,
        metadata={"help": "Learning rate for the scales of LayerNorm weights. Defaults to gradinit_lr, as the paper."},
    )
    gradinit_beta1: float = field(
        default=0.9, metadata={"help": "beta1 of the Adam optimizer of the scales. The paper's 0.9."}
    )
    gradinit_beta2: float | None = field(
        default=None, metadata={"help": "beta2 of the Adam optimizer of the scales. Default: the paper's 0.98."}
    )
    gradinit_eta: float = field(
        default=1e-3,
        metadata={
            "help": "eta, learning rate of the simulated first optimizer step. The paper's 1e-3, beside its training "
            "lr 5e-4; GradInitConfig sets 2 x learning_rate when it is left unset."
        },
    )
    gradinit_gamma: float = field(
        default=1000.0,
        metadata={
            "help": "gamma, bound on the gradient norm; above it the search lowers the norm instead. The paper's 1000."
        },
    )
    gradinit_min_scale: float = field(
        default=0.01,
        metadata={"help": "Lower bound of the scales of weights and LayerNorm weights. The paper's 0.01."},
    )
    gradinit_ln_min_scale: float | None = field(
        default=None,
        metadata={"help": "Lower bound of the scales of LayerNorm weights alone. Defaults to gradinit_min_scale."},
    )
    gradinit_max_scale: float = field(
        default=100.0,
        metadata={"help": "Upper bound of the scales of LayerNorm weights (the paper's 100; 'inf': unbounded)."},
    )
    gradinit_grad_clip: float = field(
        default=0.0,
        metadata={"help": "Clip each dL/dalpha to +-this value before the update; 0 (the paper's run) turns it off."},
    )
    gradinit_hvp: str | None = field(
        default=None,
        metadata={
            "help": "Hessian-vector products of the constraint step and the SGD objective: 'finite_difference' (one "
            "more first-order pass, (grad(theta + eps*v) - g)/eps, ReLU kinks held still; the default, measured to "
            "give the paper's search) or 'exact' (a second-order graph of g, as the paper's code; more time and "
            "memory).",
            "choices": ["exact", "finite_difference"],
        },
    )
    gradinit_step_moves_tied_output: bool | None = field(
        default=None,
        metadata={
            "help": "Whether the simulated step moves an output projection tied to the decoder's input embedding. "
            "Default: the paper's code, which leaves it at theta (False) for adam; True for sgd, the only form "
            "implemented for it."
        },
    )
    gradinit_freeze_zero_biases: bool | None = field(
        default=None,
        metadata={
            "help": "Keep a bias whose scale reached 0 at 0 for the rest of the search. Default: the paper's code "
            "(True)."
        },
    )

    def __post_init__(self):
        self.validate_gradinit_arguments()

    def fill_gradinit_defaults(self) -> None:
        """Give the fields left at `None` their value under `gradinit_defaults` (idempotent)."""
        if self.gradinit_defaults not in DEFAULTS:
            raise ValueError(
                f"gradinit_defaults must be one of {', '.join(map(repr, DEFAULTS_CHOICES))}, got "
                f"{self.gradinit_defaults!r}."
            )
        if self.gradinit_alg not in ("adam", "sgd"):
            raise ValueError(f"gradinit_alg must be 'adam' or 'sgd', got {self.gradinit_alg!r}.")
        for name, value in DEFAULTS[self.gradinit_defaults].items():
            if getattr(self, name) is None:
                # The paper's θ′ with a tied output left at θ is implemented for Adam only.
                if name == "gradinit_step_moves_tied_output" and self.gradinit_alg == "sgd":
                    value = True
                setattr(self, name, value)

    def validate_gradinit_arguments(self) -> None:
        """Fill the unset defaults, then raise `ValueError` naming the first invalid `gradinit_*` field."""
        self.fill_gradinit_defaults()
        if self.gradinit_hvp not in ("exact", "finite_difference"):
            raise ValueError(f"gradinit_hvp must be 'exact' or 'finite_difference', got {self.gradinit_hvp!r}.")
        _check_int("gradinit_iters", self.gradinit_iters, 0)
        if self.gradinit_batch_size is not None:
            # S̃ (the first 2/3 rows) and S (the last 2/3) are the same rows below 3 rows.
            _check_int(
                "gradinit_batch_size", self.gradinit_batch_size, MIN_SEARCH_BATCH_ROWS, "so that S̃ and S differ"
            )
        if self.gradinit_max_tokens is not None:
            _check_int(
                "gradinit_max_tokens", self.gradinit_max_tokens, MIN_SEARCH_BATCH_ROWS, "so that S̃ and S differ"
            )
            if self.gradinit_batch_size is not None:
                raise ValueError(
                    "Set gradinit_batch_size (rows) or gradinit_max_tokens (tokens) for the search's batches, not "
                    "both."
                )
        for name in ("gradinit_lr", "gradinit_eta", "gradinit_gamma"):
            _check_float(name, getattr(self, name), positive=True)
        if self.gradinit_ln_lr is not None:
            _check_float("gradinit_ln_lr", self.gradinit_ln_lr, positive=True, or_none=True)
        for name in ("gradinit_beta1", "gradinit_beta2"):
            value = _check_float(name, getattr(self, name))
            if not 0 <= value < 1:
                raise ValueError(f"{name} must be in [0, 1), got {value}.")
        _check_float("gradinit_min_scale", self.gradinit_min_scale, non_negative=True)
        # The paper's code leaves LayerNorm scales unbounded: +inf is allowed here, NaN is not.
        _check_float("gradinit_max_scale", self.gradinit_max_scale, allow_inf=True)
        if self.gradinit_min_scale > self.gradinit_max_scale:
            raise ValueError(
                f"gradinit_min_scale ({self.gradinit_min_scale}) must not exceed gradinit_max_scale "
                f"({self.gradinit_max_scale})."
            )
        if self.gradinit_ln_min_scale is not None:
            _check_float("gradinit_ln_min_scale", self.gradinit_ln_min_scale, non_negative=True, or_none=True)
            if self.gradinit_ln_min_scale > self.gradinit_max_scale:
                raise ValueError(
                    f"gradinit_ln_min_scale ({self.gradinit_ln_min_scale}) must not exceed gradinit_max_scale "
                    f"({self.gradinit_max_scale})."
                )
        _check_float("gradinit_grad_clip", self.gradinit_grad_clip, non_negative=True, note=" (0 = off)")
        if not self.gradinit_step_moves_tied_output and self.gradinit_alg != "adam":
            raise ValueError(
                "gradinit_step_moves_tied_output=False (the paper's code's θ′) is implemented for "
                "gradinit_alg='adam', "
                f"got {self.gradinit_alg!r}."
            )

    def gradinit_dict(self) -> dict[str, Any]:
        """The `gradinit_*` fields alone, as a plain dict (also on a `GradInitConfig`)."""
        return {f.name: getattr(self, f.name) for f in fields(GradInitArguments)}

    @classmethod
    def from_arguments(cls, args: Any) -> "GradInitArguments":
        """Take the `gradinit_*` fields of `args` (e.g. a `GradInitConfig`) into a plain `GradInitArguments`."""
        if isinstance(args, GradInitArguments) and type(args) is GradInitArguments:
            return args
        return cls(**{f.name: getattr(args, f.name) for f in fields(GradInitArguments)})


__all__ = ["DEFAULTS", "GradInitArguments", "MIN_SEARCH_BATCH_ROWS"]
