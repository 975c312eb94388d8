"""Run by tests/test_distributed.py under `torchrun --nproc_per_node 2`: GradInitTrainer.train() on CPU (gloo).

One launch runs every configuration in GRADINIT_CONFIGS (a JSON object: folder name → settings), one after the
other, each with a new model and Trainer. Each process writes, under `<out>/<folder>/`, the batches it searched on,
its parameters right after the search, and the result.
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
        self.out = out  # this configuration's folder

    def _gradinit_batches(self):
        seen = []
        for batch in super()._gradinit_batches():
            seen.append({k: v.clone() for k, v in batch.items()})
            torch.save(seen, os.path.join(self.out, f"batches-{rank}.pt"))
            yield batch

    def gradinit(self):
        result = super().gradinit()
        state = {n: p.detach().clone() for n, p in self.model.named_parameters()}
        torch.save(
            {"params": state, "scales": result.scales, "history": result.history},
            os.path.join(self.out, f"rank-{rank}.pt"),
        )
        return result


def dataset(tokenizer, n=36):
    # Equal lengths and no padding: every row carries the same number of tokens, so a mean over each process's
    # rows, averaged over processes, equals the mean over all rows.
    g = torch.Generator().manual_seed(0)
    src = torch.randint(5, 40, (n, 6), generator=g).tolist()
    tgt = torch.randint(5, 40, (n, 5), generator=g).tolist()
    return Dataset.from_dict({"input_ids": src, "attention_mask": [[1] * 6] * n, "labels": tgt})


def run(out, config):
    model = tiny_bart(seed=0, dtype=getattr(torch, config["dtype"]), activation_function=config["activation"])
    args = GradInitConfig(
        output_dir=os.path.join(out, "run"),
        gradinit_iters=config["iters"],
        gradinit_lr=5e-2,
        gradinit_eta=1e-3,  # the η the tolerances of test_distributed.py were measured with
        gradinit_gamma=config["gamma"],
        gradinit_alg=config["alg"],
        gradinit_hvp=config["hvp"],
        gradinit_batch_size=3,
        per_device_train_batch_size=3,
        **TWO_CPU_STEPS,
    )
    trainer = RecordingTrainer(
        model=model, args=args, train_dataset=dataset(tok), data_collator=collator(tok, model), out=out
    )
    trainer.train()


tok = tiny_tokenizer()
run_each_configuration(sys.argv[1], run)

end_distributed_process()
