"""The authors' `gradinit/train.py`, run with two additions a side-by-side needs. Run with the peer venv's Python
from the fork's `fairseq/` folder, with train.py's own flags:

    --peer-init FILE   load these weights (a fairseq checkpoint's "model", e.g. export_cell.py's init/seed101.pt)
                       into the model as soon as it is built, so that the search, or the training, starts from
                       the package's initial weights (train.py's --restore-file is loaded after the search and
                       would overwrite it)
    --trace-updates FILE
                       write, per training update, the sentence ids of its batch, its target tokens, the learning
                       rate it ran with and its label-smoothed loss in nats a token, unrounded (training_parity.py
                       replays them into the package)

and the search runs with PyTorch's math attention kernel: the fused CPU kernels of torch 2 have no double
backward, which the search's second-order step needs (training keeps the default kernels); its time is printed.
"""

import json
import os
import sys
import time

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel


def _pop(argv: list[str], flag: str) -> str | None:
    if flag not in argv:
        return None
    i = argv.index(flag)
    value = argv[i + 1]
    del argv[i : i + 2]
    return value


def load_peer_init(model, path: str) -> None:
    """Load a fairseq checkpoint's "model" into `model`; only the buffers fairseq rebuilds (positions, version
    numbers) may be missing."""
    missing, unexpected = model.load_state_dict(torch.load(path)["model"], strict=False)
    missing = [n for n in missing if not n.endswith(("_float_tensor", ".version"))]
    if missing or unexpected:
        raise ValueError(f"--peer-init {path}: missing {missing[:5]}, unexpected {unexpected[:5]}")


def trace_updates(path: str) -> None:
    """Record every training update of fairseq's Trainer into `path` (JSON, rewritten every 100 updates, as often
    as runs.sh's checkpoints; a resumed run keeps the records before its checkpoint and redoes the rest)."""
    import fairseq.tasks.translation as translation
    from fairseq.trainer import Trainer

    records = json.load(open(path))["updates"] if os.path.exists(path) else []
    current = {}
    train_step, task_train_step = Trainer.train_step, translation.TranslationTask.train_step

    def task_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        loss, sample_size, log = task_train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad)
        if current:  # a training update's batch, not the search's
            current["loss"] = loss.item() / sample_size
            current["nll_loss"] = float(log["nll_loss"]) / sample_size
        return loss, sample_size, log

    def step(self, samples, raise_oom=False):
        (sample,) = samples  # --update-freq 1
        current.update(
            update=self.get_num_updates() + 1,
            lr=self.get_lr(),
            ids=sample["id"].tolist(),
            ntokens=int(sample["ntokens"]),
        )
        out = train_step(self, samples, raise_oom)
        while records and records[-1]["update"] >= current["update"]:
            records.pop()  # done before a resume from an earlier checkpoint
        records.append(dict(current))
        current.clear()
        if len(records) % 100 == 0 or len(records) < 100:
            with open(path, "w") as f:
                json.dump({"nats": True, "updates": records}, f)
        return out

    translation.TranslationTask.train_step = task_step
    Trainer.train_step = step


def main() -> None:
    init = _pop(sys.argv, "--peer-init")
    trace = _pop(sys.argv, "--trace-updates")
    sys.path.insert(0, os.path.join(os.getcwd(), "gradinit"))
    sys.argv[0] = "gradinit/train.py"
    import fairseq.tasks.translation as translation
    import utils.gradinit_utils as search  # the module train.py imports gradinit_proc from (--user-dir)

    build_model = translation.TranslationTask.build_model

    def build_model_with_init(self, cfg, *args, **kwargs):
        model = build_model(self, cfg, *args, **kwargs)
        if init is not None:
            load_peer_init(model, init)
            print(f"peer_train: initial weights from {init}", flush=True)
        return model

    translation.TranslationTask.build_model = build_model_with_init
    if trace is not None:
        trace_updates(trace)
    gradinit_proc = search.gradinit_proc

    def gradinit_proc_math_attention(trainer, cfg):
        start = time.perf_counter()
        with sdpa_kernel(SDPBackend.MATH):
            gradinit_proc(trainer, cfg)
        print(f"peer_train: search took {time.perf_counter() - start:.1f} s", flush=True)

    search.gradinit_proc = gradinit_proc_math_attention

    import train  # gradinit/train.py

    train.cli_main(train.add_gradinit_args)


if __name__ == "__main__":
    main()
