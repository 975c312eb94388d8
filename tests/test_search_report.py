"""The search's report: its counts of scales at a bound on a model built so that known tensors reach one, and the
one warning it gives."""

import logging

import pytest
import torch
from torch import nn

from hf_gradinit import GradInitArguments, GradInitResult, gradinit
from hf_gradinit.search_report import report_lines, report_warning, search_report


class _Layer(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 4), nn.Linear(4, 4, bias=False)
        nn.init.constant_(self.fc1.bias, 0.5)


class _Toy(nn.Module):
    """Named like a Transformer's encoder: `encoder.layers.{i}.fc1/fc2` and `encoder.layer_norm`."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.encoder = nn.Module()
        self.encoder.layers = nn.ModuleList([_Layer() for _ in range(3)])
        self.encoder.layer_norm = nn.LayerNorm(4)
        nn.init.zeros_(self.encoder.layer_norm.bias)


def _pulls_to_bounds(model, batch):
    """Lower for smaller fc1 weights and biases (their scales fall to the floor), lower for a larger LayerNorm gain
    (its scale rises to the ceiling), lowest with fc2 at its initial norm (its scales stay inside)."""
    loss = 0.0 * batch["x"].sum() - model.encoder.layer_norm.weight.sum()
    for layer in model.encoder.layers:
        loss = loss + layer.fc1.weight.square().sum() + layer.fc1.bias.square().sum()
        loss = loss + (layer.fc2.weight.norm() - 2.0).square()
    return loss


def _search(**overrides):
    args = GradInitArguments(
        **{"gradinit_iters": 60, "gradinit_lr": 0.1, "gradinit_gamma": 1e9, "gradinit_max_scale": 2.0, **overrides}
    )
    batches = [{"x": torch.zeros(6, 1)}]
    return gradinit(_Toy(), batches, args, loss_fn=_pulls_to_bounds, progress_bar=False)


def _warnings(caplog):
    return [r for r in caplog.records if r.levelno == logging.WARNING and r.name.startswith("hf_gradinit")]


def test_counts_the_tensors_that_ended_at_a_bound(caplog):
    caplog.set_level(logging.WARNING)
    result = _search()
    rows = {r["kind"]: (r["tensors"], r["at_floor"], r["at_ceiling"]) for r in search_report(result)["bounds"]}
    # By construction: every fc1 weight at the 0.01 floor, every fc1 bias at 0, the one LayerNorm gain at the 2.0
    # ceiling, no fc2 weight at either bound.
    assert rows == {
        "encoder fc1": (3, 3, 0),
        "encoder biases": (3, 3, 0),
        "encoder fc2": (3, 0, 0),
        "encoder LayerNorm": (1, 0, 1),
    }
    text = "\n".join(report_lines(result.report()))
    assert "encoder fc1: 3 of 3 at the 0.01 floor" in text and "encoder LayerNorm: 1 of 1 at the 2 ceiling" in text
    assert "encoder biases: 3 of 3 at the 0 floor" in text and "encoder fc2" not in text
    # One warning, naming what was measured and the knobs; the one-tensor LayerNorm kind is not "most of a kind".
    (warning,) = _warnings(caplog)
    assert "encoder fc1: 3 of 3 at the 0.01 floor" in warning.message and "LayerNorm" not in warning.message
    assert "gradinit_gamma" in warning.message and "gradinit_iters" in warning.message


def test_no_objective_step_gives_one_warning(caplog):
    caplog.set_level(logging.WARNING)
    result = _search(gradinit_gamma=1e-9, gradinit_iters=5, gradinit_lr=1e-3)
    (warning,) = _warnings(caplog)
    assert "no objective step ran" in warning.message and "in all 5 iterations" in warning.message
    assert result.report()["first_objective_step"] is None


def _report(constraint_fraction, bounds=()):
    return {
        "norm": "L1",
        "gamma": 1000.0,
        "grad_norm_first": 3000.0,
        "grad_norm_last": 990.0,
        "iterations": 100,
        "constraint_steps": round(100 * constraint_fraction),
        "constraint_fraction": constraint_fraction,
        "first_objective_step": 40,
        "loss_first": 9.5,
        "loss_last": 9.0,
        "loss_window": 10,
        "bounds": list(bounds),
    }


@pytest.mark.parametrize("fraction, warns", [(0.4, False), (0.5, False), (0.6, True)])
def test_constraint_steps_warn_when_they_were_most_of_the_search(fraction, warns):
    warning = report_warning(_report(fraction))
    assert (warning is not None) == warns
    if warns:
        assert "constraint steps were 60% of the search" in warning and "γ = 1000" in warning


@pytest.mark.parametrize("at_floor, warns", [(3, False), (4, True)])
def test_a_kind_warns_when_most_of_its_tensors_are_at_a_bound(at_floor, warns):
    row = {"kind": "decoder fc2", "tensors": 6, "at_floor": at_floor, "at_ceiling": 0, "floor": 0.01, "ceiling": None}
    assert (report_warning(_report(0.1, [row])) is not None) == warns


def test_the_report_is_in_scales_json(tmp_path):
    result = _search(gradinit_iters=12)
    loaded = GradInitResult.load(result.save(tmp_path))
    saved = loaded.to_dict()["report"]
    assert saved == result.report() and saved["iterations"] == 12
    # The loss "before" and "after": means over the first and the last iterations, from the history itself.
    first = [r["loss"] for r in result.history[:6]]
    assert saved["loss_window"] == 6 and saved["loss_first"] == pytest.approx(sum(first) / 6)


def test_the_card_shows_the_report_and_claims_only_the_aim():
    from hf_gradinit.model_card import build_model_card

    result = _search(gradinit_iters=12)
    card = str(
        build_model_card(
            model_name="toy-gradinit-init", model_type="toy", base_model=None, result=result, initialization_only=True
        )
    )
    assert report_lines(result.report())[0] in card and "encoder fc1: 3 of 3 at the 0.01 floor" in card
    assert "with the aim of training without learning-rate warmup" in card
    assert "so that training runs without" not in card


def test_the_history_numbers_its_iterations_from_1():
    """5 iterations whose constraint never holds (γ far above ‖g‖), and 5 where it always does (γ 1e-9)."""
    free = _search(gradinit_iters=5)
    assert [r["step"] for r in free.history] == [1, 2, 3, 4, 5]
    assert not any(r["constraint"] for r in free.history) and all("objective" in r for r in free.history)
    assert free.report()["first_objective_step"] == 1
    bound = _search(gradinit_iters=5, gradinit_gamma=1e-9)
    assert [r["step"] for r in bound.history] == [1, 2, 3, 4, 5]
    assert all(r["constraint"] for r in bound.history) and bound.report()["first_objective_step"] is None


def test_the_report_of_a_written_history():
    history = [
        {"step": 1, "loss": 4.0, "grad_norm": 30.0, "constraint": True},
        {"step": 2, "loss": 3.0, "grad_norm": 20.0, "constraint": True},
        {"step": 3, "loss": 2.0, "grad_norm": 9.0, "constraint": False, "objective": 1.5},
        {"step": 4, "loss": 1.0, "grad_norm": 8.0, "constraint": False, "objective": 0.5},
    ]
    result = GradInitResult({}, {}, {}, {}, history=history, arguments={"gradinit_alg": "adam", "gradinit_gamma": 10})
    report = search_report(result)
    assert report["first_objective_step"] == 3 and report["constraint_steps"] == 2
    assert report["constraint_fraction"] == 0.5 and report["iterations"] == 4
    assert (report["grad_norm_first"], report["grad_norm_last"]) == (30.0, 8.0)
    assert (report["loss_first"], report["loss_last"], report["loss_window"]) == (3.5, 1.5, 2)
    assert report["norm"] == "L1" and report["gamma"] == 10 and report["bounds"] == []
