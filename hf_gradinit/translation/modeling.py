"""Post-LN encoder-decoders from a config (from scratch) or from a pretrained checkpoint."""

from __future__ import annotations

import logging

from transformers import (
    AutoModelForSeq2SeqLM,
    BartConfig,
    BartForConditionalGeneration,
    FSMTConfig,
    FSMTForConditionalGeneration,
    MarianConfig,
    MarianMTModel,
)

logger = logging.getLogger(__name__)

MODEL_CLASSES = {
    "bart": (BartConfig, BartForConditionalGeneration),
    "marian": (MarianConfig, MarianMTModel),
    "fsmt": (FSMTConfig, FSMTForConditionalGeneration),
}
# The encoder-decoders in transformers that normalise after the residual (the original Transformer).
POST_LN_MODEL_TYPES = frozenset(MODEL_CLASSES)

PRESETS = {
    # transformer_iwslt_de_en of fairseq, the setting of the GradInit paper's IWSLT'14 experiments.
    "iwslt14": {
        "d_model": 512,
        "encoder_layers": 6,
        "decoder_layers": 6,
        "encoder_ffn_dim": 1024,
        "decoder_ffn_dim": 1024,
        "encoder_attention_heads": 4,
        "decoder_attention_heads": 4,
        "dropout": 0.3,
        "attention_dropout": 0.0,
        "activation_dropout": 0.0,
        "activation_function": "relu",
        "scale_embedding": True,
        "tie_word_embeddings": True,
    },
}


def _scratch_config(model_type: str, tokenizer, source_lang: str, target_lang: str, max_positions: int):
    config_class, _ = MODEL_CLASSES[model_type]
    ids = {
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    vocab = len(tokenizer)
    if model_type == "bart":
        return config_class(vocab_size=vocab, max_position_embeddings=max_positions, decoder_start_token_id=tokenizer.eos_token_id, forced_eos_token_id=tokenizer.eos_token_id, **ids)
    if model_type == "marian":
        return config_class(vocab_size=vocab, decoder_vocab_size=vocab, max_position_embeddings=max_positions, decoder_start_token_id=tokenizer.pad_token_id, **ids)
    return config_class(
        langs=[source_lang, target_lang],
        src_vocab_size=vocab,
        tgt_vocab_size=vocab,
        max_position_embeddings=max_positions,
        decoder_start_token_id=tokenizer.eos_token_id,
        **ids,
    )


def build_model(model_args, tokenizer, source_lang: str, target_lang: str, max_positions: int = 1024):
    """A pretrained model (`model_name_or_path`), or a new one of `model_type` with its preset and overrides."""
    if model_args.model_name_or_path is not None:
        model = AutoModelForSeq2SeqLM.from_pretrained(
            model_args.model_name_or_path,
            cache_dir=model_args.cache_dir,
            revision=model_args.model_revision,
            token=model_args.token,
        )
        if model.config.model_type not in POST_LN_MODEL_TYPES:
            logger.warning(
                "%s is not a Post-LN model (%s). GradInit works on any architecture, but its benefit was shown for "
                "Post-LN Transformers.",
                model_args.model_name_or_path,
                model.config.model_type,
            )
        return model
    config = _scratch_config(model_args.model_type, tokenizer, source_lang, target_lang, max_positions)
    if model_args.preset is not None:
        for key, value in PRESETS[model_args.preset].items():
            setattr(config, key, value)
    if model_args.config_overrides:
        try:
            config.update_from_string(model_args.config_overrides)
        except ValueError as e:
            raise ValueError(f"--config_overrides {model_args.config_overrides!r}: {e}") from None
    _, model_class = MODEL_CLASSES[model_args.model_type]
    model = model_class(config)
    n_params = sum(p.numel() for p in model.parameters())
    logger.info("Training a new %s from scratch: %.1fM parameters", model_args.model_type, n_params / 1e6)
    return model
