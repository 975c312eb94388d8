"""One arm of `stability.py`, saved at every evaluation and continued later (`--resumable`).

A long run on a CPU outlasts a working session. The saved state is everything the next update depends on: the
weights, AdamW's moments, the schedule's position, the dropout generator and the curve so far; the batches need no
saving, because `stability.py` draws the same batch order for the same seed whatever `--steps` is. So a run cut
at step s and continued gives the weights an uninterrupted run has at every later step, and a finished run can be
continued to more `--steps` (with the constant schedule, whose lr does not depend on `--steps`).
"""

from __future__ import annotations

import os

import torch

from hf_gradinit.config import ETA_PER_LR

# What the weights at step s depend on; a continued run must agree on all of them.
TRAINING_FLAGS = (
    "data_dir",
    "max_train_samples",
    "vocab_size",
    "max_length",
    "model",
    "init",
    "layers",
    "d_model",
    "ffn",
    "heads",
    "dropout",
    "attention_dropout",
    "activation_dropout",
    "weight_decay",
    "label_smoothing",
    "batch_size",
    "max_tokens",
    "lr_zero_steps",
    "lr_schedule",
    "bf16",
    "seed",
    "device",
    "heldout_every",
    "adam_beta2",
    "lr_schedule_horizon",
)
SEARCH_FLAGS = (
    "gradinit_iters",
    "gradinit_batch_size",
    "gradinit_max_tokens",
    "gradinit_lr",
    "gradinit_eta",
    "gradinit_gamma",
    "gradinit_max_scale",
    "gradinit_beta2",
    "gradinit_ln_min_scale",
    "gradinit_hvp",
    "gradinit_reference_step",
    "gradinit_freeze_zero_biases",
    "gradinit_scales_from",
    "gradinit_scales_ln_floor",
    "search_seed",
)


# Flags added after states were first saved, with the value every earlier run had: a state without them was trained
# with that value.
ADDED_LATER = {"heldout_every": None, "search_seed": None, "adam_beta2": 0.98, "lr_schedule_horizon": None}


def state_path(args, arm, lr):
    return os.path.join(args.out, "state", f"{arm}{args.tag}-lr{lr:g}-seed{args.seed}.pt")


def run_flags(args, arm, lr, warmup):
    flags = {name: getattr(args, name) for name in TRAINING_FLAGS + (SEARCH_FLAGS if arm == "C" else ())}
    if arm == "C" and flags["gradinit_eta"] is None:  # η left to follow the lr: the value used is what counts
        flags["gradinit_eta"] = ETA_PER_LR * lr
    return {**flags, "lr": lr, "warmup": warmup}


def save_state(path, args, arm, lr, warmup, step, model, optimizer, schedule, extra):
    """Write the state after `step` updates; written to a temporary file first, so a cut never leaves half a state."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    state = {
        "step": step,
        "steps": args.steps,
        "flags": run_flags(args, arm, lr, warmup),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(),
        "rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        **extra,
    }
    torch.save(state, path + ".tmp")
    os.replace(path + ".tmp", path)


def check_saved(path, args, arm, lr, warmup):
    """Refuse (naming the flag) a saved state this run cannot continue. The state is read memory-mapped, so every
    arm can be checked before any data is loaded or any arm trains, without reading its weights."""
    if os.path.isfile(path):
        _refuse_if_incompatible(
            torch.load(path, map_location="cpu", weights_only=False, mmap=True), path, args, arm, lr, warmup
        )


def load_state(path, args, arm, lr, warmup):
    """The saved state of this arm, or None if there is none; refused (naming the flag) if it was trained otherwise."""
    if not os.path.isfile(path):
        return None
    state = torch.load(path, map_location=args.device, weights_only=False)
    _refuse_if_incompatible(state, path, args, arm, lr, warmup)
    return state


def _refuse_if_incompatible(state, path, args, arm, lr, warmup):
    saved, now = state["flags"], run_flags(args, arm, lr, warmup)
    for name, value in now.items():
        was = saved.get(name, ADDED_LATER.get(name))
        if was != value:
            flag = "--warmup_steps / --warmup_fraction" if name == "warmup" else f"--{name}"
            raise SystemExit(
                f"{path}: saved with {flag} {was!r}, this run has {value!r}; "
                "continue it with the flags it was started with"
            )
    if state["step"] > args.steps:
        raise SystemExit(f"{path}: already trained {state['step']} steps, more than --steps {args.steps}")
    if args.lr_schedule != "constant" and args.steps != state["steps"]:
        raise SystemExit(
            f"{path}: --steps {args.steps} differs from the run's {state['steps']}, and the "
            f"{args.lr_schedule} schedule's lr depends on --steps; "
            "only a constant schedule can be extended"
        )


def restore(state, model, optimizer, schedule):
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["schedule"])
    torch.set_rng_state(state["rng"])
    if state["cuda_rng"] is not None:
        torch.cuda.set_rng_state_all(state["cuda_rng"])
