r"""GradInit (Zhu et al., 2021, arXiv:2102.08098, section 3) in plain torch.

The paper's names, used throughout:

    θ⁰     the initial weights; each scaled tensor becomes θ_i = α_i·θ_i⁰
    α      one scalar per scaled tensor, kept in [α_min, α_max] of its group
    S̃, S   two overlapping parts of one batch: S̃ its first 2/3 rows, S its last 2/3
    g      ∇_θ L(θ; S̃), the gradient the target optimizer would take its first step on
    η      learning rate of that simulated first step
    γ      bound on ‖g‖ (L1 norm for Adam, L2 for SGD)

Each iteration (Algorithm 1 of the paper):

    if ‖g‖ > γ:   step α to lower ‖g‖                                   (constraint step)
    else:         θ' = θ − η·A[g],  A[g] = sign(g) (Adam) or g (SGD)
                  step α to lower L(θ'; S) / η                           (objective step)

with the chain rule dF/dα_i = ⟨∂F/∂θ_i, θ_i⁰⟩, and a bias-corrected Adam on α whose moments are kept apart for
the two kinds of step.

Cost. sign(g) has zero derivative, so the exact α-gradient of the Adam objective is ⟨∇L(θ'; S), θ_i⁰⟩/η: two
first-order passes and no graph of g. The constraint step (d‖g‖/dθ = H·∂‖g‖/∂g) and the SGD objective (θ' depends
on θ through g, giving the −η·H·g term) need Hessian-vector products. By default (gradinit_hvp="finite_difference")
each is one more first-order pass (`_hessian_vector_product`). With gradinit_hvp="exact" they come from a
second-order graph of g; whether an iteration will be a constraint step is only known after g is computed, so the
graph is built when the previous ‖g‖ was near γ or above (`_GRAPH_MARGIN`); a wrong guess costs one recomputation
of g, counted in `graph_rebuilds`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from .activation_pattern import ActivationPattern
from .arguments import MIN_SEARCH_BATCH_ROWS, GradInitArguments
from .decoder_inputs import with_decoder_inputs
from .fairseq_init import initialization_of
from .parameters import BIAS, NORM, select_scaled_tensors, trainable_parameters
from .result import GradInitResult
from .search_mode import double_backward_attention, search_mode
from .search_report import report_lines, report_warning, search_report

logger = logging.getLogger(__name__)

LossFn = Callable[[nn.Module, Mapping[str, Any]], torch.Tensor]

# Build g's second-order graph up front when the previous ‖g‖ exceeded this fraction of γ: near the bound the
# search alternates between the two kinds of step, and building a graph that goes unused is cheaper than
# recomputing g.
_GRAPH_MARGIN = 0.9
_ADAM_EPS = 1e-8
_ADVICE = "Try a smaller gradinit_lr, a smaller gradinit_eta or a larger gradinit_gamma"


class GradInitError(RuntimeError):
    """The search diverged; the model holds its original weights again."""


def model_loss(model: nn.Module, batch: Mapping[str, Any]) -> torch.Tensor:
    """The Hugging Face convention: `model(**batch).loss`, with decoder inputs shifted from the labels where the
    batch has none (see `decoder_inputs.with_decoder_inputs`)."""
    outputs = model(**with_decoder_inputs(model, batch))
    loss = getattr(outputs, "loss", None)
    if loss is None and isinstance(outputs, Mapping):
        loss = outputs.get("loss")
    if loss is None and isinstance(outputs, (tuple, list)) and outputs and torch.is_tensor(outputs[0]):
        loss = outputs[0]
    if loss is None:
        raise ValueError(
            "model(**batch) returned no loss: put `labels` in the batches, or pass loss_fn(model, batch) to "
            "gradinit()."
        )
    return loss


def split_batch(batch: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(S̃, S): the first and the last ⌈2n/3⌉ rows of every tensor whose first dimension is the batch size n."""
    n = _rows(batch)
    if n == 0:
        raise ValueError(f"A GradInit batch needs at least one tensor with a batch dimension; got keys {list(batch)}.")
    k = -(-2 * n // 3)

    def rows(sl: slice) -> dict[str, Any]:
        return {
            key: v[sl] if torch.is_tensor(v) and v.dim() > 0 and v.shape[0] == n else v for key, v in batch.items()
        }

    return rows(slice(0, k)), rows(slice(n - k, n))


def _rows(batch: Mapping[str, Any]) -> int:
    """The batch size: the first dimension of the first tensor that has one (0 if none does)."""
    return next((v.shape[0] for v in batch.values() if torch.is_tensor(v) and v.dim() > 0), 0)


def _grads_or_zeros(
    value: torch.Tensor, tensors: list[torch.Tensor], create_graph: bool = False
) -> list[torch.Tensor]:
    """∂value/∂tensors, with zeros for tensors `value` does not depend on."""
    grads = torch.autograd.grad(value, tensors, create_graph=create_graph, allow_unused=True)
    # A term like `w.sum()` gives an expanded gradient (one element behind every index), which the in-place
    # updates downstream cannot write: `contiguous()` gives such a tensor its own memory, and the others as they are.
    return [torch.zeros_like(t) if gi is None else gi.contiguous() for t, gi in zip(tensors, grads)]


def _inner(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
    """Σ_i ⟨a_i, b_i⟩."""
    return torch.stack([(ai * bi).sum() for ai, bi in zip(a, b)]).sum()


class _Moments:
    """Adam state of α for one kind of step."""

    def __init__(self, n: int):
        self.step = 0
        self.exp_avg = torch.zeros(n, dtype=torch.float64)
        self.exp_avg_sq = torch.zeros(n, dtype=torch.float64)


class _LossModule(nn.Module):
    """Lets `torch.func.functional_call` run `loss_fn(model, batch)` on substituted weights θ'."""

    def __init__(self, model: nn.Module, loss_fn: LossFn):
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, batch):
        return self.loss_fn(self.model, batch)


class GradInitSearch:
    """The state of one search: θ⁰, α, the two Adam moment sets, and one `step()` per batch.

    The model must already be in search mode (see `search_mode`); `gradinit()` takes care of that.

    `reduce` (optional) averages a list of tensors across data-parallel processes in place. Each process then
    passes its own shard of every batch and splits it into its own S̃ and S; the processes average g (before
    ‖g‖ is taken, so all make the same constraint decision and the same step θ') and the α-gradient (so all
    apply the same update). Second-order terms are back-propagated locally against the averaged vector. The
    result equals one process on the union of the shards' S̃ and S when the processes' mean of `loss_fn` is the
    union's loss: a per-token mean over equally many tokens on each process, or, for any token counts, each
    process's sum over its tokens divided by the mean token count of the processes (what `GradInitTrainer`'s
    loss is).
    """

    def __init__(
        self,
        model: nn.Module,
        args: GradInitArguments,
        loss_fn: LossFn = model_loss,
        reduce: Callable[[list[torch.Tensor]], None] | None = None,
    ):
        self.model, self.args, self.loss_fn, self.reduce = model, args, loss_fn, reduce
        named = trainable_parameters(model)
        self.names = [n for n, _ in named]
        self.params = [p for _, p in named]
        self.scaled = select_scaled_tensors(model)
        if not self.scaled:
            raise ValueError(
                f"{type(model).__name__} has no trainable, non-zero LayerNorm, Linear or Embedding tensor to scale."
            )
        self.scaled_params = [t.param for t in self.scaled]
        index = {id(p): i for i, p in enumerate(self.params)}
        self.scaled_index = [index[id(p)] for p in self.scaled_params]
        # θ⁰ of every trainable tensor: the scaled ones are rebuilt from it as α·θ⁰, the others are put back to it
        # after the simulated step, and all of them are restored from it if the search fails.
        self.theta0 = [p.detach().clone() for p in self.params]

        groups = [t.group for t in self.scaled]
        ln_lr = args.gradinit_ln_lr if args.gradinit_ln_lr is not None else args.gradinit_lr
        as_vector = lambda values: torch.tensor(values, dtype=torch.float64)  # noqa: E731
        self.alpha = torch.ones(len(groups), dtype=torch.float64)
        ln_min = args.gradinit_ln_min_scale if args.gradinit_ln_min_scale is not None else args.gradinit_min_scale
        self.alpha_min = as_vector(
            [0.0 if g == BIAS else ln_min if g == NORM else args.gradinit_min_scale for g in groups]
        )
        self.alpha_max = as_vector([args.gradinit_max_scale if g == NORM else math.inf for g in groups])
        self.lr = as_vector([ln_lr if g == NORM else args.gradinit_lr for g in groups])
        self.moments = {"objective": _Moments(len(groups)), "constraint": _Moments(len(groups))}
        self.expect_constraint = True  # ‖g‖ is unknown before the first iteration: assume it is large
        self.graph_rebuilds = 0
        # Finite differences of gradients need the ReLU kinks held still between the two passes (see
        # `activation_pattern`).
        self.pattern = ActivationPattern(model) if args.gradinit_hvp == "finite_difference" else None
        self.tied_output = None if args.gradinit_step_moves_tied_output else _tied_output(model, self.scaled_params)
        # Biases that may not leave 0 once there (the paper's code: its optimizer skips tensors of norm 0).
        self.freezes_at_zero = torch.tensor([g == BIAS and args.gradinit_freeze_zero_biases for g in groups])

    # -- one iteration -------------------------------------------------------------------------------------

    def step(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """One GradInit iteration on `batch`; returns its record (loss, grad_norm, constraint, objective)."""
        record, d_alpha = self.alpha_gradient(batch)
        self._update_alpha(d_alpha, "constraint" if record["constraint"] else "objective")
        return record

    def alpha_gradient(self, batch: Mapping[str, Any]) -> tuple[dict[str, Any], torch.Tensor]:
        """The record of an iteration on `batch` and the α-gradient of its constraint or objective.

        g = ∇L(θ; S̃) decides the kind of step (‖ḡ‖ > γ: constraint), and one method per kind computes dF/dα:
        `_constraint_alpha_gradient`, `_adam_objective_alpha_gradient`, `_sgd_objective_alpha_gradient`. With
        several processes, each passes its own shard; g and the α-gradient are averaged across them, so the step
        equals one process on the union of the shards' S̃ and S (see `GradInitSearch`). On the Adam objective path
        the weights are left at θ' = θ − η·sign(g); `write_parameters()`, which `step()` calls through the α update,
        puts θ = α·θ⁰ back.
        """
        s_tilde, s = split_batch(batch)
        gamma = self.args.gradinit_gamma
        finite_difference = self.args.gradinit_hvp == "finite_difference"
        build_graph = not finite_difference and (self.args.gradinit_alg == "sgd" or self.expect_constraint)

        with self.pattern.recording() if finite_difference else contextlib.nullcontext():
            loss, g = self._local_gradient(s_tilde, create_graph=build_graph)
        # ḡ, the gradient of the whole batch: the mean of the processes' g (g itself for one process).
        g_bar = [gi.detach().clone() if self.reduce else gi.detach() for gi in g] + [loss.detach().reshape(1)]
        if self.reduce is not None:
            self.reduce(g_bar)
        loss_bar = g_bar.pop()
        g_norm = self._norm(g_bar)
        record = {"loss": loss_bar.item(), "grad_norm": g_norm.item()}
        if not (math.isfinite(record["loss"]) and math.isfinite(record["grad_norm"])):
            raise GradInitError(
                f"the loss is {record['loss']} and the gradient norm ‖g‖ is {record['grad_norm']}: the search "
                f"diverged. {_ADVICE}, and check the batches for empty or invalid labels."
            )
        record["constraint"] = record["grad_norm"] > gamma
        self.expect_constraint = record["grad_norm"] > _GRAPH_MARGIN * gamma

        # The callees empty `g_bar` (and the Adam path gets no g) so that nothing of g outlives its use.
        if record["constraint"]:
            d_alpha = self._constraint_alpha_gradient(s_tilde, g, g_bar, g_norm, record, build_graph)
        elif self.args.gradinit_alg == "adam":
            del loss, g  # sign(ḡ) carries no derivative: g's graph goes before the second pass
            d_alpha = self._adam_objective_alpha_gradient(s, g_bar, record)
        else:
            d_alpha = self._sgd_objective_alpha_gradient(s, s_tilde, g, g_bar, record)
        if not (math.isfinite(record.get("objective", 0.0)) and torch.isfinite(d_alpha).all()):
            raise GradInitError(
                f"the objective L(θ'; S) is {record.get('objective')} or its α-gradient is not finite: the simulated "
                f"step diverged. {_ADVICE}."
            )
        return record, d_alpha

    def _constraint_alpha_gradient(
        self,
        s_tilde: Mapping[str, Any],
        g: list[torch.Tensor],
        g_bar: list[torch.Tensor],
        g_norm: torch.Tensor,
        record: dict[str, Any],
        graph_built: bool,
    ) -> torch.Tensor:
        """F = ‖ḡ‖: d‖ḡ‖/dθ = H̄·u with u = ∂‖ḡ‖/∂ḡ (sign(ḡ) for L1, ḡ/‖ḡ‖ for L2); each process back-propagates
        ⟨g, u⟩ through its own g, or takes H·u by a finite difference."""
        u = [gi.sign() for gi in g_bar] if self.args.gradinit_alg == "adam" else [gi / g_norm for gi in g_bar]
        g_bar.clear()
        if self.args.gradinit_hvp == "finite_difference":
            # ⟨ḡ, u⟩ = ‖ḡ‖ for both norms
            hu = self._hessian_vector_product(s_tilde, g, u, record["loss"], record["grad_norm"])
            d_alpha, _ = self._alpha_dots([hu[i] for i in self.scaled_index], g_norm)
            return d_alpha
        if not graph_built:
            self.graph_rebuilds += 1
            _, g = self._local_gradient(s_tilde, create_graph=True)
        d_alpha, _ = self._alpha_gradient(_inner(g, u))
        return d_alpha

    def _adam_objective_alpha_gradient(
        self, s: Mapping[str, Any], g_bar: list[torch.Tensor], record: dict[str, Any]
    ) -> torch.Tensor:
        """F = L(θ'; S)/η with θ' = θ − η·sign(ḡ). sign has zero derivative, so dF/dθ is the gradient at θ'
        alone: one first-order pass, no graph of g."""
        eta = self.args.gradinit_eta
        direction = [gi.sign_() for gi in g_bar]
        g_bar.clear()
        if self.args.gradinit_hvp == "finite_difference":
            self.pattern.clear()
        if self.tied_output is not None:
            # the paper's code's θ′: the tied output projection keeps θ while its embedding role moves
            out_name, k = self.tied_output
            theta_out = self.scaled_params[k].detach().clone().requires_grad_()
        with torch.no_grad():
            torch._foreach_add_(self.params, direction, alpha=-eta)  # θ' = θ − η·sign(ḡ), in place
        del direction
        if self.tied_output is None:
            objective = self.loss_fn(self.model, s) / eta
            d_alpha, objective = self._alpha_gradient(objective)
        else:
            module = _LossModule(self.model, self.loss_fn)
            objective = (
                torch.func.functional_call(
                    module, {f"model.{out_name}": theta_out}, (s,), tie_weights=False, strict=False
                )
                / eta
            )
            grads = _grads_or_zeros(objective, self.scaled_params + [theta_out])
            grads[k] = grads[k] + grads.pop()  # dF/dα of the tensor: both of its roles
            d_alpha, objective = self._alpha_dots(grads, objective)
        record["objective"] = objective * eta
        return d_alpha

    def _sgd_objective_alpha_gradient(
        self,
        s: Mapping[str, Any],
        s_tilde: Mapping[str, Any],
        g: list[torch.Tensor],
        g_bar: list[torch.Tensor],
        record: dict[str, Any],
    ) -> torch.Tensor:
        """F = L(θ'; S)/η with θ' = θ − η·ḡ(θ): dF/dθ = v̄ − η·H̄·v̄, v = ∇_θ' L(θ'; S)/η. The first term from a pass
        at θ', the Hessian term by back-propagating ⟨g, v̄⟩ through g's graph (exact, and local to each process),
        or by a finite difference of g along v̄."""
        eta = self.args.gradinit_eta
        theta_prime = {
            f"model.{n}": (p.detach() - eta * gi).requires_grad_() for n, p, gi in zip(self.names, self.params, g_bar)
        }
        objective = torch.func.functional_call(_LossModule(self.model, self.loss_fn), theta_prime, (s,)) / eta
        v = _grads_or_zeros(objective, list(theta_prime.values()))
        v_bar = [vi.clone() for vi in v] if self.reduce else v
        if self.reduce is not None:
            self.reduce(v_bar)
        if self.args.gradinit_hvp == "finite_difference":
            slope = abs(_inner(g_bar, v_bar).item())
            g_bar.clear()
            hv = self._hessian_vector_product(s_tilde, g, v_bar, record["loss"], slope)
            hessian_term = [hv[i] for i in self.scaled_index]
        else:
            g_bar.clear()
            hessian_term = _grads_or_zeros(_inner(g, v_bar), self.scaled_params)
        local = [v[i] - eta * h for i, h in zip(self.scaled_index, hessian_term)]
        d_alpha, objective = self._alpha_dots(local, objective)
        record["objective"] = objective * eta
        return d_alpha

    def _hessian_vector_product(
        self, batch: Mapping[str, Any], g: list[torch.Tensor], v: list[torch.Tensor], loss: float, slope: float
    ) -> list[torch.Tensor]:
        """H·v ≈ (∇L(θ + εv; batch) − g)/ε on this process's rows, g = ∇L(θ; batch): one more first-order pass
        instead of a second-order graph. The pass at θ + εv replays the ReLU pattern recorded by the pass that
        computed g, so both gradients come from the same linear region (see `activation_pattern`). The weights are
        left at θ + εv; `write_parameters()` (which follows in every iteration) puts θ = α·θ⁰ back exactly.

        ε: a forward difference errs by ε·‖∇³L[v, v]‖/2 from the curvature's change along the step and by about
        ϵ_m·‖∇L‖/ε from rounding the two gradients (ϵ_m the machine epsilon of the dtype). The usual balance,
        ε = √ϵ_m·(1 + ‖θ‖)/‖v‖ (Nocedal & Wright, section 8.1), moves the weights by √ϵ_m of their size; it
        assumes the loss varies on the scale of ‖θ‖. Along the directions used here it varies much faster: u =
        sign(g) moves every weight the way that raises the loss, so the loss changes by ε·⟨g, v⟩ = ε·‖g‖₁, far more
        than along a random direction of the same length. So ε is also kept to a step that changes the loss (to
        first order) by √ϵ_m of its size: ε = √ϵ_m·min((1 + ‖θ‖)/‖v‖, (1 + |L|)/|⟨ḡ, v⟩|), `slope` = |⟨ḡ, v⟩|.
        Measured on fairseq's Transformer at its initialization in float32 (constraint step; BENCHMARKS.md,
        "Hessian-vector products"):
        the weights' rule alone errs by 2.2% of the α-gradient; the loss's rule takes a ~30× smaller ε and errs by
        0.1%; with an ε 30× smaller still, rounding takes over (1.3%). Every process computes the same ε from ḡ, L̄
        and the averaged v.
        """
        dtype = v[0].dtype
        squares = [torch.stack(torch._foreach_norm(x)).square().sum() for x in ([p.detach() for p in self.params], v)]
        theta_norm, v_norm = torch.stack(squares).sqrt().tolist()  # one transfer to the host
        if v_norm == 0.0:
            return [torch.zeros_like(p) for p in self.params]
        eps = (1.0 + theta_norm) / v_norm
        if slope > 0:
            eps = min(eps, (1.0 + abs(loss)) / slope)
        eps *= math.sqrt(torch.finfo(dtype).eps)
        with torch.no_grad():
            torch._foreach_add_(self.params, v, alpha=eps)
        with self.pattern.replaying():
            _, g_eps = self._local_gradient(batch, create_graph=False)
        return torch._foreach_div(torch._foreach_sub([gi.detach() for gi in g_eps], [gi.detach() for gi in g]), eps)

    def _local_gradient(self, batch: Mapping[str, Any], create_graph: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """L(θ; S̃) and g = ∇_θ L(θ; S̃) on this process's rows, over every trainable tensor."""
        with double_backward_attention() if create_graph else contextlib.nullcontext():
            loss = self.loss_fn(self.model, batch)
            g = _grads_or_zeros(loss, self.params, create_graph=create_graph)
        return loss, g

    def _norm(self, g: list[torch.Tensor]) -> torch.Tensor:
        """‖g‖: L1 for Adam (its step is η·sign(g)), L2 for SGD."""
        if self.args.gradinit_alg == "adam":
            return torch.stack(torch._foreach_norm(g, 1)).sum()
        return torch.stack(torch._foreach_norm(g, 2)).square().sum().sqrt()

    def _alpha_gradient(self, value: torch.Tensor) -> tuple[torch.Tensor, float]:
        """dF/dα_i = ⟨∂F/∂θ_i, θ_i⁰⟩ for every scaled tensor i, F = `value`; see `_alpha_dots`."""
        return self._alpha_dots(_grads_or_zeros(value, self.scaled_params), value)

    def _alpha_dots(self, grads: list[torch.Tensor], value: torch.Tensor) -> tuple[torch.Tensor, float]:
        """⟨grads_i, θ_i⁰⟩ as a float64 CPU vector, and `value`, both averaged across processes."""
        dots = torch.stack(
            [torch.vdot(gi.reshape(-1), self.theta0[i].reshape(-1)) for gi, i in zip(grads, self.scaled_index)]
        )
        # float32 at least, float64 for float64 models (whose tests compare to 1e-9)
        dtype = torch.promote_types(dots.dtype, torch.float32)
        both = torch.cat([dots.to(dtype), value.detach().to(dtype).reshape(1)])
        if self.reduce is not None:
            self.reduce([both])
        both = both.double().cpu()
        return both[:-1], both[-1].item()

    def _update_alpha(self, d_alpha: torch.Tensor, kind: str) -> None:
        """Bias-corrected Adam on α, clamp to each group's bounds, then write θ = α·θ⁰."""
        args = self.args
        if args.gradinit_grad_clip > 0:
            d_alpha = d_alpha.clamp(-args.gradinit_grad_clip, args.gradinit_grad_clip)
        b1, b2 = args.gradinit_beta1, args.gradinit_beta2
        m = self.moments[kind]
        m.step += 1
        m.exp_avg.mul_(b1).add_(d_alpha, alpha=1 - b1)
        m.exp_avg_sq.mul_(b2).addcmul_(d_alpha, d_alpha, value=1 - b2)
        denom = (m.exp_avg_sq / (1 - b2**m.step)).sqrt_().add_(_ADAM_EPS)
        frozen = self.freezes_at_zero & (self.alpha == 0)
        self.alpha -= self.lr * (m.exp_avg / (1 - b1**m.step)) / denom
        self.alpha = torch.minimum(torch.maximum(self.alpha, self.alpha_min), self.alpha_max)
        self.alpha[frozen] = 0.0
        if not torch.isfinite(self.alpha).all():
            raise GradInitError(f"a scale α became infinite or NaN. {_ADVICE}.")
        self.write_parameters()

    # -- weights -------------------------------------------------------------------------------------------

    def write_parameters(self) -> None:
        """θ_i = α_i·θ_i⁰ for the scaled tensors, θ⁰ for every other trainable tensor."""
        scale = [1.0] * len(self.params)
        for i, a in zip(self.scaled_index, self.alpha.tolist()):
            scale[i] = a
        with torch.no_grad():
            for p, t0, a in zip(self.params, self.theta0, scale):
                if a == 1.0:
                    p.copy_(t0)
                else:
                    torch.mul(t0, a, out=p)

    def check_weights_fit(self, dtypes: Mapping[int, torch.dtype]) -> None:
        """Raise `GradInitError` if a written tensor α·θ⁰ is not finite, or would overflow when cast back to its
        original dtype `dtypes[id(param)]` (a large α in float16 or bfloat16)."""
        for t, param, alpha in zip(self.scaled, self.scaled_params, self.alpha.tolist()):
            dtype = dtypes.get(id(param), param.dtype)
            largest = float(param.detach().abs().max()) if param.numel() else 0.0
            if not math.isfinite(largest) or (dtype.is_floating_point and largest > torch.finfo(dtype).max):
                raise GradInitError(
                    f"{t.name} would hold {largest:.4g} in {dtype} (scale α = {alpha:.4g}), "
                    f"beyond what {dtype} represents. Try a smaller gradinit_lr or train in float32."
                )

    def restore(self) -> None:
        """Put every trainable tensor back to θ⁰, exactly."""
        with torch.no_grad():
            for p, t0 in zip(self.params, self.theta0):
                p.copy_(t0)

    def result(self, history: list[dict[str, Any]]) -> GradInitResult:
        with torch.no_grad():
            final = [float(p.detach().float().norm()) for p in self.scaled_params]
        names = [t.name for t in self.scaled]
        return GradInitResult(
            scales=dict(zip(names, self.alpha.tolist())),
            groups={t.name: t.group for t in self.scaled},
            init_norms={t.name: t.init_norm for t in self.scaled},
            final_norms=dict(zip(names, final)),
            history=history,
            arguments=self.args.gradinit_dict(),
            graph_rebuilds=self.graph_rebuilds,
            initialization=initialization_of(self.model),
        )


def _tied_output(model: nn.Module, scaled_params: list[torch.Tensor]) -> tuple[str, int] | None:
    """(name of the output projection's weight, its index among the scaled tensors) when that weight is also
    another module's (the decoder's input embedding); None when the model has no such tie."""
    get_output = getattr(model, "get_output_embeddings", None)
    output = get_output() if callable(get_output) else None
    weight = getattr(output, "weight", None)
    if weight is None or not any(m is not output and getattr(m, "weight", None) is weight for m in model.modules()):
        return None
    name = next(n for n, m in model.named_modules() if m is output)
    index = next((i for i, p in enumerate(scaled_params) if p is weight), None)
    return (f"{name}.weight", index) if index is not None else None


def _batches_forever(batches: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    """Pass over `batches` again and again; a one-shot iterator ends when it runs out."""
    while True:
        count = 0
        for batch in batches:
            count += 1
            yield batch
        if count == 0 or iter(batches) is batches:
            return


def _to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


def gradinit(
    model: nn.Module,
    batches: Iterable[Mapping[str, Any]],
    args: GradInitArguments | None = None,
    *,
    loss_fn: LossFn | None = None,
    callback: Callable[[dict[str, Any], GradInitSearch], None] | None = None,
    reduce: Callable[[list[torch.Tensor]], None] | None = None,
    progress_bar: bool = True,
    show: Callable[[str], None] | None = None,
) -> GradInitResult:
    """Run the GradInit scale search on `model` in place and return the scales found.

    Args:
        model: the model to initialise. Its weights are rescaled in place; afterwards it is back in its original
            train/eval mode, dtype and attention implementation.
        batches: an iterable of dicts of tensors that `model(**batch)` accepts and that give `.loss`. It is
            passed over again while iterations remain (a one-shot iterator ends the search when it runs out).
            Batches are moved to the model's device.
        args: the `gradinit_*` arguments (a `GradInitArguments` or a `GradInitConfig`). Without the Trainer there
            is no training lr to derive η from: set `gradinit_eta` to twice the learning rate you will train with
            (`GradInitArguments(gradinit_eta=2 * lr)`; docs/eta-gamma.md). A `GradInitConfig` does
            that itself.
        loss_fn: `loss_fn(model, batch) -> scalar loss`, for models that do not follow `model(**batch).loss`.
        callback: called after every iteration with its record and the search state.
        reduce: averages a list of tensors across data-parallel processes in place (see `GradInitSearch`).
        progress_bar: show a tqdm bar.
        show: where the search's closing report goes; by default under the progress bar (at INFO without one).

    Raises:
        ValueError: before any work, for invalid arguments, a model with nothing to scale or no batches.
        GradInitError: the loss or ‖g‖ became NaN or infinite; the original weights are restored. On any other
            error or a KeyboardInterrupt the original weights are restored too before the error propagates.
    """
    args = GradInitArguments() if args is None else args
    args.validate_gradinit_arguments()
    _check_model(model)
    if args.gradinit_iters == 0:
        # No search: nothing is scaled and the model is not marked, so a later search still runs.
        logger.info("gradinit_iters=0: no GradInit search.")
        return GradInitResult({}, {}, {}, {}, arguments=args.gradinit_dict(), initialization=initialization_of(model))
    first, stream = _first_batch(batches)
    dtypes = {id(p): p.dtype for p in model.parameters()}
    logger.info(
        "GradInit search: %d iterations, %s step with η = %g (%s), γ = %g.",
        args.gradinit_iters,
        args.gradinit_alg,
        args.gradinit_eta,
        getattr(args, "gradinit_eta_rule", "set"),
        args.gradinit_gamma,
    )
    with search_mode(model):
        search = GradInitSearch(model, args, model_loss if loss_fn is None else loss_fn, reduce)
        history, skipped = _run_search(search, first, stream, callback, progress_bar, dtypes)
        result = search.result(history)
    if skipped:
        logger.warning("%d GradInit batches of fewer than %d rows were skipped.", skipped, MIN_SEARCH_BATCH_ROWS)
    _report_outcome(result, progress_bar, show)
    result.eta_rule = getattr(args, "gradinit_eta_rule", "set")
    _record_initialization(model, result)
    return result


def _first_batch(batches: Iterable[Mapping[str, Any]]) -> tuple[Mapping[str, Any], Iterator[Mapping[str, Any]]]:
    """The first batch, refused before any work if there is none, it is not a dict, or S̃ and S would be the same
    rows; and the stream of the batches after it."""
    stream = _batches_forever(batches)
    first = next(stream, None)
    if first is None:
        raise ValueError("gradinit() got no batches: the dataset or iterable is empty.")
    if not isinstance(first, Mapping):
        raise ValueError(f"gradinit() needs batches that are dicts of tensors, got {type(first).__name__}.")
    if _rows(first) < MIN_SEARCH_BATCH_ROWS:
        raise ValueError(
            f"A GradInit batch has {_rows(first)} rows: S̃ (its first 2/3) and S (its last 2/3) would be the same "
            f"rows. Use at least {MIN_SEARCH_BATCH_ROWS} rows per device (gradinit_batch_size)."
        )
    return first, stream


def _run_search(search, first, stream, callback, progress_bar, dtypes) -> tuple[list[dict[str, Any]], int]:
    """The iterations under a progress bar, then the check that the weights fit their dtypes; on any error or
    interruption the original weights are put back before it propagates. Returns the history and the count of
    skipped short batches."""
    args = search.args
    bar = tqdm(total=args.gradinit_iters, desc=f"GradInit (η {args.gradinit_eta:g})", disable=not progress_bar)
    try:
        history, skipped = _iterate(search, first, stream, callback, bar)
        try:
            search.check_weights_fit(dtypes)
        except GradInitError as e:
            raise GradInitError(
                f"GradInit finished with unusable weights: {e} The original weights were restored."
            ) from None
    except BaseException as exc:
        search.restore()
        if not isinstance(exc, GradInitError):
            logger.error("GradInit stopped (%s); the original weights were restored.", type(exc).__name__)
        raise
    finally:
        bar.close()
    return history, skipped


def _iterate(search, batch, stream, callback, bar) -> tuple[list[dict[str, Any]], int]:
    """One iteration a batch until `gradinit_iters` or the batches run out; batches of fewer than 3 rows (an
    epoch's last) are skipped."""
    iters = search.args.gradinit_iters
    device = next(search.model.parameters()).device
    history: list[dict[str, Any]] = []
    skipped, step = 0, 1
    while step <= iters:
        if batch is None:
            logger.warning("The batches ran out after %d GradInit iterations; the search stops there.", step - 1)
            break
        if _rows(batch) < MIN_SEARCH_BATCH_ROWS:
            if not skipped:
                logger.warning("Skipping GradInit batches of fewer than %d rows.", MIN_SEARCH_BATCH_ROWS)
            skipped += 1
            batch = next(stream, None)
            continue
        try:
            record = {"step": step, **search.step(_to_device(batch, device))}
        except GradInitError as e:
            raise GradInitError(
                f"GradInit stopped at iteration {step}: {e} The original weights were restored."
            ) from None
        history.append(record)
        bar.update(1)
        bar.set_postfix(loss=f"{record['loss']:.4g}", grad_norm=f"{record['grad_norm']:.4g}")
        if callback is not None:
            callback(record, search)
        batch = next(stream, None) if step < iters else None
        step += 1
    return history, skipped


def _report_outcome(result: GradInitResult, progress_bar: bool, show: Callable[[str], None] | None) -> None:
    """Show the search's report (to `show`, else where its progress bar was, else at INFO), and its one warning,
    from one process."""
    report = search_report(result)
    text = "\n".join(report_lines(report))
    if show is not None:
        show(text)
    elif progress_bar:
        tqdm.write(text, file=sys.stderr)
    else:
        logger.info("%s", text)
    warning = report_warning(report)
    if warning and not (
        torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_rank() != 0
    ):
        logger.warning("%s", warning)


def _check_model(model: nn.Module) -> None:
    """Refuse, before any work, a model the search cannot start from."""
    if is_gradinit_initialized(model):
        raise ValueError(
            "The model already went through a GradInit search (model.config.gradinit): a second search would scale "
            "the already-scaled weights and compound the scales. Start from the original weights, or delete "
            "model.config.gradinit to search again from these weights on purpose."
        )
    for name, p in model.named_parameters():
        if p.is_meta:
            raise ValueError(
                f"Parameter {name} is on the meta device (not materialised), so GradInit cannot compute its scale. "
                "Load the model with real weights (no device_map='meta' / init_empty_weights), run the search, then "
                "shard it for training."
            )


def _record_initialization(model: nn.Module, result: GradInitResult) -> None:
    """Mark the model's config so that a trainer given it later (or its saved checkpoint) skips the search."""
    config = getattr(model, "config", None)
    if config is not None:
        config.gradinit = {
            "initialization": result.initialization,
            "iterations": result.iterations,
            "constraint_fraction": result.constraint_fraction,
            **result.scale_summary(),
            **result.arguments,
        }


def is_gradinit_initialized(model: nn.Module) -> bool:
    """Whether `model` (or the checkpoint it was loaded from) already went through a GradInit search."""
    return bool(getattr(getattr(model, "config", None), "gradinit", None))
