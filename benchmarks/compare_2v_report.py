#!/usr/bin/env python
"""BENCHMARKS §2V's table and verdicts, from the results files alone: the product's path (`hf-gradinit compare`'s
`results.json`) beside the lab's (§2R's results files for the same seed, from the lab's training loop).

The rules are §2V's, fixed before its runs:

- endpoint: the mean validation loss at updates 1,000, 1,100 and 1,200 (`eval_nll` on the product's path,
  `val_loss` on the lab's: both the plain cross-entropy per target token, dropout off);
- the paths agree if the `warmup` arm's endpoint is within 0.15 of §2R's B; `none` and `gradinit` are reported
  beside §2R's A and C, not judged;
- the monitor works if it flags the `none` arm and not the `warmup` arm (the StabilityCallback's rule, at any
  evaluation).

    python benchmarks/compare_2v_report.py benchmarks/results/compare_2v
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from hf_gradinit.comparison_report import arm_summary  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
ENDPOINT_UPDATES = (1000, 1100, 1200)
AGREE_WITHIN = 0.15
LAB = {"none": "A", "warmup": "Bw300", "gradinit": "C"}  # §2R's arm names, results_<arm>_seed101.json


def endpoint(points: dict[int, float]) -> float:
    """The mean at ENDPOINT_UPDATES; NaN if one is missing."""
    values = [points.get(step) for step in ENDPOINT_UPDATES]
    return float("nan") if None in values else sum(values) / len(values)


def product_endpoint(record: dict) -> float:
    return endpoint({e["step"]: e["eval_nll"] for e in record["evaluations"]})


def lab_endpoint(lab_dir: str, arm: str, seed: int) -> float:
    with open(os.path.join(lab_dir, f"results_{arm}_seed{seed}.json"), encoding="utf-8") as f:
        (run,) = json.load(f)["results"]
    return endpoint({c["step"]: c["val_loss"] for c in run["curve"]})


def report(folder: str, lab_dir: str, seed: int = 101) -> str:
    with open(os.path.join(folder, "results.json"), encoding="utf-8") as f:
        results = json.load(f)
    arms = results["arms"]
    lines = [
        "| arm | endpoint, product's path | §2R, lab's path | difference | best (update) | BLEU | collapse flagged |",
        "|---|---:|---:|---:|---|---:|---|",
    ]
    for arm, record in arms.items():
        ours, lab = product_endpoint(record), lab_endpoint(lab_dir, LAB[arm], seed)
        s = arm_summary(record)
        flagged = f"from update {s['collapses'][0][0]:,}" if s["collapses"] else "no"
        bleu = f"{s['bleu']:.2f}" if s["bleu"] is not None else "—"
        lines.append(
            f"| {arm} | {ours:.3f} | {lab:.3f} ({LAB[arm]}) | {ours - lab:+.3f} | {s['best']:.3f} "
            f"({s['best_step']:,}) | {bleu} | {flagged} |"
        )
    lines.append("")
    if "warmup" in arms:
        gap = product_endpoint(arms["warmup"]) - lab_endpoint(lab_dir, LAB["warmup"], seed)
        agree = "agree" if abs(gap) <= AGREE_WITHIN else "do not agree"
        lines.append(
            f"**Paths**: the warmup arm's endpoint is {gap:+.3f} from §2R's B: by the rule (within "
            f"{AGREE_WITHIN}) the paths {agree}."
        )
    if {"none", "warmup"} <= set(arms):
        none_flagged = bool(arm_summary(arms["none"])["collapses"])
        warmup_flagged = bool(arm_summary(arms["warmup"])["collapses"])
        works = none_flagged and not warmup_flagged
        lines.append(
            f"**Monitor**: flagged none: {'yes' if none_flagged else 'no'}; flagged warmup: "
            f"{'yes' if warmup_flagged else 'no'}: it {'works' if works else 'does not work'} by the rule."
        )
    if not results.get("same_initial_weights", True):
        lines.append("**Deviation**: the arms did not start from the same weights.")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", help="a compare folder holding results.json (e.g. benchmarks/results/compare_2v)")
    p.add_argument("--lab", default=os.path.join(RESULTS, "confirm"), help="§2R's results files")
    p.add_argument("--seed", type=int, default=101)
    a = p.parse_args(argv)
    print(report(a.folder, a.lab, a.seed))


if __name__ == "__main__":
    main()
