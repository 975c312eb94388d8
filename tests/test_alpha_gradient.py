"""The α-gradients of the engine against central finite differences of an independent float64 replay."""

import math

import pytest
import torch
from helpers import batches, tiny_bart, tiny_tokenizer
from torch.func import functional_call

from hf_gradinit import GradInitArguments, GradInitSearch
from hf_gradinit.search_mode import double_backward_attention, search_mode

ETA = 1e-2
H = 1e-6


def _loss(model, params, batch):
    with double_backward_attention():
        return functional_call(model, params, args=(), kwargs=batch).loss


def _replay(model, search, batch, alg, branch):
    """F(α) computed from scratch with functional_call: no code of the engine besides the tensor lists."""
    names = search.names
    theta0 = dict(zip(names, search.theta0))
    scaled_names = [t.name for t in search.scaled]
    # the paper's overlapping parts, written out: S̃ the first ⌈2n/3⌉ rows, S the last ⌈2n/3⌉
    n = batch["input_ids"].shape[0]
    k = math.ceil(2 * n / 3)
    s_tilde = {key: value[:k] for key, value in batch.items()}
    s = {key: value[n - k :] for key, value in batch.items()}

    def params_at(alpha):
        scale = dict(zip(scaled_names, alpha.tolist()))
        return {n: (scale.get(n, 1.0) * theta0[n]).detach().requires_grad_() for n in names}

    def gradient(p):
        loss = _loss(model, p, s_tilde)
        grads = torch.autograd.grad(loss, [p[n] for n in names], allow_unused=True)
        return [torch.zeros_like(p[n]) if gi is None else gi for n, gi in zip(names, grads)]

    base_alpha = search.alpha.clone()
    # sign(g) is piecewise constant: its derivative is zero wherever it is defined, so hold it at the base point.
    fixed_sign = [gi.sign() for gi in gradient(params_at(base_alpha))]

    def F(alpha):
        p = params_at(alpha)
        g = gradient(p)
        if branch == "constraint":
            if alg == "adam":
                return sum(gi.abs().sum() for gi in g)
            return torch.sqrt(sum(gi.square().sum() for gi in g))
        step = fixed_sign if alg == "adam" else g
        with torch.no_grad():
            return _loss(model, {n: p[n] - ETA * d for n, d in zip(names, step)}, s) / ETA

    numeric = torch.zeros_like(base_alpha)
    for i in range(len(base_alpha)):
        e = torch.zeros_like(base_alpha)
        e[i] = H
        numeric[i] = (F(base_alpha + e) - F(base_alpha - e)) / (2 * H)
    return numeric


def _alpha_gradient_at_a_general_point(model, batch, args, branch):
    """The engine's α-gradient at random scales in [0.6, 1.4] (not α = 1); the weights are left at α·θ⁰."""
    search = GradInitSearch(model, args)
    gen = torch.Generator().manual_seed(0)
    search.alpha = 0.6 + 0.8 * torch.rand(len(search.alpha), generator=gen, dtype=torch.float64)
    search.write_parameters()
    record, d_alpha = search.alpha_gradient(batch)
    assert record["constraint"] == (branch == "constraint")
    search.write_parameters()
    return search, d_alpha


# Relative error bounds, about 4× the errors measured here: the replay's central difference (h = 1e-6, float64)
# is the larger part of them, most on the objective F = L(θ'; S)/η, whose rounding 1/η amplifies. Measured:
# exact 2.6e-8, 9.2e-8, 1.8e-9, 5.5e-10; finite difference 2.6e-8, 9.5e-8, 1.7e-8, 5.0e-8 (in the order below).
REPLAY_BOUND = {
    ("adam", "objective", "exact"): 1e-7,
    ("sgd", "objective", "exact"): 4e-7,
    ("adam", "constraint", "exact"): 8e-9,
    ("sgd", "constraint", "exact"): 3e-9,
    ("adam", "objective", "finite_difference"): 1e-7,
    ("sgd", "objective", "finite_difference"): 4e-7,
    ("adam", "constraint", "finite_difference"): 7e-8,
    ("sgd", "constraint", "finite_difference"): 2e-7,
}


@pytest.mark.parametrize(
    "alg,branch",
    [("adam", "objective"), ("sgd", "objective"), ("adam", "constraint"), ("sgd", "constraint")],
)
@pytest.mark.parametrize("hvp", ["exact", "finite_difference"])
def test_alpha_gradient_matches_finite_differences(alg, branch, hvp):
    tok = tiny_tokenizer()
    model = tiny_bart(seed=1, dtype=torch.float64)
    batch = batches(tok, model, n_batches=1, batch_size=6)[0]
    gamma = 1e-9 if branch == "constraint" else 1e9
    # The replay's θ′ moves the tied output projection with the embedding (test_reference_semantics.py checks the
    # paper's θ′, the Adam default, against a replay of its own).
    args = GradInitArguments(
        gradinit_alg=alg,
        gradinit_eta=ETA,
        gradinit_gamma=gamma,
        gradinit_hvp=hvp,
        gradinit_step_moves_tied_output=True,
    )
    with search_mode(model):
        search, analytic = _alpha_gradient_at_a_general_point(model, batch, args, branch)
        numeric = _replay(model, search, batch, alg, branch)
    rel = (analytic - numeric).norm() / numeric.norm()
    assert numeric.norm() > 0
    assert rel < REPLAY_BOUND[alg, branch, hvp], f"relative error {rel:.2e}"


# Relative error bounds of the finite-difference α-gradient, 3× the larger of the GELU and ReLU errors measured
# here (float64: 1.8e-8, 5.0e-8, 1.2e-8; float32: 4.2e-4, 1.2e-3, 2.6e-4). ReLU is fairseq's Transformer's
# activation, whose kinks the finite difference must hold still: in float32 leaving the pattern unheld errs by
# 4.5e-3, 1.5e-2 and 2.9e-3, beyond each bound; in float64 ε is too small for any pre-activation of this model
# to cross (tests/test_activation_pattern.py puts them exactly on their kinks).
FD_BOUND = {
    ("adam", "constraint", torch.float64): 6e-8,
    ("sgd", "constraint", torch.float64): 1.5e-7,
    ("sgd", "objective", torch.float64): 4e-8,
    ("adam", "constraint", torch.float32): 1.3e-3,
    ("sgd", "constraint", torch.float32): 3.5e-3,
    ("sgd", "objective", torch.float32): 8e-4,
}


@pytest.mark.parametrize("activation", ["gelu", "relu"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("alg,branch", [("adam", "constraint"), ("sgd", "constraint"), ("sgd", "objective")])
def test_finite_difference_hvp_matches_the_exact_alpha_gradient(alg, branch, dtype, activation):
    bound = FD_BOUND[alg, branch, dtype]
    tok = tiny_tokenizer()
    gamma = 1e-9 if branch == "constraint" else 1e9
    gradients = {}
    for hvp in ("exact", "finite_difference"):
        model = tiny_bart(seed=1, dtype=dtype, activation_function=activation)
        batch = batches(tok, model, n_batches=1, batch_size=6)[0]
        args = GradInitArguments(gradinit_alg=alg, gradinit_eta=ETA, gradinit_gamma=gamma, gradinit_hvp=hvp)
        with search_mode(model):
            _, gradients[hvp] = _alpha_gradient_at_a_general_point(model, batch, args, branch)
    exact, approx = gradients["exact"], gradients["finite_difference"]
    rel = ((approx - exact).norm() / exact.norm()).item()
    assert exact.norm() > 0 and rel < bound, f"relative error {rel:.2e}"
