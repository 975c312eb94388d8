"""Training parity: the package's Trainer replayed on the authors' training batches, update by update.

runs.sh with `DROPOUT=0` trains the authors' arm (A or B) with dropout off and leaves `update_trace.json`
(peer_train.py): per update the sentence ids of fairseq's batch, its learning rate and its label-smoothed loss in
nats a token, unrounded. Here the package's `GradInitTrainer` (no search; tokenizer_runs.sh's training flags, the
arm's schedule) trains the same initial weights, dropout off too, on those batches in that order, and the two
losses are set side by side: with dropout off both sides are deterministic, so the losses agree while the two
training paths compute the same thing, and the first update where they part names where they do not.

It also sets the package's own first batches (TokenBudgetBatchSampler, the seed's order) beside fairseq's: rows and
target tokens a batch, which decide how much text an update sees.

With `--dropout on` (a run of runs.sh at its default dropout, 1,200 updates) the replay keeps dropout on and
evaluates every 100 updates on the cell's validation sentences, as `compare` does: its endpoint (the mean per-token
NLL at 1,000, 1,100 and 1,200) is the package's training on fairseq's batches, to set beside the authors' endpoint
and the package's own (its batches).

    DROPOUT=0 MAX_UPDATE=100 OUT=runs/peer/parity RESULTS=runs/peer/parity/results CODE_COMMIT=<c> \\
        LANE1="B:101" bash benchmarks/peer/runs.sh
    python benchmarks/peer/training_parity.py runs/peer/parity/B-101 --seed 101 --arm B \\
        --out benchmarks/results/peer/seed101/training_parity_B.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

import numpy as np
from torch.utils.data import DataLoader
from transformers import AutoTokenizer, DataCollatorForSeq2Seq

sys.path[:0] = [
    os.path.dirname(os.path.abspath(__file__)),
    os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."),
]
from export_cell import CELL_FLAGS, cell_example, cell_model  # noqa: E402
from model_parity import use_fairseq_positions_  # noqa: E402
from search_parity import SEARCH_FLAGS  # noqa: E402
from tokenizer_report import ENDPOINT_STEPS  # noqa: E402

from hf_gradinit import GradInitTrainer  # noqa: E402
from hf_gradinit.token_batches import TokenBudgetBatchSampler  # noqa: E402
from hf_gradinit.translation import parse_translation_arguments  # noqa: E402

PEER = "runs/peer"
SCHEDULES = {  # tokenizer_runs.sh's arms none (A) and warmup (B)
    "A": ["--lr_scheduler_type", "constant"],
    "B": ["--lr_scheduler_type", "constant_with_warmup", "--warmup_steps", "300"],
}
DROPOUT_ON = "dropout=0.1,attention_dropout=0.1,activation_dropout=0.1"


class ReplayTrainer(GradInitTrainer):
    """The package's trainer fed fixed batches in a fixed order; keeps every update's loss and learning rate."""

    def __init__(self, *args, replay: list[dict], **kwargs):
        super().__init__(*args, **kwargs)
        self.replay, self.updates = replay, []

    def get_train_dataloader(self):
        return DataLoader(self.replay, batch_size=None, collate_fn=lambda batch: batch)

    def compute_loss(self, model, inputs, *args, **kwargs):
        out = super().compute_loss(model, inputs, *args, **kwargs)
        loss = out[0] if isinstance(out, tuple) else out
        self.updates.append({"loss": loss.item(), "lr": self.optimizer.param_groups[0]["lr"]})
        return out


def batch_shape(ids: list[int], lengths: np.ndarray) -> tuple[int, int]:
    return len(ids), int(lengths[ids].sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", help="the authors' run folder (runs.sh with DROPOUT=0), with update_trace.json")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--arm", choices=sorted(SCHEDULES), required=True)
    parser.add_argument("--positions", choices=("package", "fairseq"), default="fairseq")
    parser.add_argument(
        "--dropout", choices=("off", "on"), default="off",
        help="off: update-by-update losses (a DROPOUT=0 run); on: the cell's dropout, evaluated every 100 updates",
    )  # fmt: skip
    parser.add_argument("--out", required=True)
    options = parser.parse_args()
    theirs = json.load(open(os.path.join(options.run, "update_trace.json")))["updates"]
    cell = f"{PEER}/cell"
    tokenizer = AutoTokenizer.from_pretrained(f"{cell}/tokenizer")
    evaluate = options.dropout == "on"
    flags = CELL_FLAGS if evaluate else [f.replace(DROPOUT_ON, DROPOUT_ON.replace("0.1", "0.0")) for f in CELL_FLAGS]
    if not evaluate and flags == CELL_FLAGS:
        raise SystemExit(f"CELL_FLAGS no longer hold {DROPOUT_ON!r}: dropout could not be turned off")
    model_args, data_args, args = parse_translation_arguments(
        flags + SEARCH_FLAGS + SCHEDULES[options.arm] + [
            "--gradinit", "false", "--max_steps", str(len(theirs)), "--logging_steps", "1" if not evaluate else "50",
            "--output_dir", f"{PEER}/training-parity", "--save_strategy", "no", "--seed", str(options.seed),
            "--eval_strategy", "steps" if evaluate else "no", "--eval_steps", "100", "--per_device_eval_batch_size",
            "64", "--stability_monitor", "false",
        ]
    )  # fmt: skip
    model = cell_model(model_args, data_args, tokenizer, options.seed, cell)
    if options.positions == "fairseq":
        use_fairseq_positions_(model)
    source = open(f"{cell}/text/train.de", encoding="utf-8").read().splitlines()
    target = open(f"{cell}/text/train.en", encoding="utf-8").read().splitlines()
    examples = {i: cell_example(tokenizer, source[i], target[i]) for u in theirs for i in u["ids"]}
    collate = DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100)
    replay = [collate([examples[i] for i in u["ids"]]) for u in theirs]
    valid = zip(*(open(f"{cell}/text/valid.{lang}", encoding="utf-8").read().splitlines() for lang in ("de", "en")))
    trainer = ReplayTrainer(
        model,
        args,
        train_dataset=list(examples.values()),
        eval_dataset=[cell_example(tokenizer, s, t) for s, t in valid] if evaluate else None,
        data_collator=collate,
        replay=replay,
    )
    trainer.train()
    ours = trainer.updates
    evaluations = [
        {"step": e["step"], "eval_nll": e["eval_nll"]} for e in trainer.state.log_history if "eval_nll" in e
    ]
    ends = [e["eval_nll"] for e in evaluations if e["step"] in ENDPOINT_STEPS]

    # The package's own batches of this seed, beside fairseq's: rows and target tokens (with </s>) a batch.
    label_lengths = np.array([len(t.split()) + 1 for t in target])
    sizes = np.stack([np.array([len(s.split()) + 1 for s in source]), label_lengths], axis=1)
    sampler = TokenBudgetBatchSampler(sizes, args.max_tokens, seed=options.seed)
    package_batches = [b for _, b in zip(range(len(theirs)), iter(sampler))]

    def shapes(batches):
        rows, tokens = zip(*(batch_shape(b, label_lengths) for b in batches))
        return {"rows": statistics.mean(rows), "target_tokens": statistics.mean(tokens), "batches": len(batches)}

    per_update = [
        {"update": u["update"], "fairseq_loss": u["loss"], "package_loss": o["loss"], "fairseq_lr": u["lr"],
         "package_lr": o["lr"]}
        for u, o in zip(theirs, ours)
    ]  # fmt: skip
    gaps = [abs(p["fairseq_loss"] - p["package_loss"]) for p in per_update]
    summary = {
        "seed": options.seed,
        "arm": options.arm,
        "positions": options.positions,
        "dropout": options.dropout,
        "updates": len(per_update),
        "evaluations": evaluations,
        "endpoint": sum(ends) / len(ends) if len(ends) == len(ENDPOINT_STEPS) else None,
        "first_update_apart_1e-3": next((p["update"] for p, g in zip(per_update, gaps) if g > 1e-3), None),
        "largest_loss_gap": max(gaps),
        "batches": {
            "fairseq": shapes([u["ids"] for u in theirs]),
            "package": shapes(package_batches),
            "package_epoch_batches": len(sampler),
        },
        "per_update": per_update,
    }
    os.makedirs(os.path.dirname(options.out) or ".", exist_ok=True)
    with open(options.out, "w") as f:
        json.dump(summary, f, indent=1)
    for i in sorted({1, 2, 3, 5, 10, 20, 50, 100, 200, len(per_update)}):
        if i <= len(per_update):
            p = per_update[i - 1]
            print(
                f"update {i}: loss fairseq {p['fairseq_loss']:.6f} package {p['package_loss']:.6f}; "
                f"lr fairseq {p['fairseq_lr']:.3g} package {p['package_lr']:.3g}"
            )
    print(f"largest |Δloss| {summary['largest_loss_gap']:.2e}; first above 1e-3: {summary['first_update_apart_1e-3']}")
    print(f"batches: {summary['batches']}")
    if evaluate:
        print(f"the package on fairseq's batches, dropout on: endpoint {summary['endpoint']}")


if __name__ == "__main__":
    main()
