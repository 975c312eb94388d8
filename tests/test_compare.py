"""`compare`: the arms share their initial weights, batches and dropout masks; a cut run continues to the same
result; the command line refuses bad input in one line."""

import json
import os
import subprocess
import sys

import pytest
import torch
from helpers import HF_GRADINIT, collator, tiny_bart, tiny_config, tiny_tokenizer, tokenized_dataset
from transformers import TrainerCallback

from hf_gradinit import compare
from hf_gradinit.comparison_report import arm_summary

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _compare(tmp_path, arms, callbacks=(), **overrides):
    tokenizer = tiny_tokenizer()
    model = tiny_bart(attn_implementation="eager")
    args = tiny_config(
        tmp_path,
        **{"max_steps": 6, "eval_steps": 2, "per_device_eval_batch_size": 8, "warmup_steps": 3, **overrides},
    )
    train, evaluation = tokenized_dataset(tokenizer, 48), tokenized_dataset(tokenizer, 12, seed=1)
    return compare(model, args, train, evaluation, arms, data_collator=collator(tokenizer, model))


def _final_weights(tmp_path, arm):
    from safetensors.torch import load_file

    folder = tmp_path / "compare" / arm
    checkpoint = max(folder.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    return load_file(checkpoint / "model.safetensors")


def test_a_search_that_leaves_every_scale_at_1_trains_bit_identically_to_no_search(tmp_path):
    """The search restores the random streams: with scale lr 1e-30 (every α stays 1) the gradinit arm draws the
    same batches and dropout masks as the none arm, so every loss and every final weight is equal."""
    results = _compare(tmp_path, "none,gradinit", gradinit_lr=1e-30, gradinit_iters=4, logging_steps=1)
    none, gradinit = results["arms"]["none"], results["arms"]["gradinit"]
    assert results["same_initial_weights"]
    assert gradinit["search"] is not None and gradinit["search"]["iterations"] == 4
    assert [r["loss"] for r in gradinit["training_loss"]] == [r["loss"] for r in none["training_loss"]]
    assert len(none["training_loss"]) == 6
    keys = ("eval_nll", "eval_train_mode_nll", "eval_spread/decoder_1")
    assert [[e[k] for k in keys] for e in gradinit["evaluations"]] == [
        [e[k] for k in keys] for e in none["evaluations"]
    ]
    a, b = _final_weights(tmp_path, "none"), _final_weights(tmp_path, "gradinit")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_arms_differ_by_their_warmup_and_search(tmp_path):
    """The warmup arm's learning rate ramps up, the others' does not; only the gradinit arm has a search."""
    results = _compare(tmp_path, ["none", "warmup", "gradinit"], logging_steps=1)
    arms = results["arms"]
    assert list(arms) == ["none", "warmup", "gradinit"]
    assert arms["warmup"]["flags"]["warmup_steps"] == 3 and arms["none"]["flags"]["warmup_steps"] == 0
    assert arms["gradinit"]["search"] and arms["none"]["search"] is None and arms["warmup"]["search"] is None
    assert [e["step"] for e in arms["none"]["evaluations"]] == [2, 4, 6]
    for name in ("results.json", "summary.md", "curves.png"):
        assert (tmp_path / "compare" / name).is_file()
    summary = (tmp_path / "compare" / "summary.md").read_text()
    for arm in arms:
        s = arm_summary(arms[arm])
        assert f"| {arm} | {s['best']:.3f} ({s['best_step']:,}) | {s['last']:.3f} (6) |" in summary


class _CountSteps(TrainerCallback):
    steps = 0

    def on_step_end(self, args, state, control, **kwargs):
        _CountSteps.steps += 1


class _Cut(TrainerCallback):
    """Stops the process (as a kill would) right after the checkpoint at `step`."""

    def __init__(self, step):
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt


def test_a_cut_run_continues_to_the_uncut_result(tmp_path, monkeypatch):
    uncut = _compare(tmp_path / "uncut", "gradinit,warmup")
    from hf_gradinit import trainer as trainer_module

    real_init = trainer_module.GradInitTrainer.__init__

    def init_with_cut(self, *a, **k):
        real_init(self, *a, **k)
        self.add_callback(_Cut(4))

    monkeypatch.setattr(trainer_module.GradInitTrainer, "__init__", init_with_cut)
    with pytest.raises(KeyboardInterrupt):
        _compare(tmp_path / "cut", "gradinit,warmup")
    assert (tmp_path / "cut" / "compare" / "gradinit" / "checkpoint-4").is_dir()
    assert not (tmp_path / "cut" / "compare" / "gradinit" / "compare_arm.json").exists()

    def init_with_count(self, *a, **k):
        real_init(self, *a, **k)
        self.add_callback(_CountSteps())

    monkeypatch.setattr(trainer_module.GradInitTrainer, "__init__", init_with_count)
    resumed = _compare(tmp_path / "cut", "gradinit,warmup")
    assert _CountSteps.steps == 2 + 6  # gradinit continued from update 4; warmup, never started, ran whole
    for arm in ("gradinit", "warmup"):
        a, b = uncut["arms"][arm], resumed["arms"][arm]
        assert [e["eval_nll"] for e in a["evaluations"]] == [e["eval_nll"] for e in b["evaluations"]]
        assert [e["step"] for e in b["evaluations"]] == [2, 4, 6]
    assert uncut["arms"]["gradinit"]["search"] == resumed["arms"]["gradinit"]["search"]  # read back from scales.json
    a, b = _final_weights(tmp_path / "uncut", "gradinit"), _final_weights(tmp_path / "cut", "gradinit")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_finished_arm_is_not_run_again_and_other_processes_arms_are_merged(tmp_path):
    _compare(tmp_path, "warmup")
    before = (tmp_path / "compare" / "warmup" / "compare_arm.json").stat().st_mtime_ns
    results = _compare(tmp_path, "warmup,none")
    assert (tmp_path / "compare" / "warmup" / "compare_arm.json").stat().st_mtime_ns == before
    assert list(results["arms"]) == ["none", "warmup"]
    out = subprocess.run(
        HF_GRADINIT + ["compare", "--report", "--output_dir", str(tmp_path)], capture_output=True, text=True
    )
    assert out.returncode == 0 and "| none |" in out.stdout and "| warmup |" in out.stdout


SAMPLE = os.path.join(ROOT, "examples", "translation", "data", "tiny-de-en.jsonl")
TINY = [
    "--model_type", "transformer", "--config_overrides",
    "d_model=16,encoder_layers=1,decoder_layers=1,encoder_ffn_dim=32,decoder_ffn_dim=32",
    "--train_tokenizer", "--vocab_size", "200", "--train_file", SAMPLE, "--validation_file", SAMPLE,
    "--source_lang", "de", "--target_lang", "en", "--use_cpu", "--report_to", "none",
]  # fmt: skip


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--arms", "none,cold"], "--arms: unknown arm 'cold'"),
        (["--arms", "warmup,gradinit"], "--arms warmup warm up, but --warmup_steps is 0"),
        (["--arms", "none", "--validation_file", None], "pass --validation_file"),
    ],
)
def test_user_errors_are_one_line_with_exit_status_2_before_any_work(tmp_path, flags, message, capsys):
    """In process (the console script is `cli.main`; tests/test_bad_input.py runs it as a command)."""
    from hf_gradinit.cli import main

    argv = TINY + ["--output_dir", str(tmp_path / "out")] + flags
    if None in argv:  # drop the flag before None and the value given for it in TINY
        i = argv.index(None)
        name = argv[i - 1]
        j = argv.index(name)
        argv = argv[:j] + argv[j + 2 : i - 1]
    with pytest.raises(SystemExit) as exit_:
        main(["compare"] + argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in err and len(err.strip().splitlines()) == 1, err[-2000:]
    assert not (tmp_path / "out").exists()  # nothing was built or written


def test_the_report_of_a_folder_without_arms_is_a_one_line_error(tmp_path, capsys):
    from hf_gradinit.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["compare", "--report", "--output_dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "no finished arm" in err and len(err.strip().splitlines()) == 1


def test_results_json_holds_the_flags_and_every_evaluation(tmp_path):
    _compare(tmp_path, "none")
    data = json.loads((tmp_path / "compare" / "results.json").read_text())
    none = data["arms"]["none"]
    assert none["flags"]["gradinit"] is False and none["flags"]["eval_steps"] == 2
    assert all("eval_nll" in e and "eval_collapsed" in e for e in none["evaluations"])
    assert sys.executable  # the suite runs from a venv's python without activating it (HF_GRADINIT)
