"""docs/compare.md ("Comparing with warmup on your task"): its command and its Python blocks, run exactly as
written."""

import json
import os
import re
import shlex
import subprocess

from transformers import Seq2SeqTrainer

from doc_pages import blocks, run_page
from helpers import HF_GRADINIT, collator, tiny_bart, tiny_tokenizer, tokenized_dataset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = "docs/compare.md"


def _blocks(language: str) -> list[str]:
    return [code for lang, code, _ in blocks(PAGE) if lang == language]


def test_the_compare_command_runs_as_written_on_the_shipped_sample(tmp_path):
    os.symlink(os.path.join(ROOT, "examples"), tmp_path / "examples")
    (command,) = _blocks("bash")
    argv = shlex.split(command.replace("\\\n", " "))
    assert argv[:2] == ["hf-gradinit", "compare"]
    out = subprocess.run(HF_GRADINIT + argv[1:], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    folder = tmp_path / "compare-demo" / "compare"
    summary = (folder / "summary.md").read_text()
    for arm in ("none", "warmup", "gradinit"):
        assert f"| {arm} |" in summary
    # Quiet: one line per arm and the verdict on standard output; the raw records in each arm's log, no advice to
    # compare from inside compare.
    verdict = next(line for line in summary.splitlines() if line.startswith("**Verdict:**"))
    assert out.stdout.splitlines()[-2] == verdict
    assert [
        line.split()[1] for line in out.stdout.splitlines() if line.startswith("compare: ") and " done " in line
    ] == [
        "none",
        "warmup",
        "gradinit",
    ]
    assert len(out.stdout.splitlines()) == 5, out.stdout
    # The output the page shows is this run's: the same lines, numbers within 0.01 (another machine's arithmetic),
    # durations aside.
    (shown,) = _blocks("text")

    def words_and_numbers(text):
        text = re.sub(r"done in \d+ (s|min|h)", "done", text)
        numbers = [float(n) for n in re.findall(r"\d+\.\d+", text)]
        return re.sub(r"\d+\.\d+", "#", text).split(), numbers

    (shown_words, shown_numbers), (run_words, run_numbers) = words_and_numbers(shown), words_and_numbers(out.stdout)
    assert shown_words == run_words
    assert len(shown_numbers) == len(run_numbers) and all(
        abs(a - b) <= 0.01 for a, b in zip(shown_numbers, run_numbers)
    )
    assert "{'eval_loss'" not in out.stdout + out.stderr and "compare with a warmup run" not in out.stderr
    assert "Writing model shards" not in out.stderr
    logged = [json.loads(line) for line in (folder / "gradinit" / "log.jsonl").read_text().splitlines()]
    assert sum("eval_nll" in r for r in logged) == 4 and any(
        "GradInit search:" in r.get("message", "") for r in logged
    )
    assert (folder / "curves.png").stat().st_size > 10_000
    # The search the text promises: objective steps within its 20 iterations.
    search = json.loads((folder / "results.json").read_text())["arms"]["gradinit"]["search"]
    assert search["iterations"] == 20 and search["first_objective_step"] is not None


def _names():
    tokenizer = tiny_tokenizer()
    model = tiny_bart(d_model=8, encoder_layers=1, decoder_layers=1, encoder_ffn_dim=16, decoder_ffn_dim=16)
    return {
        "model": model,
        "tokenizer": tokenizer,
        "train_dataset": tokenized_dataset(tokenizer, 48),
        "eval_dataset": tokenized_dataset(tokenizer, 16, seed=1),
        "collator": collator(tokenizer, model),
    }


def test_compare_in_python_runs_as_written(tmp_path):
    """Both Python blocks of the page, after the Quick start (which the page says they continue), in one fresh
    interpreter: `compare`, then the StabilityCallback on a plain Seq2SeqTrainer with the same model and data."""
    then = """
import json
records = [r for r in trainer.state.log_history if "eval_loss" in r]
print("PAGE", json.dumps({"arms": list(results["arms"]), "same": results["same_initial_weights"],
    "warmup_steps": [e["step"] for e in results["arms"]["warmup"]["evaluations"]],
    "monitor_steps": [r["step"] for r in records],
    "monitored": all("eval_train_mode_nll" in r and "eval_collapsed" in r for r in records)}))
"""
    proc = run_page(PAGE, tmp_path, then=then)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("PAGE "))[5:])
    assert result["arms"] == ["none", "warmup", "gradinit"] and result["same"]
    assert result["warmup_steps"] == [5, 10, 15, 20]
    assert result["monitor_steps"] == [10, 20, 30] and result["monitored"]
    assert "| gradinit |" in proc.stdout and "**Verdict:**" in proc.stdout


def _docstring_block(obj) -> str:
    import inspect

    return re.search(r"```python\n(.*?)```", inspect.getdoc(obj), re.S).group(1)


def test_the_docstring_examples_of_compare_and_the_callback_run_as_written(tmp_path, monkeypatch, capsys):
    from transformers import Seq2SeqTrainingArguments

    from hf_gradinit import GradInitConfig, StabilityCallback, compare

    monkeypatch.chdir(tmp_path)
    namespace = _names() | {"compare": compare}
    namespace["args"] = GradInitConfig(
        "cmp", max_steps=4, eval_steps=2, warmup_steps=2, gradinit_iters=2, use_cpu=True, report_to="none"
    )
    exec(_docstring_block(compare), namespace)
    assert list(namespace["results"]["arms"]) == ["none", "warmup", "gradinit"]
    assert "| gradinit |" in capsys.readouterr().out
    names = _names()
    names |= {"Seq2SeqTrainer": Seq2SeqTrainer, "StabilityCallback": StabilityCallback}
    names |= {"train": names["train_dataset"], "validation": names["eval_dataset"]}
    names["args"] = Seq2SeqTrainingArguments("out", eval_strategy="steps", eval_steps=2, max_steps=2, report_to="none")
    exec(_docstring_block(StabilityCallback), names)
    names["trainer"].train()
    assert "eval_spread/encoder" in names["trainer"].state.log_history[-2]
