"""What a user types, and what goes wrong: the positional call, non-finite results, resumes, bad arguments, files
and commands. Each case fails with a message naming what to change, and leaves the user's weights and files."""

import json
import os
import subprocess
import sys

import pytest
import torch
from helpers import HF_GRADINIT, batches, collator, tiny_bart, tiny_config, tiny_tokenizer, tokenized_dataset
from transformers import HfArgumentParser

from hf_gradinit import GradInitArguments, GradInitConfig, GradInitError, GradInitTrainer, gradinit


def _weights(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _same(model, weights):
    return all(torch.equal(p, weights[n]) for n, p in model.named_parameters())


# 1. The call the package is known by ------------------------------------------------------------------------


def test_positional_train_dataset_as_written(tmp_path):
    tok, model = tiny_tokenizer(), tiny_bart()
    train = tokenized_dataset(tok, 12)
    trainer = GradInitTrainer(model, tiny_config(tmp_path, max_steps=2), train, processing_class=tok)
    assert trainer.train_dataset is train
    trainer.train()
    assert trainer.gradinit_result.iterations == 3 and trainer.state.global_step == 2
    # With a collator by keyword as well (a TypeError before).
    again = GradInitTrainer(tiny_bart(), tiny_config(tmp_path / "b"), train, data_collator=collator(tok, model))
    assert again.train_dataset is train


def test_positional_collator_keeps_the_trainer_order(tmp_path):
    tok, model = tiny_tokenizer(), tiny_bart()
    train, evals = tokenized_dataset(tok, 12), tokenized_dataset(tok, 6, seed=1)
    trainer = GradInitTrainer(model, tiny_config(tmp_path), collator(tok, model), train, evals)
    assert trainer.train_dataset is train and trainer.eval_dataset is evals
    both = GradInitTrainer(model, tiny_config(tmp_path), train, evals, processing_class=tok)
    assert both.train_dataset is train and both.eval_dataset is evals
    with pytest.raises(TypeError, match="by keyword"):
        GradInitTrainer(model, tiny_config(tmp_path), train, evals, collator(tok, model))
    with pytest.raises(TypeError, match="train_dataset"):
        GradInitTrainer(model, tiny_config(tmp_path), train, train_dataset=train)


# 2. A non-finite result on the last iteration --------------------------------------------------------------


def test_last_iteration_divergence_restores_and_raises():
    model = tiny_bart()
    before = _weights(model)
    with pytest.raises(GradInitError, match="original weights were restored"):
        gradinit(
            model,
            batches(tiny_tokenizer(), model, 1),
            GradInitArguments(gradinit_iters=1, gradinit_eta=1e8),
            progress_bar=False,
        )
    assert _same(model, before) and not getattr(model.config, "gradinit", None)


def test_overflow_on_the_cast_back_to_half_precision_restores_and_raises():
    model = tiny_bart(dtype=torch.float16)
    before = _weights(model)
    args = GradInitArguments(gradinit_iters=1, gradinit_lr=1e7, gradinit_gamma=1e9)
    with pytest.raises(GradInitError, match="torch.float16"):
        gradinit(model, batches(tiny_tokenizer(), model, 1), args, progress_bar=False)
    assert _same(model, before) and all(p.dtype == torch.float16 for p in model.parameters())


def test_trainer_does_not_train_or_save_nan_weights(tmp_path):
    tok, model = tiny_tokenizer(), tiny_bart()
    trainer = GradInitTrainer(
        model,
        tiny_config(tmp_path, gradinit_eta=1e10, gradinit_iters=1),
        tokenized_dataset(tok, 12),
        processing_class=tok,
    )
    with pytest.raises(GradInitError):
        trainer.train()
    assert not os.path.exists(tmp_path / "gradinit") and trainer.state.global_step == 0


# 3. The initialization record across a resume --------------------------------------------------------------


def test_resume_keeps_the_gradinit_record(tmp_path):
    tok = tiny_tokenizer()
    train = tokenized_dataset(tok, 24)
    args = tiny_config(tmp_path, max_steps=2, save_strategy="steps", save_steps=2)
    GradInitTrainer(tiny_bart(), args, train, processing_class=tok).train()
    checkpoint = os.path.join(tmp_path, "checkpoint-2")
    with open(os.path.join(checkpoint, "config.json")) as f:
        assert json.load(f)["gradinit"]["iterations"] == 3
    stamp = os.path.getmtime(tmp_path / "gradinit" / "scales.json")

    fresh = tiny_bart(seed=5)
    resumed = GradInitTrainer(
        fresh, tiny_config(tmp_path, max_steps=4, save_strategy="steps", save_steps=2), train, processing_class=tok
    )
    resumed.train(resume_from_checkpoint=True)
    assert resumed.gradinit_result is None and fresh.config.gradinit["iterations"] == 3
    with open(os.path.join(tmp_path, "checkpoint-4", "config.json")) as f:
        assert json.load(f)["gradinit"]["iterations"] == 3  # so continuing from it again skips the search
    assert os.path.getmtime(tmp_path / "gradinit" / "scales.json") == stamp


# 4. Arguments ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field,value",
    [
        ("gradinit_lr", float("inf")),
        ("gradinit_eta", float("nan")),
        ("gradinit_gamma", float("-inf")),
        ("gradinit_max_scale", float("nan")),
        ("gradinit_min_scale", float("inf")),
        ("gradinit_grad_clip", float("inf")),
        ("gradinit_ln_lr", float("inf")),
        ("gradinit_ln_min_scale", float("nan")),
        ("gradinit_iters", 2.5),
        ("gradinit_batch_size", 2),
        ("gradinit_batch_size", 4.0),
    ],
)
def test_invalid_arguments_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        GradInitArguments(**{field: value})


def test_infinite_flag_on_the_command_line_is_refused(tmp_path):
    with pytest.raises(ValueError, match="gradinit_lr"):
        HfArgumentParser(GradInitConfig).parse_args_into_dataclasses(
            ["--output_dir", str(tmp_path), "--gradinit_lr", "inf"]
        )
    # The paper's code leaves LayerNorm scales unbounded: that stays possible.
    assert GradInitArguments(gradinit_max_scale=float("inf")).gradinit_max_scale == float("inf")


def test_zero_iterations_is_no_search(tmp_path):
    tok, model = tiny_tokenizer(), tiny_bart()
    before = _weights(model)
    result = gradinit(model, batches(tok, model, 1), GradInitArguments(gradinit_iters=0), progress_bar=False)
    assert result.iterations == 0 and not getattr(model.config, "gradinit", None) and _same(model, before)
    trainer = GradInitTrainer(
        model, tiny_config(tmp_path, gradinit_iters=0), tokenized_dataset(tok, 12), processing_class=tok
    )
    trainer.train()
    assert not os.path.exists(tmp_path / "gradinit") and not getattr(model.config, "gradinit", None)


def test_batches_of_fewer_than_three_rows_are_refused():
    tok, model = tiny_tokenizer(), tiny_bart()
    two_rows = batches(tok, model, 1, batch_size=2)
    with pytest.raises(ValueError, match="gradinit_batch_size"):
        gradinit(model, two_rows, GradInitArguments(gradinit_iters=2), progress_bar=False)


def test_a_second_search_is_refused(tmp_path):
    tok, model = tiny_tokenizer(), tiny_bart()
    trainer = GradInitTrainer(model, tiny_config(tmp_path), tokenized_dataset(tok, 12), processing_class=tok)
    trainer.gradinit()
    after_first = _weights(model)
    with pytest.raises(ValueError, match="compound"):
        trainer.gradinit()
    assert _same(model, after_first)


def test_meta_device_model_gets_the_readme_message():
    with torch.device("meta"):
        model = tiny_bart()
    with pytest.raises(ValueError, match="meta device"):
        gradinit(
            model,
            [{"input_ids": torch.ones(3, 2, dtype=torch.long)}],
            GradInitArguments(gradinit_iters=1),
            progress_bar=False,
        )


# 6. Files and commands -------------------------------------------------------------------------------------


def test_a_new_search_replaces_the_old_folder_whole(tmp_path):
    tok = tiny_tokenizer()
    folder = tmp_path / "gradinit"
    folder.mkdir()
    (folder / "stale.txt").write_text("from an older run")
    trainer = GradInitTrainer(tiny_bart(), tiny_config(tmp_path), tokenized_dataset(tok, 12), processing_class=tok)
    trainer.gradinit()
    assert not (folder / "stale.txt").exists() and (folder / "scales.json").exists()
    assert [p for p in os.listdir(tmp_path) if p.startswith(".gradinit")] == []  # no staging folder left


def test_cli_user_error_is_one_line_and_exit_2(tmp_path):
    proc = subprocess.run(
        [*HF_GRADINIT, "push", str(tmp_path / "missing"), "--repo_id", "a/b"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "no such folder" in proc.stderr
    assert len([line for line in proc.stderr.splitlines() if "error" in line]) == 1


def test_console_script_is_installed_beside_the_interpreter():
    """The package's `hf-gradinit` entry point is registered, installed beside this Python (where a venv's
    bin/ is, on PATH or not) and runs."""
    from importlib.metadata import entry_points

    assert [ep.value for ep in entry_points(group="console_scripts", name="hf-gradinit")] == ["hf_gradinit.cli:main"]
    script = os.path.join(os.path.dirname(sys.executable), "hf-gradinit")
    assert os.path.isfile(script) and HF_GRADINIT == [script]
    proc = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "usage: hf-gradinit <command>" in proc.stdout, proc.stderr[-2000:]


# Each finiteness check of the search, with its own message ----------------------------------------------------


def test_a_non_finite_loss_is_named_and_restored():
    model = tiny_bart()
    before = _weights(model)
    nan_loss = lambda m, batch: m(**batch).loss * float("nan")  # noqa: E731
    with pytest.raises(GradInitError, match=r"iteration 1: the loss is nan and the gradient norm ‖g‖ is nan"):
        gradinit(
            model,
            batches(tiny_tokenizer(), model, 1),
            GradInitArguments(gradinit_iters=2),
            loss_fn=nan_loss,
            progress_bar=False,
        )
    assert _same(model, before)


def test_a_diverged_simulated_step_is_named_and_restored():
    model = tiny_bart()
    before = _weights(model)
    args = GradInitArguments(gradinit_iters=1, gradinit_eta=1e8, gradinit_gamma=1e30)  # an objective step
    with pytest.raises(GradInitError, match=r"the objective L\(θ'; S\) is .* the simulated step diverged"):
        gradinit(model, batches(tiny_tokenizer(), model, 1), args, progress_bar=False)
    assert _same(model, before)


def test_a_non_finite_scale_is_named():
    from hf_gradinit import GradInitSearch
    from hf_gradinit.search_mode import search_mode

    model = tiny_bart()
    with search_mode(model):
        search = GradInitSearch(model, GradInitArguments())
        with pytest.raises(GradInitError, match="a scale α became infinite or NaN"):
            search._update_alpha(torch.full_like(search.alpha, float("nan")), "objective")


def test_an_output_dir_that_is_a_file_is_one_line_and_exit_2_before_any_work(tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("a file")
    sample = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "translation")
    flags = ["--model_type", "transformer", "--train_tokenizer", "--source_lang", "de", "--target_lang", "en",
             "--train_file", os.path.join(sample, "data", "tiny-de-en.jsonl"), "--output_dir", str(taken)]  # fmt: skip
    for command in ([*HF_GRADINIT, "init"], [sys.executable, os.path.join(sample, "run_translation.py")]):
        out = subprocess.run(
            command + flags + ["--do_train"] * (command[-1] != "init"), capture_output=True, text=True
        )
        assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
        (line,) = [x for x in out.stderr.splitlines() if x.strip()]
        assert f"output_dir {taken}: this is a file" in line
        assert "Training a new" not in out.stdout + out.stderr  # refused before the tokenizer and model
    assert taken.read_text() == "a file"
