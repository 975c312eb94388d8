"""Model and data arguments, shaped like those of the Hugging Face `run_translation.py` example."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .modeling import INITIALIZATIONS, MODEL_CLASSES, PRESETS

_EXTENSIONS = (".json", ".jsonl", ".json.gz", ".jsonl.gz")


@dataclass
class ModelArguments:
    """Which model and tokenizer to train: a pretrained one, or one built from a config (from scratch)."""

    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Pretrained model name or path. Leave out to train from scratch with --model_type."},
    )
    model_type: str | None = field(
        default=None,
        metadata={
            "help": "Model type to build from scratch. 'transformer' is fairseq's Post-LN Transformer (the GradInit "
            "paper's model) in Marian's classes; 'bart', 'marian', 'fsmt' are those models' own layouts.",
            "choices": sorted(MODEL_CLASSES),
        },
    )
    init: str = field(
        default="model",
        metadata={
            "help": "Initialization of a model built from scratch: 'model' (the model class's own, N(0, 0.02) for "
            "BART/Marian) or 'fairseq' (fairseq's transformer init, the GradInit paper's starting point).",
            "choices": list(INITIALIZATIONS),
        },
    )
    preset: str | None = field(
        default=None,
        metadata={
            "help": "A preset for --model_type ('iwslt14': the GradInit paper's IWSLT'14 setting: 6+6 layers, d 512, "
            "ffn 1024, 4 heads, dropout 0.3/0.1/0.1; and, unless given explicitly, its training and GradInit flags: "
            "Adam (0.9, 0.98), lr 5e-4, linear decay, no warmup, no gradient clipping, weight decay 1e-4, label "
            "smoothing 0.1, batches of 4096 tokens (max_tokens) and search batches of 6000 (gradinit_max_tokens; "
            "rows when --per_device_train_batch_size or --gradinit_batch_size is given), 780 search iterations, "
            "scale lr 2.5e-3, LayerNorm scales up to 100).",
            "choices": sorted(PRESETS),
        },
    )
    config_overrides: str | None = field(
        default=None,
        metadata={"help": "Config overrides when training from scratch, e.g. 'd_model=256,encoder_layers=3'."},
    )
    config_name: str | None = field(
        default=None, metadata={"help": "Pretrained config name or path, if not the model's."}
    )
    tokenizer_name: str | None = field(
        default=None, metadata={"help": "Pretrained tokenizer name or path, if not the model's."}
    )
    train_tokenizer: bool = field(
        default=False,
        metadata={"help": "Train a joint source/target tokenizer on the training split (saved beside the model)."},
    )
    tokenizer_type: str = field(
        default="bpe",
        metadata={"help": "Tokenizer model to train: 'bpe' or 'unigram'.", "choices": ["bpe", "unigram"]},
    )
    tokenizer_preprocessing: str = field(
        default="sentencepiece",
        metadata={
            "help": "How a trained tokenizer prepares the text: 'sentencepiece' (NFKC, SentencePiece-style word "
            "boundaries; punctuation stays on its word) or 'paper' (the GradInit paper's data, fairseq's "
            "prepare-iwslt14.sh: also lowercased, punctuation split off the words, as Moses tokenizes). Default: "
            "'sentencepiece', hf_gradinit 0.2's: on the benchmarks' cell training without warmup collapsed with "
            "either (BENCHMARKS.md §7).",
            "choices": ["sentencepiece", "paper"],
        },
    )
    vocab_size: int = field(default=10000, metadata={"help": "Vocabulary size of a trained tokenizer."})
    cache_dir: str | None = field(default=None, metadata={"help": "Where to store downloaded models and datasets."})
    model_revision: str = field(default="main", metadata={"help": "Model version (branch, tag or commit)."})
    token: str | None = field(default=None, metadata={"help": "Hugging Face token for private models and datasets."})

    def __post_init__(self):
        if self.model_type is not None and self.model_type not in MODEL_CLASSES:
            raise ValueError(f"--model_type {self.model_type!r} is not one of {sorted(MODEL_CLASSES)}.")
        if self.init not in INITIALIZATIONS:
            raise ValueError(f"--init {self.init!r} is not one of {list(INITIALIZATIONS)}.")
        if self.model_name_or_path is not None and self.init != "model":
            raise ValueError(
                "--init only applies to models trained from scratch (--model_type): it would overwrite the "
                "pretrained weights."
            )
        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(f"--preset {self.preset!r} is not one of {sorted(PRESETS)}.")
        if self.model_name_or_path is None and self.model_type is None:
            raise ValueError("Give --model_name_or_path (a pretrained model) or --model_type (train from scratch).")
        if self.model_name_or_path is not None and (self.config_overrides or self.preset):
            raise ValueError(
                "--config_overrides and --preset only apply to models trained from scratch (--model_type)."
            )
        if self.vocab_size < 16:
            raise ValueError(f"--vocab_size must be at least 16, got {self.vocab_size}.")


@dataclass
class DataTrainingArguments:
    """What data to train and evaluate on."""

    source_lang: str = field(default=None, metadata={"help": "Source language id, e.g. 'de'."})
    target_lang: str = field(default=None, metadata={"help": "Target language id, e.g. 'en'."})
    dataset_name: str | None = field(
        default=None,
        metadata={
            "help": "A script-free (Parquet/JSON) dataset on the Hub, e.g. 'bbaaaa/iwslt14-de-en' (with "
            "--dataset_revision refs/convert/parquet)."
        },
    )
    dataset_config_name: str | None = field(
        default=None,
        metadata={
            "help": "Dataset config. With --dataset_revision refs/convert/parquet (the Hub's Parquet export), "
            "the export's folder of that config."
        },
    )
    dataset_revision: str = field(
        default="main",
        metadata={"help": "Dataset version on the Hub: branch, tag or commit (e.g. refs/convert/parquet)."},
    )
    source_column: str | None = field(
        default=None,
        metadata={
            "help": "Column holding the source text, for data with one text column per language instead of a "
            "'translation' column of pairs (give --target_column too)."
        },
    )
    target_column: str | None = field(
        default=None, metadata={"help": "Column holding the target text (with --source_column)."}
    )
    train_file: str | None = field(
        default=None,
        metadata={
            "help": "JSON lines file ({'translation': {src: ..., tgt: ...}} per line, or one text column per "
            "language with --source_column/--target_column; gzip ok)."
        },
    )
    validation_file: str | None = field(default=None, metadata={"help": "Validation JSON lines file."})
    test_file: str | None = field(default=None, metadata={"help": "Test JSON lines file."})
    overwrite_cache: bool = field(
        default=False, metadata={"help": "Redo the preprocessing instead of reusing the cache."}
    )
    preprocessing_num_workers: int | None = field(default=None, metadata={"help": "Processes for preprocessing."})
    max_source_length: int = field(default=128, metadata={"help": "Longest source in tokens; longer is truncated."})
    max_target_length: int = field(default=128, metadata={"help": "Longest target in tokens; longer is truncated."})
    val_max_target_length: int | None = field(
        default=None, metadata={"help": "Longest generated target in evaluation. Defaults to max_target_length."}
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep only this many training examples."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Keep only this many validation examples."})
    max_predict_samples: int | None = field(default=None, metadata={"help": "Keep only this many test examples."})
    num_beams: int | None = field(
        default=None, metadata={"help": "Beams for generation in evaluation and prediction."}
    )
    ignore_pad_token_for_loss: bool = field(
        default=True, metadata={"help": "Leave padded label tokens out of the loss."}
    )
    source_prefix: str | None = field(default=None, metadata={"help": "Text put before every source (e.g. for T5)."})

    def __post_init__(self):
        if self.source_lang is None or self.target_lang is None:
            raise ValueError("--source_lang and --target_lang are required (e.g. --source_lang de --target_lang en).")
        if (
            self.dataset_name is None
            and self.train_file is None
            and self.validation_file is None
            and self.test_file is None
        ):
            raise ValueError("Give --dataset_name or at least one of --train_file, --validation_file, --test_file.")
        for name in ("train_file", "validation_file", "test_file"):
            path = getattr(self, name)
            if path is None:
                continue
            if not path.endswith(_EXTENSIONS):
                raise ValueError(f"--{name} {path}: expected a JSON lines file ({', '.join(_EXTENSIONS)}).")
            if not os.path.isfile(path):
                raise FileNotFoundError(f"--{name} {path}: no such file.")
        if (self.source_column is None) != (self.target_column is None):
            raise ValueError(
                "--source_column and --target_column go together: give both (e.g. --source_column de --target_column "
                "en)."
            )
        if self.source_column is not None and self.source_column == self.target_column:
            raise ValueError(f"--source_column and --target_column are both {self.source_column!r}: name two columns.")
        if self.source_lang == self.target_lang:
            raise ValueError(
                f"--source_lang and --target_lang are both {self.source_lang!r}: a translation needs two languages."
            )
        if self.val_max_target_length is None:
            self.val_max_target_length = self.max_target_length
        for name in ("max_source_length", "max_target_length", "val_max_target_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"--{name} must be a positive number of tokens, got {value!r}.")
