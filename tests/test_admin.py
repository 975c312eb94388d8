"""Admin's residual rescaling and profiling (benchmarks/admin.py), against its formula computed layer by layer here,
from the layers' own submodules, without the hooks."""

import copy
import os
import sys

import pytest
import torch
from helpers import tiny_tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import admin  # noqa: E402
from hf_gradinit import fairseq_init_  # noqa: E402
from hf_gradinit.translation.modeling import MODEL_CLASSES, _scratch_config  # noqa: E402


def fairseq_model(seed=0):
    torch.manual_seed(seed)
    config = _scratch_config("transformer", tiny_tokenizer(), "de", "en", 64)
    config.update(
        dict(
            d_model=16,
            encoder_layers=2,
            decoder_layers=2,
            encoder_ffn_dim=32,
            decoder_ffn_dim=32,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            dropout=0.0,
            attention_dropout=0.0,
            activation_dropout=0.0,
        )
    )
    model = MODEL_CLASSES["transformer"][1](config).double()
    fairseq_init_(model)
    return model.eval()


def batch(model, seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, model.config.vocab_size, (3, 7), generator=g)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "decoder_input_ids": torch.roll(ids, 1, dims=1)}


def encoder_by_hand(model, x, omegas):
    """Encoder layers as Admin defines them: x ← LN(f(x) + ω ⊙ x), for the attention and the FFN branch; returns
    the output and the ω that profiling gives (ratio r from 1: ω = r, r ← √(Var[ω x] + Var[f]))."""
    r, profiled = 1.0, []
    for i, layer in enumerate(model.get_encoder().layers):
        w_attn, w_ffn = omegas[2 * i], omegas[2 * i + 1]
        f = layer.self_attn(hidden_states=x, attention_mask=None)[0]
        profiled.append(r)
        r = float((torch.var(r * x, unbiased=False) + torch.var(f, unbiased=False)).sqrt())
        x = layer.self_attn_layer_norm(f + w_attn * x)
        f = layer.fc2(layer.activation_fn(layer.fc1(x)))
        profiled.append(r)
        r = float((torch.var(r * x, unbiased=False) + torch.var(f, unbiased=False)).sqrt())
        x = layer.final_layer_norm(f + w_ffn * x)
    return x, profiled


def encoder_input(model, inputs):
    seen = {}

    def keep(module, args, kwargs):
        seen["x"] = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]

    handle = model.get_encoder().layers[0].register_forward_pre_hook(keep, with_kwargs=True)
    with torch.no_grad():
        model(**inputs)
    handle.remove()
    return seen["x"]


def test_omegas_of_one_leave_the_model_as_it_was():
    model, inputs = fairseq_model(), None
    inputs = batch(model)
    with torch.no_grad():
        before = model(**inputs).logits
    omegas = admin.attach(model)
    assert len(omegas) == 2 * 2 + 3 * 2 and all(torch.equal(w, torch.ones(16, dtype=w.dtype)) for w in omegas)
    assert {n for n, _ in model.named_parameters() if "admin_omega" in n} >= {"model.encoder.layers.0.admin_omega_fc1"}
    with torch.no_grad():
        after = model(**inputs).logits
    torch.testing.assert_close(after, before, rtol=0, atol=1e-12)  # f + 1·x recomputed from x + f: float64 rounding


def test_the_hooked_encoder_computes_admins_residual_with_the_given_omegas():
    model = fairseq_model()
    inputs = batch(model)
    x0 = encoder_input(model, inputs)
    plain = copy.deepcopy(model)  # the by-hand computation calls the layers' modules, which must carry no hooks
    omegas = admin.attach(model)
    g = torch.Generator().manual_seed(2)
    values = [1 + torch.rand(16, generator=g, dtype=torch.float64) * 3 for _ in omegas]
    with torch.no_grad():
        for w, v in zip(omegas, values):
            w.copy_(v)
        hooked = model.get_encoder()(
            input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]
        ).last_hidden_state
        by_hand, _ = encoder_by_hand(plain, x0, values[:4])
    torch.testing.assert_close(hooked, by_hand, rtol=1e-12, atol=1e-12)


def test_profiling_sets_each_omega_from_the_running_ratio():
    model = fairseq_model()
    inputs = batch(model)
    x0 = encoder_input(model, inputs)
    plain = copy.deepcopy(model)
    omegas = admin.attach(model)
    admin.profile(model, inputs, train_mode=False)
    with torch.no_grad():
        ratios = _profile_ratios(plain, x0)
        _, expected = encoder_by_hand(plain, x0, [torch.full((16,), r, dtype=torch.float64) for r in ratios])
    assert expected == pytest.approx(ratios, rel=1e-12)  # the two sequential computations agree
    got = [float(w[0].detach()) for w in omegas[:4]]
    assert got == pytest.approx(expected, rel=1e-10)
    assert expected[0] == 1.0 and all(b > a for a, b in zip(expected, expected[1:]))  # each branch adds variance
    assert all(torch.all(w == w[0]) for w in omegas)  # one value per branch at the start
    decoder = [float(w[0].detach()) for w in omegas[4:]]
    assert decoder[0] == 1.0 and all(b > a for a, b in zip(decoder, decoder[1:]))
    assert not model.training


def _profile_ratios(model, x0):
    """The profiled ω in order, by the same sequential rule (each ω used in the layer before the next is taken)."""
    r, out = 1.0, []
    x = x0
    for layer in model.get_encoder().layers:
        for start in ("attn", "ffn"):
            f = (
                layer.self_attn(hidden_states=x, attention_mask=None)[0]
                if start == "attn"
                else layer.fc2(layer.activation_fn(layer.fc1(x)))
            )
            out.append(r)
            norm = layer.self_attn_layer_norm if start == "attn" else layer.final_layer_norm
            new_r = float((torch.var(r * x, unbiased=False) + torch.var(f, unbiased=False)).sqrt())
            x = norm(f + r * x)
            r = new_r
    return out
