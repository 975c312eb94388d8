#!/usr/bin/env python
"""Time the GradInit search with 1 and with 2 processes on the same global batch, side by side.

The driver launches `torchrun --nproc_per_node N` of this same file (as a worker) for N = 1 and 2, each running
`GradInitTrainer.gradinit()` on a BART of --layers/--d_model over synthetic pairs, with per-device batch
global_batch/N, and prints the search times and their ratio. On a CPU machine the processes share its cores, so
the ratio says little about GPUs; it shows the cost of the all-reduces.

    python benchmarks/distributed.py                      # CPU (gloo)
    python benchmarks/distributed.py --global_batch 96 --iters 20
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--global_batch", type=int, default=48)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--d_model", type=int, default=256)
    p.add_argument("--length", type=int, default=24)
    p.add_argument("--repeats", type=int, default=2, help="launches per process count; the fastest is kept")
    p.add_argument("--gradinit_hvp", default="finite_difference", choices=["finite_difference", "exact"])
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def worker(args):
    import torch
    from datasets import Dataset
    from transformers import BartConfig, BartForConditionalGeneration, default_data_collator

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from hf_gradinit import GradInitConfig, GradInitTrainer

    world = int(os.environ.get("WORLD_SIZE", "1"))
    torch.manual_seed(0)
    config = BartConfig(
        vocab_size=8000,
        d_model=args.d_model,
        encoder_layers=args.layers,
        decoder_layers=args.layers,
        encoder_ffn_dim=4 * args.d_model,
        decoder_ffn_dim=4 * args.d_model,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        max_position_embeddings=args.length + 2,
    )
    model = BartForConditionalGeneration(config)
    g = torch.Generator().manual_seed(0)
    n = args.global_batch * 4
    data = Dataset.from_dict(
        {
            "input_ids": torch.randint(4, 8000, (n, args.length), generator=g).tolist(),
            "attention_mask": [[1] * args.length] * n,
            "labels": torch.randint(4, 8000, (n, args.length), generator=g).tolist(),
        }
    )
    trainer_args = GradInitConfig(
        output_dir=args.out,
        gradinit_iters=args.iters,
        gradinit_hvp=args.gradinit_hvp,
        per_device_train_batch_size=args.global_batch // world,
        report_to="none",
        use_cpu=not torch.cuda.is_available(),
        save_strategy="no",
        disable_tqdm=True,
    )
    trainer = GradInitTrainer(model=model, args=trainer_args, train_dataset=data, data_collator=default_data_collator)
    trainer.gradinit()
    runtime = next(r["gradinit_runtime"] for r in trainer.state.log_history if "gradinit_runtime" in r)
    if trainer.is_world_process_zero():
        with open(os.path.join(args.out, "time.json"), "w") as f:
            json.dump({"processes": world, "seconds": runtime}, f)
    end_distributed_process()


def end_distributed_process() -> None:
    """End a torchrun worker once its files are written (this benchmark's, and the test suite's scripts): all
    processes meet, the gloo process group is destroyed, and the process exits without the interpreter's teardown.
    destroy_process_group() alone is not enough: the Trainer's DDP wrapper still holds the group, and destroying it
    during interpreter shutdown, while gloo's threads are still joinable, aborts the process ("terminate called
    without an active exception", SIGABRT: seen in 1 of 7 launches on a loaded two-core machine even after
    destroy_process_group())."""
    import torch.distributed

    if torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def launch(processes, args):
    best = None
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as out:
            cmd = [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--standalone",
                "--nproc_per_node",
                str(processes),
                os.path.abspath(__file__),
                "--worker",
                "--out",
                out,
                "--global_batch",
                str(args.global_batch),
                "--iters",
                str(args.iters),
                "--layers",
                str(args.layers),
                "--d_model",
                str(args.d_model),
                "--length",
                str(args.length),
                "--gradinit_hvp",
                args.gradinit_hvp,
            ]
            env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 2) // processes))}
            subprocess.run(cmd, check=True, env=env, capture_output=True, text=True, timeout=1800)
            with open(os.path.join(out, "time.json")) as f:
                seconds = json.load(f)["seconds"]
        best = seconds if best is None else min(best, seconds)
    return best


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    if args.global_batch % 2:
        raise SystemExit("--global_batch must be even (it is split over 2 processes)")
    one, two = launch(1, args), launch(2, args)
    print(
        f"BART {args.layers}+{args.layers} d {args.d_model}, global batch {args.global_batch}x{args.length}, "
        f"{args.iters} search iterations, "
        f"gradinit_hvp={args.gradinit_hvp}"
    )
    print("| processes | search time (s) | time / 1 process |")
    print("|---:|---:|---:|")
    print(f"| 1 | {one:.2f} | 1.00 |")
    print(f"| 2 | {two:.2f} | {two / one:.2f} |")
    return {"1": one, "2": two}


if __name__ == "__main__":
    main()
