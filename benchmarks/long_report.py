#!/usr/bin/env python
"""BENCHMARKS §2U's tables and verdicts, computed from `stability.py`'s results files alone.

CPU: benchmarks/results/regime/long/ (`regime_runs.sh long`: arms A, Bw300, C, Cold; seeds 201-204).
GPU: benchmarks/results/paper_long/ (`gpu_paper_runs.sh`: arms B, C; seeds 301-303).
The rules are §2U's, fixed before its runs:

- endpoint: the mean validation loss over a run's last three evaluations; B trained on a seed if it is below 6.6;
- CPU: GradInit trains without warmup in the cell if C's endpoint is at most 0.10 above B's on at least 3 of the
  seeds where B trained and A − C ≥ 0.5 on both A seeds; "undecided" if B trained on fewer than 3 seeds (said as
  soon as B's runs so far leave fewer than 3 seeds where it can have trained, whatever the runs to come do);
- GPU: C's endpoint at most 0.10 above B's on every seed run (k of n).

Beside them, exploratory and added after B's seed-201 run had been seen (§2U's addendum): the same mean over the
last three evaluations of the training loss (dropout on, each the mean of the 100 updates before it).

    python benchmarks/long_report.py
"""

from __future__ import annotations

import argparse
import math
import os

from regime_report import _by_arm_seed, load

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
WITHIN = 0.10
TRAINS_BELOW = 6.6
FAILS_WITHOUT_WARMUP = 0.5
MATCHING_SEEDS = 3
WINDOW = 3  # evaluations averaged into an endpoint
SECTION_2R = (1000, 1100, 1200)  # §2R's endpoint updates, recorded beside


def _losses(curve, key="val_loss"):
    return [(c["step"], c[key]) for c in curve]


def endpoint(curve, key="val_loss"):
    """Mean validation loss (or `key`) over the last three evaluations; +∞ if the run diverged."""
    losses = [v for _, v in _losses(curve, key)]
    if any(not math.isfinite(v) for v in losses):
        return math.inf
    return sum(losses[-WINDOW:]) / WINDOW if len(losses) >= WINDOW else None


def best_window(curve):
    losses = [v for _, v in _losses(curve)]
    windows = [sum(losses[i : i + WINDOW]) / WINDOW for i in range(len(losses) - WINDOW + 1)]
    return min(windows) if windows else None


def at_1200(curve):
    losses = dict(_losses(curve))
    return sum(losses[s] for s in SECTION_2R) / len(SECTION_2R) if all(s in losses for s in SECTION_2R) else None


def first_reaching(curve, target):
    """The first evaluation at which the validation loss is at or below `target`, or None."""
    return next((s for s, v in _losses(curve) if target is not None and v <= target), None)


def search_summary(run):
    """The C run's search report, in one cell."""
    search = run.get("gradinit") or {}
    report = (search.get("report") or {}) if isinstance(search, dict) else {}
    first = search.get("first_objective_step")
    pinned = [f"{r['kind']} {r['at_floor']}/{r['tensors']}" for r in report.get("bounds", []) if r.get("at_floor")]
    return (
        f"‖g‖₁ {search.get('grad_norm_first', math.nan):,.0f} → {search.get('grad_norm_last', math.nan):,.0f}, "
        f"constraint {search.get('constraint_fraction', math.nan):.2f}, first objective {first}"
        + (f"; at the floor: {', '.join(pinned)}" if pinned else "")
    )


def _f(x):
    return "–" if x is None else ("diverged" if x == math.inf else f"{x:.3f}")


def cpu_verdict(ends, seeds, a_seeds):
    """(verdict, k, n): the rule over the seeds where B trained."""
    trained = [s for s in seeds if ends.get(("Bw300", s)) is not None and ends[("Bw300", s)] < TRAINS_BELOW]
    needed = [(arm, s) for s in seeds for arm in ("Bw300", "C")] + [("A", s) for s in a_seeds]
    missing = [f"{arm} {s}" for arm, s in needed if ends.get((arm, s)) is None]
    b_to_come = [s for s in seeds if ends.get(("Bw300", s)) is None]
    k = sum(ends.get(("C", s), math.inf) - ends[("Bw300", s)] <= WITHIN for s in trained)  # a C to come: not yet
    if len(trained) + len(b_to_come) < MATCHING_SEEDS:  # no run still to come can change the answer
        decided_before = f"; decided before {', '.join(missing)} finished" if missing else ""
        return f"undecided (B trained on fewer than 3 seeds{decided_before})", k, len(trained)
    if missing:
        return f"incomplete: no results yet for {', '.join(missing)}", None, len(trained)
    beats_a = all(ends[("A", s)] - ends[("C", s)] >= FAILS_WITHOUT_WARMUP for s in a_seeds)
    return ("trains without warmup" if k >= MATCHING_SEEDS and beats_a else "does not meet the rule"), k, len(trained)


def report_cpu(folder, seeds=(201, 202, 203, 204), a_seeds=(201, 202)):
    runs = _by_arm_seed(load(folder))
    if not runs:
        print("CPU (§2U): no results yet")
        return
    ends = {key: endpoint(r["curve"]) for key, r in runs.items()}
    print("**CPU, d 128, 4,800 updates** (endpoint = mean validation loss at updates 4,600–4,800)\n")
    print(
        "| seed | A | B (W 300) | C | Cold | C − B | A − C | B trained | C within 0.10 of B | C reaches B's 1,200 "
        "loss at |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---|---|---:|")
    for s in seeds:
        a, b, c, cold = (ends.get((arm, s)) for arm in ("A", "Bw300", "C", "Cold"))
        b_1200 = dict(_losses(runs[("Bw300", s)]["curve"])).get(1200) if ("Bw300", s) in runs else None
        reach = first_reaching(runs[("C", s)]["curve"], b_1200) if ("C", s) in runs else None
        both = b is not None and c is not None
        print(
            f"| {s} | {_f(a)} | {_f(b)} | {_f(c)} | {_f(cold)} | {_f(c - b) if both else '–'} | "
            f"{_f(a - c) if a is not None and c is not None else '–'} | "
            f"{'–' if b is None else ('yes' if b < TRAINS_BELOW else 'no')} | "
            f"{'–' if not both else ('yes' if c - b <= WITHIN else 'no')} | {reach or '–'} |"
        )
    print(
        "\n| run | endpoint | best window | mean at 1,000–1,200 (§2R's endpoint) | val BLEU / chrF | test loss / "
        "BLEU | training loss, last three (exploratory) |"
    )
    print("|---|---:|---:|---:|---|---|---:|")
    for (arm, s), r in sorted(runs.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        print(
            f"| {arm} {s} | {_f(ends[(arm, s)])} | {_f(best_window(r['curve']))} | {_f(at_1200(r['curve']))} | "
            f"{r.get('bleu', math.nan):.2f} / {r.get('chrf', math.nan):.1f} | "
            f"{_f(r.get('test_loss'))} / {r.get('test_bleu', math.nan):.2f} | "
            f"{_f(endpoint(r['curve'], 'train_loss'))} |"
        )
    print("\n| C run | its search |")
    print("|---|---|")
    for (arm, s), r in sorted(runs.items()):
        if arm.startswith("C"):
            print(f"| {arm} {s} | {search_summary(r)} |")
    verdict, k, n = cpu_verdict(ends, seeds, a_seeds)
    print(
        f"\nVerdict (§2U's rule): {verdict}"
        + (f"; C within 0.10 of B on {k} of the {n} seeds where B trained" if k is not None else "")
    )


def report_gpu(folder, seeds=(301, 302, 303)):
    runs = _by_arm_seed(load(folder))
    if not runs:
        print("\nGPU (§2U): no results yet")
        return
    print(
        "\n**GPU, the paper's size and schedule, 2,500 updates** (2.5 % of the paper's; endpoint = mean validation "
        "loss at updates 2,000–2,500)\n"
    )
    print("| seed | B (500 warmup) | C | C − B | within 0.10 | C's search |")
    print("|---:|---:|---:|---:|---|---|")
    k = n = 0
    for s in seeds:
        if ("B", s) not in runs or ("C", s) not in runs:
            continue
        b, c = endpoint(runs[("B", s)]["curve"]), endpoint(runs[("C", s)]["curve"])
        n += 1
        k += c - b <= WITHIN
        print(
            f"| {s} | {_f(b)} | {_f(c)} | {_f(c - b)} | {'yes' if c - b <= WITHIN else 'no'} | "
            f"{search_summary(runs[('C', s)])} |"
        )
    print(f"\nC within 0.10 of B on {k} of {n} seeds run (the rule needs every seed run).")


def main(argv=None):
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    report_cpu(os.path.join(RESULTS, "regime", "long"))
    report_gpu(os.path.join(RESULTS, "paper_long"))


if __name__ == "__main__":
    main()
