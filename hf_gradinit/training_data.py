"""Refuse, before the search or training starts, training data that cannot give a seq2seq loss.

Without these checks a dataset with no `labels` fails deep inside the loss (transformers' label smoother reads
`labels.dim()` of `None`), after the search has already run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

# What a seq2seq training batch needs: the source ids the encoder reads and the target ids the loss compares with.
REQUIRED_COLUMNS = ("input_ids", "labels")
_HOW = "tokenize the source into `input_ids` and the target into `labels`, e.g. tokenizer(source, text_target=target)"


# Rows read from the start of a dataset to tell an empty column (every row an empty list) from a real one.
_ROWS_READ = 64


def check_columns(dataset: Any) -> None:
    """A dataset must not be empty; one with column names must have `input_ids` and `labels`, not empty in every
    one of its first rows (iterable datasets are left to `check_batch`)."""
    if hasattr(dataset, "__len__") and len(dataset) == 0:
        raise ValueError("train_dataset is empty: the GradInit search and training need at least one example.")
    columns = getattr(dataset, "column_names", None)
    if not isinstance(columns, (list, tuple)):
        return
    for name in REQUIRED_COLUMNS:
        if name not in columns:
            raise ValueError(f"train_dataset has no {name!r} column (its columns: {list(columns)}): {_HOW}.")
    if hasattr(dataset, "select") and len(dataset):
        head = dataset.select(range(min(_ROWS_READ, len(dataset))))
        for name in REQUIRED_COLUMNS:
            if all(row is None or len(row) == 0 for row in head[name]):
                raise ValueError(
                    f"The {name!r} column of train_dataset is empty in its first {len(head)} rows: {_HOW}."
                )


def check_batch(batch: Mapping[str, Any]) -> None:
    """The first training batch, as the collator made it, must hold non-empty `input_ids` and `labels`."""
    for name in REQUIRED_COLUMNS:
        value = batch.get(name)
        if value is None:
            raise ValueError(
                f"The training batches have no {name!r}: the data collator did not make them (its batch holds "
                f"{sorted(batch)}). Pass a collator that keeps {name!r}, e.g. DataCollatorForSeq2Seq(tokenizer, "
                "model=model), or " + _HOW + "."
            )
        if torch.is_tensor(value) and (value.numel() == 0 or (name == "labels" and bool((value == -100).all()))):
            raise ValueError(
                f"The {name!r} of the first training batch are empty{' (all -100)' if value.numel() else ''}: "
                f"check the {name!r} column of train_dataset ({_HOW})."
            )


__all__ = ["REQUIRED_COLUMNS", "check_batch", "check_columns"]
