"""The README's code, run exactly as written, on a tiny model and data the test provides under the names the
README uses (`model`, `tokenizer`, `train_dataset`, `batches`)."""

import os
import re

from helpers import batches, tiny_bart, tiny_tokenizer, tokenized_dataset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme_block(heading: str) -> str:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def readme_block_raw(heading: str) -> str:
    """The text of the README's section `heading` (its code blocks included)."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        return f.read().split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def run_trainer_block(heading, tmp_path, monkeypatch):
    """The README's trainer code under `heading`, on a tiny model and dataset; returns its `trainer`."""
    monkeypatch.chdir(tmp_path)
    tokenizer = tiny_tokenizer()
    model = tiny_bart(d_model=8, encoder_layers=1, decoder_layers=1, encoder_ffn_dim=16, decoder_ffn_dim=16)
    namespace = {"model": model, "tokenizer": tokenizer, "train_dataset": tokenized_dataset(tokenizer, 24)}
    exec(readme_block(heading), namespace)
    return namespace["trainer"]


def test_quick_start_runs_as_written(tmp_path, monkeypatch, capsys):
    """The first example builds everything itself from the sample file the repository ships."""
    monkeypatch.chdir(tmp_path)
    os.symlink(os.path.join(ROOT, "examples"), tmp_path / "examples")
    namespace = {}
    exec(readme_block("Quick start"), namespace)
    trainer, model = namespace["trainer"], namespace["model"]
    assert type(model).__name__ == "MarianMTModel" and model.config.d_model == 128 and model.config.encoder_layers == 6
    assert trainer.gradinit_result.iterations == 40 and trainer.state.global_step == 10
    # The search did something: objective steps ran, and its report was printed under the progress bar.
    report = trainer.gradinit_result.report()
    assert report["first_objective_step"] is not None and report["constraint_fraction"] < 0.5
    assert "the first objective step at iteration" in capsys.readouterr().err
    assert (
        trainer.gradinit_result.arguments["gradinit_eta"] == 1e-3
        and trainer.gradinit_result.initialization == "fairseq"
    )
    assert {"model.safetensors", "config.json", "scales.json"} <= set(os.listdir(tmp_path / "out" / "gradinit"))
    # Seeded: a second run gives the same scales.json to the digit, and the report the README shows.
    first = (tmp_path / "out" / "gradinit" / "scales.json").read_text()
    exec(readme_block("Quick start"), {})
    assert (tmp_path / "out" / "gradinit" / "scales.json").read_text() == first
    shown = re.search(r"‖g‖₁ (\d+) at the start, (\d+) at the end", readme_block_raw("Quick start")).groups()
    start, end = report["grad_norm_first"], report["grad_norm_last"]
    assert abs(start / int(shown[0]) - 1) < 5e-3 and abs(end / int(shown[1]) - 1) < 5e-3, (start, end, shown)


def test_use_it_with_the_trainer(tmp_path, monkeypatch):
    trainer = run_trainer_block("Use it with the Trainer", tmp_path, monkeypatch)
    assert trainer.gradinit_result.iterations == 200 and trainer.state.global_step > 0
    assert (tmp_path / "out" / "gradinit" / "scales.json").exists()


def test_use_it_without_the_trainer(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = tiny_bart()
    namespace = {"model": model, "batches": batches(tiny_tokenizer(), model, 3)}
    exec(readme_block("Use it without the Trainer"), namespace)
    result = namespace["result"]
    assert result.iterations == 100 and result.initialization == "fairseq"
    assert (tmp_path / "init" / "scales.json").exists()


def test_docstring_examples():
    import doctest

    import hf_gradinit.fairseq_init

    failures, tried = doctest.testmod(hf_gradinit.fairseq_init, verbose=False)
    assert tried > 0 and failures == 0


def test_token_budgets(tmp_path, monkeypatch):
    trainer = run_trainer_block("Token budgets", tmp_path, monkeypatch)
    assert trainer.gradinit_result.iterations == 100 and trainer.state.global_step > 0
    assert trainer.get_train_dataloader().batch_sampler.max_tokens == 4096


def test_the_translation_example_on_the_shipped_sample_runs_as_written(tmp_path):
    import subprocess
    import sys

    section = readme_block_raw("Translation from scratch: `examples/translation/run_translation.py`")
    command = re.search(r"here the 432-pair sample.*?```bash\n(.*?)```", section, re.S).group(1)
    os.symlink(os.path.join(ROOT, "examples"), tmp_path / "examples")
    python = os.path.dirname(sys.executable)
    env = {**os.environ, "PATH": f"{python}:{os.environ['PATH']}", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "tiny-transformer-gradinit" / "gradinit" / "scales.json").exists()
    assert "eval_bleu" in proc.stdout
