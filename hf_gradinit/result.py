"""What a GradInit search returns, and its `scales.json` form."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

from .search_report import search_report

SCALES_NAME = "scales.json"


@dataclass
class GradInitResult:
    """The outcome of a scale search.

    Attributes:
        scales: α per scaled tensor, keyed by its name in `model.named_parameters()`.
        groups: the group of each scaled tensor: `"weight"`, `"bias"` or `"norm"` (LayerNorm weights).
        init_norms: ‖θ⁰‖ of each scaled tensor before the search.
        final_norms: ‖α·θ⁰‖ of each scaled tensor after the search.
        history: one record per iteration: `step`, `loss` (L(θ; S̃)), `grad_norm` (‖g‖), `constraint` (whether
            ‖g‖ > γ made it a constraint step) and, on objective steps, `objective` (L(θ'; S)).
        arguments: the `gradinit_*` arguments of the search.
        graph_rebuilds: iterations that had to recompute g with a second-order graph because the constraint
            turned active unexpectedly.
        initialization: the initialization θ⁰ came from: `"fairseq"` (`fairseq_init_`) or `"model"` (the model
            class's own, or a pretrained checkpoint).
        eta_rule: how η (`arguments["gradinit_eta"]`) was chosen: e.g. `"2 × learning_rate 0.001"` when
            `GradInitConfig` derived it from the training lr, `"set"` when it was given; `None` if unknown.
    """

    scales: dict[str, float]
    groups: dict[str, str]
    init_norms: dict[str, float]
    final_norms: dict[str, float]
    history: list[dict[str, Any]] = field(default_factory=list)
    arguments: dict[str, Any] = field(default_factory=dict)
    graph_rebuilds: int = 0
    initialization: str = "model"
    eta_rule: str | None = None

    @property
    def iterations(self) -> int:
        return len(self.history)

    @property
    def constraint_fraction(self) -> float:
        """Share of iterations in which ‖g‖ > γ, so that α was stepped to lower ‖g‖."""
        if not self.history:
            return 0.0
        return sum(r["constraint"] for r in self.history) / len(self.history)

    @property
    def first_objective_step(self) -> int | None:
        """The first iteration with ‖g‖ ≤ γ (an objective step), or None if the constraint held throughout."""
        return next((r["step"] for r in self.history if not r["constraint"]), None)

    def scale_summary(self) -> dict[str, float]:
        """min / mean / max of the scales."""
        values = list(self.scales.values())
        if not values:
            return {"scale_min": math.nan, "scale_mean": math.nan, "scale_max": math.nan}
        return {"scale_min": min(values), "scale_mean": sum(values) / len(values), "scale_max": max(values)}

    def report(self) -> dict[str, Any]:
        """How the search went: ‖g‖ against γ, the constraint share, the loss, the tensors at a bound
        (`hf_gradinit.search_report`)."""
        return search_report(self)

    def to_dict(self) -> dict[str, Any]:
        tensors = {
            name: {
                "scale": self.scales[name],
                "group": self.groups[name],
                "init_norm": self.init_norms[name],
                "final_norm": self.final_norms[name],
            }
            for name in self.scales
        }
        return {
            "initialization": self.initialization,
            "arguments": self.arguments,
            "eta_rule": self.eta_rule,
            "iterations": self.iterations,
            "constraint_fraction": self.constraint_fraction,
            "graph_rebuilds": self.graph_rebuilds,
            "report": self.report(),
            "summary": self.scale_summary(),
            "tensors": tensors,
            "history": self.history,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "GradInitResult":
        tensors = data["tensors"]
        return cls(
            scales={n: t["scale"] for n, t in tensors.items()},
            groups={n: t["group"] for n, t in tensors.items()},
            init_norms={n: t["init_norm"] for n, t in tensors.items()},
            final_norms={n: t["final_norm"] for n, t in tensors.items()},
            history=data.get("history", []),
            arguments=data.get("arguments", {}),
            graph_rebuilds=data.get("graph_rebuilds", 0),
            initialization=data.get("initialization", "model"),
            eta_rule=data.get("eta_rule"),
        )

    def save(self, save_directory: str | os.PathLike) -> str:
        """Write `scales.json` into `save_directory` and return its path."""
        os.makedirs(save_directory, exist_ok=True)
        path = os.path.join(save_directory, SCALES_NAME)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=2)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "GradInitResult":
        """Read a `scales.json` file, or the one inside a directory."""
        if os.path.isdir(path):
            path = os.path.join(path, SCALES_NAME)
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))


__all__ = ["GradInitResult", "SCALES_NAME"]
