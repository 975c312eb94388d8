"""Decoder inputs built from the labels without touching the labels.

Two traps of encoder–decoders in transformers, both met by FSMT (fairseq's WMT models):

- `DataCollatorForSeq2Seq(tokenizer, model=model)` calls `model.prepare_decoder_input_ids_from_labels(labels)`,
  and FSMT's `shift_tokens_right` replaces −100 by the pad id *in place*: the collated labels lose their −100 and
  padding enters the loss.
- Given labels but no `decoder_input_ids`, FSMT builds its decoder inputs from the *source* ids (a fairseq legacy
  default) instead of the labels, so `model(**batch).loss` is not the translation loss.

`label_safe_collator` wraps such a collator; `with_decoder_inputs` completes a labels-only batch the way the
collator would have.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch


def _unwrap(model):
    # DDP / accelerate wrappers keep the model in `.module`.
    while hasattr(model, "module"):
        model = model.module
    return model


def _builds_decoder_inputs(model) -> bool:
    config = getattr(model, "config", None)
    return bool(getattr(config, "is_encoder_decoder", False)) and hasattr(
        model, "prepare_decoder_input_ids_from_labels"
    )


def with_decoder_inputs(model, batch: Mapping[str, Any]) -> Mapping[str, Any]:
    """`batch` with `decoder_input_ids` shifted from its labels (a copy of them), where it has labels but no decoder
    inputs and `model` is an encoder–decoder that can build them; otherwise `batch` itself."""
    model = _unwrap(model)
    labels = batch.get("labels")
    if (
        not torch.is_tensor(labels)
        or batch.get("decoder_input_ids") is not None
        or batch.get("decoder_inputs_embeds") is not None
        or not _builds_decoder_inputs(model)
    ):
        return batch
    return {**batch, "decoder_input_ids": model.prepare_decoder_input_ids_from_labels(labels=labels.clone())}


class _LabelSafeModel:
    """Stands in for the model inside a collator: builds decoder inputs from a copy of the labels."""

    def __init__(self, model):
        self.model = model

    def prepare_decoder_input_ids_from_labels(self, labels: torch.Tensor) -> torch.Tensor:
        return self.model.prepare_decoder_input_ids_from_labels(labels=labels.clone())

    def __getattr__(self, name):
        return getattr(self.model, name)


def label_safe_collator(collator):
    """A copy of `collator` (e.g. `DataCollatorForSeq2Seq(tokenizer, model=model)`) whose decoder-input building
    cannot overwrite the labels; any other collator is returned as it is."""
    model = getattr(collator, "model", None)
    if (
        model is None
        or isinstance(model, _LabelSafeModel)
        or not hasattr(model, "prepare_decoder_input_ids_from_labels")
    ):
        return collator
    safe = copy.copy(collator)
    safe.model = _LabelSafeModel(model)
    return safe


__all__ = ["label_safe_collator", "with_decoder_inputs"]
