"""Which parameter tensors GradInit scales, and in which group.

Selection is by module type, never by parameter name, so that e.g. BART's `layernorm_embedding` counts as a
LayerNorm and a custom `FooRMSNorm` counts too.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

# The three groups of the paper's setup; each has its own bounds (and LayerNorm weights their own lr).
WEIGHT, BIAS, NORM = "weight", "bias", "norm"

_NORM_TYPES = (nn.LayerNorm, nn.GroupNorm, nn.RMSNorm, nn.modules.batchnorm._NormBase)
_LINEAR_TYPES = (nn.Linear, nn.Bilinear, nn.modules.conv._ConvNd)
_EMBEDDING_TYPES = (nn.Embedding, nn.EmbeddingBag)


def _is_norm(module: nn.Module) -> bool:
    # Models define their own norm classes (T5LayerNorm, LlamaRMSNorm, ...) that subclass nothing from torch.
    name = type(module).__name__
    return isinstance(module, _NORM_TYPES) or name.endswith(("LayerNorm", "RMSNorm"))


def _is_linear(module: nn.Module) -> bool:
    # transformers' Conv1D (GPT-2) is a Linear with a transposed weight.
    return isinstance(module, _LINEAR_TYPES) or type(module).__name__ == "Conv1D"


def _is_embedding(module: nn.Module) -> bool:
    return isinstance(module, _EMBEDDING_TYPES)


@dataclass
class ScaledTensor:
    """One parameter tensor that gets its own scale α."""

    name: str
    param: nn.Parameter
    group: str
    init_norm: float


def parameter_group(module: nn.Module, param_name: str) -> str | None:
    """The GradInit group of `module.<param_name>`, or None when GradInit does not scale it."""
    is_norm = _is_norm(module)
    if not (is_norm or _is_linear(module) or _is_embedding(module)):
        return None
    if param_name == "bias":
        return BIAS
    return NORM if is_norm else WEIGHT


def select_scaled_tensors(model: nn.Module) -> list[ScaledTensor]:
    """The tensors GradInit scales, each once, named as in `model.named_parameters()`.

    A tensor shared by several modules (tied input/output embeddings) appears once. Frozen tensors and tensors
    whose norm is 0 (zero-initialised biases) are left out: α·0 = 0 can never change them.
    """
    canonical = {id(p): n for n, p in model.named_parameters()}
    order = {key: i for i, key in enumerate(canonical)}
    chosen: dict[int, ScaledTensor] = {}
    for module in model.modules():
        for param_name, param in module.named_parameters(recurse=False):
            if id(param) in chosen or not param.requires_grad or not param.is_floating_point():
                continue
            group = parameter_group(module, param_name)
            if group is None:
                continue
            with torch.no_grad():
                norm = float(param.detach().float().norm())
            if norm == 0.0:
                continue
            chosen[id(param)] = ScaledTensor(canonical[id(param)], param, group, norm)
    return sorted(chosen.values(), key=lambda t: order[id(t.param)])


def trainable_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """Every trainable tensor once: the set the simulated optimizer step moves and ‖g‖ is taken over."""
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]
