#!/usr/bin/env python
"""The tables and curves of the lab's training runs (BENCHMARKS §2a–§2U, §2d), rebuilt from their committed results
files (`results_*.json` under `benchmarks/results/`): final losses, BLEU and chrF per arm, the summary over seeds,
each seed's claim (C within 0.1 of B and 0.5 below A), the searches, and, for the runs of §2P's protocol, the
confirmatory test's tables (`confirmatory.py`). Writes `curves.csv` and `curves.png` into the folder it reads.

    python benchmarks/lab_report.py benchmarks/results/confirm        # §2R's tables

The runs themselves came from the lab's training loop (`stability.py`), which is no longer in `benchmarks/`: a
section's command is repeated at the commit it names (BENCHMARKS.md, "Repeating a result").
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import confirmatory  # noqa: E402

ARMS = {
    "A": "default init, no warmup",
    "B": "default init, warmup",
    "C": "GradInit, no warmup",
    "D": "Admin, no warmup",
}


def report(results, out, reach=6.5):
    with open(os.path.join(out, "curves.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["lr", "arm", "step", "train_loss", "val_loss"])
        for r in results:
            for c in r["curve"]:
                w.writerow([r["lr"], r["arm"], c["step"], c["train_loss"], c["val_loss"]])
    plot(results, os.path.join(out, "curves.png"))
    print(
        "\n| lr | arm | final train loss | final val loss | val BLEU | val chrF | GradInit scales (min/mean/max) | "
        "seconds |"
    )
    print("|---|---|---:|---:|---:|---:|---|---:|")
    for r in results:
        last = r["curve"][-1]
        g = r["gradinit"]
        scales = (
            f"{g['scale_min']:.2f}/{g['scale_mean']:.2f}/{g['scale_max']:.2f}, constraint "
            f"{100 * g['constraint_fraction']:.0f}%"
            if g
            else ""
        )
        print(
            f"| {r['lr']:g} | {r['arm']}: {ARMS[r['arm'][0]]} | {last['train_loss']:.3f} | {last['val_loss']:.3f} | "
            f"{r['bleu']:.2f} | {r['chrf']:.1f} | {scales} | {r['seconds']:.0f} |"
        )
    if any(len(runs) > 1 for runs in _by_arm(results).values()):
        seed_summary(results, reach)
    confirmatory.report(results, out)


def _by_arm(results):
    groups = {}
    for r in results:
        groups.setdefault((r["lr"], r["arm"]), []).append(r)
    return groups


def _mean_sd(values):
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return "—"
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return f"{mean:.2f} ± {sd:.2f}"


def seed_summary(results, reach):
    """Per arm over seeds: validation loss at fixed steps, steps to reach a loss, BLEU/chrF; then the searches."""
    checkpoints = sorted({c["step"] for r in results for c in r["curve"]})
    shown = [s for s in checkpoints if s % 100 == 0] or checkpoints
    print(f"\nOver seeds (mean ± sd; 'reach' = first evaluated step with validation loss ≤ {reach:g}, per seed):")
    print("| lr | arm | seeds | " + " | ".join(f"val @{s}" for s in shown) + " | reach | BLEU | chrF |")
    print("|---|---|---:|" + "---:|" * len(shown) + "---|---:|---:|")
    for (lr, arm), runs in sorted(_by_arm(results).items()):
        at = [
            _mean_sd([next((c["val_loss"] for c in r["curve"] if c["step"] == s), None) for r in runs]) for s in shown
        ]
        reached = [
            next((c["step"] for c in r["curve"] if c["val_loss"] <= reach), None)
            for r in sorted(runs, key=lambda r: r.get("seed", 0))
        ]
        reached = ", ".join("—" if x is None else str(x) for x in reached)
        print(
            f"| {lr:g} | {arm} | {len(runs)} | "
            + " | ".join(at)
            + f" | {reached} | {_mean_sd([r['bleu'] for r in runs])} | {_mean_sd([r['chrf'] for r in runs])} |"
        )
    finals = {(r["lr"], r["arm"], r.get("seed")): r["curve"][-1]["val_loss"] for r in results}
    cases = sorted({(lr, seed) for lr, arm, seed in finals if arm.startswith("C")}, key=lambda k: (k[0], k[1] or 0))

    def cell(arm, value):
        return "—" if value is None else f"{arm}: {value:.3f}"

    if cases:
        print(
            "\nThe claim, per seed (final validation loss): holds if C ends within 0.1 of B and at least 0.5 below A; "
            "every C and B variant (tag) of a seed, '—' where an arm has not run."
        )
        print("| lr | seed | A | B | C | C − B | A − C | holds |")
        print("|---|---:|---|---|---|---:|---:|---|")
        for lr, seed in cases:
            variants = {
                base: sorted(arm for r, arm, s in finals if r == lr and s == seed and arm.startswith(base))
                for base in "ABC"
            }
            a_arm = "A" if "A" in variants["A"] else next(iter(variants["A"]), None)
            a = finals.get((lr, a_arm, seed))
            for c_arm in variants["C"]:
                c = finals[(lr, c_arm, seed)]
                for b_arm in variants["B"] or [None]:
                    b = finals.get((lr, b_arm, seed))
                    cb = f"{c - b:+.3f}" if b is not None else "—"
                    ac = f"{a - c:+.3f}" if a is not None else "—"
                    holds = "—" if a is None or b is None else ("yes" if c - b <= 0.1 and a - c >= 0.5 else "no")
                    print(
                        f"| {lr:g} | {seed} | {cell(a_arm, a)} | {cell(b_arm, b)} | {cell(c_arm, c)} | {cb} | {ac} | "
                        f"{holds} |"
                    )
    searches = [r for r in results if r["gradinit"]]
    if searches:
        print(
            "\n| arm | seed | ‖g‖ first → last | constraint fraction | first objective step | scales min / mean / "
            "max |"
        )
        print("|---|---:|---|---:|---:|---|")
        for r in sorted(searches, key=lambda r: (r["arm"], r.get("seed", 0))):
            g = r["gradinit"]
            print(
                f"| {r['arm']} | {r.get('seed', '')} | {g['grad_norm_first']:,.0f} → {g['grad_norm_last']:,.0f} | "
                f"{g['constraint_fraction']:.2f} | {g['first_objective_step'] or '—'} | "
                f"{g['scale_min']:.2f} / {g['scale_mean']:.2f} / {g['scale_max']:.2f} |"
            )


def merged_results(out):
    """The arms of every `results_*.json` in `out` (arms run as separate processes)."""
    results = []
    for name in sorted(os.listdir(out)):
        if name.startswith("results_") and name.endswith(".json"):
            with open(os.path.join(out, name)) as f:
                results += json.load(f)["results"]
    return results


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lrs = sorted({r["lr"] for r in results})
    fig, axes = plt.subplots(1, len(lrs), figsize=(5.5 * len(lrs), 4), squeeze=False, sharey=True)
    colors = {"A": "tab:red", "B": "tab:blue", "C": "tab:green", "D": "tab:purple"}
    styles = ["-", "-.", ":", (0, (5, 1))]
    for ax, lr in zip(axes[0], lrs):
        variants, labelled = {}, set()
        for r in (r for r in results if r["lr"] == lr):
            steps = [c["step"] for c in r["curve"]]
            base = r["arm"][0]
            color = colors.get(base, "black")
            style = styles[variants.setdefault(r["arm"], sum(a[0] == base for a in variants)) % len(styles)]
            first = r["arm"] not in labelled  # one legend entry per arm, however many seeds
            labelled.add(r["arm"])
            ax.plot(
                steps,
                [c["train_loss"] for c in r["curve"]],
                color=color,
                linestyle=style,
                alpha=0.4,
                label=f"{r['arm']}: {ARMS[base]} (train)" if first else None,
            )
            ax.plot(
                steps,
                [c["val_loss"] for c in r["curve"]],
                color=color,
                linestyle=style,
                label=f"{r['arm']} (validation)" if first else None,
            )
        seeds = sorted({r.get("seed") for r in results if r["lr"] == lr} - {None})
        ax.set_title(f"lr {lr:g}" + (f", seeds {', '.join(map(str, seeds))}" if len(seeds) > 1 else ""))
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("loss")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", help="a folder of results_*.json files (e.g. benchmarks/results/confirm)")
    p.add_argument("--reach_loss", type=float, default=6.5, help="the summary's 'reach' validation loss")
    args = p.parse_args(argv)
    results = merged_results(args.folder) if os.path.isdir(args.folder) else []
    if not results:
        raise SystemExit(f"{args.folder}: no results_*.json files there")
    report(results, args.folder, args.reach_loss)
    return results


if __name__ == "__main__":
    main()
