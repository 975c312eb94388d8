"""GradInitTrainer end to end on tiny BART and Marian models."""

import json
import os

import pytest
import torch
from datasets import Dataset
from helpers import collator, tiny_bart, tiny_config, tiny_marian, tiny_tokenizer, tokenized_dataset
from safetensors.torch import load_file
from transformers import Seq2SeqTrainingArguments

from hf_gradinit import GradInitTrainer, is_gradinit_initialized


def _args(tmp_path, **kw):
    defaults = dict(
        gradinit_iters=6,
        gradinit_batch_size=6,
        per_device_train_batch_size=8,
        max_steps=4,
        logging_steps=3,
        learning_rate=1e-3,
    )
    return tiny_config(tmp_path, **{**defaults, **kw})


def _trainer(model, args, n=48, **kw):
    tok = tiny_tokenizer()
    return GradInitTrainer(
        model=model,
        args=args,
        train_dataset=tokenized_dataset(tok, n),
        data_collator=collator(tok, model),
        processing_class=tok,
        **kw,
    )


@pytest.mark.parametrize("make_model", [tiny_bart, tiny_marian], ids=["bart", "marian"])
def test_train_runs_search_then_training_without_warmup(tmp_path, make_model):
    model = make_model()
    initial = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = _trainer(model, _args(tmp_path))
    trainer.train()

    result = trainer.gradinit_result
    assert result is not None and result.iterations == 6
    assert any(abs(a - 1) > 1e-3 for a in result.scales.values())
    # The saved initialization is α·θ⁰ of the model we passed in.
    saved = load_file(os.path.join(tmp_path, "gradinit", "model.safetensors"))
    for name, alpha in result.scales.items():
        torch.testing.assert_close(saved[name], alpha * initial[name], rtol=1e-6, atol=0)
    with open(os.path.join(tmp_path, "gradinit", "scales.json")) as f:
        scales = json.load(f)
    assert len(scales["history"]) == 6
    assert set(scales["tensors"]) == set(result.scales)
    assert {"scale", "group", "init_norm", "final_norm"} == set(next(iter(scales["tensors"].values())))
    for name in ("config.json", "tokenizer.json"):
        assert os.path.exists(os.path.join(tmp_path, "gradinit", name))
    # Training ran, from the scaled weights, with the full learning rate from the first step (no warmup).
    assert trainer.state.global_step == 4
    assert trainer.lr_scheduler.lr_lambdas[0](0) == 1.0
    assert not torch.equal(model.model.encoder.layers[0].fc1.weight, saved["model.encoder.layers.0.fc1.weight"])
    # The search's log records survive Trainer.train() replacing its state.
    search_logs = [r for r in trainer.state.log_history if "gradinit_loss" in r]
    assert [r["gradinit_iteration"] for r in search_logs] == [3, 6]
    assert any("loss" in r for r in trainer.state.log_history)
    assert is_gradinit_initialized(model)


def test_user_warmup_is_kept(tmp_path):
    trainer = _trainer(tiny_bart(), _args(tmp_path, warmup_steps=2, gradinit_iters=1))
    trainer.train()
    assert trainer.lr_scheduler.lr_lambdas[0](0) == 0.0


def test_search_alone_is_deterministic_for_a_seed(tmp_path):
    """The search's batches are drawn in shuffled order: gradinit() seeds from `args.seed` itself, so whatever used
    the global random state between building the trainer and searching does not change the scales."""
    a = _trainer(tiny_bart(), _args(tmp_path / "a")).gradinit()
    trainer = _trainer(tiny_bart(), _args(tmp_path / "b"))
    torch.manual_seed(12345)
    torch.rand(1000)
    b = trainer.gradinit()
    assert any(abs(s - 1) > 1e-3 for s in a.scales.values())
    assert a.scales == b.scales
    # A different seed draws other batches, and other scales: the seed is what the result depends on.
    c = _trainer(tiny_bart(), _args(tmp_path / "c", seed=43)).gradinit()
    assert a.scales != c.scales


def test_no_search_when_off_resuming_or_already_initialized(tmp_path, monkeypatch):
    trainer = _trainer(tiny_bart(), _args(tmp_path / "run", save_strategy="steps", save_steps=4))
    trainer.train()
    checkpoint = os.path.join(tmp_path, "run", "checkpoint-4")
    assert os.path.isdir(checkpoint)

    def no_search(self):
        raise AssertionError("the search ran")

    monkeypatch.setattr(GradInitTrainer, "gradinit", no_search)
    # Resuming from a checkpoint.
    _trainer(tiny_bart(), _args(tmp_path / "run", max_steps=5)).train(resume_from_checkpoint=checkpoint)
    # gradinit=False.
    _trainer(tiny_bart(), _args(tmp_path / "off", gradinit=False)).train()
    # A model saved after a search records it in its config.
    from transformers import BartForConditionalGeneration

    loaded = BartForConditionalGeneration.from_pretrained(os.path.join(tmp_path, "run", "gradinit"))
    assert is_gradinit_initialized(loaded)
    _trainer(loaded, _args(tmp_path / "again")).train()


def test_bad_setups_fail_before_any_work(tmp_path):
    model = tiny_bart()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    with pytest.raises(TypeError, match="GradInitConfig"):
        GradInitTrainer(model=model, args=Seq2SeqTrainingArguments(output_dir=str(tmp_path), report_to="none"))
    with pytest.raises(ValueError, match="model_init"):
        GradInitTrainer(model_init=lambda: tiny_bart(), args=_args(tmp_path))
    tok = tiny_tokenizer()
    empty = Dataset.from_dict({"input_ids": [], "attention_mask": [], "labels": []})
    trainer = GradInitTrainer(
        model=model, args=_args(tmp_path), train_dataset=empty, data_collator=collator(tok, model)
    )
    with pytest.raises(ValueError, match="train_dataset is empty"):
        trainer.train()
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n]), n


def test_sharded_or_meta_parameters_are_refused_before_the_search(tmp_path):
    model = tiny_bart()
    with torch.device("meta"):
        model.model.encoder.layers[0].fc1.weight = torch.nn.Parameter(torch.empty(32, 16))
    trainer = _trainer(tiny_bart(), _args(tmp_path))
    trainer.model = model
    with pytest.raises(ValueError, match="sharded or not materialised"):
        trainer.gradinit()


def test_the_search_loss_is_the_trainers_label_smoothed_loss(tmp_path):
    """The search minimizes the loss the trainer trains on: with label smoothing 0.2, the first iteration's loss
    is the label-smoothed cross-entropy of S̃ (written out here), which the model's own loss is not."""
    model = tiny_bart(dropout=0.0)
    seen = []

    class Recording(GradInitTrainer):
        def _gradinit_batches(self):
            for batch in super()._gradinit_batches():
                seen.append({k: v.clone() for k, v in batch.items()})
                yield batch

    trainer = _trainer(model, _args(tmp_path, gradinit_iters=1, max_steps=1, label_smoothing_factor=0.2))
    trainer.__class__ = Recording
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    result = trainer.gradinit()
    s_tilde = {k: v[:4] for k, v in seen[0].items()}  # the first ⌈2·6/3⌉ rows
    for n, p in model.named_parameters():
        p.data.copy_(before[n])
    model.eval()
    with torch.no_grad():
        logits = model(
            input_ids=s_tilde["input_ids"],
            attention_mask=s_tilde["attention_mask"],
            decoder_input_ids=s_tilde["decoder_input_ids"],
        ).logits
        logp = torch.log_softmax(logits, -1)
        active = s_tilde["labels"] != -100
        nll = -logp.gather(-1, s_tilde["labels"].clamp(min=0).unsqueeze(-1)).squeeze(-1)
        smoothed = (0.8 * nll - 0.2 * logp.mean(-1))[active].mean().item()
        plain = nll[active].mean().item()
    loss = result.history[0]["loss"]
    # measured: 4.8e-7 from the smoothed loss, 2.4e-3 from the plain one
    assert abs(loss - smoothed) < 5e-6 and abs(loss - plain) > 1e-3, (loss, smoothed, plain)
