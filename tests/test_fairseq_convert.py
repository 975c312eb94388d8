"""Weights between the package's `transformer` model and fairseq's `transformer_iwslt_de_en`: names and shapes
against fairseq's, written out here from fairseq's modules, rows moved by token, and the round trip."""

import pytest
import torch
from helpers import tiny_tokenizer

from hf_gradinit.fairseq_convert import fairseq_rows, from_fairseq, load_fairseq_weights_, to_fairseq
from hf_gradinit.translation import ModelArguments, build_model

D, FFN = 16, 24
OVERRIDES = f"d_model={D},encoder_layers=2,decoder_layers=1,encoder_ffn_dim={FFN},decoder_ffn_dim={FFN}"


def _model(seed: int):
    args = ModelArguments(model_type="transformer", init="fairseq", tokenizer_name="x", config_overrides=OVERRIDES)
    torch.manual_seed(seed)
    return build_model(args, tiny_tokenizer(), "de", "en", max_positions=20).eval()


def _fairseq_names_and_shapes(vocab: int) -> dict[str, tuple]:
    """fairseq's TransformerModel state dict for 2 encoder and 1 decoder layer (fairseq/modules/
    transformer_layer.py, multihead_attention.py; models/transformer/transformer_{encoder,decoder}.py)."""
    attention = {f"{p}_proj.{t}": (D, D) if t == "weight" else (D,) for p in "kvq" for t in ("weight", "bias")}
    attention |= {"out_proj.weight": (D, D), "out_proj.bias": (D,)}
    norm = {"weight": (D,), "bias": (D,)}
    ffn = {"fc1.weight": (FFN, D), "fc1.bias": (FFN,), "fc2.weight": (D, FFN), "fc2.bias": (D,)}
    shapes = {"encoder.embed_tokens.weight": (vocab, D), "decoder.embed_tokens.weight": (vocab, D)}
    shapes["decoder.output_projection.weight"] = (vocab, D)
    blocks = {"encoder": ("self_attn", "final"), "decoder": ("self_attn", "encoder_attn", "final")}
    for side, layers in (("encoder", 2), ("decoder", 1)):
        for i in range(layers):
            prefix = f"{side}.layers.{i}."
            for block in blocks[side]:
                if block != "final":
                    shapes |= {f"{prefix}{block}.{k}": v for k, v in attention.items()}
                shapes |= {f"{prefix}{block}_layer_norm.{k}": v for k, v in norm.items()}
            shapes |= {prefix + k: v for k, v in ffn.items()}
    return shapes


def test_names_and_shapes_are_fairseqs():
    model = _model(0)
    vocab = model.config.vocab_size
    converted = to_fairseq(model.state_dict())
    assert {k: tuple(v.shape) for k, v in converted.items()} == _fairseq_names_and_shapes(vocab)
    # The output projection is the decoder's input embedding, as fairseq shares it.
    torch.testing.assert_close(converted["decoder.output_projection.weight"], converted["decoder.embed_tokens.weight"])


def test_round_trip_gives_the_same_model():
    source, target = _model(0), _model(1)
    fairseq_state = to_fairseq(source.state_dict())
    # fairseq's buffers (positions rebuilt, version numbers) travel in its checkpoints and are skipped.
    fairseq_state |= {"encoder.embed_positions._float_tensor": torch.zeros(1), "encoder.version": torch.ones(1)}
    load_fairseq_weights_(target, fairseq_state)
    for name, tensor in source.state_dict().items():
        torch.testing.assert_close(target.state_dict()[name], tensor, rtol=0, atol=0, msg=name)
    ids = torch.tensor([[5, 6, 7, 2]])
    logits = [m(input_ids=ids, decoder_input_ids=ids).logits for m in (source, target)]
    torch.testing.assert_close(logits[0], logits[1], rtol=0, atol=0)


def test_rows_move_by_token():
    model = _model(0)
    tokenizer = tiny_tokenizer()
    vocab = tokenizer.get_vocab()
    # A fairseq dictionary that lists the tokens in another order: the specials first, the rest reversed.
    by_id = sorted(vocab, key=vocab.get)
    symbols = by_id[:4] + by_id[4:][::-1]
    rows = fairseq_rows(vocab, symbols)
    converted = to_fairseq(model.state_dict(), rows)
    token = by_id[7]
    for side in ("encoder", "decoder"):
        torch.testing.assert_close(
            converted[f"{side}.embed_tokens.weight"][symbols.index(token)],
            model.state_dict()[f"model.{side}.embed_tokens.weight"][vocab[token]],
        )
    back = from_fairseq(converted, rows)
    torch.testing.assert_close(back["model.encoder.embed_tokens.weight"], model.model.encoder.embed_tokens.weight)


def test_mismatches_are_named():
    vocab = {"<s>": 0, "<pad>": 1, "a": 2}
    with pytest.raises(ValueError, match=r"1 tokens only in the tokenizer \['a'\]"):
        fairseq_rows(vocab, ["<s>", "<pad>", "b"])
    model = _model(0)
    with pytest.raises(ValueError, match="not a permutation"):
        to_fairseq(model.state_dict(), [0] * model.config.vocab_size)
    fairseq_state = to_fairseq(model.state_dict())
    del fairseq_state["encoder.layers.1.fc2.bias"]
    with pytest.raises(ValueError, match=r"missing \['model.encoder.layers.1.fc2.bias'\]"):
        load_fairseq_weights_(_model(1), fairseq_state)
    with pytest.raises(ValueError, match="no package name"):
        from_fairseq({"something.else": torch.zeros(1)})
