#!/usr/bin/env python
"""What does a GradInit iteration cost next to a training step? Time and peak memory, side by side.

On one fixed model and one fixed batch, in one process, interleaved, after warm-up, median of --repeats:

    train            a training step: forward, backward, Adam step
    adam             a GradInit iteration, Adam variant, constraint inactive (first-order path)
    adam_constraint  a GradInit iteration whose constraint step is active (second-order graph)
    sgd              a GradInit iteration, SGD variant (second-order graph, Hessian term kept)
    adam_constraint_fd, sgd_fd
                     the same with gradinit_hvp="finite_difference": Hessian-vector products from one more
                     first-order pass, no second-order graph
    adam_reference   the Adam iteration as the paper's public code computes it: g's second-order graph built on
                     every iteration and kept alive through the objective pass

Times and peak memory are printed as ratios to the training step. A real search mixes objective and constraint
iterations: the rows "search at constraint fraction f" give its mean iteration, f·constraint + (1−f)·objective,
and its peak memory, the larger of the two, for both ways of taking Hessian-vector products (--constraint_fraction,
e.g. what `gradinit_constraint_fraction` reported for your search). Peak memory: on CUDA
`torch.cuda.max_memory_allocated` per variant; on CPU the peak RSS of a separate process per variant, minus
that process's RSS once model and batch exist. Both count what the variant adds beyond the model: for the
training step its gradients and Adam state, for the search θ⁰ and g.

    python benchmarks/overhead.py                 # the paper's IWSLT'14 size (6+6 layers, d 512, ffn 1024, vocab 10k)
    python benchmarks/overhead.py --small         # 3+3 layers, d 256: quick on a CPU
    python benchmarks/overhead.py --device cuda --batch_size 200
    python benchmarks/overhead.py --device cuda --max_tokens 4096 --gradinit_max_tokens 6000   # the paper's budgets

With token budgets (padded tokens, as fairseq counts them) the training step takes max_tokens // length rows and
the search gradinit_max_tokens // length rows, so that the ratios say what the paper's search costs next to the
paper's training step.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import ctypes
import gc
import json
import os
import statistics
import subprocess
import sys
import time

import torch
from torch.func import functional_call
from transformers import BartConfig, BartForConditionalGeneration

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from hf_gradinit import GradInitArguments, GradInitSearch, split_batch  # noqa: E402
from hf_gradinit.search_mode import double_backward_attention, search_mode  # noqa: E402

VARIANTS = ["train", "adam", "adam_constraint", "sgd", "adam_reference", "adam_constraint_fd", "sgd_fd"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--small", action="store_true", help="3+3 layers, d 256, ffn 1024, vocab 8k")
    p.add_argument("--tiny", action="store_true", help="1+1 layers, d 32 (smoke test)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--length", type=int, default=30, help="source and target length in tokens")
    p.add_argument("--max_tokens", type=int, default=None, help="training batch of max_tokens // length rows")
    p.add_argument(
        "--gradinit_max_tokens", type=int, default=None, help="search batch of gradinit_max_tokens // length rows"
    )
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=None, help="torch threads on CPU")
    p.add_argument("--json", default=None, help="also write the results here")
    p.add_argument(
        "--constraint_fraction",
        type=float,
        nargs="+",
        default=[0.5, 1.0],
        help="constraint fractions at which to report a whole search's mean iteration",
    )
    p.add_argument(
        "--no_memory",
        action="store_true",
        help="times only: leave out the peak-memory columns, which take one new process per variant",
    )
    p.add_argument("--memory_of", default=None, choices=VARIANTS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.train_rows = args.max_tokens // args.length if args.max_tokens else args.batch_size
    args.search_rows = args.gradinit_max_tokens // args.length if args.gradinit_max_tokens else args.train_rows
    if min(args.train_rows, args.search_rows) < 3:
        p.error("a budget holds fewer than 3 rows of --length tokens")
    return args


def build(args):
    if args.tiny:
        size = dict(d_model=32, layers=1, ffn=64, heads=2, vocab=300)
    elif args.small:
        size = dict(d_model=256, layers=3, ffn=1024, heads=4, vocab=8000)
    else:
        size = dict(d_model=512, layers=6, ffn=1024, heads=4, vocab=10000)
    torch.manual_seed(0)
    config = BartConfig(
        vocab_size=size["vocab"],
        d_model=size["d_model"],
        encoder_layers=size["layers"],
        decoder_layers=size["layers"],
        encoder_ffn_dim=size["ffn"],
        decoder_ffn_dim=size["ffn"],
        encoder_attention_heads=size["heads"],
        decoder_attention_heads=size["heads"],
        max_position_embeddings=max(args.length + 2, 64),
        # No dropout, so that the training step (train mode) and the search (eval mode) compute the same ops.
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        activation_function="relu",
        scale_embedding=True,
    )
    model = BartForConditionalGeneration(config).to(args.device)
    g = torch.Generator().manual_seed(1)
    shape = (max(args.train_rows, args.search_rows), args.length)
    rows = {
        "input_ids": torch.randint(4, size["vocab"], shape, generator=g),
        "labels": torch.randint(4, size["vocab"], shape, generator=g),
    }
    batch = {k: v[: args.train_rows].to(args.device) for k, v in rows.items()}
    search_batch = {k: v[: args.search_rows].to(args.device) for k, v in rows.items()}
    return model, (batch, search_batch), size


def make_variants(model, batches):
    """Each variant as a zero-argument callable doing one step; the model is in the state the variant needs.
    `batches`: the training step's batch and the search's."""
    batch, search_batch = batches
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-9, betas=(0.9, 0.98))

    def train_step():
        model.train()
        loss = model(**batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    train_step.optimizer = optimizer

    def search_step(alg, gamma, expect_constraint, hvp="exact"):
        search = GradInitSearch(
            model, GradInitArguments(gradinit_alg=alg, gradinit_gamma=gamma, gradinit_lr=1e-9, gradinit_hvp=hvp)
        )

        def step():
            search.expect_constraint = expect_constraint
            search.step(search_batch)

        return step

    def reference_step():
        """Paper-code semantics: build g's graph always, take θ' through it, back-propagate the objective."""
        params = dict(model.named_parameters())
        s_tilde, s = split_batch(search_batch)
        with double_backward_attention():
            loss = model(**s_tilde).loss
            g = torch.autograd.grad(loss, list(params.values()), create_graph=True)
        g_norm = torch.stack([gi.abs().sum() for gi in g]).sum()  # kept, as the reference does, for the test
        theta_prime = {n: p - 1e-3 * gi.sign().detach() for (n, p), gi in zip(params.items(), g)}
        objective = functional_call(model, theta_prime, args=(), kwargs=s).loss / 1e-3
        grads = torch.autograd.grad(objective, list(params.values()))
        torch.stack([(gi * p).sum() for gi, p in zip(grads, params.values())]).cpu()
        del g_norm

    return {
        "train": train_step,
        "adam": search_step("adam", 1e30, False),
        "adam_constraint": search_step("adam", 1e-30, True),
        "sgd": search_step("sgd", 1e30, True),
        "adam_reference": reference_step,
        "adam_constraint_fd": search_step("adam", 1e-30, True, "finite_difference"),
        "sgd_fd": search_step("sgd", 1e30, True, "finite_difference"),
    }


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_variants(variants, args):
    for _ in range(args.warmup):
        for fn in variants.values():
            fn()
    times = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, fn in variants.items():  # interleaved: noise on the machine hits every variant alike
            sync(args.device)
            start = time.perf_counter()
            fn()
            sync(args.device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_peak_rss():
    """Linux: writing 5 to clear_refs resets the process's peak RSS (VmHWM) to its current RSS."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _peak_rss_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _release_free_heap():
    """Hand freed heap memory back to the OS (glibc), so that RSS measures what is in use."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


def memory_of_variant(name, args):
    """Run in a process of its own (CPU): the peak RSS a variant adds over the model and the batch.

    The training step's figure includes the Adam state and the gradients it allocates, the search's figure θ⁰,
    g and the α state: what each needs beyond the model itself."""
    model, batches, _ = build(args)
    with search_mode(model):
        variants = make_variants(model, batches)
        _release_free_heap()
        base = _rss_bytes()
        _reset_peak_rss()
        for _ in range(2):
            variants[name]()
        peak = _peak_rss_bytes()
    return peak - base


def peak_memory(args):
    if args.device.startswith("cuda"):
        out = {}
        model, batches, _ = build(args)
        with search_mode(model):
            variants = make_variants(model, batches)
            for name, fn in variants.items():  # "train" first: its Adam state is part of its own figure
                gc.collect()
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
                base = torch.cuda.memory_allocated()
                fn()
                fn()
                out[name] = torch.cuda.max_memory_allocated() - base
        return out

    def measure(name):
        cmd = [
            sys.executable,
            os.path.abspath(__file__),
            "--memory_of",
            name,
            "--batch_size",
            str(args.batch_size),
            "--length",
            str(args.length),
            "--device",
            args.device,
        ]
        cmd += ["--max_tokens", str(args.max_tokens)] if args.max_tokens else []
        cmd += ["--gradinit_max_tokens", str(args.gradinit_max_tokens)] if args.gradinit_max_tokens else []
        cmd += ["--small"] if args.small else []
        cmd += ["--tiny"] if args.tiny else []
        cmd += ["--threads", str(args.threads)] if args.threads else []
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=1800)
        return int(proc.stdout.strip().splitlines()[-1])

    # One process per variant, two at a time: a process's peak RSS is its own, whatever runs beside it (the times
    # above were measured before, in this process alone).
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(VARIANTS, pool.map(measure, VARIANTS)))


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_of:
        print(memory_of_variant(args.memory_of, args))
        return None
    model, batches, size = build(args)
    n_params = sum(p.numel() for p in model.parameters())
    with search_mode(model):
        times = time_variants(make_variants(model, batches), args)
    del model
    memory = None if args.no_memory else peak_memory(args)
    device = (
        torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU, {torch.get_num_threads()} threads"
    )
    print(
        f"BART {size['layers']}+{size['layers']} layers, d {size['d_model']}, ffn {size['ffn']}, vocab "
        f"{size['vocab']}: "
        f"{n_params / 1e6:.1f}M parameters; training batch {args.train_rows}x{args.length} tokens, search batch "
        f"{args.search_rows}x{args.length}; {device}; median of {args.repeats}"
    )
    print(
        "| variant | time (ms) | time / train step | peak memory added (MB) | memory / train step | memory / "
        "adam_reference |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name in VARIANTS:
        memory_cells = (
            f"{memory[name] / 2**20:.0f} | {memory[name] / memory['train']:.2f} | "
            f"{memory[name] / memory['adam_reference']:.2f}"
            if memory
            else "– | – | –"
        )
        print(f"| {name} | {1000 * times[name]:.1f} | {times[name] / times['train']:.2f} | {memory_cells} |")
    print("\n| whole search | Hessian-vector products | mean iteration / train step | peak memory / train step |")
    print("|---|---|---:|---:|")
    mixes = {}
    for f in args.constraint_fraction:
        for hvp, constraint in (("exact", "adam_constraint"), ("finite_difference", "adam_constraint_fd")):
            mean = (f * times[constraint] + (1 - f) * times["adam"]) / times["train"]
            peak = (
                max(memory[constraint] if f > 0 else 0, memory["adam"] if f < 1 else 0) / memory["train"]
                if memory
                else None
            )
            mixes[f"{f:g}/{hvp}"] = {"time_ratio": mean, "memory_ratio": peak}
            shown = "–" if peak is None else f"{peak:.2f}"
            print(f"| search at constraint fraction {f:g} | {hvp} | {mean:.2f} | {shown} |")
    result = {
        "mixes": mixes,
        "size": size,
        "batch_size": args.train_rows,
        "search_batch_size": args.search_rows,
        "length": args.length,
        "device": device,
        "params": n_params,
        "seconds": times,
        "peak_bytes": memory,
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
