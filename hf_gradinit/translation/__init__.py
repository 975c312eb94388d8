"""Building blocks of `examples/translation/run_translation.py` and the `hf-gradinit` command: arguments, data,
tokenizer training, models from scratch and BLEU, shared so that both read the same flags."""

import importlib

_EXPORTS = {
    "DataTrainingArguments": "arguments",
    "ModelArguments": "arguments",
    "load_raw_datasets": "data",
    "tokenize_datasets": "data",
    "translation_metrics": "metrics",
    "POST_LN_MODEL_TYPES": "modeling",
    "build_model": "modeling",
    "dataset_label": "setup",
    "parse_translation_arguments": "setup",
    "prepare": "setup",
    "load_or_train_tokenizer": "tokenizer",
    "train_tokenizer": "tokenizer",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    # Lazy: `hf_gradinit.translation.tokenizer` alone must not need `datasets` (the benchmarks import it).
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
