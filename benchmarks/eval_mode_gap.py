#!/usr/bin/env python
"""Validation loss of saved models with dropout off (eval mode, what evaluation reports) and on (the network the
optimizer trained), side by side. A large gap says the eval-mode network has drifted from the trained one, as the
no-warmup runs of benchmarks/stability_log.md §2a show, rather than that training diverged.

    python benchmarks/eval_mode_gap.py runs/claim1200/models/*-seed1 --data_dir ../shared/data/ding-de-en

Each folder holds a model and its tokenizer (`stability.py --save_models`). Prints a markdown table.

`--by_site` adds a second table: the loss with dropout on at one kind of site only (each stack's embedding
output, residual branches, FFN activations, attention probabilities; then the residual branches of one decoder
layer at a time; the rest off), which says where the eval-mode network departs from the trained one, and each
model's smallest LayerNorm gain (mean |weight| of the LayerNorm with the smallest one).

`--token_spread` adds a third: for the encoder's output and each decoder layer's output, the share of the hidden
states' energy that differs between tokens, sum_t |h_t - mean|^2 / sum_t |h_t|^2 over the real (non-padding)
positions of all validation batches, dropout off / on. Near 0 means every token has (almost) the same hidden
state: the network can no longer tell its inputs apart there.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stability import loss_of, make_collate, read_pairs  # noqa: E402
from token_spread import token_spread  # noqa: E402


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


def dropout_sites(model) -> dict[str, list[tuple[object, str]]]:
    """(module, attribute) of every dropout probability of a BART-style encoder-decoder, by stack and kind of site,
    then the residual branches of each decoder layer on their own ("decoder/residual@i")."""
    sites = {}
    for stack, part in (("encoder", model.get_encoder()), ("decoder", model.get_decoder())):
        attention = [(layer.self_attn, "dropout") for layer in part.layers]
        attention += [(layer.encoder_attn, "dropout") for layer in part.layers if hasattr(layer, "encoder_attn")]
        sites.update(
            {
                f"{stack}/embed": [(part, "dropout")],
                f"{stack}/residual": [(layer, "dropout") for layer in part.layers],
                f"{stack}/activation": [(layer, "activation_dropout") for layer in part.layers],
                f"{stack}/attention": attention,
            }
        )
    sites.update({f"decoder/residual@{i}": [(layer, "dropout")] for i, layer in enumerate(model.get_decoder().layers)})
    return sites


def loss_by_site(model, batches, seed: int) -> dict[str, float]:
    """Validation loss with dropout on at one site only (every other dropout probability 0), for each site."""
    sites = dropout_sites(model)
    everywhere = {(id(m), a): (m, a, getattr(m, a)) for where in sites.values() for m, a in where}
    out = {}
    try:
        for name, where in sites.items():
            on = {(id(m), a) for m, a in where}
            for key, (m, a, p) in everywhere.items():
                setattr(m, a, p if key in on else 0.0)
            torch.manual_seed(seed)
            out[name] = mean_loss(model, batches, train_mode=True)
    finally:
        for m, a, p in everywhere.values():
            setattr(m, a, p)
    return out


def smallest_layer_norm_gain(model) -> tuple[str, float]:
    gains = {
        n: m.weight.detach().abs().mean().item() for n, m in model.named_modules() if isinstance(m, torch.nn.LayerNorm)
    }
    name = min(gains, key=gains.get)
    return name, gains[name]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", help="folders with a saved model and tokenizer")
    p.add_argument("--data_dir", default=os.path.join("..", "shared", "data", "ding-de-en"))
    p.add_argument("--max_eval_samples", type=int, default=None)
    p.add_argument("--max_length", type=int, default=64, help="as the runs were trained (stability.py's --max_length)")
    p.add_argument("--dropout_passes", type=int, default=2, help="passes with dropout on, averaged")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--by_site", action="store_true", help="also the loss with dropout on at one kind of site only")
    p.add_argument(
        "--token_spread",
        action="store_true",
        help="also the share of each decoder layer's (and the encoder's) output that differs between tokens",
    )
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    pairs = read_pairs(os.path.join(args.data_dir, "validation.jsonl"), args.max_eval_samples)
    print("| model | val loss, dropout off (eval) | val loss, dropout on | gap |")
    print("|---|---:|---:|---:|")
    rows, by_site, spreads = [], [], []
    for folder in args.models:
        torch.manual_seed(args.seed)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForSeq2SeqLM.from_pretrained(folder)
        src, tgt = zip(*pairs)
        enc = tokenizer(list(src), text_target=list(tgt), max_length=args.max_length, truncation=True)
        examples = [
            {"input_ids": i, "attention_mask": m, "labels": y}
            for i, m, y in zip(enc["input_ids"], enc["attention_mask"], enc["labels"])
        ]
        collate = make_collate(tokenizer)
        batches = [collate(examples[i : i + 64]) for i in range(0, len(examples), 64)]
        off = mean_loss(model, batches, train_mode=False)
        on = sum(mean_loss(model, batches, train_mode=True) for _ in range(args.dropout_passes)) / args.dropout_passes
        rows.append((os.path.basename(os.path.normpath(folder)), off, on))
        print(f"| {rows[-1][0]} | {off:.3f} | {on:.3f} | {off - on:+.3f} |", flush=True)
        if args.by_site:
            by_site.append((rows[-1][0], loss_by_site(model, batches, args.seed), smallest_layer_norm_gain(model)))
        if args.token_spread:
            torch.manual_seed(args.seed)
            spreads.append(
                (
                    rows[-1][0],
                    token_spread(model, batches, train_mode=False),
                    token_spread(model, batches, train_mode=True),
                )
            )
    if by_site:
        names = list(by_site[0][1])
        print(
            "\nValidation loss with dropout on at one kind of site only; the smallest LayerNorm gain (mean "
            "|weight|):\n"
        )
        print("| model | " + " | ".join(names) + " | smallest LayerNorm gain |")
        print("|---|" + "---:|" * (len(names) + 1))
        for model_name, losses, (ln_name, gain) in by_site:
            print(
                f"| {model_name} | " + " | ".join(f"{losses[n]:.3f}" for n in names) + f" | {gain:.3f} ({ln_name}) |"
            )
    if spreads:
        names = list(spreads[0][1])
        print("\nShare of the hidden states' energy that differs between tokens, dropout off / on:\n")
        print("| model | " + " | ".join(names) + " |")
        print("|---|" + "---:|" * len(names))
        for model_name, off, on in spreads:
            print(f"| {model_name} | " + " | ".join(f"{off[n]:.3f} / {on[n]:.3f}" for n in names) + " |")
    return rows


if __name__ == "__main__":
    main()
