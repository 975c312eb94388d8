"""What a user sees at the default log level: where the initialized checkpoint went, and why a search was skipped."""

from helpers import tiny_bart, tiny_tokenizer, tokenized_dataset
from hf_gradinit import GradInitConfig, GradInitTrainer


def _trainer(tmp_path, model=None, **kw):
    tok = tiny_tokenizer()
    kw = {
        "gradinit_iters": 3,
        "per_device_train_batch_size": 6,
        "max_steps": 1,
        "report_to": "none",
        "save_strategy": "no",
        **kw,
    }
    args = GradInitConfig(output_dir=str(tmp_path), **kw)
    return GradInitTrainer(model or tiny_bart(), args, tokenized_dataset(tok, 12), processing_class=tok)


def test_the_checkpoint_folder_is_shown(tmp_path, capsys):
    _trainer(tmp_path).train()
    shown = capsys.readouterr().err
    assert f"the initialized model, its scales.json and model card are in {tmp_path / 'gradinit'}" in shown
    assert "GradInit search: 3 iterations" in shown  # the search's report, beside it


def test_a_skipped_search_says_why(tmp_path, capsys):
    first = _trainer(tmp_path / "a")
    first.train()
    capsys.readouterr()
    _trainer(tmp_path / "b", model=first.model).train()  # already initialized
    assert "the model is already initialized (model.config.gradinit): the search is skipped" in capsys.readouterr().err
    _trainer(tmp_path / "c", gradinit_iters=0).train()
    assert "gradinit_iters=0, so no search runs" in capsys.readouterr().err


def test_nothing_is_shown_with_the_bars_off(tmp_path, capsys):
    _trainer(tmp_path, disable_tqdm=True).train()
    assert "initialized model" not in capsys.readouterr().err


def test_no_pin_memory_warning_without_an_accelerator(tmp_path, recwarn):
    trainer = _trainer(tmp_path)
    assert trainer.args.dataloader_pin_memory is False  # this machine has no accelerator
    trainer.train()
    assert not [w for w in recwarn if "pin_memory" in str(w.message)]
