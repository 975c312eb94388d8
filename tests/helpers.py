"""Tiny models, a tokenizer and data built from configs, so tests need neither the Hub nor ../shared."""

from __future__ import annotations

import os
import random
import sys

import torch
from datasets import Dataset
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    BartConfig,
    BartForConditionalGeneration,
    DataCollatorForSeq2Seq,
    MarianConfig,
    MarianMTModel,
    PreTrainedTokenizerFast,
)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
from distributed import end_distributed_process  # noqa: E402, F401  (one copy, for the benchmark's workers too)

from hf_gradinit import GradInitConfig  # noqa: E402

WORDS = [f"w{i}" for i in range(40)]
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {tok: i for i, tok in enumerate(SPECIALS + WORDS)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )


def _common(vocab_size: int) -> dict:
    return dict(
        vocab_size=vocab_size,
        d_model=16,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=64,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
        dropout=0.1,
    )


def tiny_bart(seed: int = 0, dtype=torch.float32, **overrides) -> BartForConditionalGeneration:
    torch.manual_seed(seed)
    config = BartConfig(**{**_common(len(SPECIALS) + len(WORDS)), **overrides})
    return BartForConditionalGeneration(config).to(dtype)


def tiny_marian(seed: int = 0, **overrides) -> MarianMTModel:
    torch.manual_seed(seed)
    common = {**_common(len(SPECIALS) + len(WORDS)), "decoder_start_token_id": 1}
    config = MarianConfig(**{**common, **overrides})
    return MarianMTModel(config)


def translation_pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """A toy 'translation': the target is the source reversed with each word shifted by one."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        src = [rng.randrange(len(WORDS) - 1) for _ in range(rng.randint(3, 8))]
        tgt = [i + 1 for i in reversed(src)]
        pairs.append((" ".join(WORDS[i] for i in src), " ".join(WORDS[i] for i in tgt)))
    return pairs


def tokenized_dataset(tokenizer, n: int = 48, seed: int = 0) -> Dataset:
    pairs = translation_pairs(n, seed)
    enc = tokenizer([s for s, _ in pairs], text_target=[t for _, t in pairs])
    return Dataset.from_dict(
        {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": enc["labels"]}
    )


def collator(tokenizer, model) -> DataCollatorForSeq2Seq:
    return DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100)


def tiny_config(tmp_path, **overrides):
    """A GradInitConfig for the tiny models: a short search and one training step on CPU, nothing saved or logged."""
    defaults = dict(
        output_dir=str(tmp_path),
        gradinit_iters=3,
        gradinit_lr=5e-2,
        per_device_train_batch_size=6,
        max_steps=1,
        report_to="none",
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
    )
    return GradInitConfig(**{**defaults, **overrides})


def batches(tokenizer, model, n_batches: int = 3, batch_size: int = 6, seed: int = 0) -> list[dict]:
    """Padded batches as `model(**batch)` takes them."""
    ds = tokenized_dataset(tokenizer, n_batches * batch_size, seed)
    collate = collator(tokenizer, model)
    rows = [ds[i] for i in range(len(ds))]
    return [dict(collate(rows[i : i + batch_size])) for i in range(0, len(rows), batch_size)]


def console_script(name: str) -> list[str]:
    """The command line of a console script of this package: the one installed beside this Python (a venv's
    bin/ need not be on PATH), or the module run by this Python."""
    beside = os.path.join(os.path.dirname(sys.executable), name)
    return [beside] if os.path.isfile(beside) else [sys.executable, "-m", "hf_gradinit.cli"]


HF_GRADINIT = console_script("hf-gradinit")


def run_each_configuration(root: str, run) -> None:
    """A torchrun test script's loop: `run(folder, config)` for each entry of GRADINIT_CONFIGS (a JSON object, folder
    name → settings), in root/<folder>/, one after the other in the same processes."""
    import json

    for folder, config in json.loads(os.environ["GRADINIT_CONFIGS"]).items():
        os.makedirs(os.path.join(root, folder), exist_ok=True)
        run(os.path.join(root, folder), config)


# What every torchrun test script's Trainer shares: two training steps on the CPU, nothing logged or saved.
TWO_CPU_STEPS = dict(max_steps=2, report_to="none", use_cpu=True, save_strategy="no", disable_tqdm=True, seed=0)
