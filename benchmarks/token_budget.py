#!/usr/bin/env python
"""What do token-budget batches buy? Training throughput, rows against a token budget, side by side.

On the same model and data, training steps alternate between random batches of --batch_size rows and
fairseq-style token-budget batches (`TokenBudgetBatchSampler`) whose budget is chosen so that both carry the same
mean number of real (non-pad) target tokens. Reported for each: rows and real target tokens per batch, the share
of padded positions (source and target), seconds per step, and real target tokens per second.

    python benchmarks/token_budget.py --data_dir ../shared/data/ding-de-en --threads 2
    python benchmarks/token_budget.py --tiny --steps 2          # smoke test
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import lab_cell  # noqa: E402

from hf_gradinit.token_batches import TokenBudgetBatchSampler, example_lengths  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", default=os.path.join("..", "shared", "data", "ding-de-en"))
    p.add_argument("--batch_size", type=int, default=128, help="rows of a row batch")
    p.add_argument("--steps", type=int, default=8, help="timed steps of each kind (alternating)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--tiny", action="store_true", help="1+1 layers, d 32, 400 pairs (smoke test)")
    p.add_argument("--max_train_samples", type=int, default=50000)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args(argv)
    # The model and data flags of lab_cell.py: d 128, ffn 512, 6+6 layers, fairseq's init.
    model_args = lab_cell.parse_args(
        [
            "--data_dir",
            args.data_dir,
            "--d_model",
            "128",
            "--ffn",
            "512",
            "--device",
            args.device,
            *(["--tiny"] if args.tiny else ["--max_train_samples", str(args.max_train_samples)]),
        ]
    )
    return args, model_args


def target_tokens(train, batch):
    return sum(len(train[i]["labels"]) for i in batch)


def budget_for(lengths, train, mean_target_tokens, seed):
    """The smallest budget whose batches carry at least `mean_target_tokens` real target tokens on average."""
    low, high = int(lengths.max()), int(lengths.max()) * len(lengths)
    while low < high:
        mid = (low + high) // 2
        batches = TokenBudgetBatchSampler(lengths, mid, seed=seed).batches
        if statistics.mean(target_tokens(train, b) for b in batches) < mean_target_tokens:
            low = mid + 1
        else:
            high = mid
    return low


def padding_share(batch):
    """Padded positions over all positions, source and target together."""
    real = int(batch["attention_mask"].sum()) + int((batch["labels"] != -100).sum())
    return 1 - real / (batch["input_ids"].numel() + batch["labels"].numel())


def main(argv=None):
    args, margs = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    tokenizer, train, _ = lab_cell.load_data(margs)
    collate = lab_cell.make_collate(tokenizer)
    lengths = example_lengths(train)
    rng = random.Random(0)
    row_batches = [rng.sample(range(len(train)), args.batch_size) for _ in range(max(200, args.steps + args.warmup))]
    mean_target = statistics.mean(target_tokens(train, b) for b in row_batches)
    budget = budget_for(lengths, train, mean_target, seed=0)
    budget_batches = list(TokenBudgetBatchSampler(lengths, budget, seed=0))
    kinds = {f"rows ({args.batch_size})": row_batches, f"token budget ({budget})": budget_batches}

    model = lab_cell.make_model(margs, tokenizer)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-9)
    stats = {name: {"seconds": [], "rows": [], "target": [], "padding": []} for name in kinds}
    picks = {name: random.Random(1).sample(batches, args.steps + args.warmup) for name, batches in kinds.items()}
    for step in range(args.steps + args.warmup):
        for name in kinds:  # alternating: the machine's noise falls on both kinds alike
            rows = picks[name][step]
            batch = {k: v.to(args.device) for k, v in collate([train[i] for i in rows]).items()}
            start = time.perf_counter()
            loss = lab_cell.loss_of(model, batch, 0.1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            if step >= args.warmup:
                s = stats[name]
                s["seconds"].append(time.perf_counter() - start)
                s["rows"].append(len(rows))
                s["target"].append(int((batch["labels"] != -100).sum()))
                s["padding"].append(padding_share(batch))
    device = (
        torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU, {torch.get_num_threads()} threads"
    )
    print(
        f"{len(train)} training pairs (lengths {int(lengths.min())}-{int(lengths.max())}), model d {margs.d_model} "
        f"ffn {margs.ffn} {margs.layers}+{margs.layers}; {device}; {args.steps} steps of each kind, alternating"
    )
    print(
        f"mean real target tokens per batch over the whole epoch: rows {mean_target:.0f}, budget "
        f"{statistics.mean(target_tokens(train, b) for b in budget_batches):.0f}"
    )
    print(
        "| batches | rows / batch | real target tokens / batch | padding share | s / step | real target tokens / s |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    out = {}
    for name, s in stats.items():
        throughput = sum(s["target"]) / sum(s["seconds"])
        out[name] = throughput
        print(
            f"| {name} | {np.mean(s['rows']):.0f} | {np.mean(s['target']):.0f} | {np.mean(s['padding']):.2f} | "
            f"{np.mean(s['seconds']):.2f} | {throughput:.0f} |"
        )
    rows_name, budget_name = kinds
    print(f"\nthroughput ratio, token budget / rows: {out[budget_name] / out[rows_name]:.2f}")
    return out


if __name__ == "__main__":
    main()
