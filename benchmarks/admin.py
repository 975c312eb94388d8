"""Admin (Liu et al., 2020, "Understanding the Difficulty of Training Transformers", arXiv:2004.08249) on the package's
fairseq-layout Post-LN Transformer (transformers' Marian classes): the rival cure for training without warmup, as arm
D of `stability.py`.

Admin rescales each residual branch of a Post-LN layer: x_i = LN(f_i(x_{i−1}) + ω_i ⊙ x_{i−1}), with ω_i a trainable
vector (one value per hidden unit) initialized by a profiling pass at initialization. The published code's rule
(Transformer-Clinic, `--init-type adaptive-profiling`), written out here: per stack (encoder, decoder) a running ratio
r starts at 1; at residual sublayer i, in execution order, ω_i = r, then r ← √(Var[ω_i ⊙ x_{i−1}] + Var[f_i(x_{i−1})]),
the variances over every element of the profiling batch's tensors. So ω_i² ≈ 1 + Σ_{j<i} Var[f_j]: a sublayer's
residual weighs what all earlier branches added, and no single branch dominates the output at the start.

`admin-torch` on PyPI (0.1.0) ships only the closed-form ω of Admin's later O(log n) variant and a residual module
for models written around it; it has no profiling pass and no way into transformers' layers, whose residual sums are
inside their `forward`. So the rule is written out here and reaches the layers through hooks: a pre-hook on the
module that starts each branch (self_attn, encoder_attn, fc1) keeps the branch's input x, and a pre-hook on the
LayerNorm that follows turns its input x + f into f + ω ⊙ x. Each ω is registered on its layer, so optimizers,
`state_dict()` and `stability.py --resumable` see it; `save_pretrained` writes it, `from_pretrained` of a plain class
would drop it.
"""

from __future__ import annotations

import torch
from torch import nn

# (module that starts the branch, LayerNorm after the residual sum), in execution order.
ENCODER_BRANCHES = (("self_attn", "self_attn_layer_norm"), ("fc1", "final_layer_norm"))
DECODER_BRANCHES = (
    ("self_attn", "self_attn_layer_norm"),
    ("encoder_attn", "encoder_attn_layer_norm"),
    ("fc1", "final_layer_norm"),
)


class _Branch:
    """One residual branch of one layer: its ω and the input its start module last saw."""

    def __init__(self, layer: nn.Module, start: str, norm: str, stack: "_Stack"):
        self.stack = stack
        weight = getattr(layer, norm).weight
        self.omega = nn.Parameter(torch.ones_like(weight))
        layer.register_parameter(f"admin_omega_{start}", self.omega)
        self.residual = None
        getattr(layer, start).register_forward_pre_hook(self._keep_input, with_kwargs=True)
        getattr(layer, norm).register_forward_pre_hook(self._rescale)

    def _keep_input(self, module, args, kwargs):
        self.residual = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]

    def _rescale(self, module, args):
        (total,) = args  # x + f, as the layer summed it
        x, self.residual = self.residual, None
        f = total - x
        if self.stack.profiling:
            with torch.no_grad():
                self.omega.fill_(self.stack.ratio)
                self.stack.ratio = (
                    (torch.var(self.omega * x, unbiased=False) + torch.var(f, unbiased=False)).sqrt().item()
                )
        return (f + self.omega * x,)


class _Stack:
    def __init__(self):
        self.profiling, self.ratio = False, 1.0


def attach(model: nn.Module) -> list[nn.Parameter]:
    """Give every residual branch of `model`'s encoder and decoder layers an ω (ones: the model computes as before)
    and return them in execution order, encoder first."""
    model._admin_stacks = []
    omegas = []
    for stack_module, branches in ((model.get_encoder(), ENCODER_BRANCHES), (model.get_decoder(), DECODER_BRANCHES)):
        stack = _Stack()
        model._admin_stacks.append(stack)
        for layer in stack_module.layers:
            omegas += [_Branch(layer, start, norm, stack).omega for start, norm in branches]
    return omegas


@torch.no_grad()
def profile(model: nn.Module, batch: dict, train_mode: bool = True) -> None:
    """Admin's initialization: one forward pass on `batch` (in train mode, dropout on, as the published code profiles
    during its first training step), setting each ω in turn from the running ratio."""
    was_training = model.training
    model.train(train_mode)
    for stack in model._admin_stacks:
        stack.profiling, stack.ratio = True, 1.0
    try:
        model(**{k: v for k, v in batch.items() if k != "labels"})
    finally:
        for stack in model._admin_stacks:
            stack.profiling = False
        model.train(was_training)
