"""The documentation's code, run exactly as written, on a tiny model and data the test provides under the names
the pages use (`model`, `tokenizer`, `train_dataset`, `batches`); and every code block of the README and docs/
either runs in a test or says why it cannot."""

import os
import re

from doc_pages import ROOT, block, blocks, pages, run_command
from helpers import batches, tiny_bart, tiny_tokenizer, tokenized_dataset

RUNS_IN = re.compile(r"<!-- runs in (tests/[\w]+\.py)::(\w+) -->")
NOT_RUN = re.compile(r"not run by the tests: \S", re.I)


def run_trainer_block(page, tmp_path, monkeypatch):
    """The trainer code of `page`, on a tiny model and dataset; returns its `trainer`."""
    monkeypatch.chdir(tmp_path)
    tokenizer = tiny_tokenizer()
    model = tiny_bart(d_model=8, encoder_layers=1, decoder_layers=1, encoder_ffn_dim=16, decoder_ffn_dim=16)
    namespace = {"model": model, "tokenizer": tokenizer, "train_dataset": tokenized_dataset(tokenizer, 24)}
    exec(block(page), namespace)
    return namespace["trainer"]


def test_every_block_runs_in_a_test_or_says_why_not():
    """A block is preceded by `<!-- runs in tests/FILE.py::TEST -->`, naming a test that reads that page, or by a
    sentence "Not run by the tests: <why>". Output is fenced as `text`."""
    unmarked, wrong = [], []
    for page in pages():
        for language, code, before in blocks(page):
            assert language, f"{page}: a block without a language ({code[:60]!r}); fence output as ```text"
            if language == "text":
                continue
            marker = RUNS_IN.search(before)
            if marker is None:
                if not NOT_RUN.search(before):
                    unmarked.append(f"{page}: {code[:60]!r}")
                continue
            path, name = marker.groups()
            module = open(os.path.join(ROOT, path), encoding="utf-8").read()
            found = re.search(rf"^def {name}\(.*?(?=^def |\Z)", module, re.S | re.M)
            if found is None or page not in module:
                wrong.append(f"{page}: {path}::{name} does not exist or does not read {page}")
    assert not unmarked and not wrong, "\n".join(unmarked + wrong)


def test_quick_start_runs_as_written(tmp_path, monkeypatch, capsys):
    """The first example builds everything itself from the sample file the repository ships; the README's and
    docs/quickstart.md's are the same code."""
    assert block("README.md") == block("docs/quickstart.md")
    monkeypatch.chdir(tmp_path)
    os.symlink(os.path.join(ROOT, "examples"), tmp_path / "examples")
    namespace = {}
    exec(block("README.md"), namespace)
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
    # Seeded: a second run gives the same scales.json to the digit, and the report both pages show.
    first = (tmp_path / "out" / "gradinit" / "scales.json").read_text()
    exec(block("docs/quickstart.md"), {})
    assert (tmp_path / "out" / "gradinit" / "scales.json").read_text() == first
    for page in ("README.md", "docs/quickstart.md"):
        shown = re.search(r"‖g‖₁ (\d+) at the start, (\d+) at the end", block(page, "text")).groups()
        start, end = report["grad_norm_first"], report["grad_norm_last"]
        assert abs(start / int(shown[0]) - 1) < 5e-3 and abs(end / int(shown[1]) - 1) < 5e-3, (page, start, end)


def test_using_the_trainer(tmp_path, monkeypatch):
    trainer = run_trainer_block("docs/trainer.md", tmp_path, monkeypatch)
    assert trainer.gradinit_result.iterations == 780 and trainer.state.global_step > 0
    assert trainer.gradinit_result.report()["first_objective_step"] is not None
    assert (tmp_path / "out" / "gradinit" / "scales.json").exists()


def test_without_the_trainer(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = tiny_bart()
    namespace = {"model": model, "batches": batches(tiny_tokenizer(), model, 3)}
    exec(block("docs/without-trainer.md"), namespace)
    result = namespace["result"]
    assert result.iterations == 780 and result.initialization == "fairseq"
    assert result.report()["first_objective_step"] is not None
    assert (tmp_path / "init" / "scales.json").exists()


def test_docstring_examples():
    import doctest

    import hf_gradinit.fairseq_init

    failures, tried = doctest.testmod(hf_gradinit.fairseq_init, verbose=False)
    assert tried > 0 and failures == 0


def test_token_budgets(tmp_path, monkeypatch):
    trainer = run_trainer_block("docs/token-budgets.md", tmp_path, monkeypatch)
    assert trainer.gradinit_result.iterations == 780 and trainer.state.global_step > 0
    assert trainer.gradinit_result.report()["first_objective_step"] is not None
    assert trainer.get_train_dataloader().batch_sampler.max_tokens == 4096


def test_the_translation_example_on_the_shipped_sample_runs_as_written(tmp_path):
    """docs/translation.md's first command."""
    command = block("docs/translation.md", "bash")
    proc = run_command(command, tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "tiny-transformer-gradinit" / "gradinit" / "scales.json").exists()
    assert "eval_bleu" in proc.stdout


def test_the_arguments_page_is_every_field_with_its_own_help():
    """docs/hooks.py builds the Arguments page's tables from the dataclasses (compared here with `fields()`)."""
    import dataclasses
    import importlib.util

    from hf_gradinit import GradInitArguments

    spec = importlib.util.spec_from_file_location("docs_hooks", os.path.join(ROOT, "docs", "hooks.py"))
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    table = hooks.arguments_table("hf_gradinit.arguments.GradInitArguments")
    rows = table.splitlines()[2:]
    assert [row.split("`")[1] for row in rows] == [f.name for f in dataclasses.fields(GradInitArguments)]
    gamma = next(row for row in rows if row.startswith("| `gradinit_gamma` "))
    assert (
        "`1000.0`" in gamma
        and " ".join(GradInitArguments.__dataclass_fields__["gradinit_gamma"].metadata["help"].split()) in gamma
    )
    # GradInitConfig's own table: what it adds or changes, not the Trainer's fields.
    own = hooks.arguments_table("hf_gradinit.config.GradInitConfig", "own")
    names = {row.split("`")[1] for row in own.splitlines()[2:]}
    assert {"max_tokens", "stability_monitor", "gradinit_eta", "warmup_steps"} <= names
    assert not names & {"learning_rate", "gradinit_gamma", "output_dir"}
    assert "see its help" in next(row for row in own.splitlines() if row.startswith("| `gradinit_eta` "))
