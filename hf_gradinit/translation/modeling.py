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

from ..fairseq_init import FAIRSEQ, fairseq_init_

logger = logging.getLogger(__name__)

MODEL_CLASSES = {
    "bart": (BartConfig, BartForConditionalGeneration),
    "marian": (MarianConfig, MarianMTModel),
    "fsmt": (FSMTConfig, FSMTForConditionalGeneration),
    # fairseq's `transformer` (Vaswani et al.) in Marian's classes: fixed sinusoidal positions, no embedding
    # LayerNorm, separate encoder embedding, decoder input embedding tied to the output projection.
    "transformer": (MarianConfig, MarianMTModel),
}
TRANSFORMER_LAYOUT = "fairseq Post-LN Transformer (in Marian's classes)"
# The encoder-decoders in transformers that normalise after the residual (the original Transformer).
POST_LN_MODEL_TYPES = frozenset({"bart", "marian", "fsmt"})
INITIALIZATIONS = ("model", FAIRSEQ)

PRESETS = {
    # transformer_iwslt_de_en of fairseq, the model of the GradInit paper's IWSLT'14 experiments
    # (`--dropout 0.3 --attention-dropout 0.1 --relu-dropout 0.1 --share-decoder-input-output-embed`).
    "iwslt14": {
        "d_model": 512,
        "encoder_layers": 6,
        "decoder_layers": 6,
        "encoder_ffn_dim": 1024,
        "decoder_ffn_dim": 1024,
        "encoder_attention_heads": 4,
        "decoder_attention_heads": 4,
        "dropout": 0.3,
        "attention_dropout": 0.1,
        "activation_dropout": 0.1,
        "activation_function": "relu",
        "scale_embedding": True,
        "tie_word_embeddings": True,
    },
}
# The training side of each preset: flags of `GradInitConfig` that the preset sets unless given explicitly. The
# paper's run script: Adam β (0.9, 0.98), lr 5e-4, linear decay, no warmup, no clipping (`--clip-norm 0`),
# weight decay 1e-4, label smoothing 0.1, and its GradInit flags.
# A preset value is left out where the user gave it, or a flag that stands for the same choice in rows.
# A preset's token budget is left out where the user gave rows instead: batches given in rows for training make the
# search's batches rows too (gradinit_batch_size, which defaults to per_device_train_batch_size).
PRESET_ALTERNATIVES = {
    "max_tokens": ("per_device_train_batch_size",),
    "gradinit_max_tokens": ("gradinit_batch_size", "per_device_train_batch_size"),
}

TRAINING_PRESETS = {
    "iwslt14": {
        "learning_rate": 5e-4,
        "adam_beta1": 0.9,
        "adam_beta2": 0.98,
        "weight_decay": 1e-4,
        "max_grad_norm": 0.0,
        "lr_scheduler_type": "linear",
        "warmup_steps": 0,
        "label_smoothing_factor": 0.1,
        # fairseq's --max-tokens 4096 and the GradInit fork's search batches of 6000 tokens
        "max_tokens": 4096,
        "gradinit_max_tokens": 6000,
        "gradinit_iters": 780,
        "gradinit_lr": 2.5e-3,
        "gradinit_beta1": 0.9,
        "gradinit_beta2": 0.98,
        "gradinit_gamma": 1000.0,
        "gradinit_min_scale": 0.01,
        "gradinit_max_scale": 100.0,
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
        return config_class(
            vocab_size=vocab,
            max_position_embeddings=max_positions,
            decoder_start_token_id=tokenizer.eos_token_id,
            forced_eos_token_id=tokenizer.eos_token_id,
            **ids,
        )
    if model_type == "marian":
        return config_class(
            vocab_size=vocab,
            decoder_vocab_size=vocab,
            max_position_embeddings=max_positions,
            decoder_start_token_id=tokenizer.pad_token_id,
            **ids,
        )
    if model_type == "transformer":
        # fairseq feeds the decoder </s> first (prev_output_tokens), and ends generation at </s>.
        return config_class(
            vocab_size=vocab,
            decoder_vocab_size=vocab,
            max_position_embeddings=max_positions,
            share_encoder_decoder_embeddings=False,
            tie_word_embeddings=True,
            activation_function="relu",
            scale_embedding=True,
            decoder_start_token_id=tokenizer.eos_token_id,
            forced_eos_token_id=tokenizer.eos_token_id,
            # Saved in config.json: model cards name the layout, not the classes that hold it.
            layout=TRANSFORMER_LAYOUT,
            **ids,
        )
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
    if model_args.init == FAIRSEQ:
        fairseq_init_(model)
    n_params = sum(p.numel() for p in model.parameters())
    logger.info(
        "Training a new %s from scratch (%s initialization): %.1fM parameters",
        model_args.model_type,
        model_args.init,
        n_params / 1e6,
    )
    return model
