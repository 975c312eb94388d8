"""Weights between the package's `--model_type transformer` model and fairseq's `transformer_iwslt_de_en`
(`--share-decoder-input-output-embed`), the model of the GradInit paper's code.

The two hold the same tensors under nearly the same names: fairseq's `encoder.layers.3.fc1.weight` is
`model.encoder.layers.3.fc1.weight` here. What differs:

    embedding rows        fairseq's dictionary orders tokens by its own rule; rows are moved by token
                          (`fairseq_rows`), so a token keeps its vector
    output projection     fairseq's `decoder.output_projection.weight`, here `lm_head.weight`: both the decoder's
                          input embedding (tied)
    positions             fixed sinusoids in both, not saved by fairseq (a buffer it rebuilds); here a frozen
                          tensor the model builds itself, so neither direction carries them
    final_logits_bias     Marian's zero buffer, fairseq has none: written as zeros, and refused if not zero

Both directions raise on a tensor they cannot place, rather than leaving it at random.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

# Tensors that are not weights: rebuilt by the model that loads them, never converted.
_FAIRSEQ_BUFFERS = ("embed_positions._float_tensor", ".version")
_PACKAGE_BUFFERS = ("embed_positions.weight",)
_EMBEDDINGS = ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "decoder.output_projection.weight")
_PACKAGE_NAME = {
    "decoder.output_projection.weight": "lm_head.weight",
}


def fairseq_rows(vocab: Mapping[str, int], fairseq_symbols: Sequence[str]) -> list[int]:
    """For each of the package tokenizer's ids, the row of the same token in a fairseq dictionary.

    `vocab` is `tokenizer.get_vocab()`; `fairseq_symbols` is the dictionary's `symbols` (`<s> <pad> </s> <unk>`,
    then its `dict.txt` in order). Both must hold the same tokens: a token missing from either side is named.
    """
    row_of = {symbol: row for row, symbol in enumerate(fairseq_symbols)}
    if len(row_of) != len(fairseq_symbols):
        raise ValueError("fairseq_symbols: the fairseq dictionary lists a token twice.")
    missing = sorted(set(vocab) - set(row_of))
    extra = sorted(set(row_of) - set(vocab))
    if missing or extra:
        raise ValueError(
            f"The tokenizer ({len(vocab)} tokens) and the fairseq dictionary ({len(row_of)}) differ: "
            f"{len(missing)} tokens only in the tokenizer {missing[:5]}, {len(extra)} only in the dictionary "
            f"{extra[:5]}. Build the dictionary from the tokenizer's vocabulary."
        )
    rows = [0] * len(vocab)
    for token, index in vocab.items():
        rows[index] = row_of[token]
    return rows


def _check_rows(rows: Sequence[int] | None, size: int) -> torch.Tensor:
    if rows is None:
        return torch.arange(size)
    rows = torch.as_tensor(rows, dtype=torch.long)
    if rows.numel() != size or sorted(rows.tolist()) != list(range(size)):
        raise ValueError(
            f"fairseq_rows must put each of the {size} embedding rows in exactly one fairseq row; got {rows.numel()} "
            "entries that are not a permutation of them."
        )
    return rows


def to_fairseq(state_dict: Mapping[str, torch.Tensor], rows: Sequence[int] | None = None) -> dict[str, torch.Tensor]:
    """The package model's `state_dict()` as a fairseq `transformer` state dict (`model` of a checkpoint).

    `rows[i]` is the fairseq row of the package's token id i (`fairseq_rows`); identity when None.
    """
    converted = {}
    for name, tensor in state_dict.items():
        if name.endswith(_PACKAGE_BUFFERS):
            continue
        if name == "final_logits_bias":
            if torch.count_nonzero(tensor):
                raise ValueError("final_logits_bias is not zero: fairseq's transformer has no output bias.")
            continue
        if name == "lm_head.weight":
            target = "decoder.output_projection.weight"
        elif name.startswith("model."):
            target = name[len("model.") :]
        else:
            raise ValueError(f"{name}: not a tensor of the package's transformer model, no fairseq name for it.")
        if target in _EMBEDDINGS:
            order = _check_rows(rows, tensor.shape[0])
            moved = torch.empty_like(tensor)
            moved[order] = tensor
            tensor = moved
        converted[target] = tensor.detach().clone()
    if "decoder.output_projection.weight" not in converted and "decoder.embed_tokens.weight" in converted:
        converted["decoder.output_projection.weight"] = converted["decoder.embed_tokens.weight"]
    return converted


def from_fairseq(state_dict: Mapping[str, torch.Tensor], rows: Sequence[int] | None = None) -> dict[str, torch.Tensor]:
    """A fairseq `transformer` state dict as the package model's, for `model.load_state_dict(..., strict=False)`:
    every tensor but the positions the model builds itself (`load_fairseq_weights_` checks that)."""
    converted = {}
    for name, tensor in state_dict.items():
        if name.endswith(_FAIRSEQ_BUFFERS):
            continue
        if not name.startswith(("encoder.", "decoder.")):
            raise ValueError(f"{name}: not a tensor of fairseq's transformer, no package name for it.")
        target = _PACKAGE_NAME.get(name, "model." + name)
        if name in _EMBEDDINGS:
            order = _check_rows(rows, tensor.shape[0])
            tensor = tensor[order]
        converted[target] = tensor.detach().clone()
    if "lm_head.weight" in converted:
        vocab = converted["lm_head.weight"].shape[0]
        converted["final_logits_bias"] = torch.zeros(1, vocab, dtype=converted["lm_head.weight"].dtype)
    return converted


def load_fairseq_weights_(model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], rows=None) -> None:
    """Load a fairseq `transformer` state dict into the package's model in place; raise, naming them, if a
    weight of the model is left without a value or a fairseq tensor finds no place."""
    missing, unexpected = model.load_state_dict(from_fairseq(state_dict, rows), strict=False)
    missing = [name for name in missing if not name.endswith(_PACKAGE_BUFFERS)]
    if missing or unexpected:
        raise ValueError(f"fairseq weights do not fit this model: missing {missing[:5]}, unexpected {unexpected[:5]}")


__all__ = ["fairseq_rows", "from_fairseq", "load_fairseq_weights_", "to_fairseq"]
