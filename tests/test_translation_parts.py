"""Pieces of the translation example: model building, tokenizer training, argument checks."""

import logging

import pytest
from transformers import T5Config, T5ForConditionalGeneration

from hf_gradinit.translation import ModelArguments, build_model, train_tokenizer


def test_non_post_ln_pretrained_model_gets_a_warning_not_a_refusal(tmp_path, caplog):
    T5ForConditionalGeneration(T5Config(vocab_size=50, d_model=16, d_ff=32, num_layers=1, num_heads=2, d_kv=8)).save_pretrained(tmp_path)
    with caplog.at_level(logging.WARNING, logger="hf_gradinit"):
        model = build_model(ModelArguments(model_name_or_path=str(tmp_path)), None, "de", "en")
    assert model.config.model_type == "t5"
    assert "not a Post-LN model" in caplog.text


@pytest.mark.parametrize("kind", ["bpe", "unigram"])
def test_trained_tokenizer_round_trips_and_ends_with_eos(kind):
    texts = ["Das Haus ist rot.", "The house is red.", "Der Hund schläft.", "The dog sleeps."] * 20
    tok = train_tokenizer(texts, kind, vocab_size=80)
    ids = tok("Das Haus ist rot.")["input_ids"]
    assert ids[-1] == tok.eos_token_id
    assert tok.decode(ids, skip_special_tokens=True) == "Das Haus ist rot."
    assert (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)


def test_model_arguments_refuse_inconsistent_choices():
    with pytest.raises(ValueError, match="--model_name_or_path.*--model_type"):
        ModelArguments()
    with pytest.raises(ValueError, match="--config_overrides"):
        ModelArguments(model_name_or_path="x", config_overrides="d_model=8")
    with pytest.raises(ValueError, match="--train_tokenizer"):
        ModelArguments(model_type="bart")
    with pytest.raises(ValueError, match="--model_type 'gpt2'"):
        ModelArguments(model_type="gpt2", train_tokenizer=True)
