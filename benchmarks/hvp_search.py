#!/usr/bin/env python
"""A whole GradInit search both ways: exact Hessian-vector products (second-order graph) against finite differences
(`gradinit_hvp="finite_difference"`), on the same model, batches and seed, on German->English pairs.

Prints, side by side: seconds per iteration, constraint fraction, the largest and mean |Δα| between the two
searches' final scales, and the validation loss of the model each search leaves.

    python benchmarks/hvp_search.py --data_dir ../shared/data/ding-de-en --iters 200
    python benchmarks/hvp_search.py --tiny --iters 3          # smoke test
"""

from __future__ import annotations

import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from stability import batch_order, load_data, loss_of, make_collate, make_model, parse_args, validation_loss  # noqa: E402

from hf_gradinit import GradInitArguments, gradinit  # noqa: E402


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    iters = 200
    if "--iters" in argv:
        i = argv.index("--iters")
        iters = int(argv[i + 1])
        del argv[i : i + 2]
    args = parse_args(argv + ["--gradinit_iters", str(iters)])
    if args.threads:
        torch.set_num_threads(args.threads)
    tokenizer, train, val, _ = load_data(args)
    collate = make_collate(tokenizer)

    val_batches = [collate(val[i : i + 64]) for i in range(0, len(val), 64)]
    order = batch_order(len(train), args.gradinit_batch_size or args.batch_size, iters, args.seed + 1)
    runs = {}
    for hvp in ("exact", "finite_difference"):
        model = make_model(args, tokenizer)
        gi_args = GradInitArguments(
            gradinit_iters=iters, gradinit_lr=args.gradinit_lr, gradinit_eta=args.gradinit_eta,
            gradinit_gamma=args.gradinit_gamma, gradinit_max_scale=args.gradinit_max_scale,
            gradinit_beta2=args.gradinit_beta2, gradinit_hvp=hvp,
        )
        start = time.time()
        result = gradinit(model, (collate([train[i] for i in idx]) for idx in order), gi_args,
                          loss_fn=lambda m, b: loss_of(m, b, args.label_smoothing), progress_bar=False)
        seconds = time.time() - start
        runs[hvp] = {
            "seconds_per_iteration": seconds / result.iterations,
            "constraint_fraction": result.constraint_fraction,
            "validation_loss": validation_loss(model, val_batches),
            "scales": result.scales,
        }
        print(f"{hvp}: {seconds:.0f} s, constraint {100 * result.constraint_fraction:.0f}%", flush=True)
    exact, fd = runs["exact"], runs["finite_difference"]
    diffs = [abs(exact["scales"][n] - fd["scales"][n]) for n in exact["scales"]]
    print(f"\n{args.model} {args.layers}+{args.layers} layers, d {args.d_model}, init {args.init}; {iters} iterations of "
          f"{args.gradinit_batch_size or args.batch_size} pairs; scale lr {args.gradinit_lr:g}, γ {args.gradinit_gamma:g}")
    print("| Hessian-vector products | s / iteration | time / exact | constraint fraction | validation loss after the search |")
    print("|---|---:|---:|---:|---:|")
    for hvp, r in runs.items():
        print(f"| {hvp} | {r['seconds_per_iteration']:.2f} | {r['seconds_per_iteration'] / exact['seconds_per_iteration']:.2f} | "
              f"{r['constraint_fraction']:.2f} | {r['validation_loss']:.4f} |")
    print(f"\nfinal scales: max |Δα| = {max(diffs):.2e}, mean |Δα| = {sum(diffs) / len(diffs):.2e}, "
          f"median {sorted(diffs)[len(diffs) // 2]:.2e} over {len(diffs)} tensors; the largest:")
    for name in sorted(exact["scales"], key=lambda n: -abs(exact["scales"][n] - fd["scales"][n]))[:6]:
        print(f"  {name}: {exact['scales'][name]:.4f} exact, {fd['scales'][name]:.4f} finite difference")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "hvp_search.json"), "w") as f:
        json.dump({"args": vars(args), "iters": iters, "runs": runs, "max_abs_diff": max(diffs)}, f, indent=2)
    return runs


if __name__ == "__main__":
    main()
