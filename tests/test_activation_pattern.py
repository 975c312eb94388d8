"""Finite-difference Hessian-vector products on ReLU networks: the activation pattern held between the two passes."""

import logging

import pytest
import torch
from torch import nn

from hf_gradinit import GradInitArguments, GradInitSearch
from hf_gradinit.activation_pattern import ActivationPattern


class _Mlp(nn.Module):
    def __init__(self, act: nn.Module, d_in=5, d_hidden=16):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(d_in, d_hidden), act, nn.Linear(d_hidden, 1)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def _mse(model, batch):
    return (model(batch["x"]).squeeze(-1) - batch["y"]).square().mean()


@pytest.mark.parametrize(
    "act", [nn.ReLU(), nn.ReLU(inplace=True), nn.LeakyReLU(0.1)], ids=["relu", "inplace", "leaky"]
)
def test_replay_uses_the_recorded_signs_and_restores_the_module(act):
    model = _Mlp(act)
    pattern = ActivationPattern(model)
    x = torch.randn(7, 16)
    with pattern.recording():
        base = act(x.clone())
    shifted = x - 0.3  # some inputs change sign
    with pattern.replaying():
        replayed = act(shifted.clone())
    slope = torch.where(x > 0, 1.0, getattr(act, "negative_slope", 0.0))
    assert (shifted.sign() != x.sign()).any()
    torch.testing.assert_close(replayed, slope * shifted, rtol=0, atol=0)
    torch.testing.assert_close(base, slope * x, rtol=0, atol=0)
    assert "forward" not in vars(act)  # the class's forward again
    torch.testing.assert_close(
        act(shifted.clone()), nn.functional.leaky_relu(shifted, getattr(act, "negative_slope", 0.0))
    )


def test_replay_refuses_a_pass_that_differs_from_the_recorded_one():
    act = nn.ReLU()
    pattern = ActivationPattern(_Mlp(act))
    with pattern.recording():
        act(torch.randn(3, 16))
    with pytest.raises(RuntimeError, match="shape"), pattern.replaying():
        act(torch.randn(4, 16))
    with pytest.raises(RuntimeError, match="called more often"), pattern.replaying():
        act(torch.randn(3, 16))


def test_unhandled_kinks_are_named(caplog):
    with caplog.at_level(logging.WARNING):
        ActivationPattern(_Mlp(nn.ReLU6()))
    assert "ReLU6" in caplog.text


@pytest.mark.parametrize("alg", ["adam", "sgd"])
def test_finite_difference_on_the_kinks_matches_autograd(alg):
    """Every hidden pre-activation of the first row sits on its kink (fc1's bias cancels W·x₀), so the finite
    difference's step moves about half of them across zero. Autograd's H·u takes ReLU'' = 0; with the pattern held,
    the finite difference must agree with it (float64)."""
    torch.manual_seed(0)
    x = torch.randn(9, 5, dtype=torch.float64)
    batch = {"x": x, "y": torch.randn(9, dtype=torch.float64)}
    gradients = {}
    for hvp in ("exact", "finite_difference"):
        model = _Mlp(nn.ReLU()).double()
        torch.manual_seed(1)
        for p in model.parameters():
            nn.init.normal_(p)
        with torch.no_grad():
            model.fc1.bias.copy_(-(model.fc1.weight @ x[0]))
        search = GradInitSearch(
            model, GradInitArguments(gradinit_alg=alg, gradinit_gamma=1e-9, gradinit_hvp=hvp), _mse
        )
        record, gradients[hvp] = search.alpha_gradient(batch)
        assert record["constraint"]
    exact, approx = gradients["exact"], gradients["finite_difference"]
    rel = ((approx - exact).norm() / exact.norm()).item()
    assert exact.norm() > 0
    assert rel < 1e-5
