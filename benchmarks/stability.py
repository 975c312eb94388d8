#!/usr/bin/env python
"""Does GradInit let a Post-LN Transformer train without warmup? Three arms, same data, seed and step budget.

Kept only to repeat the results of BENCHMARKS.md §2a–§2U and §2d, from the commit each names (BENCHMARKS.md §2,
"Which path each result used"). It trains with a loop of its own, not `GradInitTrainer`; new comparisons run
through the package: `hf-gradinit compare` (§2V).

    A: default init, no warmup        B: default init, linear warmup        C: GradInit, no warmup
    D (with --arms D): Admin (Liu et al., 2020; benchmarks/admin.py), no warmup

"Default init" is `--init`: the paper's setting is `--model transformer --init fairseq` (fairseq's Post-LN
Transformer and its initialization, built by the package); `--model bart --init model` is BART's N(0, 0.02).

for each learning rate in --lrs, on German->English pairs (default: ../shared/data/ding-de-en). Writes
`results.json`, `curves.csv`, `curves.png` and prints a markdown table (final validation loss and sacreBLEU).

    python benchmarks/stability.py --data_dir ../shared/data/ding-de-en --out runs/stability
    python benchmarks/stability.py --device cuda --steps 2000 --batch_size 64     # a GPU run
    python benchmarks/stability.py --tiny --steps 5                                # smoke test
    python benchmarks/stability.py --preset paper --parallel --steps 1500          # the paper's size, one GPU

`--preset paper` is the paper's IWSLT'14 setting at full size: 6+6 layers, d 512, ffn 1024, 4 heads, dropout
0.3/0.1/0.1, batches of 4,096 tokens, the search on 6,000-token batches with the paper's GradInit flags (780
iterations, scale lr 2.5e-3, β2 0.98, η 1e-3, γ 1000, scales in [0.01, 100]), AdamW (0.9, 0.98) lr 5e-4 with
linear decay, no clipping, bf16 autocast on CUDA (the search itself computes in float32). Flags given explicitly
win. `--parallel` runs every arm as a process of its own (on one GPU, side by side) and merges their results.

Arms can run as separate processes (`--arms A`, one core each) into one --out folder; `--report` then merges
the `results_*.json` files found there into one table and plot. With `--resumable` each arm saves its state at
every evaluation (`benchmarks/run_state.py`): the same command started again continues a cut run, and with more
`--steps` extends a finished one (constant schedule; give B's warmup as `--warmup_steps` so that it stays put).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import math
import os
import random
import sys
import time

import sacrebleu
import torch
from transformers import BartConfig, BartForConditionalGeneration, DataCollatorForSeq2Seq
from transformers.models.bart.modeling_bart import shift_tokens_right

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from hf_gradinit import GradInitArguments, GradInitResult, fairseq_init_, gradinit  # noqa: E402
from hf_gradinit.config import ETA_PER_LR  # noqa: E402
from hf_gradinit.scale_report import plot_scales  # noqa: E402
from hf_gradinit.token_batches import TokenBudgetBatchSampler, example_lengths  # noqa: E402
from hf_gradinit.translation.modeling import MODEL_CLASSES, _scratch_config  # noqa: E402
from hf_gradinit.translation.tokenizer import train_tokenizer  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import admin  # noqa: E402
import confirmatory  # noqa: E402
from run_state import check_saved, load_state, restore, save_state, state_path  # noqa: E402
from heldout_split import split  # noqa: E402
from token_spread import token_spread  # noqa: E402

ARMS = {
    "A": "default init, no warmup",
    "B": "default init, warmup",
    "C": "GradInit, no warmup",
    "D": "Admin, no warmup",
}

# --preset paper: the paper's IWSLT'14 model, batches, optimizer and GradInit flags (flags given explicitly win).
PAPER = dict(
    model="transformer",
    init="fairseq",
    layers=6,
    d_model=512,
    ffn=1024,
    heads=4,
    dropout=0.3,
    attention_dropout=0.1,
    activation_dropout=0.1,
    weight_decay=1e-4,
    label_smoothing=0.1,
    max_tokens=4096,
    gradinit_max_tokens=6000,
    gradinit_iters=780,
    gradinit_lr=2.5e-3,
    gradinit_beta2=0.98,
    gradinit_gamma=1000.0,
    gradinit_max_scale=100.0,
    lrs=[5e-4],
    lr_schedule="linear",
    bf16=True,
    vocab_size=10000,
    max_length=128,
)


# This script's search flags before hf_gradinit 0.2, which `--gradinit_defaults 0.1` restores.
SEARCH_DEFAULTS_0_1 = dict(
    gradinit_iters=100,
    gradinit_lr=1e-2,
    gradinit_beta2=0.98,
    gradinit_hvp="finite_difference",
    gradinit_reference_step=False,
    gradinit_freeze_zero_biases=False,
)


def _flag(value):
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def fill_search_defaults(args):
    """Give the search flags left unset their default: the package's (`GradInitArguments`, the paper's run) or,
    with --gradinit_defaults 0.1, this script's before 0.2."""
    if args.gradinit_defaults == "0.1":
        defaults = SEARCH_DEFAULTS_0_1
    else:
        package = GradInitArguments(gradinit_alg="adam")
        defaults = dict(
            gradinit_iters=package.gradinit_iters,
            gradinit_lr=package.gradinit_lr,
            gradinit_beta2=package.gradinit_beta2,
            gradinit_hvp=package.gradinit_hvp,
            gradinit_reference_step=not package.gradinit_step_moves_tied_output,
            gradinit_freeze_zero_biases=package.gradinit_freeze_zero_biases,
        )
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", default=os.path.join("..", "shared", "data", "ding-de-en"))
    p.add_argument("--out", default=os.path.join("runs", "stability"))
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--lrs", type=float, nargs="+", default=[5e-4, 1e-3])
    p.add_argument(
        "--arms",
        nargs="+",
        default=["A", "B", "C"],
        choices=list(ARMS),
        help="A, B, C (default), and D: Admin's profiled residual scales (benchmarks/admin.py), no warmup",
    )
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument(
        "--max_tokens", type=int, default=None, help="token-budget training batches instead of --batch_size rows"
    )
    p.add_argument("--warmup_fraction", type=float, default=0.1, help="arm B's linear warmup, as a share of --steps")
    p.add_argument(
        "--warmup_steps",
        type=int,
        default=None,
        help="arm B's linear warmup in updates (wins over --warmup_fraction; keeps it fixed when --steps grows)",
    )
    p.add_argument(
        "--lr_zero_steps",
        type=int,
        default=0,
        help="every arm: the first N of --steps updates at lr 0, so Adam's moment estimates fill on N batches "
        "before the weights move; the arm's schedule starts after them (a test of what warmup does)",
    )
    p.add_argument(
        "--lr_schedule",
        default="constant",
        choices=["constant", "linear"],
        help="after warmup: constant, or linear decay to 0 at --steps",
    )
    p.add_argument(
        "--lr_schedule_horizon",
        type=int,
        default=None,
        help="with --lr_schedule linear: the update at which the lr would reach 0 (default: --steps); the "
        "paper's 100000 keeps the lr near its peak in a run stopped long before",
    )
    p.add_argument(
        "--bf16",
        action="store_true",
        help="bf16 autocast for training and evaluation on CUDA (the search stays float32)",
    )
    p.add_argument("--preset", default=None, choices=["paper"], help="the paper's IWSLT'14 size and flags (see above)")
    p.add_argument("--parallel", action="store_true", help="one process per arm, side by side, then one merged report")
    p.add_argument("--eval_every", type=int, default=50)
    p.add_argument("--layers", type=int, default=6, help="encoder and decoder layers each")
    p.add_argument("--d_model", type=int, default=256)
    p.add_argument("--ffn", type=int, default=1024)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument(
        "--model",
        default="transformer",
        choices=["transformer", "bart"],
        help="fairseq's layout (Marian classes) or BART's",
    )
    p.add_argument(
        "--init", default="fairseq", choices=["fairseq", "model"], help="fairseq's init or the model class's own"
    )
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--attention_dropout", type=float, default=0.1)
    p.add_argument("--activation_dropout", type=float, default=0.1)
    p.add_argument("--weight_decay", type=float, default=1e-4, help="decoupled (AdamW), as fairseq's Adam")
    p.add_argument("--adam_beta2", type=float, default=0.98, help="β2 of training's AdamW (β1 0.9), the paper's 0.98")
    p.add_argument("--threads", type=int, default=None, help="torch threads (one per arm when arms run side by side)")
    p.add_argument("--report", action="store_true", help="only merge the results_*.json files in --out")
    p.add_argument("--reach_loss", type=float, default=6.5, help="the report's 'steps to reach' validation loss")
    p.add_argument("--vocab_size", type=int, default=8000)
    p.add_argument("--max_length", type=int, default=64)
    p.add_argument("--max_train_samples", type=int, default=None)
    p.add_argument("--max_eval_samples", type=int, default=300, help="validation sentences for loss and BLEU")
    p.add_argument(
        "--heldout_every",
        type=int,
        default=None,
        help="a held-out test split carved out of the training file: of its sentence pairs (both sides end in "
        ". ? or ! and have at least 3 words, the validation file's rule), the N-th, 2N-th, ... in file order; "
        "left out of training and of the tokenizer, and scored (loss, greedy BLEU/chrF) after the last update",
    )
    p.add_argument("--label_smoothing", type=float, default=0.1)
    p.add_argument(
        "--gradinit_defaults",
        default="paper",
        choices=["paper", "0.1"],
        help="defaults of the search flags left unset: 'paper' (the package's, the GradInit authors' run) or "
        "'0.1' (this script's before hf_gradinit 0.2: --gradinit_iters 100 --gradinit_lr 1e-2 --gradinit_beta2 "
        "0.98, θ′ moving a tied output projection, zero biases free): add it to repeat a command of that time",
    )
    p.add_argument("--gradinit_iters", type=int, default=None, help="default: 780 (the paper's)")
    p.add_argument("--gradinit_batch_size", type=int, default=None, help="defaults to --batch_size")
    p.add_argument(
        "--gradinit_max_tokens",
        type=int,
        default=None,
        help="token-budget search batches (default: --max_tokens, if given)",
    )
    p.add_argument("--gradinit_lr", type=float, default=None, help="default: the package's (2.5e-3, the paper's)")
    p.add_argument(
        "--gradinit_eta",
        type=float,
        default=None,
        help="η of the search (default: 2 × the arm's lr, as GradInitConfig; §2a⁵)",
    )
    p.add_argument(
        "--search_seed",
        type=int,
        default=None,
        help="seed of the search's batch order alone (default: --seed + 1, the rule of every earlier run); "
        "init and training batches keep --seed",
    )
    p.add_argument("--gradinit_gamma", type=float, default=1000.0)
    p.add_argument("--gradinit_max_scale", type=float, default=100.0)
    p.add_argument("--gradinit_beta2", type=float, default=None, help="default: the package's (0.98, the paper's)")
    p.add_argument(
        "--gradinit_ln_min_scale",
        type=float,
        default=None,
        help="lower bound of LayerNorm scales (default: 0.01, as weights)",
    )
    p.add_argument(
        "--gradinit_hvp", default=None, choices=["finite_difference", "exact"], help="default: the package's"
    )
    p.add_argument("--tag", default="", help="suffix of this run's results file and arm label (e.g. a C variant)")
    p.add_argument(
        "--gradinit_reference_step",
        type=_flag,
        nargs="?",
        const=True,
        default=None,
        help="the paper's code's θ′: a tied output projection stays at θ (gradinit_step_moves_tied_output=False); "
        "default: the package's (on for Adam)",
    )
    p.add_argument(
        "--gradinit_freeze_zero_biases",
        type=_flag,
        nargs="?",
        const=True,
        default=None,
        help="biases whose scale reached 0 stay at 0, as the paper's code; default: the package's (on)",
    )
    p.add_argument(
        "--gradinit_scales_from",
        default=None,
        help="arm C: apply the scales of an earlier search of the same model and seed (its folder or scales.json) "
        "instead of searching again; refused unless its initial norms are this model's",
    )
    p.add_argument(
        "--gradinit_scales_ln_floor",
        type=float,
        default=None,
        help="with --gradinit_scales_from: raise the saved LayerNorm scales below this value to it (a diagnostic: "
        "the rest of the search kept, a LayerNorm gain the search shrank lifted)",
    )
    p.add_argument(
        "--token_spread",
        action="store_true",
        help="at every evaluation, also the share of the encoder's output and of the least spread decoder layer's "
        "output that differs between tokens, dropout off (benchmarks/token_spread.py)",
    )
    p.add_argument(
        "--resumable",
        action="store_true",
        help="save each arm's state under --out/state/ at every evaluation, and continue from a state found "
        "there: the same command started again resumes a cut run, and with more --steps (constant schedule) "
        "extends a finished one (benchmarks/run_state.py)",
    )
    p.add_argument(
        "--save_models",
        action="store_true",
        help="save each arm's final model and tokenizer (save_pretrained) under --out/models/",
    )
    p.add_argument("--num_beams", type=int, default=1)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--tiny", action="store_true", help="a 1+1-layer d32 model on 400 pairs (smoke test)")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    if args.preset == "paper":
        given = {a[2:].split("=", 1)[0] for a in argv if a.startswith("--")}
        for key, value in PAPER.items():
            if key not in given:
                setattr(args, key, value)
    fill_search_defaults(args)
    args.argv = argv
    if args.tiny:
        args.layers, args.d_model, args.ffn, args.heads, args.vocab_size = 1, 32, 64, 2, 300
        args.max_train_samples, args.max_eval_samples = args.max_train_samples or 400, 20
        args.gradinit_iters, args.eval_every = min(args.gradinit_iters, 3), max(1, args.steps // 2)
    if args.report:
        return args
    if args.warmup_steps is not None and args.warmup_steps < 0:
        p.error(f"--warmup_steps {args.warmup_steps}: must be at least 0")
    if args.heldout_every is not None and args.heldout_every < 2:
        p.error(f"--heldout_every {args.heldout_every}: must be at least 2")
    if not 0 <= args.lr_zero_steps < args.steps:
        p.error(f"--lr_zero_steps {args.lr_zero_steps}: must be at least 0 and below --steps ({args.steps})")
    for name in ("train.jsonl.gz", "validation.jsonl"):
        if not os.path.isfile(os.path.join(args.data_dir, name)):
            p.error(f"--data_dir {args.data_dir}: no {name} there")
    return args


def read_pairs(path, limit=None):
    """`{"translation": {"de": ..., "en": ...}}` lines (gzip or not) as (de, en) pairs."""
    opener = gzip.open if path.endswith(".gz") else open
    pairs = []
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            t = json.loads(line)["translation"]
            pairs.append((t["de"], t["en"]))
            if limit is not None and len(pairs) >= limit:
                break
    return pairs


def split_heldout(pairs, every):
    """(training pairs, held-out pairs): of the sentence pairs, the `every`-th, 2·`every`-th, ... in file order are
    held out; every other pair stays in training, in its order (`heldout_split.split`)."""
    return split(pairs, every)


def load_data(args):
    """Tokenizer, encoded training, validation and held-out test rows (empty without --heldout_every), and the
    reference translations of validation and test."""
    pairs = {
        "train": read_pairs(os.path.join(args.data_dir, "train.jsonl.gz"), args.max_train_samples),
        "validation": read_pairs(os.path.join(args.data_dir, "validation.jsonl"), args.max_eval_samples),
        "test": [],
    }
    if args.heldout_every:
        pairs["train"], pairs["test"] = split_heldout(pairs["train"], args.heldout_every)
    tokenizer = train_tokenizer((s for pair in pairs["train"] for s in pair), "bpe", args.vocab_size)

    def encode(split):
        if not pairs[split]:
            return []
        src, tgt = zip(*pairs[split])
        enc = tokenizer(list(src), text_target=list(tgt), max_length=args.max_length, truncation=True)
        return [
            {"input_ids": i, "attention_mask": m, "labels": y}
            for i, m, y in zip(enc["input_ids"], enc["attention_mask"], enc["labels"])
        ]

    references = {split: [t for _, t in pairs[split]] for split in ("validation", "test")}
    return tokenizer, encode("train"), encode("validation"), encode("test"), references


def _size_and_dropout(args):
    """The config fields both model families take from the command line."""
    return dict(
        d_model=args.d_model,
        encoder_layers=args.layers,
        decoder_layers=args.layers,
        encoder_ffn_dim=args.ffn,
        decoder_ffn_dim=args.ffn,
        encoder_attention_heads=args.heads,
        decoder_attention_heads=args.heads,
        dropout=args.dropout,
        attention_dropout=args.attention_dropout,
        activation_dropout=args.activation_dropout,
    )


def make_model(args, tokenizer):
    torch.manual_seed(args.seed)
    if args.model == "transformer":
        config = _scratch_config("transformer", tokenizer, "de", "en", args.max_length + 2)
        config.update(_size_and_dropout(args))
        model = MODEL_CLASSES["transformer"][1](config)
    else:
        model = make_bart(args, tokenizer)
    if args.init == "fairseq":
        fairseq_init_(model)
    return model.to(args.device)


def make_bart(args, tokenizer):
    config = BartConfig(
        vocab_size=len(tokenizer),
        **_size_and_dropout(args),
        activation_function="relu",
        scale_embedding=True,
        max_position_embeddings=args.max_length + 2,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.eos_token_id,
        forced_eos_token_id=tokenizer.eos_token_id,
    )
    return BartForConditionalGeneration(config)


def batch_order(n_examples, batch_size, steps, seed):
    """The same index batches for every arm: shuffled epochs, cut into batches."""
    rng, order = random.Random(seed), []
    while len(order) < steps * batch_size:
        epoch = list(range(n_examples))
        rng.shuffle(epoch)
        order += epoch
    return [order[i * batch_size : (i + 1) * batch_size] for i in range(steps)]


def budget_order(lengths, max_tokens, steps, seed, min_rows=1):
    """`steps` index batches of at most `max_tokens` padded tokens (fairseq's packing), epoch after epoch."""
    sampler = TokenBudgetBatchSampler(lengths, max_tokens, seed=seed, min_rows=min_rows, skip_too_long=True)
    order, epoch = [], 0
    while len(order) < steps:
        sampler.set_epoch(epoch)
        order += list(sampler)
        epoch += 1
    return order[:steps]


def training_order(train, args):
    if args.max_tokens is None:
        return batch_order(len(train), args.batch_size, args.steps, args.seed)
    return budget_order(example_lengths(train), args.max_tokens, args.steps, args.seed)


def search_order(train, args):
    budget = args.gradinit_max_tokens or (args.max_tokens if args.gradinit_batch_size is None else None)
    if budget is None:
        return batch_order(
            len(train), args.gradinit_batch_size or args.batch_size, args.gradinit_iters, search_seed(args)
        )
    return budget_order(example_lengths(train), budget, args.gradinit_iters, search_seed(args), min_rows=3)


def search_eta(args, lr):
    """η of the search: --gradinit_eta, or 2 × the arm's training lr (GradInitConfig's rule)."""
    return ETA_PER_LR * lr if args.gradinit_eta is None else args.gradinit_eta


def search_seed(args):
    return args.seed + 1 if args.search_seed is None else args.search_seed


def loss_of(model, batch, label_smoothing):
    logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    return torch.nn.functional.cross_entropy(
        logits.flatten(0, 1), batch["labels"].flatten(), ignore_index=-100, label_smoothing=label_smoothing
    )


def autocast(args):
    """bf16 autocast on CUDA with --bf16; nothing otherwise (also without args)."""
    enabled = args is not None and args.bf16 and args.device.startswith("cuda")
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=enabled)


@torch.no_grad()
def validation_loss(model, batches, args=None):
    model.eval()
    total, tokens = 0.0, 0
    for b in batches:
        n = int((b["labels"] != -100).sum())
        with autocast(args):
            total += loss_of(model, b, 0.0).float().item() * n
        tokens += n
    model.train()
    return total / tokens


@torch.no_grad()
def validation_bleu(model, tokenizer, batches, references, args):
    model.eval()
    hyps = []
    for b in batches:
        with autocast(args):
            out = model.generate(
                input_ids=b["input_ids"],
                attention_mask=b["attention_mask"],
                num_beams=args.num_beams,
                max_length=args.max_length,
            )
        hyps += [h.strip() for h in tokenizer.batch_decode(out, skip_special_tokens=True)]
    model.train()
    return sacrebleu.corpus_bleu(hyps, [references]).score, sacrebleu.corpus_chrf(hyps, [references]).score


def apply_saved_scales(model, path, ln_floor=None):
    """θ = α·θ⁰ with the α of a saved search, after checking that θ⁰ is the init that search started from;
    `ln_floor` raises LayerNorm scales below it to it."""
    result = GradInitResult.load(path)
    if ln_floor is not None:
        lifted = {n: s for n, s in result.scales.items() if result.groups[n] == "norm" and s < ln_floor}
        result.scales.update({n: ln_floor for n in lifted})
        print(
            f"  [C] LayerNorm scales raised to {ln_floor}: " + ", ".join(f"{n} ({s:.3g})" for n, s in lifted.items()),
            flush=True,
        )
    params = dict(model.named_parameters())
    missing = sorted(set(result.scales) - set(params))
    if missing:
        raise ValueError(f"{path}: tensors not in this model: {missing[:3]}")
    with torch.no_grad():
        for name, scale in result.scales.items():
            norm = params[name].float().norm().item()  # as the search measured it
            if not math.isclose(norm, result.init_norms[name], rel_tol=1e-5, abs_tol=1e-8):
                raise ValueError(
                    f"{path}: {name} starts at norm {norm:.6g}, the search started at {result.init_norms[name]:.6g} "
                    "(another model, init or seed)"
                )
            params[name].mul_(scale)
    print(
        f"  [C] scales of {path} applied ({len(result.scales)} tensors, {result.iterations} search iterations)",
        flush=True,
    )
    return result


def lr_factor(warmup, args):
    """The multiplier of the lr before update s + 1: `--lr_zero_steps` updates at 0 (AdamW then moves neither the
    weights nor their decay, only its moments), then `warmup` updates of linear warmup, then constant or linear decay
    to 0 at --lr_schedule_horizon (default --steps)."""
    zero = args.lr_zero_steps
    steps = (getattr(args, "lr_schedule_horizon", None) or args.steps) - zero

    def factor(s):
        if s < zero:
            return 0.0
        s -= zero
        decay = max(0.0, 1 - s / steps) if args.lr_schedule == "linear" else 1.0
        return min(1.0, (s + 1) / warmup, decay) if warmup else decay

    return factor


def arm_warmup(arm, args):
    """Arm B's warmup updates (0 for A and C): --warmup_steps, or --warmup_fraction of --steps."""
    if arm != "B":
        return 0
    if args.warmup_steps is not None:
        return args.warmup_steps
    return max(1, round(args.warmup_fraction * args.steps)) if args.warmup_fraction > 0 else 0


def spread_summary(model, batches):
    """`token_spread` with dropout off, as the encoder's share and the least spread decoder layer's; leaves the model
    in train mode."""
    shares = token_spread(model, batches, train_mode=False)
    model.train()
    return {"encoder": shares.pop("encoder"), "decoder_min": min(shares.values())}


def format_spread(shares):
    return f"token spread: encoder {shares['encoder']:.3f}, decoder min {shares['decoder_min']:.3f}"


def search_scales(model, lr, args, train, collate, to_device):
    """Arm C's search on the search batches, saved (scales.json and a plot) under --out."""
    gi_batches = (to_device(collate([train[i] for i in idx])) for idx in search_order(train, args))
    gi_args = GradInitArguments(
        gradinit_iters=args.gradinit_iters,
        gradinit_lr=args.gradinit_lr,
        gradinit_eta=search_eta(args, lr),
        gradinit_gamma=args.gradinit_gamma,
        gradinit_max_scale=args.gradinit_max_scale,
        gradinit_beta2=args.gradinit_beta2,
        gradinit_hvp=args.gradinit_hvp,
        gradinit_ln_min_scale=args.gradinit_ln_min_scale,
        gradinit_step_moves_tied_output=not args.gradinit_reference_step,
        gradinit_freeze_zero_biases=args.gradinit_freeze_zero_biases,
    )

    def report(record, _search):
        if record["step"] % 10 == 0 or record["step"] == 1:
            print(
                f"  [C{args.tag}] search {record['step']}: loss {record['loss']:.3f} ‖g‖ {record['grad_norm']:.4g} "
                f"{'constraint' if record['constraint'] else 'objective'}",
                flush=True,
            )

    result = gradinit(
        model,
        gi_batches,
        gi_args,
        loss_fn=lambda m, b: loss_of(m, b, args.label_smoothing),
        callback=report,
        progress_bar=False,
    )
    folder = os.path.join(
        args.out,
        f"gradinit_C{args.tag}"
        + (f"_seed{args.seed}" if args.seed != 1 else "")
        + (f"_search{args.search_seed}" if args.search_seed is not None else ""),
    )
    result.save(folder)
    plot_scales(result, os.path.join(folder, "scales.png"))
    return result


def run_arm(arm, lr, args, tokenizer, train, order, val_batches, test_batches, references, collate):
    to_device = lambda b: {k: v.to(args.device) for k, v in b.items()}  # noqa: E731
    model = make_model(args, tokenizer)
    search = None
    start = time.time()
    warmup = arm_warmup(arm, args)
    path = state_path(args, arm, lr)
    resumed = load_state(path, args, arm, lr, warmup) if args.resumable else None
    if arm == "C" and resumed is None:
        if args.gradinit_scales_from:
            result = apply_saved_scales(model, args.gradinit_scales_from, args.gradinit_scales_ln_floor)
        else:
            result = search_scales(model, lr, args, train, collate, to_device)
        search = {
            "seconds": time.time() - start,
            "constraint_fraction": result.constraint_fraction,
            "first_objective_step": result.first_objective_step,
            "grad_norm_first": result.history[0]["grad_norm"],
            "grad_norm_last": result.history[-1]["grad_norm"],
            **result.scale_summary(),
            "arguments": result.arguments,  # every gradinit_* value the search ran with
            # ‖g‖ against γ, the constraint share, the scales at a bound (hf_gradinit.search_report)
            "report": result.report(),
        }
    if arm == "D":  # Admin's ω on every residual branch (trainable), set by a profiling pass on the first batch
        admin.attach(model)
        if resumed is None:
            admin.profile(model, to_device(collate([train[i] for i in order[0]])))
    # Fused AdamW on a GPU: one kernel per step instead of several per tensor (the same update).
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=lr,
        betas=(0.9, args.adam_beta2),
        eps=1e-8,
        weight_decay=args.weight_decay,
        fused=str(args.device).startswith("cuda") or None,
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(warmup, args))
    curve, spread_at_start, done, earlier_seconds = [], None, 0, 0.0
    if resumed is not None:
        restore(resumed, model, optimizer, schedule)
        curve, spread_at_start, search = resumed["curve"], resumed["spread_at_start"], resumed["search"]
        done, earlier_seconds = resumed["step"], resumed["seconds"]
        print(f"  [{arm}{args.tag} lr={lr:g}] continuing from step {done} ({path})", flush=True)
    elif args.token_spread:  # before the first update (after the search, for C)
        spread_at_start = spread_summary(model, val_batches)
        print(f"  [{arm}{args.tag} lr={lr:g}] step 0: {format_spread(spread_at_start)}", flush=True)
    model.train()
    running = []
    for step, idx in enumerate(order, start=1):
        if step <= done:
            continue
        batch = to_device(collate([train[i] for i in idx]))
        with autocast(args):
            loss = loss_of(model, batch, args.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        running.append(loss.detach())  # read at the next evaluation: no wait for the device at every update
        if step % args.eval_every == 0 or step == len(order):
            train_loss = torch.stack(running).double().mean().item()
            running = []
            if not math.isfinite(train_loss):
                curve.append({"step": step, "train_loss": train_loss, "val_loss": float("nan")})
                break
            curve.append(
                {"step": step, "train_loss": train_loss, "val_loss": validation_loss(model, val_batches, args)}
            )
            spread = ""
            if args.token_spread:
                shares = spread_summary(model, val_batches)
                curve[-1].update({f"spread_{name}": share for name, share in shares.items()})
                spread = "  " + format_spread(shares)
            print(
                f"  [{arm}{args.tag} lr={lr:g}] step {step}: train {train_loss:.3f}  val "
                f"{curve[-1]['val_loss']:.3f}{spread}",
                flush=True,
            )
            if args.resumable:
                save_state(
                    path,
                    args,
                    arm,
                    lr,
                    warmup,
                    step,
                    model,
                    optimizer,
                    schedule,
                    {
                        "curve": curve,
                        "spread_at_start": spread_at_start,
                        "search": search,
                        "seconds": earlier_seconds + time.time() - start,
                    },
                )
    bleu, chrf = validation_bleu(model, tokenizer, val_batches, references["validation"], args)
    test = {}
    if test_batches:  # the held-out split, scored once, after the last update
        test["test_loss"] = validation_loss(model, test_batches, args)
        test["test_bleu"], test["test_chrf"] = validation_bleu(
            model, tokenizer, test_batches, references["test"], args
        )
        print(
            f"  [{arm}{args.tag} lr={lr:g}] held-out test: loss {test['test_loss']:.3f}  BLEU "
            f"{test['test_bleu']:.2f}  "
            f"chrF {test['test_chrf']:.1f}",
            flush=True,
        )
    if args.save_models:
        folder = os.path.join(args.out, "models", f"{arm}{args.tag}-lr{lr:g}-seed{args.seed}")
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    return {
        "arm": arm + args.tag,
        "lr": lr,
        "seed": args.seed,
        "warmup_steps": warmup,
        "lr_zero_steps": args.lr_zero_steps,
        "spread_at_start": spread_at_start,
        "curve": curve,
        "bleu": bleu,
        "chrf": chrf,
        **test,
        "gradinit": search,
        "seconds": earlier_seconds + time.time() - start,
    }


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lrs = sorted({r["lr"] for r in results})
    fig, axes = plt.subplots(1, len(lrs), figsize=(5.5 * len(lrs), 4), squeeze=False, sharey=True)
    colors = {"A": "tab:red", "B": "tab:blue", "C": "tab:green", "D": "tab:purple"}
    styles = ["-", "-.", ":", (0, (5, 1))]
    for ax, lr in zip(axes[0], lrs):
        variants, labelled = {}, set()
        for r in (r for r in results if r["lr"] == lr):
            steps = [c["step"] for c in r["curve"]]
            base = r["arm"][0]
            color = colors.get(base, "black")
            style = styles[variants.setdefault(r["arm"], sum(a[0] == base for a in variants)) % len(styles)]
            first = r["arm"] not in labelled  # one legend entry per arm, however many seeds
            labelled.add(r["arm"])
            ax.plot(
                steps,
                [c["train_loss"] for c in r["curve"]],
                color=color,
                linestyle=style,
                alpha=0.4,
                label=f"{r['arm']}: {ARMS[base]} (train)" if first else None,
            )
            ax.plot(
                steps,
                [c["val_loss"] for c in r["curve"]],
                color=color,
                linestyle=style,
                label=f"{r['arm']} (validation)" if first else None,
            )
        seeds = sorted({r.get("seed") for r in results if r["lr"] == lr} - {None})
        ax.set_title(f"lr {lr:g}" + (f", seeds {', '.join(map(str, seeds))}" if len(seeds) > 1 else ""))
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("loss")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def make_collate(tokenizer):
    """Padded batches with labels at −100 and decoder inputs shifted from them (both layouts start the decoder
    with </s>, as fairseq does)."""
    pad = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100)

    def collate(rows):
        batch = pad(rows)
        batch["decoder_input_ids"] = shift_tokens_right(
            batch["labels"], tokenizer.pad_token_id, tokenizer.eos_token_id
        )
        return batch

    return collate


def report(results, out, reach=6.5):
    with open(os.path.join(out, "curves.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["lr", "arm", "step", "train_loss", "val_loss"])
        for r in results:
            for c in r["curve"]:
                w.writerow([r["lr"], r["arm"], c["step"], c["train_loss"], c["val_loss"]])
    plot(results, os.path.join(out, "curves.png"))
    print(
        "\n| lr | arm | final train loss | final val loss | val BLEU | val chrF | GradInit scales (min/mean/max) | "
        "seconds |"
    )
    print("|---|---|---:|---:|---:|---:|---|---:|")
    for r in results:
        last = r["curve"][-1]
        g = r["gradinit"]
        scales = (
            f"{g['scale_min']:.2f}/{g['scale_mean']:.2f}/{g['scale_max']:.2f}, constraint "
            f"{100 * g['constraint_fraction']:.0f}%"
            if g
            else ""
        )
        print(
            f"| {r['lr']:g} | {r['arm']}: {ARMS[r['arm'][0]]} | {last['train_loss']:.3f} | {last['val_loss']:.3f} | "
            f"{r['bleu']:.2f} | {r['chrf']:.1f} | {scales} | {r['seconds']:.0f} |"
        )
    if any(len(runs) > 1 for runs in _by_arm(results).values()):
        seed_summary(results, reach)
    confirmatory.report(results, out)


def _by_arm(results):
    groups = {}
    for r in results:
        groups.setdefault((r["lr"], r["arm"]), []).append(r)
    return groups


def _mean_sd(values):
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return "—"
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return f"{mean:.2f} ± {sd:.2f}"


def seed_summary(results, reach):
    """Per arm over seeds: validation loss at fixed steps, steps to reach a loss, BLEU/chrF; then the searches."""
    checkpoints = sorted({c["step"] for r in results for c in r["curve"]})
    shown = [s for s in checkpoints if s % 100 == 0] or checkpoints
    print(f"\nOver seeds (mean ± sd; 'reach' = first evaluated step with validation loss ≤ {reach:g}, per seed):")
    print("| lr | arm | seeds | " + " | ".join(f"val @{s}" for s in shown) + " | reach | BLEU | chrF |")
    print("|---|---|---:|" + "---:|" * len(shown) + "---|---:|---:|")
    for (lr, arm), runs in sorted(_by_arm(results).items()):
        at = [
            _mean_sd([next((c["val_loss"] for c in r["curve"] if c["step"] == s), None) for r in runs]) for s in shown
        ]
        reached = [
            next((c["step"] for c in r["curve"] if c["val_loss"] <= reach), None)
            for r in sorted(runs, key=lambda r: r.get("seed", 0))
        ]
        reached = ", ".join("—" if x is None else str(x) for x in reached)
        print(
            f"| {lr:g} | {arm} | {len(runs)} | "
            + " | ".join(at)
            + f" | {reached} | {_mean_sd([r['bleu'] for r in runs])} | {_mean_sd([r['chrf'] for r in runs])} |"
        )
    finals = {(r["lr"], r["arm"], r.get("seed")): r["curve"][-1]["val_loss"] for r in results}
    cases = sorted({(lr, seed) for lr, arm, seed in finals if arm.startswith("C")}, key=lambda k: (k[0], k[1] or 0))

    def cell(arm, value):
        return "—" if value is None else f"{arm}: {value:.3f}"

    if cases:
        print(
            "\nThe claim, per seed (final validation loss): holds if C ends within 0.1 of B and at least 0.5 below A; "
            "every C and B variant (tag) of a seed, '—' where an arm has not run."
        )
        print("| lr | seed | A | B | C | C − B | A − C | holds |")
        print("|---|---:|---|---|---|---:|---:|---|")
        for lr, seed in cases:
            variants = {
                base: sorted(arm for r, arm, s in finals if r == lr and s == seed and arm.startswith(base))
                for base in "ABC"
            }
            a_arm = "A" if "A" in variants["A"] else next(iter(variants["A"]), None)
            a = finals.get((lr, a_arm, seed))
            for c_arm in variants["C"]:
                c = finals[(lr, c_arm, seed)]
                for b_arm in variants["B"] or [None]:
                    b = finals.get((lr, b_arm, seed))
                    cb = f"{c - b:+.3f}" if b is not None else "—"
                    ac = f"{a - c:+.3f}" if a is not None else "—"
                    holds = "—" if a is None or b is None else ("yes" if c - b <= 0.1 and a - c >= 0.5 else "no")
                    print(
                        f"| {lr:g} | {seed} | {cell(a_arm, a)} | {cell(b_arm, b)} | {cell(c_arm, c)} | {cb} | {ac} | "
                        f"{holds} |"
                    )
    searches = [r for r in results if r["gradinit"]]
    if searches:
        print(
            "\n| arm | seed | ‖g‖ first → last | constraint fraction | first objective step | scales min / mean / "
            "max |"
        )
        print("|---|---:|---|---:|---:|---|")
        for r in sorted(searches, key=lambda r: (r["arm"], r.get("seed", 0))):
            g = r["gradinit"]
            print(
                f"| {r['arm']} | {r.get('seed', '')} | {g['grad_norm_first']:,.0f} → {g['grad_norm_last']:,.0f} | "
                f"{g['constraint_fraction']:.2f} | {g['first_objective_step'] or '—'} | "
                f"{g['scale_min']:.2f} / {g['scale_mean']:.2f} / {g['scale_max']:.2f} |"
            )


def merged_results(out):
    """The arms of every `results_*.json` in `out` (arms run as separate processes)."""
    results = []
    for name in sorted(os.listdir(out)):
        if name.startswith("results_") and name.endswith(".json"):
            with open(os.path.join(out, name)) as f:
                results += json.load(f)["results"]
    return results


def run_parallel(args):
    """Every arm as a process of its own (one GPU, or one core each), started together; then one report."""
    import subprocess

    base = [a for a in args.argv if a != "--parallel"]
    drop = {i for i, a in enumerate(base) if a == "--arms"}
    drop |= {i + 1 + k for i in drop for k in range(len(args.arms))}
    base = [a for i, a in enumerate(base) if i not in drop and not a.startswith("--arms=")]
    procs = [
        subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), *base, "--arms", arm],
            stdout=open(os.path.join(args.out, f"log_{arm}{args.tag}_seed{args.seed}.txt"), "w"),
            stderr=subprocess.STDOUT,
        )
        for arm in args.arms
    ]
    codes = [p.wait() for p in procs]
    if any(codes):
        raise SystemExit(f"an arm failed (exit codes {codes}); see the log_*.txt files in {args.out}")
    results = merged_results(args.out)
    report(results, args.out, args.reach_loss)
    return results


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    if args.report:
        results = merged_results(args.out)
        if not results:
            raise SystemExit(f"--report: no results_*.json files in {args.out}")
        report(results, args.out, args.reach_loss)
        return results
    if args.resumable:  # a state this run cannot continue is refused before any data is loaded or any arm trains
        for lr in args.lrs:
            for arm in args.arms:
                check_saved(state_path(args, arm, lr), args, arm, lr, arm_warmup(arm, args))
    if args.parallel:
        return run_parallel(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    tokenizer, train, val, test, references = load_data(args)
    collate = make_collate(tokenizer)

    def batches(rows):
        return [{k: v.to(args.device) for k, v in collate(rows[i : i + 64]).items()} for i in range(0, len(rows), 64)]

    val_batches, test_batches = batches(val), batches(test)
    order = training_order(train, args)
    print(
        f"{len(train)} training pairs, {len(val)} validation sentences, {len(test)} held-out test pairs, "
        f"vocab {len(tokenizer)}, device {args.device}"
    )
    results = []
    results_path = os.path.join(args.out, f"results_{''.join(args.arms)}{args.tag}_seed{args.seed}.json")
    for lr in args.lrs:
        for arm in args.arms:
            print(f"arm {arm}{args.tag} ({ARMS[arm]}), lr {lr:g}", flush=True)
            results.append(
                run_arm(arm, lr, args, tokenizer, train, order, val_batches, test_batches, references, collate)
            )
            with open(results_path + ".tmp", "w") as f:  # after every arm: a cut run keeps its arms
                json.dump({"args": vars(args), "results": results}, f, indent=2)
            # renamed into place whole: with --parallel the other arms' processes read this file for their report
            os.replace(results_path + ".tmp", results_path)
    report(merged_results(args.out), args.out, args.reach_loss)
    return results


if __name__ == "__main__":
    main()
