#!/usr/bin/env python
"""How close is the finite-difference α-gradient to the exact one, and what makes it so?

One constraint step (and one SGD objective step) of the search on fairseq's Transformer at its initialization, on
one batch of German->English pairs, in float32 and float64: the α-gradient from `gradinit_hvp="finite_difference"`
against `gradinit_hvp="exact"`, with each of the two details of the finite difference switched off in turn:

    as shipped            the ReLU pattern held between the two passes, ε from the weights' and the loss's rule
    loss rule off         ε from the weights' rule alone, √ϵ·(1 + ‖θ‖)/‖v‖
    pattern off           the pass at θ + εv computes its own ReLU pattern
    both off

Prints the relative error ‖Δ‖/‖exact‖ of the whole α-gradient vector, the median relative error per scale, and
how many scales get the wrong sign.

    python benchmarks/hvp_accuracy.py --data_dir ../shared/data/ding-de-en --layers 3
    python benchmarks/hvp_accuracy.py --tiny           # smoke test
"""

from __future__ import annotations

import contextlib
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from lab_cell import load_data, loss_of, make_collate, make_model, parse_args

from hf_gradinit import GradInitArguments, GradInitSearch
from hf_gradinit.activation_pattern import ActivationPattern
from hf_gradinit.search_mode import search_mode

VARIANTS = {
    "as shipped": (True, True),
    "loss rule off": (True, False),
    "pattern off": (False, True),
    "both off": (False, False),
}


@contextlib.contextmanager
def finite_difference_variant(pattern: bool, loss_rule: bool):
    """Switch the pattern replay and the loss's ε rule off by patching the two places that use them."""
    replaying, hvp = ActivationPattern.replaying, GradInitSearch._hessian_vector_product
    if not pattern:
        ActivationPattern.replaying = lambda self: contextlib.nullcontext()
    if not loss_rule:
        GradInitSearch._hessian_vector_product = lambda self, batch, g, v, loss, slope: hvp(
            self, batch, g, v, loss, 0.0
        )
    try:
        yield
    finally:
        ActivationPattern.replaying, GradInitSearch._hessian_vector_product = replaying, hvp


def alpha_gradient(model, batch, loss_fn, alg, branch, hvp):
    gamma = 1e-9 if branch == "constraint" else 1e30
    with search_mode(model):
        search = GradInitSearch(
            model, GradInitArguments(gradinit_alg=alg, gradinit_gamma=gamma, gradinit_hvp=hvp), loss_fn
        )
        record, d_alpha = search.alpha_gradient(batch)
        search.write_parameters()
    assert record["constraint"] == (branch == "constraint")
    return d_alpha


def main(argv=None):
    args = parse_args(argv, description=__doc__)
    if args.threads:
        torch.set_num_threads(args.threads)
    tokenizer, train, _ = load_data(args)
    batch = {k: v.to(args.device) for k, v in make_collate(tokenizer)(train[: args.batch_size]).items()}
    loss_fn = lambda m, b: loss_of(m, b, args.label_smoothing)  # noqa: E731
    print(
        f"{args.model} {args.layers}+{args.layers} layers, d {args.d_model}, init {args.init}; one batch of "
        f"{args.batch_size} pairs; {args.device}"
    )
    print("| step | dtype | finite difference | relative error | median error per scale | wrong signs |")
    print("|---|---|---|---:|---:|---:|")
    rows = []
    for alg, branch in (("adam", "constraint"), ("sgd", "objective")):
        for dtype in (torch.float32, torch.float64):
            model = make_model(args, tokenizer).to(dtype)
            exact = alpha_gradient(model, batch, loss_fn, alg, branch, "exact")
            for name, switches in VARIANTS.items():
                with finite_difference_variant(*switches):
                    approx = alpha_gradient(model, batch, loss_fn, alg, branch, "finite_difference")
                rel = float((approx - exact).norm() / exact.norm())
                per_scale = float(((approx - exact).abs() / exact.abs()).median())
                flips = int((approx * exact < 0).sum())
                rows.append({"step": f"{alg} {branch}", "dtype": str(dtype), "variant": name, "relative_error": rel})
                print(
                    f"| {alg} {branch} | {str(dtype).split('.')[-1]} | {name} | {rel:.2e} | {per_scale:.2e} | "
                    f"{flips} of {len(exact)} |",
                    flush=True,
                )
    return rows


if __name__ == "__main__":
    main()
