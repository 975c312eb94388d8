"""The table of BENCHMARKS.md's tokenizer question, from the committed results alone: per tokenizer, each arm's
endpoint (§2P's: the mean validation loss, dropout off, at updates 1,000, 1,100 and 1,200), its last evaluation,
and whether the evaluated network collapsed.

    python benchmarks/tokenizer_report.py
"""

import json
import os

from hf_gradinit.comparison_report import arm_summary

HERE = os.path.dirname(os.path.abspath(__file__))
RUNS = {
    "sentencepiece, 8,000 (§2V)": os.path.join(HERE, "results", "compare_2v", "results.json"),
    "paper, 10,000": os.path.join(HERE, "results", "tokenizer_paper", "seed101", "results.json"),
}
ENDPOINT_STEPS = (1000, 1100, 1200)


def endpoint(record: dict) -> float:
    losses = [e["eval_nll"] for e in record["evaluations"] if e["step"] in ENDPOINT_STEPS]
    return sum(losses) / len(losses) if len(losses) == len(ENDPOINT_STEPS) else float("nan")


def main() -> None:
    print("| text preparation, vocabulary | arm | endpoint | last (1,200) | evaluated network | arm − B |")
    print("|---|---|---:|---:|---|---:|")
    for name, path in RUNS.items():
        if not os.path.isfile(path):
            print(f"| {name} | (no results at {os.path.relpath(path, HERE)}) | | | | |")
            continue
        arms = json.load(open(path, encoding="utf-8"))["arms"]
        ends = {arm: endpoint(record) for arm, record in arms.items()}
        for arm, label in (("none", "A"), ("warmup", "B"), ("gradinit", "C")):
            if arm not in arms:
                continue
            s = arm_summary(arms[arm])
            state = f"collapsed from update {s['collapses'][0][0]:,}" if s["collapses"] else "healthy"
            gap = f"{ends[arm] - ends['warmup']:+.3f}" if arm != "warmup" and "warmup" in ends else ""
            print(f"| {name} | {label} ({arm}) | {ends[arm]:.3f} | {s['last']:.3f} | {state} | {gap} |")


if __name__ == "__main__":
    main()
