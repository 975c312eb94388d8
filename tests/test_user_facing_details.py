"""Details a new user met: folder modes, a tokenizer smaller than asked, a search of 0 iterations, the help text,
(the offline push under any environment: test_hub.py)."""

import logging
import os

from helpers import collator, tiny_bart, tiny_config, tiny_tokenizer, tokenized_dataset

from hf_gradinit import GradInitTrainer


def test_the_initialized_checkpoint_folder_has_the_mode_of_any_new_folder(tmp_path):
    tokenizer, model = tiny_tokenizer(), tiny_bart()
    trainer = GradInitTrainer(
        model, tiny_config(tmp_path), tokenized_dataset(tokenizer), data_collator=collator(tokenizer, model)
    )
    trainer.gradinit()
    os.makedirs(tmp_path / "plain")
    assert (tmp_path / "gradinit").stat().st_mode == (tmp_path / "plain").stat().st_mode


def test_a_tokenizer_smaller_than_asked_says_so(caplog):
    from hf_gradinit.translation import train_tokenizer

    with caplog.at_level(logging.WARNING, logger="hf_gradinit"):
        tokenizer = train_tokenizer(["ein kleiner Text", "a small text"] * 5, vocab_size=1000)
    assert len(tokenizer) < 1000
    (message,) = [r.getMessage() for r in caplog.records if "vocab_size=1000" in r.getMessage()]
    assert f"has {len(tokenizer)} tokens" in message


def test_a_search_of_0_iterations_is_not_called_the_paper_s_setting(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="hf_gradinit"):
        args = tiny_config(tmp_path, gradinit_iters=0)
        tokenizer = tiny_tokenizer()
        model = tiny_bart()
        GradInitTrainer(model, args, tokenized_dataset(tokenizer), data_collator=collator(tokenizer, model)).train()
    messages = [r.getMessage() for r in caplog.records]
    about = [m for m in messages if "gradinit_iters=0" in m]
    assert len(about) == 2 and all("no GradInit search will run" in m or "no search runs" in m for m in about)
    assert not any("as in the paper" in m or "GradInit is on" in m for m in messages)
    assert not args.trains_without_warmup


def test_init_help_shows_no_default_of_none_beside_a_help_that_names_the_default():
    from hf_gradinit.init_help import INIT_HELP

    lines = INIT_HELP.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("  --") and line.endswith("(default: None)"):
            help_text = []
            for following in lines[i + 1 :]:
                if not following.startswith("      "):
                    break
                help_text.append(following)
            assert "efault" not in " ".join(help_text), line
    assert "  --gradinit_lr" in lines and "  --gradinit_eta" in lines


def test_the_search_says_its_batch_size(tmp_path, caplog):
    tokenizer, model = tiny_tokenizer(), tiny_bart()
    args = tiny_config(tmp_path, gradinit_batch_size=5)
    trainer = GradInitTrainer(model, args, tokenized_dataset(tokenizer), data_collator=collator(tokenizer, model))
    with caplog.at_level(logging.INFO, logger="hf_gradinit"):
        trainer.gradinit()
    assert "GradInit search batches: 5 rows (gradinit_batch_size) per device." in caplog.text
    args = tiny_config(tmp_path / "t", max_tokens=60)
    model = tiny_bart()
    trainer = GradInitTrainer(model, args, tokenized_dataset(tokenizer), data_collator=collator(tokenizer, model))
    with caplog.at_level(logging.INFO, logger="hf_gradinit"):
        trainer.gradinit()
    assert "GradInit search batches: 60 tokens (gradinit_max_tokens or max_tokens) per device." in caplog.text
