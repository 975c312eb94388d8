"""The generated cards: a load snippet that works from where the run wrote the checkpoint, and data named as it is."""

import re

import yaml
from transformers import AutoModelForSeq2SeqLM

from helpers import tiny_bart, tiny_tokenizer, tokenized_dataset
from hf_gradinit import GradInitConfig, GradInitTrainer


def _card(path):
    text = path.read_text()
    front = yaml.safe_load(text.split("---")[1])
    return text, front


def test_the_snippets_load_the_checkpoints_from_where_the_run_wrote_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tok = tiny_tokenizer()
    args = GradInitConfig(
        output_dir="runs/out",
        gradinit_iters=2,
        per_device_train_batch_size=6,
        max_steps=1,
        report_to="none",
        save_strategy="no",
    )
    trainer = GradInitTrainer(tiny_bart(), args, tokenized_dataset(tok, 12), processing_class=tok)
    trainer.gradinit_card_data = {"datasets": ["train.jsonl.gz"]}
    trainer.train()
    trainer.save_model()
    trainer.create_model_card(dataset="train.jsonl.gz")
    for card in ("runs/out/gradinit/README.md", "runs/out/README.md"):
        text, front = _card(tmp_path / card)
        (where,) = set(re.findall(r'AutoModelForSeq2SeqLM\.from_pretrained\("([^"]+)"\)', text))
        assert where == card.rsplit("/", 1)[0]
        AutoModelForSeq2SeqLM.from_pretrained(where)  # from the folder the run was started in
        # A local file is named in the text, never as a Hub dataset (nor as its folder's name).
        assert "`train.jsonl.gz`" in text and "datasets" not in front


def test_the_initialized_card_s_how_to_use_runs_as_written(tmp_path, monkeypatch):
    """Its snippet defines everything it uses and trains into a folder of its own, not the one holding gradinit/."""
    monkeypatch.chdir(tmp_path)
    tok = tiny_tokenizer()
    args = GradInitConfig(output_dir="out", gradinit_iters=2, per_device_train_batch_size=6, report_to="none")
    trainer = GradInitTrainer(tiny_bart(), args, tokenized_dataset(tok, 12), processing_class=tok)
    trainer.gradinit()
    text, _ = _card(tmp_path / "out" / "gradinit" / "README.md")
    snippet = re.search(r"## How to use\n\n```python\n(.*?)```", text, re.S).group(1)
    namespace = {}
    exec(snippet, namespace)
    assert namespace["trainer"].state.global_step == 2 and (tmp_path / "trained").is_dir()
    assert "out" not in re.findall(r'output_dir="([^"]+)"', snippet)


def test_the_cards_name_the_transformer_layout_not_the_classes_holding_it(tmp_path, monkeypatch):
    from hf_gradinit.translation import ModelArguments, build_model

    monkeypatch.chdir(tmp_path)
    tok = tiny_tokenizer()
    overrides = "d_model=16,encoder_layers=1,decoder_layers=1,encoder_ffn_dim=32,decoder_ffn_dim=32"
    model_args = ModelArguments(
        model_type="transformer", init="fairseq", config_overrides=overrides, train_tokenizer=True
    )
    model = build_model(model_args, tok, "de", "en")
    args = GradInitConfig(output_dir="out", gradinit_iters=2, per_device_train_batch_size=6, max_steps=1)
    trainer = GradInitTrainer(model, args, tokenized_dataset(tok, 12), processing_class=tok)
    trainer.train()
    trainer.save_model()
    trainer.create_model_card()
    for card in ("out/gradinit/README.md", "out/README.md"):
        text, _ = _card(tmp_path / card)
        assert "fairseq Post-LN Transformer in Marian's classes" in text and "marian model" not in text
        assert "classes) model" not in text and "model, searched" not in text
    # The layout travels with the checkpoint.
    assert AutoModelForSeq2SeqLM.from_pretrained("out/gradinit").config.layout.startswith("fairseq Post-LN")
