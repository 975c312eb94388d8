"""One run of the authors' code (runs.sh) read into the numbers §2V's cell reports, as results.json.

fairseq's validation reports the label-smoothed loss and the NLL in bits a target token, dropout off; here the NLL
is in nats (× ln 2), as `eval_nll` in the package's runs. The endpoint is the mean at updates 1,000, 1,100 and
1,200. Throughput: the median of fairseq's updates a second over its logging intervals (validation not counted),
and the search's time as peer_train.py measured it. Standard library only: runs with any Python.

    python benchmarks/peer/peer_results.py runs/peer/runs/A-101 --arm A --seed 101 \\
        --results benchmarks/results/peer/seed101/A
"""

import argparse
import json
import math
import os
import re
import shutil
import statistics

ENDPOINT_UPDATES = (1000, 1100, 1200)


def _records(log: str, kind: str) -> list[dict]:
    """fairseq's `--log-format json` lines of one kind (`valid`, `train_inner`), values as floats."""
    found = []
    for line in open(log, encoding="utf-8"):
        match = re.search(r"\| " + kind + r" \| (\{.*\})\s*$", line)
        if match:
            found.append({k: _number(v) for k, v in json.loads(match.group(1)).items()})
    return found


def _number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def read_run(folder: str) -> dict:
    log = os.path.join(folder, "train.log")
    evaluations = {}
    for r in _records(log, "valid"):
        update = int(r["valid_num_updates"])
        evaluations[update] = {
            "update": update,
            "nll": r["valid_nll_loss"] * math.log(2),
            "loss_bits": r["valid_loss"],
        }
    evaluations = [evaluations[u] for u in sorted(evaluations)]
    at = {e["update"]: e["nll"] for e in evaluations}
    endpoint = statistics.mean(at[u] for u in ENDPOINT_UPDATES) if all(u in at for u in ENDPOINT_UPDATES) else None
    ups = [r["ups"] for r in _records(log, "train_inner") if r.get("ups")]
    result = {
        "evaluations": evaluations,
        "endpoint": endpoint,
        "best": min(evaluations, key=lambda e: e["nll"]) if evaluations else None,
        "seconds_per_update": 1 / statistics.median(ups) if ups else None,
    }
    took = re.findall(r"peer_train: search took ([0-9.]+) s", open(log, encoding="utf-8").read())
    trace_file = os.path.join(folder, "gradinit_trace.json")
    if os.path.exists(trace_file):
        trace = json.load(open(trace_file))
        branches = [it["branch"] for it in trace["iterations"]]
        result["search"] = {
            "iterations": len(branches),
            "constraint_fraction": branches.count("constraint") / len(branches),
            "first_objective_iteration": branches.index("objective") + 1 if "objective" in branches else None,
            "seconds": float(took[-1]) if took else None,
            "alpha_min": min(trace["alphas"].values()),
            "alpha_max": max(trace["alphas"].values()),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder")
    parser.add_argument("--arm", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--results", help="a folder to copy results.json (and the search's trace) into")
    options = parser.parse_args()
    result = {"arm": options.arm, "seed": options.seed, **read_run(options.folder)}
    path = os.path.join(options.folder, "results.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=1)
    if options.results:
        os.makedirs(options.results, exist_ok=True)
        shutil.copy(path, options.results)
        trace = os.path.join(options.folder, "gradinit_trace.json")
        if os.path.exists(trace):
            shutil.copy(trace, options.results)
    endpoint = "unfinished" if result["endpoint"] is None else f"{result['endpoint']:.3f}"
    print(f"{options.arm} seed {options.seed}: endpoint {endpoint}, {len(result['evaluations'])} evaluations")


if __name__ == "__main__":
    main()
