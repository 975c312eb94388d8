"""The model, data and loss that the search-cost benchmarks measure on (§1b `hvp_accuracy.py`, `hvp_search.py`; §5
`token_budget.py`): fairseq's Post-LN Transformer (or BART) built by the package, German->English pairs encoded by
a tokenizer trained on them, label-smoothed cross-entropy. No training loop: training runs go through the package
(`hf-gradinit compare`, `GradInitTrainer`).

They build the same model, data, loss and batch order as the lab's former training script (`stability.py`, last at
commit 10cef8e), whose functions these are, less its held-out split, its bf16 autocast and its training flags, so
that §1b's and §5's commands give the numbers their pages report.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import sys

import torch
from transformers import BartConfig, BartForConditionalGeneration, DataCollatorForSeq2Seq
from transformers.models.bart.modeling_bart import shift_tokens_right

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from hf_gradinit import GradInitArguments, fairseq_init_  # noqa: E402
from hf_gradinit.translation.modeling import MODEL_CLASSES, _scratch_config  # noqa: E402
from hf_gradinit.translation.tokenizer import train_tokenizer  # noqa: E402


def parse_args(argv=None, description=__doc__):
    """The cell's flags; the search flags left unset take the package's defaults (the paper's run)."""
    package = GradInitArguments(gradinit_alg="adam")
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", default=os.path.join("..", "shared", "data", "ding-de-en"))
    p.add_argument("--out", default=os.path.join("runs", "lab_cell"), help="where a benchmark writes its JSON")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch_size", type=int, default=32)
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
    p.add_argument("--threads", type=int, default=None, help="torch threads")
    p.add_argument("--vocab_size", type=int, default=8000)
    p.add_argument("--max_length", type=int, default=64)
    p.add_argument("--max_train_samples", type=int, default=None)
    p.add_argument("--max_eval_samples", type=int, default=300, help="validation sentences")
    p.add_argument("--label_smoothing", type=float, default=0.1)
    p.add_argument(
        "--gradinit_batch_size", type=int, default=None, help="rows of a search batch (default: --batch_size)"
    )
    p.add_argument(
        "--gradinit_lr", type=float, default=package.gradinit_lr, help="default: the package's (the paper's)"
    )
    p.add_argument("--gradinit_eta", type=float, default=None, help="η of the search (default: the benchmark's)")
    p.add_argument("--gradinit_gamma", type=float, default=package.gradinit_gamma)
    p.add_argument("--gradinit_max_scale", type=float, default=package.gradinit_max_scale)
    p.add_argument("--gradinit_beta2", type=float, default=package.gradinit_beta2, help="default: the package's")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--tiny", action="store_true", help="a 1+1-layer d32 model on 400 pairs (smoke test)")
    args = p.parse_args(sys.argv[1:] if argv is None else list(argv))
    if args.tiny:
        args.layers, args.d_model, args.ffn, args.heads, args.vocab_size = 1, 32, 64, 2, 300
        args.max_train_samples, args.max_eval_samples = args.max_train_samples or 400, 20
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


def load_data(args):
    """The tokenizer (trained on the training pairs) and the encoded training and validation rows."""
    train = read_pairs(os.path.join(args.data_dir, "train.jsonl.gz"), args.max_train_samples)
    validation = read_pairs(os.path.join(args.data_dir, "validation.jsonl"), args.max_eval_samples)
    tokenizer = train_tokenizer((s for pair in train for s in pair), "bpe", args.vocab_size)

    def encode(pairs):
        src, tgt = zip(*pairs)
        enc = tokenizer(list(src), text_target=list(tgt), max_length=args.max_length, truncation=True)
        return [
            {"input_ids": i, "attention_mask": m, "labels": y}
            for i, m, y in zip(enc["input_ids"], enc["attention_mask"], enc["labels"])
        ]

    return tokenizer, encode(train), encode(validation)


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
    """The model at --seed's initialization, on --device."""
    torch.manual_seed(args.seed)
    if args.model == "transformer":
        config = _scratch_config("transformer", tokenizer, "de", "en", args.max_length + 2)
        config.update(_size_and_dropout(args))
        model = MODEL_CLASSES["transformer"][1](config)
    else:
        model = BartForConditionalGeneration(
            BartConfig(
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
        )
    if args.init == "fairseq":
        fairseq_init_(model)
    return model.to(args.device)


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


def batch_order(n_examples, batch_size, steps, seed):
    """`steps` index batches of `batch_size` rows: shuffled epochs, cut into batches."""
    rng, order = random.Random(seed), []
    while len(order) < steps * batch_size:
        epoch = list(range(n_examples))
        rng.shuffle(epoch)
        order += epoch
    return [order[i * batch_size : (i + 1) * batch_size] for i in range(steps)]


def loss_of(model, batch, label_smoothing):
    """Cross-entropy per target token (label-smoothed by `label_smoothing`)."""
    logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    return torch.nn.functional.cross_entropy(
        logits.flatten(0, 1), batch["labels"].flatten(), ignore_index=-100, label_smoothing=label_smoothing
    )


@torch.no_grad()
def validation_loss(model, batches):
    """Cross-entropy per target token over `batches`, dropout off."""
    model.eval()
    total, tokens = 0.0, 0
    for b in batches:
        n = int((b["labels"] != -100).sum())
        total += loss_of(model, b, 0.0).float().item() * n
        tokens += n
    model.train()
    return total / tokens
