"""The `gradinit_*` arguments, usable on their own or as part of `GradInitConfig`."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field, fields
from typing import Any

# S̃ and S take the first and the last ⌈2n/3⌉ rows of a batch: with fewer than 3 rows they are the same rows.
MIN_SEARCH_BATCH_ROWS = 3


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


@dataclass
class GradInitArguments:
    r"""
    Arguments of the GradInit scale search (Zhu et al., 2021, arXiv:2102.08098).

    GradInit learns one scalar α per parameter tensor so that one step of the target optimizer from the rescaled
    weights gives the lowest loss, under a bound γ on the gradient norm. These fields are the `gradinit_*` part of
    [`GradInitConfig`]; use this class alone with [`gradinit`] when you do not train with the `Trainer`.

    Parameters:
        gradinit (`bool`, *optional*, defaults to `True`):
            Whether `GradInitTrainer.train()` runs the scale search before training.
        gradinit_alg (`str`, *optional*, defaults to `"adam"`):
            Optimizer whose first step the search simulates: `"adam"` (step η·sign(g), L1 gradient norm) or `"sgd"`
            (step η·g, L2 gradient norm).
        gradinit_iters (`int`, *optional*, defaults to `780`):
            Number of search iterations (one batch each).
        gradinit_batch_size (`int` or `None`, *optional*, defaults to `None`):
            Per-device batch size of the search, at least 3 rows (S̃ and S must differ). `None` uses
            `per_device_train_batch_size`. Leave it unset with `gradinit_max_tokens`.
        gradinit_max_tokens (`int` or `None`, *optional*, defaults to `None`):
            Per-device token budget of the search's batches (`GradInitTrainer`): rows × the batch's longest example
            at most this many tokens, batched as fairseq's `batch_by_size` (see `token_batches`); each batch is
            split into S̃ and S by rows. `None`: `gradinit_batch_size` rows if set, else the training batches'
            `max_tokens` if set, else `per_device_train_batch_size` rows. The paper's search used 6000.
        gradinit_lr (`float`, *optional*, defaults to `1e-3`):
            Learning rate of the Adam optimizer that updates the scales α.
        gradinit_ln_lr (`float` or `None`, *optional*, defaults to `None`):
            Learning rate for the scales of LayerNorm weights. `None` uses `gradinit_lr`.
        gradinit_beta1 (`float`, *optional*, defaults to `0.9`):
            β1 of the Adam optimizer that updates the scales.
        gradinit_beta2 (`float`, *optional*, defaults to `0.999`):
            β2 of the Adam optimizer that updates the scales.
        gradinit_eta (`float`, *optional*, defaults to `1e-3`):
            η, the learning rate of the simulated first optimizer step. Pass twice the learning rate you will train
            with: the paper's ratio (1e-3 for lr 5e-4, the default here), and the one under which GradInit let the
            paper's Post-LN model train without warmup (benchmarks/stability_log.md §2a⁵; η = lr failed). `GradInitConfig`, which
            knows the training lr, sets η = 2 × `learning_rate` itself when this is left unset.
        gradinit_gamma (`float`, *optional*, defaults to `1000.0`):
            γ, the bound on the gradient norm. While ‖g‖ > γ the search lowers ‖g‖ instead of the loss.
        gradinit_min_scale (`float`, *optional*, defaults to `0.01`):
            Lower bound of the scales of weights and LayerNorm weights (biases have 0).
        gradinit_ln_min_scale (`float` or `None`, *optional*, defaults to `None`):
            Lower bound of the scales of LayerNorm weights alone. `None` uses `gradinit_min_scale`, as the paper
            does. On the paper's Post-LN model the search can shrink a LayerNorm gain to 0.01–0.2, and training
            leaves it there (Adam moves a gain by about its learning rate per update); this keeps the gains above
            a chosen value. In benchmarks/stability_log.md §2a″ such gains came with a larger eval-mode drift of training without
            warmup, but a bound of 0.5 did not prevent the drift.
        gradinit_max_scale (`float`, *optional*, defaults to `100.0`):
            Upper bound of the scales of LayerNorm weights: the paper's run script's 100 (`inf` leaves them
            unbounded, as the paper's code default does). On the paper's model the search raises LayerNorm scales
            above 1 (see BENCHMARKS.md), so a bound of 1 would change what it finds.
        gradinit_grad_clip (`float`, *optional*, defaults to `0.0`):
            Clip each dL/dα to ±this value before the Adam update. 0 turns clipping off.
        gradinit_hvp (`str`, *optional*, defaults to `"finite_difference"`):
            How the constraint step (d‖g‖/dα = ⟨θ⁰, H·u⟩) and the SGD objective (its −η·H·v term) get their
            Hessian-vector products: `"finite_difference"` takes (∇L(θ + εv) − g)/ε, one more first-order pass with
            no second-order graph, holding ReLU kinks still between the two passes; `"exact"` back-propagates
            through a second-order graph of g, as the paper's code does. On the paper's model both reach the same
            loss and constraint decisions with scales within 0.1; finite differences take half to two thirds of the
            time and about 40% of the memory (BENCHMARKS.md). Use `"exact"` for models whose activations have kinks
            other than ReLU's and LeakyReLU's (ReLU6, Hardtanh; a warning names them).
        gradinit_step_moves_tied_output (`bool`, *optional*, defaults to `True`):
            Whether the simulated step θ′ moves an output projection tied to the decoder's input embedding (one
            tensor in two roles). The paper's code builds θ′ by giving the embedding module a new tensor, so the
            tied output projection keeps the old one and stays at θ; `False` reproduces that (Adam only).
        gradinit_freeze_zero_biases (`bool`, *optional*, defaults to `False`):
            Whether a bias whose scale reached 0 stays at 0 for the rest of the search, as in the paper's code
            (its optimizer skips tensors of norm 0). `False`: the scale can come back from 0.

            Why these two and `gradinit_hvp` default to the package's choices, not the paper's: run together on the
            paper's model at η = 2 × lr (BENCHMARKS.md §2T, three seeds), the paper's three ended 0.53 and 0.40
            lower on two seeds and 0.11 higher on the third, and the rule fixed before those runs kept the defaults
            unless no seed was more than 0.10 worse. The README's "Arguments" says more.
    """

    gradinit: bool = field(
        default=True,
        metadata={"help": "Whether GradInitTrainer.train() runs the GradInit scale search before training."},
    )
    gradinit_alg: str = field(
        default="adam",
        metadata={
            "help": "Optimizer whose first step the search simulates: 'adam' (step eta*sign(g), L1 gradient norm) "
            "or 'sgd' (step eta*g, L2 gradient norm).",
            "choices": ["adam", "sgd"],
        },
    )
    gradinit_iters: int = field(default=780, metadata={"help": "Number of search iterations (one batch each)."})
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
    gradinit_lr: float = field(
        default=1e-3, metadata={"help": "Learning rate of the Adam optimizer that updates the scales."}
    )
    gradinit_ln_lr: float | None = field(
        default=None,
        metadata={"help": "Learning rate for the scales of LayerNorm weights. Defaults to gradinit_lr."},
    )
    gradinit_beta1: float = field(default=0.9, metadata={"help": "beta1 of the Adam optimizer of the scales."})
    gradinit_beta2: float = field(default=0.999, metadata={"help": "beta2 of the Adam optimizer of the scales."})
    gradinit_eta: float = field(
        default=1e-3,
        metadata={
            "help": "eta, learning rate of the simulated first optimizer step: pass 2 x the training lr (the paper's "
            "ratio; benchmarks/stability_log.md 2a5). The default 1e-3 is 2 x the paper's lr 5e-4."
        },
    )
    gradinit_gamma: float = field(
        default=1000.0,
        metadata={"help": "gamma, bound on the gradient norm; above it the search lowers the norm instead."},
    )
    gradinit_min_scale: float = field(
        default=0.01, metadata={"help": "Lower bound of the scales of weights and LayerNorm weights."}
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
        default=0.0, metadata={"help": "Clip each dL/dalpha to +-this value before the update; 0 turns it off."}
    )
    gradinit_hvp: str = field(
        default="finite_difference",
        metadata={
            "help": "Hessian-vector products of the constraint step and the SGD objective: 'finite_difference' (one "
            "more first-order pass, (grad(theta + eps*v) - g)/eps, ReLU kinks held still) or 'exact' (a "
            "second-order graph of g, as the paper's code; more time and memory).",
            "choices": ["exact", "finite_difference"],
        },
    )

    gradinit_step_moves_tied_output: bool = field(
        default=True,
        metadata={
            "help": "Whether the simulated step moves an output projection tied to the decoder's input embedding. "
            "The paper's code leaves it at theta (False; Adam only). Default chosen in BENCHMARKS.md section 2T."
        },
    )
    gradinit_freeze_zero_biases: bool = field(
        default=False,
        metadata={
            "help": "Keep a bias whose scale reached 0 at 0 for the rest of the search, as the paper's code. "
            "Default chosen in BENCHMARKS.md section 2T."
        },
    )

    def __post_init__(self):
        self.validate_gradinit_arguments()

    def validate_gradinit_arguments(self) -> None:
        """Raise `ValueError` naming the first invalid `gradinit_*` field."""
        if self.gradinit_alg not in ("adam", "sgd"):
            raise ValueError(f"gradinit_alg must be 'adam' or 'sgd', got {self.gradinit_alg!r}.")
        if self.gradinit_hvp not in ("exact", "finite_difference"):
            raise ValueError(f"gradinit_hvp must be 'exact' or 'finite_difference', got {self.gradinit_hvp!r}.")
        _check_int("gradinit_iters", self.gradinit_iters, 0)
        if self.gradinit_batch_size is not None:
            # S̃ (the first 2/3 rows) and S (the last 2/3) are the same rows below 3 rows.
            _check_int("gradinit_batch_size", self.gradinit_batch_size, MIN_SEARCH_BATCH_ROWS, "so that S̃ and S differ")
        if self.gradinit_max_tokens is not None:
            _check_int("gradinit_max_tokens", self.gradinit_max_tokens, MIN_SEARCH_BATCH_ROWS, "so that S̃ and S differ")
            if self.gradinit_batch_size is not None:
                raise ValueError(
                    "Set gradinit_batch_size (rows) or gradinit_max_tokens (tokens) for the search's batches, not both."
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
                "gradinit_step_moves_tied_output=False (the paper's code's θ′) is implemented for gradinit_alg='adam', "
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


__all__ = ["GradInitArguments", "MIN_SEARCH_BATCH_ROWS"]
