"""Training data that cannot give a seq2seq loss is refused by `train()` before the search, naming the column."""

import pytest
import torch

from helpers import collator, tiny_bart, tiny_tokenizer, tokenized_dataset
from hf_gradinit import GradInitConfig, GradInitTrainer


def _train(tmp_path, dataset, **kwargs):
    tok = tiny_tokenizer()
    args = GradInitConfig(
        output_dir=str(tmp_path),
        gradinit_iters=2,
        per_device_train_batch_size=6,
        max_steps=1,
        report_to="none",
        save_strategy="no",
    )
    trainer = GradInitTrainer(tiny_bart(), args, dataset, processing_class=tok, **kwargs)
    with pytest.raises(ValueError) as error:
        trainer.train()
    # Refused before any work: no search ran, nothing was written.
    assert trainer.gradinit_result is None and not (tmp_path / "gradinit").exists()
    return str(error.value)


@pytest.mark.parametrize("column", ["labels", "input_ids"])
def test_a_missing_column_is_named(tmp_path, column):
    message = _train(tmp_path, tokenized_dataset(tiny_tokenizer(), 12).remove_columns(column))
    assert f"train_dataset has no {column!r} column" in message and "text_target" in message


@pytest.mark.parametrize("column", ["labels", "input_ids"])
def test_an_empty_column_is_named(tmp_path, column):
    empty = tokenized_dataset(tiny_tokenizer(), 12).map(lambda row: {column: []})
    assert f"The {column!r} column of train_dataset is empty" in _train(tmp_path, empty)


def test_a_collator_that_makes_no_labels_is_named(tmp_path):
    tok = tiny_tokenizer()
    pad = collator(tok, tiny_bart())

    def drops_labels(rows):
        batch = pad(rows)
        batch.pop("labels")
        batch.pop("decoder_input_ids", None)
        return batch

    message = _train(tmp_path, tokenized_dataset(tok, 12), data_collator=drops_labels)
    assert "The training batches have no 'labels'" in message and "DataCollatorForSeq2Seq" in message


def test_labels_that_are_all_padding_are_named(tmp_path):
    tok = tiny_tokenizer()
    pad = collator(tok, tiny_bart())

    def masks_labels(rows):
        batch = pad(rows)
        batch["labels"] = torch.full_like(batch["labels"], -100)
        return batch

    message = _train(tmp_path, tokenized_dataset(tok, 12), data_collator=masks_labels)
    assert "The 'labels' of the first training batch are empty (all -100)" in message
