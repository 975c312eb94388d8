"""Loading translation pairs with `datasets` and tokenizing them."""

from __future__ import annotations

import gzip
import json
import logging

from datasets import DatasetDict, load_dataset

from .arguments import DataTrainingArguments

logger = logging.getLogger(__name__)

_SPLITS = {"train": "train_file", "validation": "validation_file", "test": "test_file"}


def check_translation_file(path: str, flag: str, languages: tuple[str, str]) -> int:
    """Read every line of a JSON lines file before any work; raise `ValueError` naming the file, the line and the
    field of the first bad one. Returns the number of examples."""
    opener = gzip.open if path.endswith(".gz") else open
    count = 0
    with opener(path, "rt", encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"--{flag} {path}, line {number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{where}: not valid JSON ({e.msg} at column {e.colno}).") from None
            pair = row.get("translation") if isinstance(row, dict) else None
            if not isinstance(pair, dict):
                raise ValueError(f'{where}: expected {{"translation": {{"{languages[0]}": ..., "{languages[1]}": ...}}}}.')
            for lang in languages:
                if lang not in pair:
                    raise ValueError(f"{where}: translation.{lang} is missing (the pair holds {sorted(pair)}).")
                if not isinstance(pair[lang], str):
                    raise ValueError(f"{where}: translation.{lang} is {json.dumps(pair[lang])}, not a string.")
            count += 1
    if count == 0:
        raise ValueError(f"--{flag} {path}: no examples (the file is empty).")
    return count


def _drop_empty_sides(raw: DatasetDict, languages: tuple[str, str]) -> DatasetDict:
    """Pairs with an empty (or whitespace) side teach nothing and make empty labels: drop them, saying how many."""

    def complete(example):
        pair = example["translation"]
        return all(isinstance(pair.get(lang), str) and pair[lang].strip() for lang in languages)

    for split in list(raw):
        before = len(raw[split])
        raw[split] = raw[split].filter(complete, desc=f"Dropping empty pairs from {split}")
        if len(raw[split]) < before:
            logger.warning("%s: dropped %d of %d pairs with an empty side.", split, before - len(raw[split]), before)
        if len(raw[split]) == 0:
            raise ValueError(f"The {split} split has no pair with both sides non-empty.")
    return raw


def load_raw_datasets(data_args: DataTrainingArguments, cache_dir: str | None = None, token: str | None = None) -> DatasetDict:
    """The splits from the Hub or from local JSON lines files, checked to hold the language pair."""
    languages = (data_args.source_lang, data_args.target_lang)
    if data_args.dataset_name is not None:
        raw = load_dataset(data_args.dataset_name, data_args.dataset_config_name, cache_dir=cache_dir, token=token)
    else:
        files = {split: getattr(data_args, arg) for split, arg in _SPLITS.items() if getattr(data_args, arg)}
        for split, path in files.items():
            check_translation_file(path, _SPLITS[split], languages)
        raw = load_dataset("json", data_files=files, cache_dir=cache_dir)
    for split, dataset in raw.items():
        if "translation" not in dataset.column_names:
            raise ValueError(f"The {split} split has no 'translation' column (columns: {dataset.column_names}).")
        if len(dataset) == 0:
            raise ValueError(f"The {split} split is empty.")
        pair = dataset[0]["translation"]
        for lang in (data_args.source_lang, data_args.target_lang):
            if lang not in pair:
                raise ValueError(
                    f"Language '{lang}' is not in the {split} split: its translation pairs hold {sorted(pair)}."
                )
    raw = _drop_empty_sides(raw, languages)
    for split, limit in (
        ("train", data_args.max_train_samples),
        ("validation", data_args.max_eval_samples),
        ("test", data_args.max_predict_samples),
    ):
        if limit is not None and split in raw:
            raw[split] = raw[split].select(range(min(limit, len(raw[split]))))
    return raw


def tokenize_datasets(raw: DatasetDict, tokenizer, data_args: DataTrainingArguments, main_process_first) -> DatasetDict:
    """input_ids, attention_mask and labels for every split; `main_process_first` is the Trainer args' context."""
    prefix = data_args.source_prefix or ""
    src, tgt = data_args.source_lang, data_args.target_lang
    # Room for the special tokens the tokenizer adds and at least one token of text.
    shortest = tokenizer.num_special_tokens_to_add() + 1
    for flag in ("max_source_length", "max_target_length", "val_max_target_length"):
        if getattr(data_args, flag) < shortest:
            raise ValueError(
                f"--{flag} {getattr(data_args, flag)} leaves no room for text: the tokenizer adds "
                f"{shortest - 1} special tokens, so use at least {shortest}."
            )

    def preprocess(examples, max_target_length):
        sources = [prefix + pair[src] for pair in examples["translation"]]
        targets = [pair[tgt] for pair in examples["translation"]]
        model_inputs = tokenizer(sources, max_length=data_args.max_source_length, truncation=True)
        labels = tokenizer(text_target=targets, max_length=max_target_length, truncation=True)
        model_inputs["labels"] = labels["input_ids"]
        return model_inputs

    tokenized = DatasetDict()
    for split, dataset in raw.items():
        max_len = data_args.max_target_length if split == "train" else data_args.val_max_target_length
        with main_process_first(desc=f"{split} dataset map pre-processing"):
            tokenized[split] = dataset.map(
                preprocess,
                batched=True,
                fn_kwargs={"max_target_length": max_len},
                num_proc=data_args.preprocessing_num_workers,
                remove_columns=dataset.column_names,
                load_from_cache_file=not data_args.overwrite_cache,
                desc=f"Tokenizing {split}",
            )
    return tokenized
