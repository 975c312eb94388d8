"""Batch parity: the package's token-budget batches against the authors' fairseq, on the cell's 227k training pairs.

Two halves, one per Python:

    runs/peer/venv/bin/python benchmarks/peer/batch_parity.py fairseq   # the authors' venv: fairseq's batches
    python benchmarks/peer/batch_parity.py package                     # the package's Python: compares, prints

The fairseq side asks the fork's translation task for its training batches as its trainer does
(`task.get_batch_iterator` with the seed, the budget and fairseq's default `--required-batch-size-multiple 8`):
the batches before the shuffle, epoch 1's order and the start of epoch 2's, for seeds 101 and 102 at the
training budget (1,600 tokens) and the search's (2,000), with the examples' (source, target) sizes it read. The
package side builds `TokenBudgetBatchSampler` on those sizes with the same seed and budget and counts the batches
that differ (the Trainer's epochs 0 and 1 are fairseq's 1 and 2).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

PEER = "runs/peer"
OUT = f"{PEER}/batch-parity-fairseq.json"
SEEDS = (101, 102)
BUDGETS = (1600, 2000)  # runs.sh's --max-tokens and --gradinit-max-tokens
EPOCH2_BATCHES = 50


def fairseq_side() -> None:
    from fairseq import options, tasks

    args = options.parse_args_and_arch(
        options.get_training_parser(), [f"{PEER}/data-bin", "--arch", "transformer_iwslt_de_en", "--cpu"]
    )
    task = tasks.setup_task(args)
    task.load_dataset("train")
    dataset = task.dataset("train")
    runs = []
    for seed in SEEDS:
        for budget in BUDGETS:
            epochs = task.get_batch_iterator(
                dataset,
                max_tokens=budget,
                max_positions=(1024, 1024),
                seed=seed,
                required_batch_size_multiple=args.required_batch_size_multiple,
                disable_iterator_cache=True,
            )
            frozen = [b.tolist() for b in epochs.frozen_batches]
            first = [s["id"].tolist() for s in epochs.next_epoch_itr(shuffle=True)]
            second = []
            for sample in epochs.next_epoch_itr(shuffle=True):
                second.append(sample["id"].tolist())
                if len(second) == EPOCH2_BATCHES:
                    break
            runs.append({"seed": seed, "max_tokens": budget, "frozen": frozen, "epoch1": first, "epoch2": second})
            print(f"fairseq, seed {seed}, {budget} tokens: {len(frozen)} batches", flush=True)
    sizes = [[int(s), int(t)] for s, t in zip(dataset.src_sizes, dataset.tgt_sizes)]
    json.dump(
        {"required_batch_size_multiple": args.required_batch_size_multiple, "sizes": sizes, "runs": runs},
        open(OUT, "w"),
    )


def package_side(out: str | None) -> None:
    import numpy as np

    from hf_gradinit.token_batches import TokenBudgetBatchSampler

    theirs = json.load(open(OUT))
    sizes = np.asarray(theirs["sizes"], dtype=np.int64)
    summary = []
    for run in theirs["runs"]:
        sampler = TokenBudgetBatchSampler(sizes, run["max_tokens"], seed=run["seed"])
        epochs = []
        for epoch in (0, 1):
            sampler.set_epoch(epoch)
            epochs.append(list(sampler))

        def differing(ours, fairseq):
            return sum(sorted(a) != sorted(b) for a, b in zip(ours, fairseq)) + abs(len(ours) - len(fairseq))

        row = {
            "seed": run["seed"],
            "max_tokens": run["max_tokens"],
            "batches": {"fairseq": len(run["frozen"]), "package": len(sampler)},
            "differing_batches": differing(sampler.batches, run["frozen"]),
            "differing_in_epoch_1": differing(epochs[0], run["epoch1"]),
            "differing_in_epoch_2_start": differing(epochs[1][:EPOCH2_BATCHES], run["epoch2"]),
        }
        summary.append(row)
        print(
            f"seed {row['seed']}, {row['max_tokens']} tokens: {row['batches']['fairseq']} batches in fairseq, "
            f"{row['batches']['package']} in the package; {row['differing_batches']} differ; epoch 1's order: "
            f"{row['differing_in_epoch_1']} differ; epoch 2's first {EPOCH2_BATCHES}: "
            f"{row['differing_in_epoch_2_start']} differ"
        )
    if out:
        json.dump({"examples": len(sizes), "runs": summary}, open(out, "w"), indent=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("side", choices=("fairseq", "package"))
    parser.add_argument("--out", help="the package side's summary (JSON)")
    options = parser.parse_args()
    fairseq_side() if options.side == "fairseq" else package_side(options.out)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
