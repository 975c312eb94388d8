"""`compare` does not mix settings: an arm found in the folder (finished or cut) is checked against the call before
any work, and the merge checks the arms against each other; `overwrite_output_dir` starts over."""

import json
import os
import shutil
import subprocess

import pytest
from helpers import HF_GRADINIT, collator, tiny_bart, tiny_config, tiny_tokenizer, tokenized_dataset

from hf_gradinit import compare
from hf_gradinit.comparison_report import write_report


def _compare(folder, arms, model_seed=0, overwrite_output_dir=False, **overrides):
    tokenizer = tiny_tokenizer()
    model = tiny_bart(seed=model_seed, attn_implementation="eager")
    args = tiny_config(folder, **{"max_steps": 4, "eval_steps": 2, "warmup_steps": 2, **overrides})
    train, evaluation = tokenized_dataset(tokenizer, 24), tokenized_dataset(tokenizer, 8, seed=1)
    return compare(
        model,
        args,
        train,
        evaluation,
        arms,
        data_collator=collator(tokenizer, model),
        overwrite_output_dir=overwrite_output_dir,
    )


def _snapshot(folder) -> dict:
    """Every file under `folder` with its size and modification time: what "nothing touched" compares."""
    found = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            found[os.path.relpath(path, folder)] = (os.path.getsize(path), os.stat(path).st_mtime_ns)
    return found


def test_a_finished_arm_with_another_learning_rate_is_refused_before_any_work(tmp_path):
    _compare(tmp_path, "none", learning_rate=1e-3)
    before = _snapshot(tmp_path)
    with pytest.raises(ValueError) as error:
        _compare(tmp_path, "none", learning_rate=5e-4)
    message = str(error.value)
    assert "none" in message and "learning_rate 0.001 (none) against 0.0005 (this call)" in message
    assert "--overwrite_output_dir" in message and "\n" not in message
    assert _snapshot(tmp_path) == before  # nothing touched


def test_overwrite_output_dir_starts_the_comparison_over(tmp_path):
    _compare(tmp_path, "none,warmup", learning_rate=1e-3)
    results = _compare(tmp_path, "none", learning_rate=5e-4, overwrite_output_dir=True)
    assert list(results["arms"]) == ["none"]  # the lr 1e-3 arms are gone, not merged
    assert results["arms"]["none"]["flags"]["learning_rate"] == 5e-4


def test_other_initial_weights_are_a_difference_and_so_is_an_arm_the_call_does_not_run(tmp_path):
    _compare(tmp_path, "none")
    with pytest.raises(ValueError, match=r"initial_weights [0-9a-f]{16} \(none\) against [0-9a-f]{16} \(this call\)"):
        _compare(tmp_path, "warmup", model_seed=1)
    assert not (tmp_path / "compare" / "warmup").exists()


def test_a_cut_arm_is_checked_too(tmp_path):
    _compare(tmp_path, "none", learning_rate=1e-3)
    os.remove(tmp_path / "compare" / "none" / "compare_arm.json")  # as if cut after its last checkpoint
    with pytest.raises(ValueError, match=r"learning_rate 0\.001 \(none\) against 0\.0005"):
        _compare(tmp_path, "none", learning_rate=5e-4)


def test_what_is_an_arms_own_does_not_count(tmp_path):
    """The search's flags count only between arms that search, the warmup's length only between arms that warm up:
    a gradinit arm added later with another search, or a warmup arm beside a none arm, is accepted."""
    _compare(tmp_path, "none", gradinit_iters=2)
    results = _compare(tmp_path, "gradinit,warmup", gradinit_iters=3, warmup_steps=3)
    assert list(results["arms"]) == ["none", "warmup", "gradinit"]
    with pytest.raises(ValueError, match=r"gradinit_iters 3 \(gradinit\) against 2 \(this call\)"):
        _compare(tmp_path, "gradinit_warmup", gradinit_iters=2, warmup_steps=3)
    with pytest.raises(ValueError, match=r"warmup_steps 3 \(warmup\) against 4 \(this call\)"):
        _compare(tmp_path, "gradinit_warmup", gradinit_iters=3, warmup_steps=4)


def test_the_merge_refuses_arms_run_with_different_settings(tmp_path, capsys):
    """Two processes that ran their arms with different flags into one folder: the merge (`--report`) names both
    arms and the flag, in one line, with exit status 2, and writes nothing."""
    _compare(tmp_path / "a", "none", learning_rate=1e-3)
    _compare(tmp_path / "b", "warmup", learning_rate=5e-4)
    shutil.copytree(tmp_path / "b" / "compare" / "warmup", tmp_path / "a" / "compare" / "warmup")
    os.remove(tmp_path / "a" / "compare" / "summary.md")
    with pytest.raises(ValueError, match=r"arms 'none' and 'warmup' .* learning_rate 0\.001 \(none\) against 0\.0005"):
        write_report(str(tmp_path / "a" / "compare"))
    out = subprocess.run(
        HF_GRADINIT + ["compare", "--report", "--output_dir", str(tmp_path / "a")], capture_output=True, text=True
    )
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr[-2000:]
    assert "learning_rate" in out.stderr and not (tmp_path / "a" / "compare" / "summary.md").exists()


def test_every_arm_records_its_settings_when_it_starts(tmp_path):
    _compare(tmp_path, "warmup", learning_rate=1e-3)
    record = json.loads((tmp_path / "compare" / "warmup" / "compare_settings.json").read_text())
    settings = record["settings"]
    assert record["arm"] == "warmup" and settings["learning_rate"] == 1e-3 and settings["warmup_steps"] == 2
    assert len(settings["initial_weights"]) == 16 and "output_dir" not in settings
