"""Token-budget batches, made as fairseq's `batch_by_size` makes them, batch for batch.

A batch of rows padded to its longest example costs rows × longest tokens. fairseq counts batches in those
tokens (`--max-tokens`), not in rows. Its translation data orders the examples by source length, then by target
length, ties in the order of a seeded permutation (`LanguagePairDataset.ordered_indices` under `numpy_seed(seed)`),
and packs them greedily while rows × the batch's longest side stays within the budget, a full batch cut back to a
multiple of 8 rows (`--required-batch-size-multiple`), the rows cut off starting the next; every epoch shuffles the
order of the batches (numpy's seed `seed + epoch`, epochs counted from 1), not their contents. Long sentences then
come in small batches and short ones in large batches, with little padding either way. With the same lengths and
seed, `TokenBudgetBatchSampler` gives fairseq's batches in fairseq's order (`benchmarks/peer/batch_parity.py` checks
it against the authors' fairseq on a 227k-pair corpus).

`TokenBudgetBatchSampler` is a batch sampler for `torch.utils.data.DataLoader(batch_sampler=...)`. With several
processes, Accelerate's `BatchSamplerShard` deals its batches round-robin, so each process gets whole batches
of its own, as each fairseq GPU does; the sampler splits its largest batches until their count is a multiple of
the process count, so that every example is seen exactly once per epoch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from functools import partial
from typing import Any

import datasets
import numpy as np
from torch.utils.data import Sampler

logger = logging.getLogger(__name__)


def example_sizes(dataset: Any, source_key: str = "input_ids", target_key: str = "labels") -> np.ndarray:
    """One row (source length, target length) per example, 0 for a missing column: fairseq orders batches by
    both."""
    if isinstance(dataset, datasets.Dataset):
        keys = [k for k in (source_key, target_key) if k in dataset.column_names]
        if not keys:
            raise ValueError(
                f"Token budgets need the examples' lengths: the training dataset has no {source_key!r} or "
                f"{target_key!r} column (columns: {dataset.column_names})."
            )
        import pyarrow.compute as pc

        parts = []
        # Arrow list lengths, read in chunks through the dataset's own row mapping (select/shuffle).
        for table in dataset.select_columns(keys).with_format("arrow").iter(batch_size=65536):
            zeros = np.zeros(table.num_rows, dtype=np.int64)
            parts.append(
                np.stack(
                    [
                        np.asarray(pc.fill_null(pc.list_value_length(table[k]), 0)) if k in keys else zeros
                        for k in (source_key, target_key)
                    ],
                    axis=1,
                )
            )
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros((0, 2), dtype=np.int64)
    sizes = []
    for i in range(len(dataset)):
        example = dataset[i]
        if source_key not in example and target_key not in example:
            raise ValueError(
                f"Token budgets need the examples' lengths: training example {i} has no {source_key!r} or "
                f"{target_key!r}."
            )
        sizes.append([len(example.get(source_key, ())), len(example.get(target_key, ()))])
    return np.asarray(sizes, dtype=np.int64).reshape(-1, 2)


def example_lengths(dataset: Any, source_key: str = "input_ids", target_key: str = "labels") -> np.ndarray:
    """One length per example, the longer of its source and its labels: what its row costs in a padded batch."""
    return example_sizes(dataset, source_key, target_key).max(axis=1, initial=0)


def _pack(order: np.ndarray, lengths: np.ndarray, max_tokens: int, multiple: int) -> list[np.ndarray]:
    """fairseq's `batch_by_size_vec`, step for step: `order` is packed greedily within `max_tokens` padded tokens;
    a batch grows by whole multiples of `multiple` rows (any size below it), so when the next row would exceed the
    budget the batch closes at its last multiple and the rows after it (the tail) start the next one."""
    tokens = lengths[order]
    ends = np.zeros(len(order), dtype=np.int64)  # ends[k]: where batch k ends (batch `count` is the open one)
    count = batch_start = tail_longest = batch_longest = 0
    for pos in range(len(order)):
        tail_longest = max(tail_longest, int(tokens[pos]))
        rows = pos + 1 - batch_start
        longest = max(batch_longest, tail_longest)
        overflow = rows * longest > max_tokens
        if overflow:
            if tail_longest * (pos + 1 - ends[count]) > max_tokens:
                # The tail alone is too big with this row: it closes as a batch of its own, the row starts anew.
                count += 1
                ends[count] = pos
                tail_longest = int(tokens[pos])
            batch_start = ends[count]
            count += 1
            longest = tail_longest
        if overflow or rows < multiple or rows % multiple == 0:
            ends[count] = pos + 1
            batch_longest, tail_longest = longest, 0
    if ends[count] != len(order):
        count += 1
    return [b for b in np.split(order, ends[:count]) if len(b)]


class TokenBudgetBatchSampler(Sampler[list[int]]):
    """Batches of at most `max_tokens` padded tokens (rows × the batch's longest length), fairseq style.

    Args:
        lengths: one (source length, target length) row per example (see `example_sizes`), ordered as fairseq
            orders translation pairs; or one length per example (see `example_lengths`), ordered by it.
        max_tokens: the budget of a batch, in padded tokens (rows × the longest side).
        seed: seeds the tie-breaking permutation (once) and the order of the batches (anew every epoch), with
            numpy's legacy generator as fairseq's `numpy_seed`.
        batch_size_multiple: a full batch is cut back to a multiple of this many rows (fairseq's
            `--required-batch-size-multiple`, 8 by default there and here).
        num_processes: the batches are split until their count is a multiple of it (see the module's docstring).
        skip_too_long: drop examples longer than `max_tokens` (their count is logged) instead of raising.
        min_rows: drop batches with fewer rows (logged); the GradInit search needs 3 rows to split a batch.
        what: how errors name the budget, e.g. "max_tokens".

    Raises:
        ValueError: before any batch is made, for an example longer than `max_tokens` (its index and length
            named) unless `skip_too_long`, or when nothing is left to batch.
    """

    # What Accelerate reads of a batch sampler: no fixed batch size, nothing dropped.
    batch_size = None
    drop_last = False

    def __init__(
        self,
        lengths: Sequence[int] | np.ndarray,
        max_tokens: int,
        *,
        seed: int = 0,
        num_processes: int = 1,
        skip_too_long: bool = False,
        min_rows: int = 1,
        batch_size_multiple: int = 8,
        what: str = "max_tokens",
    ):
        sizes = np.asarray(lengths, dtype=np.int64)
        if sizes.ndim not in (1, 2) or (sizes.ndim == 2 and sizes.shape[1] != 2):
            raise ValueError(f"lengths must be one length or one (source, target) pair per example, got {sizes.shape}")
        lengths = sizes.max(axis=1, initial=0) if sizes.ndim == 2 else sizes
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, (int, np.integer)) or max_tokens < 1:
            raise ValueError(f"{what} must be a positive number of tokens, got {max_tokens!r}.")
        self.max_tokens, self.seed, self.epoch = int(max_tokens), int(seed), 0
        too_long = np.flatnonzero(lengths > self.max_tokens)
        if too_long.size and not skip_too_long:
            i = int(too_long[0])
            raise ValueError(
                f"Training example {i} has {int(lengths[i])} tokens, more than {what}={self.max_tokens} "
                f"({too_long.size} such examples). Raise {what}, shorten the examples (max_source_length / "
                "max_target_length), or drop them with skip_invalid_size_inputs=True."
            )
        if too_long.size:
            logger.warning("Dropped %d training examples longer than %s=%d.", too_long.size, what, self.max_tokens)
        # fairseq's order: a seeded permutation, stably sorted by target length, then by source length (or by the
        # one length given); examples over the budget are taken out after ordering, as fairseq filters them.
        order = np.random.RandomState(self.seed).permutation(len(lengths))
        for key in (sizes[:, 1], sizes[:, 0]) if sizes.ndim == 2 else (lengths,):
            order = order[np.argsort(key[order], kind="mergesort")]
        order = order[lengths[order] <= self.max_tokens]
        batches = [b.tolist() for b in _pack(order, lengths, self.max_tokens, batch_size_multiple)]
        short = [b for b in batches if len(b) < min_rows]
        if short:
            logger.warning(
                "Dropped %d batches of fewer than %d rows (%d examples) under %s=%d.",
                len(short),
                min_rows,
                sum(map(len, short)),
                what,
                self.max_tokens,
            )
            batches = [b for b in batches if len(b) >= min_rows]
        if not batches:
            raise ValueError(f"No batch of at least {min_rows} rows fits {what}={self.max_tokens}.")
        self.batches = _divisible(batches, num_processes, min_rows)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[list[int]]:
        # fairseq shuffles epoch e's batches under numpy_seed(seed + e), its epochs counted from 1, the Trainer's
        # from 0.
        order = np.arange(len(self.batches))
        np.random.RandomState(self.seed + self.epoch + 1).shuffle(order)
        for i in order.tolist():
            yield list(self.batches[i])

    def __len__(self) -> int:
        return len(self.batches)


def _divisible(batches: list[list[int]], num_processes: int, min_rows: int) -> list[list[int]]:
    """Split the batch with the most rows in two until the count is a multiple of `num_processes`: each process
    then gets as many batches as the others and no example is repeated. A half of a batch is within its budget."""
    batches = list(batches)
    while len(batches) % num_processes:
        largest = max(range(len(batches)), key=lambda i: len(batches[i]))
        rows = len(batches[largest])
        if rows < 2 * min_rows:
            logger.warning(
                "%d token-budget batches cannot be dealt evenly to %d processes; Accelerate repeats the first "
                "batches to even them out.",
                len(batches),
                num_processes,
            )
            break
        batch = batches.pop(largest)
        batches[largest:largest] = [batch[: rows // 2], batch[rows // 2 :]]
    return batches


def token_budget_dataloader(trainer, max_tokens: int, *, what: str, min_rows: int = 1):
    """The train dataloader of a `transformers.Trainer`, with `TokenBudgetBatchSampler` batches of the training
    data instead of rows: the Trainer's column removal, collator and worker settings, prepared by its
    accelerator (which deals whole batches to the processes)."""
    from torch.utils.data import DataLoader
    from transformers.trainer_utils import seed_worker

    args = trainer.args
    dataset, collate = trainer.train_dataset, trainer.data_collator
    if isinstance(dataset, datasets.Dataset):
        dataset = trainer._remove_unused_columns(dataset, description="training")
    else:
        collate = trainer._get_collator_with_removed_columns(collate, description="training")
    sampler = TokenBudgetBatchSampler(
        trainer.train_example_sizes(),
        max_tokens,
        seed=args.data_seed if args.data_seed is not None else args.seed,
        num_processes=trainer.accelerator.num_processes,
        skip_too_long=args.skip_invalid_size_inputs,
        min_rows=min_rows,
        what=what,
    )
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collate,
        num_workers=args.dataloader_num_workers,
        pin_memory=args.dataloader_pin_memory,
        persistent_workers=args.dataloader_persistent_workers,
        prefetch_factor=args.dataloader_prefetch_factor,
        worker_init_fn=partial(seed_worker, num_workers=args.dataloader_num_workers, rank=args.process_index),
    )
    prepared = trainer.accelerator.prepare(loader)
    shard = getattr(prepared, "batch_sampler", None)
    if shard is not None and shard is not sampler and not hasattr(shard, "set_epoch"):
        # Accelerate's BatchSamplerShard does not pass set_epoch on, and a resumed run wraps it once more
        # (skip_first_batches): forward it so that every epoch, resumed or not, has its own batch order.
        shard.set_epoch = sampler.set_epoch
    return prepared


__all__ = ["TokenBudgetBatchSampler", "example_lengths", "example_sizes", "token_budget_dataloader"]
