"""The `gradinit_*` arguments, usable on their own or as part of `GradInitConfig`."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


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
            Per-device batch size of the search. `None` uses `per_device_train_batch_size`.
        gradinit_lr (`float`, *optional*, defaults to `1e-3`):
            Learning rate of the Adam optimizer that updates the scales α.
        gradinit_ln_lr (`float` or `None`, *optional*, defaults to `None`):
            Learning rate for the scales of LayerNorm weights. `None` uses `gradinit_lr`.
        gradinit_beta1 (`float`, *optional*, defaults to `0.9`):
            β1 of the Adam optimizer that updates the scales.
        gradinit_beta2 (`float`, *optional*, defaults to `0.999`):
            β2 of the Adam optimizer that updates the scales.
        gradinit_eta (`float`, *optional*, defaults to `1e-3`):
            η, the learning rate of the simulated first optimizer step. Independent of the training learning rate.
        gradinit_gamma (`float`, *optional*, defaults to `1000.0`):
            γ, the bound on the gradient norm. While ‖g‖ > γ the search lowers ‖g‖ instead of the loss.
        gradinit_min_scale (`float`, *optional*, defaults to `0.01`):
            Lower bound of the scales of weights and LayerNorm weights (biases have 0).
        gradinit_max_scale (`float`, *optional*, defaults to `1.0`):
            Upper bound of the scales of LayerNorm weights.
        gradinit_grad_clip (`float`, *optional*, defaults to `0.0`):
            Clip each dL/dα to ±this value before the Adam update. 0 turns clipping off.
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
        metadata={"help": "Per-device batch size of the search. Defaults to per_device_train_batch_size."},
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
        metadata={"help": "eta, learning rate of the simulated first optimizer step (not the training lr)."},
    )
    gradinit_gamma: float = field(
        default=1000.0,
        metadata={"help": "gamma, bound on the gradient norm; above it the search lowers the norm instead."},
    )
    gradinit_min_scale: float = field(
        default=0.01, metadata={"help": "Lower bound of the scales of weights and LayerNorm weights."}
    )
    gradinit_max_scale: float = field(default=1.0, metadata={"help": "Upper bound of the scales of LayerNorm weights."})
    gradinit_grad_clip: float = field(
        default=0.0, metadata={"help": "Clip each dL/dalpha to +-this value before the update; 0 turns it off."}
    )

    def __post_init__(self):
        self.validate_gradinit_arguments()

    def validate_gradinit_arguments(self) -> None:
        """Raise `ValueError` naming the first invalid `gradinit_*` field."""
        if self.gradinit_alg not in ("adam", "sgd"):
            raise ValueError(f"gradinit_alg must be 'adam' or 'sgd', got {self.gradinit_alg!r}.")
        if self.gradinit_iters < 0:
            raise ValueError(f"gradinit_iters must be >= 0, got {self.gradinit_iters}.")
        if self.gradinit_batch_size is not None and self.gradinit_batch_size < 1:
            raise ValueError(f"gradinit_batch_size must be >= 1 (or None), got {self.gradinit_batch_size}.")
        for name in ("gradinit_lr", "gradinit_eta", "gradinit_gamma"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}.")
        if self.gradinit_ln_lr is not None and not self.gradinit_ln_lr > 0:
            raise ValueError(f"gradinit_ln_lr must be > 0 (or None), got {self.gradinit_ln_lr}.")
        for name in ("gradinit_beta1", "gradinit_beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}.")
        if not self.gradinit_min_scale >= 0:
            raise ValueError(f"gradinit_min_scale must be >= 0, got {self.gradinit_min_scale}.")
        if self.gradinit_min_scale > self.gradinit_max_scale:
            raise ValueError(
                f"gradinit_min_scale ({self.gradinit_min_scale}) must not exceed gradinit_max_scale "
                f"({self.gradinit_max_scale})."
            )
        if not self.gradinit_grad_clip >= 0:
            raise ValueError(f"gradinit_grad_clip must be >= 0 (0 = off), got {self.gradinit_grad_clip}.")

    def gradinit_dict(self) -> dict[str, Any]:
        """The `gradinit_*` fields alone, as a plain dict (also on a `GradInitConfig`)."""
        return {f.name: getattr(self, f.name) for f in fields(GradInitArguments)}

    @classmethod
    def from_arguments(cls, args: Any) -> "GradInitArguments":
        """Take the `gradinit_*` fields of `args` (e.g. a `GradInitConfig`) into a plain `GradInitArguments`."""
        if isinstance(args, GradInitArguments) and type(args) is GradInitArguments:
            return args
        return cls(**{f.name: getattr(args, f.name) for f in fields(GradInitArguments)})


__all__ = ["GradInitArguments"]
