"""Run by tests/test_distributed.py under `torchrun --nproc_per_node 2`: a GradInit search and two training steps on
token-budget batches (each process its own batches, of different token counts), on CPU (gloo).

One launch runs every configuration in GRADINIT_CONFIGS (a JSON object: folder name → {"alg", "gamma"}), one
after the other, each with a new model and Trainer. Each process writes, under `<out>/<folder>/`, the batches it
searched and trained on, and its parameters after the search and after training.
"""

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from helpers import (  # noqa: E402
    TWO_CPU_STEPS,
    collator,
    end_distributed_process,
    run_each_configuration,
    tiny_bart,
    tiny_tokenizer,
)

from datasets import Dataset  # noqa: E402

from hf_gradinit import GradInitConfig, GradInitTrainer  # noqa: E402

rank = int(os.environ.get("RANK", "0"))


class RecordingTrainer(GradInitTrainer):
    def __init__(self, *args, out, **kwargs):
        super().__init__(*args, **kwargs)
        self.out, self.search_batches, self.train_batches = out, [], []

    def save(self, name, value):
        torch.save(value, os.path.join(self.out, f"{name}-{rank}.pt"))

    def _gradinit_batches(self):
        for batch in super()._gradinit_batches():
            self.search_batches.append({k: v.clone() for k, v in batch.items()})
            yield batch

    def gradinit(self):
        result = super().gradinit()
        self.save(
            "search",
            {
                "batches": self.search_batches[: len(result.history)],
                "params": {n: p.detach().clone() for n, p in self.model.named_parameters()},
                "history": result.history,
            },
        )
        return result

    def training_step(self, model, inputs, num_items_in_batch=None):
        self.train_batches.append({k: v.clone() for k, v in inputs.items()})
        return super().training_step(model, inputs, num_items_in_batch)


def dataset(n=40):
    # Lengths from 2 to 12 tokens: token-budget batches differ in rows and in tokens from process to process.
    g = torch.Generator().manual_seed(1)
    src_len = torch.randint(2, 13, (n,), generator=g).tolist()
    tgt_len = torch.randint(2, 11, (n,), generator=g).tolist()
    src = [torch.randint(5, 40, (k,), generator=g).tolist() for k in src_len]
    tgt = [torch.randint(5, 40, (k,), generator=g).tolist() for k in tgt_len]
    return Dataset.from_dict({"input_ids": src, "attention_mask": [[1] * k for k in src_len], "labels": tgt})


def run(out, config):
    model = tiny_bart(seed=0, dtype=torch.float64, dropout=0.0, activation_function="relu")
    args = GradInitConfig(
        output_dir=os.path.join(out, "run"),
        max_tokens=40,
        gradinit_max_tokens=60,
        gradinit_iters=6,
        gradinit_lr=5e-2,
        gradinit_eta=1e-3,  # set: the SGD training lr below (0.5) is no training regime for the search's η
        gradinit_gamma=config["gamma"],
        gradinit_alg=config["alg"],
        label_smoothing_factor=0.1,
        optim="sgd",
        learning_rate=0.5,
        lr_scheduler_type="constant",
        weight_decay=0.0,
        max_grad_norm=0.0,
        **TWO_CPU_STEPS,
    )
    trainer = RecordingTrainer(
        model=model, args=args, train_dataset=dataset(), data_collator=collator(tok, model), out=out
    )
    trainer.train()
    trainer.save(
        "train",
        {
            "batches": trainer.train_batches,
            "params": {n: p.detach().clone() for n, p in trainer.model.named_parameters()},
        },
    )


tok = tiny_tokenizer()
run_each_configuration(sys.argv[1], run)

end_distributed_process()
