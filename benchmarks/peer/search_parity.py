"""Search parity: the package's search replayed on the authors' batches, from the same initial weights.

The authors' search (runs.sh's arm C) leaves `gradinit_trace.json`: per iteration the branch it took, ‖g‖₁ and
the sentence ids of its batch, in its order. Here `GradInitTrainer.gradinit()` runs with the package's 0.2
defaults and tokenizer_runs.sh's flags (780 iterations, scale lr 2.5e-3, β2 0.98, η = 2 × lr = 2e-3, γ 1000,
scales in [0.01, 100]) on those batches in that order, from the seed's initial weights (the fingerprint `compare`
recorded). Each side splits a batch into S̃ and S its own way (the authors: the first 2⌊n/3⌋ and the last
n − ⌊n/3⌋ rows; the package: the first and the last ⌈2n/3⌉), so at most two rows differ.

    python benchmarks/peer/search_parity.py runs/peer/runs/C-101 --seed 101 \\
        --out benchmarks/results/peer/seed101/search_parity.json

`--positions fairseq` gives the package's model fairseq's position tables (model_parity.py's one difference), so
that what is left is the two sides' S̃/S split and label smoothing.

Prints the first iteration whose branch differs, ‖g‖₁ side by side at chosen iterations and every α that
differs by more than 0.01; writes all of it to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch
from transformers import AutoTokenizer, DataCollatorForSeq2Seq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_cell import CELL_FLAGS, cell_example, cell_model  # noqa: E402
from model_parity import use_fairseq_positions_  # noqa: E402

from hf_gradinit import GradInitTrainer  # noqa: E402
from hf_gradinit.parameters import trainable_parameters  # noqa: E402
from hf_gradinit.translation import parse_translation_arguments  # noqa: E402

PEER = "runs/peer"
# tokenizer_runs.sh's training and search flags (the rest at the package's defaults).
SEARCH_FLAGS = [
    "--learning_rate", "1e-3", "--adam_beta2", "0.98", "--weight_decay", "1e-4", "--label_smoothing_factor", "0.1",
    "--max_grad_norm", "0", "--gradinit_iters", "780", "--gradinit_max_tokens", "2000", "--max_tokens", "1600",
    "--disable_tqdm", "true",
]  # fmt: skip


class ReplayTrainer(GradInitTrainer):
    """The package's trainer, its search fed the authors' batches in their order."""

    def __init__(self, *args, replay: list[dict], **kwargs):
        super().__init__(*args, **kwargs)
        self.replay = replay

    def _gradinit_batches(self):
        yield from self.replay


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", help="the authors' C run folder (with gradinit_trace.json)")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument(
        "--positions",
        choices=("package", "fairseq"),
        default="package",
        help="the package's position tables (Marian's) or fairseq's (model_parity.py's one difference)",
    )
    options = parser.parse_args()
    authors = json.load(open(os.path.join(options.run, "gradinit_trace.json")))
    cell = f"{PEER}/cell"
    tokenizer = AutoTokenizer.from_pretrained(f"{cell}/tokenizer")
    output_dir = f"{PEER}/search-parity-{options.positions}"  # the trainer saves the searched model there
    model_args, data_args, args = parse_translation_arguments(
        CELL_FLAGS + SEARCH_FLAGS + ["--output_dir", output_dir, "--seed", str(options.seed)]
    )
    model = cell_model(model_args, data_args, tokenizer, options.seed, cell)
    if options.positions == "fairseq":
        use_fairseq_positions_(model)
    source = open(f"{cell}/text/train.de", encoding="utf-8").read().splitlines()
    target = open(f"{cell}/text/train.en", encoding="utf-8").read().splitlines()

    def example(i):
        return cell_example(tokenizer, source[i], target[i])

    collate = DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100)
    replay = [collate([example(i) for i in it["ids"]]) for it in authors["iterations"]]
    trainer = ReplayTrainer(model, args, train_dataset=[example(0)], data_collator=collate, replay=replay)
    # The first ‖g‖₁ again, on the authors' own S̃ (their first 2⌊n/3⌋ rows): the two sides' models and losses alone.
    first = replay[0]
    rows = 2 * (len(first["labels"]) // 3)
    model.eval()
    loss = trainer._search_loss(model, {k: v[:rows] for k, v in first.items()})
    grads = torch.autograd.grad(loss, [p for _, p in trainable_parameters(model)])
    first_gnorm_on_their_split = float(sum(g.abs().sum() for g in grads))
    result = trainer.gradinit()
    records = [{"constraint": bool(r["constraint"]), "gnorm": float(r["grad_norm"])} for r in result.history]
    ours_alpha = {name: float(a) for name, a in result.scales.items()}
    theirs = authors["iterations"]
    first_difference = next(
        (i + 1 for i, (a, b) in enumerate(zip(theirs, records)) if (a["branch"] == "constraint") != b["constraint"]),
        None,
    )
    alphas = {}
    for name, alpha in authors["alphas"].items():
        package_name = "lm_head.weight" if name == "decoder.output_projection.weight" else "model." + name
        if package_name in ours_alpha:
            alphas[name] = {"authors": alpha, "package": ours_alpha[package_name]}
    summary = {
        "seed": options.seed,
        "positions": options.positions,
        "iterations": len(records),
        "first_gnorm_on_the_authors_split": {"authors": theirs[0]["gnorm"], "package": first_gnorm_on_their_split},
        "first_branch_difference": first_difference,
        "constraint_fraction": {
            "authors": sum(it["branch"] == "constraint" for it in theirs) / len(theirs),
            "package": sum(r["constraint"] for r in records) / len(records),
        },
        "first_objective": {
            "authors": next((i + 1 for i, it in enumerate(theirs) if it["branch"] == "objective"), None),
            "package": next((i + 1 for i, r in enumerate(records) if not r["constraint"]), None),
        },
        "max_alpha_difference": max(abs(v["authors"] - v["package"]) for v in alphas.values()),
        "alphas": alphas,
        "per_iteration": [
            {
                "authors_branch": a["branch"],
                "authors_gnorm": a["gnorm"],
                "package_constraint": b["constraint"],
                "package_gnorm": b["gnorm"],
            }
            for a, b in zip(theirs, records)
        ],  # fmt: skip
    }
    os.makedirs(os.path.dirname(options.out) or ".", exist_ok=True)
    with open(options.out, "w") as f:
        json.dump(summary, f, indent=1)
    print(
        f"‖g‖₁ at θ⁰ on the authors' S̃ of iteration 1: authors {theirs[0]['gnorm']:.4f}, "
        f"package {first_gnorm_on_their_split:.4f}"
    )
    print(f"first iteration whose branch differs: {first_difference}")
    print(f"constraint fraction {summary['constraint_fraction']}, first objective step {summary['first_objective']}")
    for i in (1, 2, 10, 50, 100, 200, 400, 780):
        if i <= len(records):
            print(f"iteration {i}: ‖g‖₁ authors {theirs[i - 1]['gnorm']:.2f}, package {records[i - 1]['gnorm']:.2f}")
    print(f"largest |Δα| {summary['max_alpha_difference']:.4f} over {len(alphas)} tensors")


if __name__ == "__main__":
    main()
