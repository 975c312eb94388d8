"""The initialization of fairseq's `transformer` models (the GradInit paper's starting point), applied to a
Hugging Face encoder–decoder.

GradInit learns scales *relative to* an initialization, so the scales the paper reports, and the size of the
gradient the search starts from, belong to fairseq's initialization, not to the N(0, 0.02) of `_init_weights` in
transformers. fairseq initializes (`fairseq/models/transformer.py`, `fairseq/modules/multihead_attention.py`):

    attention q/k/v weights   xavier_uniform, gain 1/√2 (gain 1 when key/value dims differ from the model's)
    attention q/k/v biases    torch's nn.Linear default: U(−1/√fan_in, 1/√fan_in)
    attention out_proj        xavier_uniform (gain 1), bias 0
    other Linear (FFN fc1/fc2) torch's nn.Linear default: weight kaiming_uniform(a=√5), bias U(±1/√fan_in)
    embeddings (trainable)    N(0, d^-½), padding row 0 (the forward multiplies by √d)
    output projection         the decoder's input embedding when tied; else N(0, d^-½)
    LayerNorm                 weight 1, bias 0

Frozen tensors (fixed sinusoidal positions) are left as they are; a tensor shared by several modules is
initialized once.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .parameters import _is_norm

FAIRSEQ = "fairseq"
_ATTENTION_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "out_proj")


def _attention_modules(model: nn.Module) -> list[nn.Module]:
    return [
        m
        for m in model.modules()
        if all(isinstance(getattr(m, name, None), nn.Linear) for name in _ATTENTION_PROJECTIONS)
    ]


def _torch_linear_default_(linear: nn.Linear, generator: torch.Generator | None) -> None:
    # nn.Linear.reset_parameters, written out so that a generator can be passed.
    nn.init.kaiming_uniform_(linear.weight, a=math.sqrt(5), generator=generator)
    if linear.bias is not None:
        bound = 1.0 / math.sqrt(linear.in_features) if linear.in_features > 0 else 0.0
        nn.init.uniform_(linear.bias, -bound, bound, generator=generator)


@torch.no_grad()
def fairseq_init_(model: nn.Module, generator: torch.Generator | None = None) -> nn.Module:
    """Re-initialize `model` in place the way fairseq initializes its `transformer` models; returns `model`.

    Works on encoder–decoders whose attention modules have `q_proj`, `k_proj`, `v_proj` and `out_proj` Linear
    layers (BART, Marian, FSMT, ...). Records `model.config.initialization = "fairseq"`, which the GradInit search
    copies into `scales.json` and the model card.

    Example:

        >>> from transformers import MarianConfig, MarianMTModel
        >>> from hf_gradinit import fairseq_init_
        >>> model = fairseq_init_(MarianMTModel(MarianConfig(d_model=64, encoder_layers=1, decoder_layers=1)))
        >>> model.config.initialization
        'fairseq'
    """
    attentions = _attention_modules(model)
    if not attentions:
        raise ValueError(
            f"fairseq_init_: {type(model).__name__} has no attention modules with q_proj/k_proj/v_proj/out_proj "
            "Linear layers, so fairseq's initialization cannot be mapped onto it."
        )
    claim = _Claims()
    _init_attention(attentions, claim, generator)
    # Embeddings before the output projection: a tied lm_head is the decoder's input embedding, initialized as one.
    _init_embeddings(model, claim, generator)
    _init_output_projection(model, claim, generator)
    _init_other_linears_and_norms(model, claim, generator)
    config = getattr(model, "config", None)
    if config is not None:
        config.initialization = FAIRSEQ
    return model


class _Claims:
    """Each tensor is initialized once: tied tensors (shared embeddings, lm_head) by their first owner, frozen
    ones never. `claim(param)` says whether `param` is still to be initialized, and marks it."""

    def __init__(self):
        self.done: set[int] = set()

    def __call__(self, param: nn.Parameter | None) -> bool:
        if param is None or id(param) in self.done or not param.requires_grad:
            return False
        self.done.add(id(param))
        return True


def _init_attention(attentions: list[nn.Module], claim: _Claims, generator: torch.Generator | None) -> None:
    """fairseq's MultiheadAttention.reset_parameters: Xavier q/k/v (gain 1/√2 when they read the model dimension),
    Xavier out_proj with a zero bias."""
    for attn in attentions:
        q, k, v, out = (getattr(attn, name) for name in _ATTENTION_PROJECTIONS)
        gain = 1 / math.sqrt(2) if q.in_features == k.in_features == v.in_features == out.out_features else 1.0
        for proj in (q, k, v):
            if claim(proj.weight):
                nn.init.xavier_uniform_(proj.weight, gain=gain, generator=generator)
            if claim(proj.bias):
                bound = 1.0 / math.sqrt(proj.in_features)
                nn.init.uniform_(proj.bias, -bound, bound, generator=generator)
        if claim(out.weight):
            nn.init.xavier_uniform_(out.weight, generator=generator)
        if claim(out.bias):
            nn.init.zeros_(out.bias)


def _init_embeddings(model: nn.Module, claim: _Claims, generator: torch.Generator | None) -> None:
    """N(0, d^-½), the padding row zero (fairseq's Embedding)."""
    for module in model.modules():
        if isinstance(module, nn.Embedding) and claim(module.weight):
            nn.init.normal_(module.weight, mean=0.0, std=module.embedding_dim**-0.5, generator=generator)
            if module.padding_idx is not None:
                module.weight[module.padding_idx].zero_()


def _init_output_projection(model: nn.Module, claim: _Claims, generator: torch.Generator | None) -> None:
    """An untied output projection: N(0, d^-½), as fairseq's decoder draws its own."""
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if isinstance(output, nn.Linear) and claim(output.weight):
        nn.init.normal_(output.weight, mean=0.0, std=output.in_features**-0.5, generator=generator)
        if claim(output.bias):
            nn.init.zeros_(output.bias)


def _init_other_linears_and_norms(model: nn.Module, claim: _Claims, generator: torch.Generator | None) -> None:
    """The feed-forward Linears keep torch's default (fairseq's), LayerNorms start at weight 1, bias 0."""
    for module in model.modules():
        if isinstance(module, nn.Linear):
            if claim(module.weight):
                _torch_linear_default_(module, generator)
            claim(module.bias)  # already drawn with its weight above
        elif _is_norm(module):
            weight, bias = getattr(module, "weight", None), getattr(module, "bias", None)
            if isinstance(weight, nn.Parameter) and claim(weight):
                nn.init.ones_(weight)
            if isinstance(bias, nn.Parameter) and claim(bias):
                nn.init.zeros_(bias)


def initialization_of(model: nn.Module) -> str:
    """How `model` was initialized before any GradInit search: `"fairseq"` after `fairseq_init_`, else `"model"`
    (the model class's own `_init_weights`, or a pretrained checkpoint)."""
    return getattr(getattr(model, "config", None), "initialization", None) or "model"


__all__ = ["FAIRSEQ", "fairseq_init_", "initialization_of"]
