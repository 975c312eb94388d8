#!/usr/bin/env python
"""Validation loss of saved models with dropout off (eval mode, what evaluation reports) and on (the network the
optimizer trained), side by side. A large gap says the eval-mode network has drifted from the trained one, as the
no-warmup runs of BENCHMARKS.md §2a show, rather than that training diverged.

    python benchmarks/eval_mode_gap.py runs/claim1200/models/*-seed1 --data_dir ../shared/data/ding-de-en

Each folder holds a model and its tokenizer (`stability.py --save_models`). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stability import loss_of, make_collate, read_pairs  # noqa: E402


def mean_loss(model, batches, train_mode: bool) -> float:
    """Per-token validation loss (no label smoothing), dropout on or off."""
    model.train(train_mode)
    total, tokens = 0.0, 0
    with torch.no_grad():
        for batch in batches:
            n = int((batch["labels"] != -100).sum())
            total += loss_of(model, batch, 0.0).item() * n
            tokens += n
    return total / tokens


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", help="folders with a saved model and tokenizer")
    p.add_argument("--data_dir", default=os.path.join("..", "shared", "data", "ding-de-en"))
    p.add_argument("--max_eval_samples", type=int, default=None)
    p.add_argument("--max_length", type=int, default=64, help="as the runs were trained (stability.py's --max_length)")
    p.add_argument("--dropout_passes", type=int, default=2, help="passes with dropout on, averaged")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    pairs = read_pairs(os.path.join(args.data_dir, "validation.jsonl"), args.max_eval_samples)
    print("| model | val loss, dropout off (eval) | val loss, dropout on | gap |")
    print("|---|---:|---:|---:|")
    rows = []
    for folder in args.models:
        torch.manual_seed(args.seed)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForSeq2SeqLM.from_pretrained(folder)
        src, tgt = zip(*pairs)
        enc = tokenizer(list(src), text_target=list(tgt), max_length=args.max_length, truncation=True)
        examples = [{"input_ids": i, "attention_mask": m, "labels": l} for i, m, l in zip(enc["input_ids"], enc["attention_mask"], enc["labels"])]
        collate = make_collate(tokenizer)
        batches = [collate(examples[i : i + 64]) for i in range(0, len(examples), 64)]
        off = mean_loss(model, batches, train_mode=False)
        on = sum(mean_loss(model, batches, train_mode=True) for _ in range(args.dropout_passes)) / args.dropout_passes
        rows.append((os.path.basename(os.path.normpath(folder)), off, on))
        print(f"| {rows[-1][0]} | {off:.3f} | {on:.3f} | {off - on:+.3f} |", flush=True)
    return rows


if __name__ == "__main__":
    main()
