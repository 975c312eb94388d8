"""Loading translation pairs with `datasets` and tokenizing them."""

from __future__ import annotations

import gzip
import json
import logging

import datasets
import pyarrow as pa
import pyarrow.compute as pc
from datasets import DatasetDict, load_dataset

from .arguments import DataTrainingArguments

logger = logging.getLogger(__name__)

_SPLITS = {"train": "train_file", "validation": "validation_file", "test": "test_file"}
PARQUET_EXPORT = "refs/convert/parquet"  # the branch where the Hub keeps its Parquet conversion of a dataset
IWSLT14_DATASET = "bbaaaa/iwslt14-de-en"  # script-free in its Parquet export; see the README's "Data" section


def _fields(columns: tuple[str, str] | None, languages: tuple[str, str]) -> dict[str, str]:
    """How messages name each language's text: `translation.<lang>`, or its column with --source_column."""
    if columns:
        return dict(zip(languages, columns))
    return {lang: f"translation.{lang}" for lang in languages}


def check_translation_file(
    path: str, flag: str, languages: tuple[str, str], columns: tuple[str, str] | None = None
) -> int:
    """Read every line of a JSON lines file before any work; raise `ValueError` naming the file, the line and the
    field of the first bad one. `columns`: (source, target) text columns instead of a `translation` column of pairs.
    Returns the number of examples."""
    opener = gzip.open if path.endswith(".gz") else open
    fields = _fields(columns, languages)
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
            if columns:
                if not isinstance(row, dict):
                    raise ValueError(f'{where}: expected {{"{columns[0]}": ..., "{columns[1]}": ...}}.')
                pair, keys = row, dict(zip(languages, columns))
            else:
                pair = row.get("translation") if isinstance(row, dict) else None
                if not isinstance(pair, dict):
                    raise ValueError(
                        f'{where}: expected {{"translation": {{"{languages[0]}": ..., "{languages[1]}": ...}}}}.'
                    )
                keys = {lang: lang for lang in languages}
            for lang in languages:
                if keys[lang] not in pair:
                    raise ValueError(
                        f"{where}: {fields[lang]} is missing (the {'row' if columns else 'pair'} holds "
                        f"{sorted(pair)})."
                    )
                if not isinstance(pair[keys[lang]], str):
                    raise ValueError(f"{where}: {fields[lang]} is {json.dumps(pair[keys[lang]])}, not a string.")
            count += 1
    if count == 0:
        raise ValueError(f"--{flag} {path}: no examples (the file is empty).")
    return count


def _column(dataset, name: str) -> pa.Array:
    """One column as one Arrow array, in the dataset's row order (selections included)."""
    column = dataset.with_format("arrow")[name]
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def _first_null(array: pa.Array) -> int | None:
    return pc.index(pc.is_null(array), True).as_py() if array.null_count else None


def check_splits(raw: DatasetDict, data_args: DataTrainingArguments, source: str) -> None:
    """Every split holds both sides as text in every row: raise `ValueError` naming the split, the row and the field
    of the first problem (a missing column or language, a null, a non-text type). `source` names the data in messages
    (e.g. "--dataset_name bbaaaa/iwslt14-de-en")."""
    languages = (data_args.source_lang, data_args.target_lang)
    columns = (data_args.source_column, data_args.target_column) if data_args.source_column else None
    fields = _fields(columns, languages)
    for split, dataset in raw.items():
        where = f"{source}, {split} split"
        if len(dataset) == 0:
            raise ValueError(f"{where}: the split is empty.")
        if columns:
            sides = {}
            for lang, column in zip(languages, columns):
                if column not in dataset.column_names:
                    flag = "--source_column" if lang == languages[0] else "--target_column"
                    raise ValueError(
                        f"{where}: no column {column!r} ({flag}); its columns are {dataset.column_names}."
                    )
                sides[lang] = _column(dataset, column)
        else:
            if "translation" not in dataset.column_names:
                hint = ""
                if set(languages) <= set(dataset.column_names):
                    hint = (
                        f" It has one column per language: pass --source_column {languages[0]} "
                        f"--target_column {languages[1]}."
                    )
                raise ValueError(f"{where}: no 'translation' column (columns: {dataset.column_names}).{hint}")
            pairs = _column(dataset, "translation")
            if not pa.types.is_struct(pairs.type):
                raise ValueError(f"{where}: 'translation' holds {pairs.type}, not pairs of texts by language.")
            held = [pairs.type.field(i).name for i in range(pairs.type.num_fields)]
            children = dict(zip(held, pairs.flatten()))  # flatten() applies the rows' own nulls to each side
            for lang in languages:
                if lang not in children:
                    raise ValueError(
                        f"{where}: language '{lang}' is missing: its translation pairs hold {sorted(held)}."
                    )
            sides = {lang: children[lang] for lang in languages}
        for lang, values in sides.items():
            if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
                raise ValueError(f"{where}: {fields[lang]} holds {values.type}, not text.")
            row = _first_null(values)
            if row is not None:
                raise ValueError(f"{where}, row {row}: {fields[lang]} is null, not a string.")


def _as_translation_pairs(raw: DatasetDict, data_args: DataTrainingArguments) -> DatasetDict:
    """One text column per language → the `translation` column of pairs the rest of the pipeline reads."""
    src, tgt = data_args.source_lang, data_args.target_lang
    scol, tcol = data_args.source_column, data_args.target_column

    def pairs(batch):
        return {"translation": [{src: s, tgt: t} for s, t in zip(batch[scol], batch[tcol])]}

    return DatasetDict(
        {
            split: dataset.map(pairs, batched=True, remove_columns=dataset.column_names, desc=f"Pairing {split}")
            for split, dataset in raw.items()
        }
    )


def load_hub_dataset(
    data_args: DataTrainingArguments, cache_dir: str | None = None, token: str | None = None
) -> DatasetDict:
    """`datasets.load_dataset` of --dataset_name at --dataset_revision. In the Hub's Parquet export
    (refs/convert/parquet) each config is a folder, so --dataset_config_name selects that folder. A dataset built by
    a loading script, which `datasets` ≥ 4 refuses, gets an error that says what to use instead."""
    name, config, data_dir = data_args.dataset_name, data_args.dataset_config_name, None
    if data_args.dataset_revision == PARQUET_EXPORT and config:
        config, data_dir = None, config
    try:
        return load_dataset(
            name, config, data_dir=data_dir, revision=data_args.dataset_revision, cache_dir=cache_dir, token=token
        )
    except RuntimeError as e:
        if "Dataset scripts are no longer supported" not in str(e):
            raise
        script = str(e).rsplit(" ", 1)[-1]
        raise ValueError(
            f"--dataset_name {name} (revision {data_args.dataset_revision}) is built by a loading script ({script}), "
            f"which datasets {datasets.__version__} no longer runs. Use a script-free version of it: the Hub's "
            "Parquet "
            f"export (add --dataset_revision {PARQUET_EXPORT}; --dataset_config_name then names the export's folder), "
            f"another Parquet/JSON copy (for IWSLT'14 German-English: --dataset_name {IWSLT14_DATASET} "
            f"--dataset_revision {PARQUET_EXPORT}), or local JSON lines files (--train_file, --validation_file)."
        ) from None


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


def load_raw_datasets(
    data_args: DataTrainingArguments, cache_dir: str | None = None, token: str | None = None
) -> DatasetDict:
    """The splits from the Hub or from local JSON lines files, checked row by row to hold the language pair, as a
    `translation` column of pairs (whichever layout the data came in)."""
    languages = (data_args.source_lang, data_args.target_lang)
    columns = (data_args.source_column, data_args.target_column) if data_args.source_column else None
    if data_args.dataset_name is not None:
        raw = load_hub_dataset(data_args, cache_dir=cache_dir, token=token)
        source = f"--dataset_name {data_args.dataset_name}"
    else:
        files = {split: getattr(data_args, arg) for split, arg in _SPLITS.items() if getattr(data_args, arg)}
        for split, path in files.items():
            check_translation_file(path, _SPLITS[split], languages, columns)
        raw = load_dataset("json", data_files=files, cache_dir=cache_dir)
        source = "the local files"
    check_splits(raw, data_args, source)
    if columns:
        raw = _as_translation_pairs(raw, data_args)
    raw = _drop_empty_sides(raw, languages)
    for split, limit in (
        ("train", data_args.max_train_samples),
        ("validation", data_args.max_eval_samples),
        ("test", data_args.max_predict_samples),
    ):
        if limit is not None and split in raw:
            raw[split] = raw[split].select(range(min(limit, len(raw[split]))))
    return raw


def tokenize_datasets(
    raw: DatasetDict, tokenizer, data_args: DataTrainingArguments, main_process_first
) -> DatasetDict:
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
