"""Loading translation pairs with `datasets` and tokenizing them."""

from __future__ import annotations

from datasets import DatasetDict, load_dataset

from .arguments import DataTrainingArguments

_SPLITS = {"train": "train_file", "validation": "validation_file", "test": "test_file"}


def load_raw_datasets(data_args: DataTrainingArguments, cache_dir: str | None = None, token: str | None = None) -> DatasetDict:
    """The splits from the Hub or from local JSON lines files, checked to hold the language pair."""
    if data_args.dataset_name is not None:
        raw = load_dataset(data_args.dataset_name, data_args.dataset_config_name, cache_dir=cache_dir, token=token)
    else:
        files = {split: getattr(data_args, arg) for split, arg in _SPLITS.items() if getattr(data_args, arg)}
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
