"""Where a Transformer puts its LayerNorms: after each sublayer (Post-LN, the original Transformer's, which needs
warmup and which GradInit was made for) or before (Pre-LN, which trains without warmup on its own).

A Pre-LN stack leaves its last sublayer's output unnormalized, so it ends with a LayerNorm of its own after the
layers: MBart, M2M-100, Pegasus and Blenderbot have `layer_norm` on their encoder and decoder, T5 `final_layer_norm`.
Post-LN stacks (BART, Marian, FSMT, the package's fairseq Transformer) have none: each layer's output is already
normalized. Configs that say it (fairseq's `normalize_before`) are read first.
"""

from __future__ import annotations

from torch import nn

_FINAL_NORMS = ("layer_norm", "final_layer_norm")


def _stacks(model: nn.Module) -> list[nn.Module]:
    stacks = []
    for getter in ("get_encoder", "get_decoder"):
        stack = getattr(model, getter, lambda: None)()
        if isinstance(stack, nn.Module):
            stacks.append(stack)
    return stacks


def is_pre_ln(model: nn.Module) -> bool:
    """Whether `model` normalizes before its sublayers (Pre-LN): its config says so, or an encoder or decoder ends
    with a LayerNorm after its layers."""
    config = getattr(model, "config", None)
    for key in ("normalize_before", "encoder_normalize_before", "decoder_normalize_before"):
        if getattr(config, key, None) is True:
            return True
    return any(isinstance(getattr(stack, name, None), nn.Module) for stack in _stacks(model) for name in _FINAL_NORMS)


__all__ = ["is_pre_ln"]
