"""What `compare` (`hf_gradinit.comparison`) writes: per arm a record of its run, and for all the arms found in
the folder `results.json`, `curves.png` and `summary.md`."""

from __future__ import annotations

import glob
import json
import math
import os
from typing import Any

from .comparison_settings import check_agree, recorded_settings
from .comparison_verdict import NOISE_BOUND, verdict
from .stability_callback import collapsed_stacks

ARM_FILE = "compare_arm.json"
ARM_ORDER = ("none", "warmup", "gradinit", "gradinit_warmup")
MARKERS = ("o", "s", "^", "D", "v", "P")


def arm_record(arm: str, log_history: list[dict], final: dict, search: dict | None, args, fingerprint: str) -> dict:
    """One arm's run: every evaluation, the training loss as logged, the final scored evaluation, the search's
    report (GradInit arms), the arm's flags and a hash of its initial weights."""
    return {
        "arm": arm,
        "evaluations": [r for r in log_history if "eval_loss" in r],
        "training_loss": [{"step": r["step"], "loss": r["loss"]} for r in log_history if "loss" in r],
        "final": final,
        "search": search,
        "initial_weights": fingerprint,
        "flags": args.to_dict(),
    }


def load_arms(folder: str) -> dict[str, dict]:
    """The finished arms' records in `folder`, in the usual order of arms."""
    records = {}
    for path in glob.glob(os.path.join(folder, "*", ARM_FILE)):
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
        records[record["arm"]] = record
    return {a: records[a] for a in sorted(records, key=lambda a: ARM_ORDER.index(a) if a in ARM_ORDER else 99)}


def write_report(folder: str) -> dict[str, Any]:
    """Merge the finished arms of `folder` into `results.json`, `curves.png` and `summary.md`; return the
    results. Raises FileNotFoundError if no arm has finished there."""
    arms = load_arms(folder)
    if not arms:
        raise FileNotFoundError(f"{folder}: no finished arm (no */{ARM_FILE}); run `hf-gradinit compare` first.")
    recorded = recorded_settings(folder)
    check_agree(folder, {arm: recorded[arm] for arm in arms if arm in recorded})
    results = {"arms": arms, "same_initial_weights": len({r["initial_weights"] for r in arms.values()}) == 1}
    results["verdict"] = verdict(arms, {arm: arm_summary(record)["collapses"] for arm, record in arms.items()})
    write_atomically(os.path.join(folder, "results.json"), json.dumps(results, indent=1))
    plot_curves(arms, os.path.join(folder, "curves.png"))
    write_atomically(os.path.join(folder, "summary.md"), summary(results))
    return results


def write_atomically(path: str, text: str) -> None:
    """Write `text` whole, then rename: a process reading the folder never sees half a file."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def arm_summary(record: dict) -> dict[str, Any]:
    """Best and last validation loss (`eval_nll`), the update of the best, BLEU, and where the evaluated network
    collapsed (the StabilityCallback's rule at each evaluation)."""
    evals = [e for e in record["evaluations"] if math.isfinite(e.get("eval_nll", math.nan))]
    best = min(evals, key=lambda e: e["eval_nll"]) if evals else None
    collapsed = [(e["step"], collapsed_stacks(e)) for e in record["evaluations"]]
    collapsed = [(step, stacks) for step, stacks in collapsed if stacks]
    last = record["evaluations"][-1] if record["evaluations"] else {}
    return {
        "best": best["eval_nll"] if best else math.nan,
        "best_step": best["step"] if best else None,
        "last": last.get("eval_nll", math.nan),
        "last_step": last.get("step"),
        "bleu": record["final"].get("final_bleu"),
        "collapses": collapsed,
        "collapsed_at_end": bool(last) and bool(collapsed_stacks(last)),
    }


def _collapse_words(s: dict[str, Any]) -> str:
    if not s["collapses"]:
        return "no collapse of the evaluated network seen"
    first_step, stacks = s["collapses"][0]
    count = len(s["collapses"])
    end = "still collapsed at the end" if s["collapsed_at_end"] else "recovered by the end"
    return (
        f"the evaluated network collapsed from update {first_step:,} ({', '.join(stacks)}) while the trained one did "
        f"not; {count} evaluation{'s' if count > 1 else ''} flagged, {end}"
    )


def summary(results: dict[str, Any]) -> str:
    """`summary.md`: a table of the arms and one sentence each, in plain words."""
    arms = results["arms"]
    lines = [
        "# Warmup or GradInit: the comparison",
        "",
        results["verdict"],
        "",
        f"An arm's endpoint is its last evaluation. The noise bound, {NOISE_BOUND:.2f} nats, is how far the warmup "
        "arm's endpoint moved from seed to seed on the benchmarks' small model (BENCHMARKS.md, §2R); closer arms "
        "need more seeds to be told apart.",
        "",
        "Validation loss: plain cross-entropy per target token (`eval_nll`), the network evaluated with dropout off.",
        "",
        "| arm | best loss (update) | last loss (update) | BLEU | evaluated network |",
        "|---|---:|---:|---:|---|",
    ]
    sentences = []
    for arm, record in arms.items():
        s = arm_summary(record)
        bleu = f"{s['bleu']:.2f}" if s["bleu"] is not None else "—"
        state = "collapsed" if s["collapses"] else "healthy"
        lines.append(
            f"| {arm} | {s['best']:.3f} ({s['best_step']:,}) | {s['last']:.3f} ({s['last_step']:,}) | {bleu} | "
            f"{state} |"
        )
        sentences.append(f"- **{arm}**: best {s['best']:.3f} at update {s['best_step']:,}; {_collapse_words(s)}.")
    lines += ["", *sentences, ""]
    if not results["same_initial_weights"]:
        lines += [
            "**The arms did not start from the same weights** (their `initial_weights` differ in results.json): "
            "they were built with different seeds or models, so they do not compare like with like.",
            "",
        ]
    return "\n".join(lines)


def plot_curves(arms: dict[str, dict], path: str) -> None:
    """Validation loss per arm over updates: the evaluated network (dropout off, `eval_nll`) solid, the network
    being trained (dropout on, on the monitor's rows) dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for i, (arm, record) in enumerate(arms.items()):
        color = f"C{i}"
        # Arms that end level draw on top of each other: each later arm is drawn narrower, with its own markers,
        # so that the one beneath still shows at its edges.
        width = 1.2 + 1.8 * (len(arms) - 1 - i)
        evals = record["evaluations"]
        steps = [e["step"] for e in evals]
        ax.plot(
            steps,
            [e.get("eval_nll", math.nan) for e in evals],
            color=color,
            linewidth=width,
            marker=MARKERS[i % len(MARKERS)],
            markersize=3 + 2 * (len(arms) - 1 - i),
            label=f"{arm}: evaluated",
        )
        ax.plot(
            steps,
            [e.get("eval_train_mode_nll", math.nan) for e in evals],
            color=color,
            linewidth=width,
            linestyle="--",
            label=f"{arm}: trained (dropout on)",
        )
        for step, _ in arm_summary(record)["collapses"][:1]:
            ax.axvline(step, color=color, linestyle=":", linewidth=1)
    ax.set_xlabel("update")
    ax.set_ylabel("validation loss (cross-entropy per token)")
    ax.set_title("Evaluated network solid, trained network dashed; dotted: first collapse", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
