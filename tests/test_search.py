"""Behaviour of gradinit() without a Trainer: which tensors get a scale, bounds, restoring, determinism."""

import pytest
import torch
from helpers import batches, tiny_bart, tiny_marian, tiny_tokenizer
from torch import nn

import hf_gradinit.search as engine
from hf_gradinit import GradInitArguments, GradInitError, GradInitSearch, gradinit, select_scaled_tensors
from hf_gradinit.search_mode import search_mode


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _run(model, args, **kw):
    return gradinit(model, batches(tiny_tokenizer(), model), args, progress_bar=False, **kw)


def test_weights_become_alpha_times_initial_weights():
    model = tiny_bart()
    before = _state(model)
    result = _run(model, GradInitArguments(gradinit_iters=6, gradinit_lr=5e-2))
    after = model.state_dict()
    assert any(abs(a - 1) > 1e-3 for a in result.scales.values())
    # state_dict lists tied tensors under every alias: map each alias to the scaled tensor it shares memory with.
    scaled_ptr = {after[n].data_ptr(): n for n in result.scales}
    for name, tensor in before.items():
        scaled = scaled_ptr.get(after[name].data_ptr())
        if scaled is not None:
            torch.testing.assert_close(after[name], result.scales[scaled] * tensor, rtol=1e-6, atol=0)
            assert result.final_norms[scaled] == pytest.approx(
                result.scales[scaled] * result.init_norms[scaled], rel=1e-5
            )
        else:
            assert torch.equal(after[name], tensor), name
    assert len(result.history) == 6


def test_selection_by_module_type_tied_frozen_and_zero_tensors():
    model = tiny_bart()
    with torch.no_grad():
        model.model.encoder.layers[0].fc1.bias.normal_()  # a non-zero bias gets a scale in the bias group
    model.model.decoder.embed_positions.weight.requires_grad_(False)
    groups = {t.name: t.group for t in select_scaled_tensors(model)}
    assert groups["model.encoder.layernorm_embedding.weight"] == "norm"
    assert groups["model.encoder.layers.0.self_attn.q_proj.weight"] == "weight"
    assert groups["model.encoder.layers.0.fc1.bias"] == "bias"
    assert groups["model.shared.weight"] == "weight"
    assert model.lm_head.weight is model.model.shared.weight
    assert "lm_head.weight" not in groups  # tied to the shared embedding: one α
    assert "model.decoder.embed_positions.weight" not in groups  # frozen
    assert "model.encoder.layers.0.fc2.bias" not in groups  # zero-initialised
    assert "model.encoder.layernorm_embedding.bias" not in groups


def test_marian_frozen_sinusoidal_positions_get_no_scale():
    model = tiny_marian()
    names = {t.name for t in select_scaled_tensors(model)}
    assert not any("embed_positions" in n for n in names)
    before = model.model.encoder.embed_positions.weight.clone()
    result = _run(model, GradInitArguments(gradinit_iters=3, gradinit_lr=5e-2))
    assert torch.equal(model.model.encoder.embed_positions.weight, before)
    assert result.scales


def test_clamps_hold_for_every_group():
    model = tiny_bart()
    with torch.no_grad():
        for layer in model.model.encoder.layers:
            layer.fc1.bias.normal_()
    args = GradInitArguments(gradinit_iters=15, gradinit_lr=0.3, gradinit_min_scale=0.7, gradinit_max_scale=0.9)
    result = _run(model, args)
    hit_bound = False
    for name, a in result.scales.items():
        group = result.groups[name]
        low = 0.0 if group == "bias" else 0.7
        high = 0.9 if group == "norm" else float("inf")
        assert low <= a <= high, (name, group, a)
        hit_bound |= a in (0.7, 0.9)
    assert hit_bound  # the bounds were active, not just never reached
    assert {"weight", "bias", "norm"} == set(result.groups.values())


def test_constraint_step_lowers_gradient_norm():
    model = tiny_bart()
    batch = batches(tiny_tokenizer(), model, n_batches=1)[0]
    args = GradInitArguments(gradinit_gamma=1e-6, gradinit_lr=1e-2)
    with search_mode(model):
        search = GradInitSearch(model, args)
        first = search.step(batch)
        second, _ = search.alpha_gradient(batch)
    assert first["constraint"] and second["constraint"]
    assert second["grad_norm"] < first["grad_norm"]


def test_the_scales_do_not_depend_on_the_global_random_state():
    """The search runs with dropout off and draws nothing at random: a model with dropout 0.1, searched after
    different draws from the global random state, gets the same scales, and they moved."""
    results = []
    for state in (0, 1):
        model = tiny_bart(seed=3)
        torch.manual_seed(state)
        torch.rand(100 + state)
        results.append(_run(model, GradInitArguments(gradinit_iters=5, gradinit_lr=1e-2)))
    assert any(abs(a - 1) > 1e-3 for a in results[0].scales.values())
    assert results[0].scales == results[1].scales


def test_second_order_graph_only_where_needed(monkeypatch):
    calls = []
    real = engine.double_backward_attention
    monkeypatch.setattr(engine, "double_backward_attention", lambda: calls.append(1) or real())
    # γ far above ‖g‖: every step is an objective step; only the first (‖g‖ still unknown) builds a graph.
    result = _run(tiny_bart(), GradInitArguments(gradinit_iters=5, gradinit_gamma=1e9, gradinit_hvp="exact"))
    assert result.constraint_fraction == 0 and len(calls) == 1
    calls.clear()
    # γ far below ‖g‖: every step is a constraint step, each needs the graph, none is rebuilt.
    result = _run(tiny_bart(), GradInitArguments(gradinit_iters=5, gradinit_gamma=1e-6, gradinit_hvp="exact"))
    assert result.constraint_fraction == 1 and len(calls) == 5 and result.graph_rebuilds == 0
    calls.clear()
    # Finite differences (the default): no graph at all, for either kind of step or optimizer.
    for alg, gamma in (("adam", 1e-6), ("adam", 1e9), ("sgd", 1e-6), ("sgd", 1e9)):
        _run(tiny_bart(), GradInitArguments(gradinit_iters=2, gradinit_gamma=gamma, gradinit_alg=alg))
    assert len(calls) == 0


def test_unexpected_constraint_rebuilds_the_graph():
    model = tiny_bart()
    data = batches(tiny_tokenizer(), model, n_batches=1)
    with search_mode(model):
        search = GradInitSearch(model, GradInitArguments(gradinit_gamma=1e-6, gradinit_hvp="exact"))
        search.expect_constraint = False
        record = search.step(data[0])
        assert record["constraint"] and search.graph_rebuilds == 1
        search.expect_constraint = False  # a second surprise is counted too
        search.step(data[0])
    assert search.graph_rebuilds == 2


def test_mode_dtype_and_attention_are_restored_and_search_runs_in_float32():
    model = tiny_bart(dtype=torch.bfloat16)
    model.train()
    seen = []

    def loss_fn(m, batch):
        seen.append((m.training, m.model.shared.weight.dtype))
        return m(**batch).loss

    _run(model, GradInitArguments(gradinit_iters=2, gradinit_gamma=1e-6), loss_fn=loss_fn)
    assert set(seen) == {(False, torch.float32)}
    assert model.training
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())
    assert model.config._attn_implementation == "sdpa"


def test_non_double_backward_attention_is_switched_to_eager_and_back():
    model = tiny_bart(attn_implementation="flex_attention")
    impls = []

    def loss_fn(m, batch):
        impls.append(m.config._attn_implementation)
        return m(**batch).loss

    _run(model, GradInitArguments(gradinit_iters=1), loss_fn=loss_fn)
    assert set(impls) == {"eager"}
    assert model.config._attn_implementation == "flex_attention"


def test_nan_restores_original_weights_exactly():
    model = tiny_bart()
    before = _state(model)
    calls = []

    def loss_fn(m, batch):
        calls.append(1)
        loss = m(**batch).loss
        return loss * float("nan") if len(calls) > 5 else loss

    with pytest.raises(GradInitError, match="gradinit_lr.*original weights were restored"):
        _run(model, GradInitArguments(gradinit_iters=10, gradinit_lr=5e-2), loss_fn=loss_fn)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[name]), name


def test_interrupt_restores_original_weights():
    model = tiny_bart()
    before = _state(model)

    def interrupt(record, search):
        if record["step"] == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(model, GradInitArguments(gradinit_iters=10, gradinit_lr=5e-2), callback=interrupt)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[name]), name


def test_model_with_nothing_to_scale_is_refused():
    class Bare(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(3))

        def forward(self, x):
            return (self.w * x).sum()

    with pytest.raises(ValueError, match="no trainable, non-zero LayerNorm, Linear or Embedding"):
        gradinit(Bare(), [{"x": torch.ones(3, 3)}], loss_fn=lambda m, b: m(**b), progress_bar=False)


def test_empty_or_malformed_batches_are_refused():
    model = tiny_bart()
    with pytest.raises(ValueError, match="no batches"):
        gradinit(model, [], progress_bar=False)
    with pytest.raises(ValueError, match="dicts of tensors"):
        gradinit(model, [torch.ones(2, 3)], progress_bar=False)


def test_missing_labels_give_a_clear_error():
    model = tiny_bart()
    batch = batches(tiny_tokenizer(), model, n_batches=1)[0]
    del batch["labels"], batch["decoder_input_ids"]
    batch["decoder_input_ids"] = batch["input_ids"]
    with pytest.raises(ValueError, match="labels.*loss_fn"):
        gradinit(model, [batch], progress_bar=False)


def test_custom_loss_fn_for_a_plain_torch_model():
    model = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 1))
    data = [
        {"x": torch.randn(9, 4, generator=torch.Generator().manual_seed(i)), "y": torch.randn(9, 1)} for i in range(3)
    ]
    result = gradinit(
        model,
        data,
        GradInitArguments(gradinit_iters=4),
        loss_fn=lambda m, b: ((m(b["x"]) - b["y"]) ** 2).mean(),
        progress_bar=False,
    )
    assert set(result.groups.values()) >= {"weight", "norm"}
    assert result.iterations == 4


def test_one_shot_iterator_ends_the_search_early():
    model = tiny_bart()
    result = gradinit(
        model,
        iter(batches(tiny_tokenizer(), model, n_batches=2)),
        GradInitArguments(gradinit_iters=5),
        progress_bar=False,
    )
    assert result.iterations == 2


@pytest.mark.parametrize(
    "alg,hvp", [("adam", "exact"), ("adam", "finite_difference"), ("sgd", "exact"), ("sgd", "finite_difference")]
)
def test_a_tensor_the_loss_never_uses_keeps_its_scale(alg, hvp):
    # A head the loss ignores has no gradient: it counts as zero in g and in every α-gradient, so its α stays 1
    # (Adam's first moment stays 0), and the tensors that are used still move. γ between the iterations' ‖g‖.
    torch.manual_seed(0)
    model = nn.ModuleDict(
        {"body": nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1)), "unused": nn.Linear(4, 3)}
    )
    unused_before = model["unused"].weight.detach().clone()
    data = [
        {"x": torch.randn(9, 4, generator=torch.Generator().manual_seed(i)), "y": torch.randn(9, 1)} for i in range(4)
    ]
    result = gradinit(
        model,
        data,
        GradInitArguments(
            gradinit_alg=alg,
            gradinit_hvp=hvp,
            gradinit_iters=4,
            gradinit_lr=0.1,
            gradinit_gamma=8.0 if alg == "adam" else 2.0,
        ),
        loss_fn=lambda m, b: ((m["body"](b["x"]) - b["y"]) ** 2).mean(),
        progress_bar=False,
    )
    assert any(r["constraint"] for r in result.history) and not all(r["constraint"] for r in result.history)
    assert result.scales["unused.weight"] == 1.0 and result.scales["unused.bias"] == 1.0
    assert torch.equal(model["unused"].weight, unused_before)
    assert all(abs(result.scales[f"body.{i}.weight"] - 1.0) > 1e-3 for i in (0, 2))


def test_split_batch_slices_only_tensors_with_the_batch_dimension():
    x = torch.arange(7 * 2).reshape(7, 2)
    batch = {"x": x, "temperature": torch.tensor(0.5), "table": torch.zeros(4, 3), "note": "kept"}
    s_tilde, s = engine.split_batch(batch)
    # ⌈2·7/3⌉ = 5 rows each: the first five and the last five
    assert torch.equal(s_tilde["x"], x[:5]) and torch.equal(s["x"], x[2:])
    for part in (s_tilde, s):
        assert (
            part["temperature"] is batch["temperature"] and part["table"] is batch["table"] and part["note"] == "kept"
        )
    with pytest.raises(ValueError, match=r"batch dimension; got keys \['temperature', 'note'\]"):
        engine.split_batch({"temperature": torch.tensor(0.5), "note": "kept"})
