"""`--model_type transformer --init fairseq --preset iwslt14` is fairseq's `transformer_iwslt_de_en` with fairseq's
initialization: the layout checked point by point, every tensor against the formula it was drawn from."""

import math

import pytest
import torch
from helpers import tiny_bart, tiny_tokenizer
from torch import nn
from transformers import MarianMTModel

from hf_gradinit import GradInitArguments, GradInitResult, fairseq_init_, gradinit, select_scaled_tensors
from hf_gradinit.translation import ModelArguments, build_model


@pytest.fixture(scope="module")
def iwslt_model():
    args = ModelArguments(model_type="transformer", init="fairseq", preset="iwslt14", tokenizer_name="unused")
    torch.manual_seed(0)
    return build_model(args, tiny_tokenizer(), "de", "en", max_positions=130)


def _uniform_ok(t: torch.Tensor, bound: float, rel: float) -> None:
    """Drawn from U(−bound, bound): inside the bounds, reaching close to them, with std bound/√3."""
    assert t.abs().max() <= bound * (1 + 1e-6)
    assert t.abs().max() >= bound * 0.9
    assert t.std().item() == pytest.approx(bound / math.sqrt(3), rel=rel)


def _xavier_bound(w: torch.Tensor, gain: float) -> float:
    fan_out, fan_in = w.shape
    return gain * math.sqrt(6.0 / (fan_in + fan_out))


def test_layout_is_transformer_iwslt_de_en(iwslt_model):
    model, config = iwslt_model, iwslt_model.config
    assert isinstance(model, MarianMTModel)
    assert (config.d_model, config.encoder_layers, config.decoder_layers) == (512, 6, 6)
    assert (
        config.encoder_ffn_dim,
        config.decoder_ffn_dim,
        config.encoder_attention_heads,
        config.decoder_attention_heads,
    ) == (1024, 1024, 4, 4)
    assert (config.dropout, config.attention_dropout, config.activation_dropout) == (0.3, 0.1, 0.1)
    assert config.activation_function == "relu" and config.scale_embedding
    # Separate encoder embedding; decoder input embedding tied to the output projection.
    enc, dec = model.model.encoder.embed_tokens.weight, model.model.decoder.embed_tokens.weight
    assert enc is not dec and model.lm_head.weight is dec and not config.share_encoder_decoder_embeddings
    # Fixed sinusoidal positions: not trained, so never scaled.
    for positions in (model.model.encoder.embed_positions, model.model.decoder.embed_positions):
        assert not positions.weight.requires_grad
        torch.testing.assert_close(positions.weight, positions.create_weight())
    # Post-LN with no embedding LayerNorm and no final LayerNorm: exactly 2 per encoder and 3 per decoder layer.
    norms = [n for n, m in model.named_modules() if isinstance(m, nn.LayerNorm)]
    assert len(norms) == 6 * 2 + 6 * 3 and all(".layers." in n for n in norms)
    # fairseq feeds </s> first to the decoder.
    assert config.decoder_start_token_id == config.eos_token_id


def test_init_follows_fairseq_formulas(iwslt_model):
    model = iwslt_model
    attention = [m for n, m in model.named_modules() if n.endswith(("self_attn", "encoder_attn"))]
    assert len(attention) == 6 + 2 * 6
    for attn in attention:
        for proj in (attn.q_proj, attn.k_proj, attn.v_proj):
            _uniform_ok(proj.weight, _xavier_bound(proj.weight, 1 / math.sqrt(2)), rel=0.02)
            _uniform_ok(proj.bias, 1 / math.sqrt(proj.in_features), rel=0.12)  # torch's Linear default
        _uniform_ok(attn.out_proj.weight, _xavier_bound(attn.out_proj.weight, 1.0), rel=0.02)
        assert torch.count_nonzero(attn.out_proj.bias) == 0
    layers = list(model.model.encoder.layers) + list(model.model.decoder.layers)
    for layer in layers:
        for fc in (layer.fc1, layer.fc2):
            # kaiming_uniform(a=√5) gives U(±1/√fan_in); so does the bias.
            _uniform_ok(fc.weight, 1 / math.sqrt(fc.in_features), rel=0.02)
            _uniform_ok(fc.bias, 1 / math.sqrt(fc.in_features), rel=0.12)
    for norm in (m for m in model.modules() if isinstance(m, nn.LayerNorm)):
        assert torch.equal(norm.weight, torch.ones_like(norm.weight)) and torch.count_nonzero(norm.bias) == 0
    pad = model.config.pad_token_id
    for emb in (model.model.encoder.embed_tokens, model.model.decoder.embed_tokens):
        rows = torch.cat([emb.weight[:pad], emb.weight[pad + 1 :]])
        assert rows.std().item() == pytest.approx(512**-0.5, rel=0.03)
        assert abs(rows.mean().item()) < 4 * 512**-0.5 / math.sqrt(rows.numel())
        # The padding row is 0 also in the tied lm_head: the tensor was drawn once, as an embedding.
        assert torch.count_nonzero(emb.weight[pad]) == 0
    assert model.config.initialization == "fairseq"


def test_every_trainable_tensor_is_reinitialized():
    # Different seeds give different tensors everywhere fairseq draws, and a generator makes it reproducible.
    model = tiny_bart(0)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    fairseq_init_(model, generator=torch.Generator().manual_seed(1))
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    unchanged_by_design = {
        n
        for n, p in model.named_parameters()
        if n.endswith("layer_norm.weight")
        or n.endswith("layernorm_embedding.weight")
        or ("norm" in n and n.endswith("bias"))
        or "out_proj.bias" in n
    }
    assert set(before) - changed <= unchanged_by_design
    again = fairseq_init_(tiny_bart(0), generator=torch.Generator().manual_seed(1))
    for n, p in again.named_parameters():
        assert torch.equal(p, dict(model.named_parameters())[n]), n


def test_untied_output_projection_gets_normal_init():
    model = tiny_bart(0, tie_word_embeddings=False, d_model=64, vocab_size=4000)
    fairseq_init_(model)
    assert model.lm_head.weight is not model.model.shared.weight
    assert model.lm_head.weight.std().item() == pytest.approx(64**-0.5, rel=0.03)
    assert torch.count_nonzero(model.lm_head.weight[model.config.pad_token_id]) > 0


def test_models_without_recognised_attention_are_refused():
    with pytest.raises(ValueError, match="q_proj/k_proj/v_proj/out_proj"):
        fairseq_init_(nn.Sequential(nn.Linear(4, 4)))


def test_scaled_tensors_and_search_record_the_initialization(iwslt_model, tmp_path):
    model = tiny_bart(0)
    fairseq_init_(model)
    scaled = {t.name: t.group for t in select_scaled_tensors(model)}
    # fairseq's non-zero q/k/v and FFN biases are scaled; the zero out_proj biases cannot be.
    assert "model.encoder.layers.0.self_attn.q_proj.bias" in scaled and "model.encoder.layers.0.fc1.bias" in scaled
    assert "model.encoder.layers.0.self_attn.out_proj.bias" not in scaled
    g = torch.Generator().manual_seed(0)
    batch = {
        "input_ids": torch.randint(4, 40, (6, 7), generator=g),
        "labels": torch.randint(4, 40, (6, 5), generator=g),
    }
    result = gradinit(model, [batch], GradInitArguments(gradinit_iters=2), progress_bar=False)
    assert result.initialization == "fairseq" and model.config.gradinit["initialization"] == "fairseq"
    assert GradInitResult.load(result.save(tmp_path)).initialization == "fairseq"
    plain = tiny_bart(0)
    assert gradinit(plain, [batch], GradInitArguments(gradinit_iters=1), progress_bar=False).initialization == "model"


def test_init_flag_is_checked():
    with pytest.raises(ValueError, match="--init"):
        ModelArguments(model_name_or_path="some/model", init="fairseq")
    with pytest.raises(ValueError, match="--init"):
        ModelArguments(model_type="transformer", init="xavier", train_tokenizer=True)
