"""How a search went, in a few numbers a user can act on: ‖g‖ against γ, the share of constraint steps, the loss
before and after, and which kinds of tensor ended at a bound of their scale.

`search_report(result)` is what `gradinit()` prints when its progress bar is on, what `scales.json` stores under
`"report"` and what the model card shows; `report_warning` is the one warning a search gives when it did little
but lower ‖g‖ or pinned most tensors of a kind to a bound.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from .parameters import BIAS, NORM
from .scale_report import component

if TYPE_CHECKING:  # annotations only: result.py imports this module, not the other way round
    from .result import GradInitResult

# A scale within this relative distance of a bound is at it: the update clamps to the bound exactly, so only
# float rounding separates the two.
_AT_BOUND = 1e-6
# Above these the search is reported as having mostly lowered ‖g‖, or a kind as pinned to its bound.
MOSTLY = 0.5
# Iterations averaged for the loss "before" and "after" the search.
LOSS_WINDOW = 10


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def tensor_kind(name: str, group: str) -> str:
    """The kind a scaled tensor is reported under, e.g. "encoder fc1" or "decoder LayerNorm"."""
    stack, _, part = component(name)
    if group == BIAS:
        kind = "biases"
    elif group == NORM:
        kind = "LayerNorm"
    elif part == "FFN":
        kind = next((k for k in ("fc1", "fc2") if k in name.lower()), "FFN")
    elif part == "attention":
        kind = "attention projections"
    elif part == "embedding":
        kind = "embeddings"
    else:
        kind = "other"
    return kind if stack == "shared" else f"{stack} {kind}"


def _bounds(group: str, arguments: dict[str, Any]) -> tuple[float, float | None]:
    """(floor, ceiling or None) of a group's scales under `arguments`, as `GradInitSearch` clamps them."""
    if group == BIAS:
        return 0.0, None
    if group == NORM:
        floor = arguments.get("gradinit_ln_min_scale")
        return (arguments["gradinit_min_scale"] if floor is None else floor), arguments["gradinit_max_scale"]
    return arguments["gradinit_min_scale"], None


def _at(value: float, bound: float) -> bool:
    return abs(value - bound) <= _AT_BOUND * max(1.0, abs(bound))


def bound_counts(result: GradInitResult) -> list[dict[str, Any]]:
    """Per kind of tensor: how many tensors, and how many ended at the floor and at the ceiling of their scale."""
    rows: dict[str, dict[str, Any]] = defaultdict(lambda: {"tensors": 0, "at_floor": 0, "at_ceiling": 0})
    for name, alpha in result.scales.items():
        group = result.groups[name]
        floor, ceiling = _bounds(group, result.arguments)
        row = rows[tensor_kind(name, group)]
        row["tensors"] += 1
        row["floor"], row["ceiling"] = floor, ceiling
        row["at_floor"] += _at(alpha, floor)
        row["at_ceiling"] += ceiling is not None and math.isfinite(ceiling) and _at(alpha, ceiling)
    return [{"kind": kind, **row} for kind, row in rows.items()]


def search_report(result: GradInitResult) -> dict[str, Any]:
    """The report of a finished search, as plain numbers (see the module docstring); `{}` when no iteration ran."""
    history = result.history
    if not history:
        return {}
    args = result.arguments
    window = max(1, min(LOSS_WINDOW, len(history) // 2))
    return {
        "norm": "L2" if args.get("gradinit_alg") == "sgd" else "L1",
        "gamma": args.get("gradinit_gamma"),
        "grad_norm_first": history[0]["grad_norm"],
        "grad_norm_last": history[-1]["grad_norm"],
        "iterations": len(history),
        "constraint_steps": sum(r["constraint"] for r in history),
        "constraint_fraction": result.constraint_fraction,
        "first_objective_step": result.first_objective_step,
        # One batch's loss is noisy: the mean over the first and the last few iterations.
        "loss_first": _mean(r["loss"] for r in history[:window]),
        "loss_last": _mean(r["loss"] for r in history[-window:]),
        "loss_window": window,
        # Without the search's arguments (a hand-made or very old result) the bounds are unknown.
        "bounds": bound_counts(result) if "gradinit_min_scale" in args else [],
    }


def _norm_symbol(report: dict[str, Any]) -> str:
    return "‖g‖₁" if report["norm"] == "L1" else "‖g‖₂"


def _bound_phrase(row: dict[str, Any]) -> str:
    parts = []
    if row["at_floor"]:
        parts.append(f"{row['at_floor']} of {row['tensors']} at the {row['floor']:g} floor")
    if row["at_ceiling"]:
        parts.append(f"{row['at_ceiling']} of {row['tensors']} at the {row['ceiling']:g} ceiling")
    return f"{row['kind']}: " + ", ".join(parts)


def report_lines(report: dict[str, Any]) -> list[str]:
    """The report as a few lines of text."""
    if not report:
        return ["GradInit: no search ran."]
    norm = _norm_symbol(report)
    first = report["first_objective_step"]
    lines = [
        f"GradInit search: {report['iterations']} iterations; {norm} {report['grad_norm_first']:.4g} at the start, "
        f"{report['grad_norm_last']:.4g} at the end (γ = {report['gamma']:g}); constraint steps "
        f"{report['constraint_steps']} of {report['iterations']} ({100 * report['constraint_fraction']:.0f}%), "
        + (f"the first objective step at iteration {first}" if first is not None else "no objective step")
        + f"; loss L(θ; S̃) {report['loss_first']:.4g} over the first {report['loss_window']} iterations, "
        f"{report['loss_last']:.4g} over the last {report['loss_window']}.",
    ]
    pinned = [_bound_phrase(r) for r in report["bounds"] if r["at_floor"] or r["at_ceiling"]]
    lines.append("Scales at a bound: " + ("; ".join(pinned) if pinned else "none") + ".")
    return lines


def report_warning(report: dict[str, Any]) -> str | None:
    """One message when the search did little but lower ‖g‖, or pinned most tensors of a kind to a bound."""
    if not report:
        return None
    found = []
    norm = _norm_symbol(report)
    if report["first_objective_step"] is None:
        found.append(
            f"no objective step ran: {norm} stayed above γ = {report['gamma']:g} in all {report['iterations']} "
            f"iterations ({report['grad_norm_first']:.4g} at the start, {report['grad_norm_last']:.4g} at the end), "
            "so the scales only lowered the gradient norm"
        )
    elif report["constraint_fraction"] > MOSTLY:
        found.append(
            f"constraint steps were {100 * report['constraint_fraction']:.0f}% of the search ({norm} "
            f"{report['grad_norm_first']:.4g} at the start against γ = {report['gamma']:g}; the first objective step "
            f"at iteration {report['first_objective_step']} of {report['iterations']})"
        )
    pinned = [
        _bound_phrase(r)
        for r in report["bounds"]
        if r["tensors"] > 1 and (r["at_floor"] > MOSTLY * r["tensors"] or r["at_ceiling"] > MOSTLY * r["tensors"])
    ]
    if pinned:
        found.append("most tensors of a kind ended at a bound of their scale (" + "; ".join(pinned) + ")")
    if not found:
        return None
    return (
        "GradInit: " + "; ".join(found) + f". The knobs: gradinit_gamma (γ, now {report['gamma']:g}) and "
        f"gradinit_iters (now {report['iterations']}) give the loss objective more of the search; see "
        "docs/eta-gamma.md."
    )


__all__ = ["bound_counts", "report_lines", "report_warning", "search_report", "tensor_kind"]
