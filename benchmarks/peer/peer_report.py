"""§8's table from the committed results alone: per seed, the endpoints of the authors' code (A, B, C;
benchmarks/results/peer/) beside the package's (`compare`, the paper's text preparation): on hf_gradinit 0.2's
token-budget batches (benchmarks/results/tokenizer_paper/), the same with fairseq's position tables
(benchmarks/results/positions_fairseq/), and on fairseq's batches, the authors' own (benchmarks/results/
fairseq_batches/); and the outcome rule fixed in §8's protocol, for each package path against the authors'. The
diagnosis of §8's results, the package's search and training on fairseq's batches with fairseq's position tables
(benchmarks/results/positions_fairseq_batches/: arm C; its B, once run, in positions_fairseq_batches_b/), is set
beside the authors' C, outside the rule, as are the package's runs from one seed's weights and batches with another
seed's dropout masks (benchmarks/results/dropout_seed/, a second draw in dropout_seed_b/).

    python benchmarks/peer/peer_report.py [--plot benchmarks/results/peer/curves.png]
"""

import json
import math
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tokenizer_report import endpoint  # noqa: E402  (the package's endpoint, as §7's table computes it)

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "results")
SEEDS = (101, 102, 103, 104)
TRAINED_MARGIN = 0.10  # C is trained on a path when its endpoint is within 0.10 of that path's B, or below it
PACKAGE_ARMS = {"A": "none", "B": "warmup", "C": "gradinit"}
PATHS = {
    "authors' code": "peer",
    "package, 0.2's batches": "tokenizer_paper",
    "package, 0.2's batches, fairseq's positions": "positions_fairseq",
    "package, fairseq's batches": "fairseq_batches",
    # arm C, and arm B run after it in a folder of its own
    "package, fairseq's batches, fairseq's positions": ("positions_fairseq_batches", "positions_fairseq_batches_b"),
    # the seed's weights and batches, the dropout masks of another seed (DROPOUT_SEED in tokenizer_runs.sh)
    "package, fairseq's batches, other dropout masks": "dropout_seed",
    "package, fairseq's batches, other dropout masks (2nd draw)": "dropout_seed_b",
}
# after the protocol: not judged by its rule
DIAGNOSES = {
    "package, fairseq's batches, fairseq's positions",
    "package, fairseq's batches, other dropout masks",
    "package, fairseq's batches, other dropout masks (2nd draw)",
}


def _authors_results(seed: int) -> dict[str, dict]:
    """The authors' runs of one seed: arm → its results.json (peer_results.py)."""
    found = {}
    for arm in ("A", "B", "C"):
        path = os.path.join(RESULTS, "peer", f"seed{seed}", arm, "results.json")
        if os.path.isfile(path):
            found[arm] = json.load(open(path))
    return found


def _authors(seed: int) -> dict[str, float]:
    return {arm: r["endpoint"] for arm, r in _authors_results(seed).items() if r["endpoint"] is not None}


def _package_arms(folders: str | tuple[str, ...], seed: int) -> dict:
    """The arms of a package path's `compare` results for one seed, from one folder or several."""
    arms = {}
    for folder in (folders,) if isinstance(folders, str) else folders:
        path = os.path.join(RESULTS, folder, f"seed{seed}", "results.json")
        if os.path.isfile(path):
            arms.update(json.load(open(path))["arms"])
    return arms


def _package(folders: str | tuple[str, ...], seed: int) -> dict[str, float]:
    arms = _package_arms(folders, seed)
    ends = {arm: endpoint(arms[name]) for arm, name in PACKAGE_ARMS.items() if name in arms}
    return {arm: value for arm, value in ends.items() if not math.isnan(value)}


def endpoints() -> dict[tuple[str, int], dict[str, float]]:
    return {
        (path, seed): _authors(seed) if folder == "peer" else _package(folder, seed)
        for path, folder in PATHS.items()
        for seed in SEEDS
    }


def curves(path: str, seed: int) -> dict[str, list[tuple[int, float]]]:
    """Validation NLL (dropout off) by update, per arm, of one path and seed."""
    folder = PATHS[path]
    if folder == "peer":
        return {arm: [(e["update"], e["nll"]) for e in r["evaluations"]] for arm, r in _authors_results(seed).items()}
    arms = _package_arms(folder, seed)
    return {
        arm: [(e["step"], e["eval_nll"]) for e in arms[name]["evaluations"] if "eval_nll" in e]
        for arm, name in PACKAGE_ARMS.items()
        if name in arms
    }


def plot(out: str) -> None:
    """One panel a seed: the authors' code solid, the package on 0.2's batches dashed (dotted with fairseq's
    positions), on fairseq's batches dash-dotted (dash-dot-dotted with fairseq's positions, sparsely dotted with
    other dropout masks)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seeds = [s for s in SEEDS if any(curves(p, s) for p in PATHS)]
    fig, axes = plt.subplots(1, len(seeds), figsize=(5 * len(seeds), 6), squeeze=False, sharey=True)
    styles = dict(zip(PATHS, ("-", "--", ":", "-.", (0, (6, 2, 1, 2, 1, 2)), (0, (1, 4)), (0, (1, 4)))))
    colours = {"A": "tab:red", "B": "tab:blue", "C": "tab:green"}
    for ax, seed in zip(axes[0], seeds):
        for path in PATHS:
            for arm, points in curves(path, seed).items():
                xs, ys = zip(*points)
                ax.plot(xs, ys, linestyle=styles[path], color=colours[arm], label=f"{arm}, {path}")
        ax.set_title(f"seed {seed}")
        ax.set_xlabel("update")
    axes[0][0].set_ylabel("validation NLL, dropout off (nats a token)")
    legend = {}  # every arm and path once, whichever panel drew it
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    fig.legend(legend.values(), legend.keys(), loc="lower center", ncol=3, fontsize=7)
    fig.tight_layout(rect=(0, 0.05 + 0.035 * math.ceil(len(legend) / 3), 1, 1))
    fig.savefig(out, dpi=110)


def c_trained(ends: dict[str, float]) -> bool | None:
    if "B" not in ends or "C" not in ends:
        return None
    return ends["C"] <= ends["B"] + TRAINED_MARGIN


def main() -> None:
    if "--plot" in sys.argv:
        plot(sys.argv[sys.argv.index("--plot") + 1])
    table = endpoints()
    print("| seed | path | A | B | C | A − B | C − B | C trained | C − authors' C |")
    print("|---|---|---:|---:|---:|---:|---:|---|---:|")
    for seed in SEEDS:
        for path in PATHS:
            ends = table[(path, seed)]
            if not ends:
                continue
            cell = [f"{ends[a]:.3f}" if a in ends else "" for a in ("A", "B", "C")]
            gaps = [f"{ends[a] - ends['B']:+.3f}" if a in ends and "B" in ends else "" for a in ("A", "C")]
            trained = {None: "", True: "yes", False: "no"}[c_trained(ends)]
            authors = table[("authors' code", seed)]
            beside = (
                f"{ends['C'] - authors['C']:+.3f}"
                if path != "authors' code" and "C" in ends and "C" in authors
                else ""
            )
            print(f"| {seed} | {path} | {' | '.join(cell)} | {' | '.join(gaps)} | {trained} | {beside} |")
    for path in PATHS:
        # A path that never ran C (the tables' effect on A and B alone) has no rule to apply.
        if path != "authors' code" and path not in DIAGNOSES and any("C" in table[(path, s)] for s in SEEDS):
            print(rule(table, path))


def rule(table: dict[tuple[str, int], dict[str, float]], path: str) -> str:
    """The protocol's rule for one package path: C trained on both paths or on neither, on at least 3 of 4 seeds."""
    judged = [s for s in SEEDS if None not in (c_trained(table[("authors' code", s)]), c_trained(table[(path, s)]))]
    same = [s for s in judged if c_trained(table[("authors' code", s)]) == c_trained(table[(path, s)])]
    verdict = "reproduces" if len(same) >= 3 else "does not reproduce" if len(judged) - len(same) >= 2 else "undecided"
    missing = len(SEEDS) - len(judged)
    return (
        f"\nThe rule, {path} (C trained on both paths or on neither, on at least 3 of the 4 seeds): of the "
        f"{len(judged)} seeds where both paths have B and C, {len(same)} agree: {verdict}"
        + (f" ({missing} seed{'s' if missing > 1 else ''} not run)" if missing else "")
        + "."
    )


if __name__ == "__main__":
    main()
