#!/usr/bin/env python
"""A whole GradInit search both ways: exact Hessian-vector products (second-order graph) against finite differences
(`gradinit_hvp="finite_difference"`), on the same model, batches and seed, on German->English pairs.

Prints, side by side: seconds per iteration and the peak memory each adds to the model's (CUDA: allocated; CPU:
RSS, as `overhead.py` measures it), next to a training step's on the same model and batches; constraint fraction,
the largest and mean |Δα| between the two searches' final scales, and the validation loss of the model each search
leaves.

    python benchmarks/hvp_search.py --data_dir ../shared/data/ding-de-en --iters 200
    python benchmarks/hvp_search.py --device cuda --layers 6 --d_model 512 --batch_size 200 --iters 200   # IWSLT size
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
from overhead import _peak_rss_bytes, _release_free_heap, _reset_peak_rss, _rss_bytes  # noqa: E402
from lab_cell import batch_order, load_data, loss_of, make_collate, make_model, parse_args, validation_loss  # noqa: E402

from hf_gradinit import GradInitArguments, gradinit  # noqa: E402


def _synchronize(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def _reset_peak(device):
    """Memory in use now (the model and what exists beside it): the base that peak memory is counted from. CUDA:
    allocated memory; CPU: the process's RSS, with its peak reset (Linux, as in `overhead.py`)."""
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated()
    _release_free_heap()
    _reset_peak_rss()
    return _rss_bytes()


def _peak_added_mb(device, base):
    peak = torch.cuda.max_memory_allocated() if str(device).startswith("cuda") else _peak_rss_bytes()
    return (peak - base) / 2**20


def training_step_cost(args, tokenizer, train, order, collate):
    """Seconds per training step (collation, forward, backward, AdamW step, as the lab's training loop did) and the
    peak memory it adds to the model's, on the same batches the searches use."""
    model = make_model(args, tokenizer)
    model.train()
    base = _reset_peak(args.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-9, betas=(0.9, 0.98), weight_decay=args.weight_decay)
    steps = order[: min(len(order), 3 + 30)]
    for i, idx in enumerate(steps):
        if i == 3:  # after warm-up (allocator, kernels)
            _synchronize(args.device)
            start = time.time()
        batch = {k: v.to(args.device) for k, v in collate([train[j] for j in idx]).items()}
        loss = loss_of(model, batch, args.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    _synchronize(args.device)
    return (time.time() - start) / (len(steps) - 3), _peak_added_mb(args.device, base)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    iters = 200
    if "--iters" in argv:
        i = argv.index("--iters")
        iters = int(argv[i + 1])
        del argv[i : i + 2]
    ways = ["exact", "finite_difference"]
    if (
        "--ways" in argv
    ):  # e.g. "--ways exact exact": the run-to-run spread of one way (GPU kernels are not deterministic)
        i = argv.index("--ways")
        j = next((k for k in range(i + 1, len(argv)) if argv[k].startswith("--")), len(argv))
        ways = argv[i + 1 : j]
        del argv[i:j]
        if not ways or set(ways) - {"exact", "finite_difference"}:
            raise SystemExit(f"--ways takes 'exact' and/or 'finite_difference', got {ways}")
    args = parse_args(argv, description=__doc__)
    if args.threads:
        torch.set_num_threads(args.threads)
    tokenizer, train, val = load_data(args)
    collate = make_collate(tokenizer)
    to_device = lambda b: {k: v.to(args.device) for k, v in b.items()}  # noqa: E731

    val_batches = [to_device(collate(val[i : i + 64])) for i in range(0, len(val), 64)]
    order = batch_order(len(train), args.gradinit_batch_size or args.batch_size, max(iters, 4), args.seed + 1)
    train_seconds, train_memory = training_step_cost(args, tokenizer, train, order, collate)
    print(f"training step: {train_seconds:.3f} s", flush=True)
    runs = {}
    for number, hvp in enumerate(ways, start=1):
        label = hvp if hvp not in ways[: number - 1] else f"{hvp} ({number})"
        model = make_model(args, tokenizer)
        gi_args = GradInitArguments(
            gradinit_iters=iters,
            gradinit_lr=args.gradinit_lr,
            gradinit_eta=1e-3 if args.gradinit_eta is None else args.gradinit_eta,  # the η §1b measured with
            gradinit_gamma=args.gradinit_gamma,
            gradinit_max_scale=args.gradinit_max_scale,
            gradinit_beta2=args.gradinit_beta2,
            gradinit_hvp=hvp,
        )
        base = _reset_peak(args.device)
        start = time.time()
        result = gradinit(
            model,
            (collate([train[i] for i in idx]) for idx in order[:iters]),
            gi_args,
            loss_fn=lambda m, b: loss_of(m, b, args.label_smoothing),
            progress_bar=False,
        )
        _synchronize(args.device)
        seconds = time.time() - start
        runs[label] = {
            "seconds_per_iteration": seconds / result.iterations,
            "peak_memory_added_mb": _peak_added_mb(args.device, base),
            "constraint_fraction": result.constraint_fraction,
            "validation_loss": validation_loss(model, val_batches),
            "scales": result.scales,
        }
        print(f"{label}: {seconds:.0f} s, constraint {100 * result.constraint_fraction:.0f}%", flush=True)
    print(
        f"\n{args.model} {args.layers}+{args.layers} layers, d {args.d_model}, init {args.init}; {iters} iterations "
        "of "
        f"{args.gradinit_batch_size or args.batch_size} pairs; scale lr {args.gradinit_lr:g}, γ "
        f"{args.gradinit_gamma:g}; "
        f"{args.device}; a training step {train_seconds:.3f} s, {train_memory:.0f} MB added"
    )
    print(
        "| Hessian-vector products | s / iteration | iteration / train step | peak memory / train step "
        "| constraint fraction | validation loss after the search |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for label, r in runs.items():
        memory = f"{r['peak_memory_added_mb'] / train_memory:.2f}"
        print(
            f"| {label} | {r['seconds_per_iteration']:.3f} | {r['seconds_per_iteration'] / train_seconds:.2f} | "
            f"{memory} | "
            f"{r['constraint_fraction']:.2f} | {r['validation_loss']:.4f} |"
        )
    first, *others = runs
    max_abs_diff = {}
    for other in others:
        a, b = runs[first]["scales"], runs[other]["scales"]
        diffs = sorted(abs(a[n] - b[n]) for n in a)
        max_abs_diff[other] = diffs[-1]
        print(
            f"\nfinal scales, {first} against {other}: max |Δα| = {diffs[-1]:.2e}, mean "
            f"{sum(diffs) / len(diffs):.2e}, "
            f"median {diffs[len(diffs) // 2]:.2e} over {len(diffs)} tensors; the largest:"
        )
        for name in sorted(a, key=lambda n: -abs(a[n] - b[n]))[:6]:
            print(f"  {name}: {a[name]:.4f} {first}, {b[name]:.4f} {other}")
        # The attention's key biases add one constant to all logits of a query, which softmax ignores: their
        # α-gradient is rounding noise either way, and Adam on α turns noise into full steps.
        rest = sorted(abs(a[n] - b[n]) for n in a if not n.endswith("k_proj.bias"))
        if rest and len(rest) < len(diffs):
            print(
                f"  without the {len(diffs) - len(rest)} key biases (no effect on the loss): max |Δα| = "
                f"{rest[-1]:.2e}, "
                f"mean {sum(rest) / len(rest):.2e}"
            )
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "hvp_search.json"), "w") as f:
        json.dump(
            {
                "args": vars(args),
                "iters": iters,
                "train_step": {"seconds": train_seconds, "peak_memory_added_mb": train_memory},
                "runs": runs,
                "max_abs_diff": max_abs_diff,
            },
            f,
            indent=2,
        )
    return runs


if __name__ == "__main__":
    main()
