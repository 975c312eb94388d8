"""Building blocks of `examples/translation/run_translation.py` and the `hf-gradinit` command: arguments, data,
tokenizer training, models from scratch and BLEU, shared so that both read the same flags."""

from .arguments import DataTrainingArguments, ModelArguments
from .data import load_raw_datasets, tokenize_datasets
from .metrics import translation_metrics
from .modeling import POST_LN_MODEL_TYPES, build_model
from .setup import dataset_label, parse_translation_arguments, prepare
from .tokenizer import load_or_train_tokenizer

__all__ = [
    "DataTrainingArguments",
    "ModelArguments",
    "POST_LN_MODEL_TYPES",
    "build_model",
    "dataset_label",
    "parse_translation_arguments",
    "prepare",
    "load_or_train_tokenizer",
    "load_raw_datasets",
    "tokenize_datasets",
    "translation_metrics",
]
