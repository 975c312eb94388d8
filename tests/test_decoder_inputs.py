"""FSMT (fairseq's WMT models) with `DataCollatorForSeq2Seq(tokenizer, model=fsmt)` and with labels-only batches:
the labels keep their −100 and the loss is the translation loss."""

import pytest
import torch
from helpers import collator, tiny_tokenizer, tokenized_dataset
from transformers import DataCollatorForSeq2Seq, FSMTConfig, FSMTForConditionalGeneration

from hf_gradinit import GradInitArguments, GradInitConfig, GradInitTrainer, gradinit


def tiny_fsmt(seed: int = 0) -> FSMTForConditionalGeneration:
    torch.manual_seed(seed)
    config = FSMTConfig(
        langs=["de", "en"],
        src_vocab_size=44,
        tgt_vocab_size=44,
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=64,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
    )
    return FSMTForConditionalGeneration(config)


def _rows(n=6):
    ds = tokenized_dataset(tiny_tokenizer(), n, seed=3)
    return [ds[i] for i in range(n)]


def test_trainer_collator_keeps_the_labels_ignore_index(tmp_path):
    tokenizer, model = tiny_tokenizer(), tiny_fsmt()
    args = GradInitConfig(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    trainer = GradInitTrainer(
        model, args, train_dataset=tokenized_dataset(tokenizer, 12), data_collator=collator(tokenizer, model)
    )
    rows = _rows()
    batch = trainer.data_collator(rows)
    lengths = [len(r["labels"]) for r in rows]
    assert min(lengths) < max(lengths)  # so that there is padding
    for i, n in enumerate(lengths):
        assert torch.all(batch["labels"][i, n:] == -100) and torch.all(batch["labels"][i, :n] != -100)
    # The decoder inputs are still FSMT's own: the labels shifted right, </s> wrapped to the front.
    expected = model.prepare_decoder_input_ids_from_labels(labels=batch["labels"].clone())
    assert torch.equal(batch["decoder_input_ids"], expected)


def _hand_loss(model, batch):
    """Cross-entropy of the labels given decoder inputs shifted from them, padding excluded; no label smoothing."""
    labels = batch["labels"]
    shifted = torch.where(labels == -100, torch.full_like(labels, model.config.pad_token_id), labels)
    decoder_input_ids = torch.cat([torch.full_like(shifted[:, :1], 2), shifted[:, :-1]], dim=1)
    for i in range(len(labels)):  # FSMT (fairseq) starts each row with its final </s>
        decoder_input_ids[i, 0] = shifted[i, int((shifted[i] != model.config.pad_token_id).sum()) - 1]
    with torch.no_grad():
        logits = model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], decoder_input_ids=decoder_input_ids
        ).logits
    keep = labels != -100
    return torch.nn.functional.cross_entropy(logits[keep].double(), labels[keep]).item()


def test_search_on_labels_only_batches_optimizes_the_translation_loss():
    tokenizer, model = tiny_tokenizer(), tiny_fsmt()
    batch = dict(DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100)(_rows(9)))
    assert "decoder_input_ids" not in batch
    model.eval()
    k = -(-2 * 9 // 3)  # S̃: the first ⌈2n/3⌉ rows
    expected = _hand_loss(model, {key: v[:k] for key, v in batch.items()})
    result = gradinit(model, [batch], GradInitArguments(gradinit_iters=1), progress_bar=False)
    assert result.history[0]["loss"] == pytest.approx(expected, rel=1e-5)


def test_trainer_search_loss_with_labels_only_batches(tmp_path):
    tokenizer, model = tiny_tokenizer(), tiny_fsmt()
    reference = tiny_fsmt()  # the same weights, untouched by the search
    train = tokenized_dataset(tokenizer, 9, seed=3)
    args = GradInitConfig(
        output_dir=str(tmp_path),
        report_to="none",
        use_cpu=True,
        gradinit_iters=1,
        per_device_train_batch_size=9,
        gradinit_batch_size=9,
        max_steps=1,
        save_strategy="no",
        seed=0,
        dataloader_drop_last=False,
    )
    trainer = GradInitTrainer(
        model, args, train_dataset=train, data_collator=DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100)
    )
    result = trainer.gradinit()
    batch = next(iter(trainer.get_train_dataloader()))  # the seeded sampler gives the search's batch again
    reference.eval()
    k = -(-2 * 9 // 3)
    assert result.history[0]["loss"] == pytest.approx(
        _hand_loss(reference, {key: v[:k] for key, v in batch.items()}), rel=1e-5
    )
