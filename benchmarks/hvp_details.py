#!/usr/bin/env python
"""Finite-difference against exact Hessian-vector products with the paper's θ′ details, on whole d 128 searches.

Reads two `scales.json` files per seed, written by the lab's training script (`stability.py`, at the commit §2T's page
names) on the same model, batches and flags but for `--gradinit_hvp`: the exact ones of `regime_runs.sh details` and
the finite-difference ones of `regime_runs.sh hvpdetails`. Prints per seed what BENCHMARKS §1b compared without the
details (constraint fraction, final scales over the tensors other than the attention's key biases, whose α-gradient is
rounding noise) and what a search's report shows (first objective step, agreement of the per-iteration constraint
decisions, the search loss over its last iterations), then the verdict of the rule fixed before these runs.

    python benchmarks/hvp_details.py
"""

from __future__ import annotations

import argparse
import json
import os

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "regime")
SEEDS = (101, 102)
# The rule (BENCHMARKS §1b, "With the paper's θ′ details"), §1b's agreement without them: on both seeds, scales
# within 0.10, constraint fraction within 0.01, the search loss over the last iterations within 0.002 (§1b's
# validation loss after the search), and the first objective step within 5 iterations.
MAX_SCALE_GAP, FRACTION_GAP, LOSS_GAP, FIRST_STEP_GAP = 0.10, 0.01, 0.002, 5
LAST = 10  # iterations whose mean search loss is compared


def _load(stage, tag, seed):
    with open(os.path.join(RESULTS, stage, f"gradinit_C{tag}_seed{seed}", "scales.json"), encoding="utf-8") as f:
        return json.load(f)


def _first_objective(history):
    return next((r["step"] for r in history if not r["constraint"]), None)


def compare(exact, fd):
    """The numbers of one seed's pair of searches."""
    he, hf = exact["history"], fd["history"]
    names = [n for n in exact["tensors"] if "k_proj.bias" not in n]
    gaps = {n: abs(exact["tensors"][n]["scale"] - fd["tensors"][n]["scale"]) for n in names}
    worst = max(gaps, key=gaps.get)
    return {
        "fraction": (exact["constraint_fraction"], fd["constraint_fraction"]),
        "first": (_first_objective(he), _first_objective(hf)),
        "same_decisions": sum(a["constraint"] == b["constraint"] for a, b in zip(he, hf)) / len(he),
        "loss": tuple(sum(r["loss"] for r in h[-LAST:]) / LAST for h in (he, hf)),
        "max_gap": gaps[worst],
        "worst": worst,
        "mean_gap": sum(gaps.values()) / len(gaps),
    }


def agrees(c):
    return (
        c["max_gap"] <= MAX_SCALE_GAP
        and abs(c["fraction"][0] - c["fraction"][1]) <= FRACTION_GAP
        and abs(c["loss"][0] - c["loss"][1]) <= LOSS_GAP
        and None not in c["first"]
        and abs(c["first"][0] - c["first"][1]) <= FIRST_STEP_GAP
    )


def main(argv=None):
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    print(
        f"| seed | constraint fraction exact / FD | first objective step exact / FD | same constraint decision | "
        f"search loss, last {LAST} iterations, exact / FD | max abs. difference of the scales (tensor) | mean | "
        "agrees |"
    )
    print("|---:|---|---|---:|---|---|---:|---|")
    verdicts = []
    for seed in SEEDS:
        c = compare(_load("details", "details", seed), _load("hvpdetails", "detailsfd", seed))
        verdicts.append(agrees(c))
        print(
            f"| {seed} | {c['fraction'][0]:.3f} / {c['fraction'][1]:.3f} | {c['first'][0]} / {c['first'][1]} | "
            f"{100 * c['same_decisions']:.1f}% | {c['loss'][0]:.4f} / {c['loss'][1]:.4f} | {c['max_gap']:.3f} "
            f"(`{c['worst']}`) | {c['mean_gap']:.4f} | {'yes' if verdicts[-1] else 'no'} |"
        )
    print(
        f"\nVerdict: {'finite differences stay the default' if all(verdicts) else 'exact becomes the default'} "
        f"(the rule: agreement on both seeds)."
    )


if __name__ == "__main__":
    main()
