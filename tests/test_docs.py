"""The documentation's code, run exactly as written in a fresh interpreter: a page complete in itself, or one that
says it continues the Quick start after the Quick start's code, with no name supplied by the tests; and every code
block of the README and docs/ either runs in a test or says why it cannot."""

import json
import os
import re

from doc_pages import ROOT, block, blocks, pages, run_command, run_page

RUNS_IN = re.compile(r"<!-- runs in (tests/[\w]+\.py)::(\w+) -->")
NOT_RUN = re.compile(r"not run by the tests: \S", re.I)


QUICK_TRY = {"gradinit_iters=780": "gradinit_iters=40"}  # what the pages name as the number to change for a try


def page_result(proc) -> dict:
    """What the test's own code printed after the page's: one line `PAGE {json}`."""
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("PAGE "))[5:])


TRAINER_RESULT = """
import json
result = trainer.gradinit_result
print("PAGE", json.dumps({"iterations": result.iterations, "steps": trainer.state.global_step,
    "initialization": result.initialization, "eta": result.arguments["gradinit_eta"]}))
"""


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


def test_using_the_trainer(tmp_path):
    result = page_result(run_page("docs/trainer.md", tmp_path, QUICK_TRY, then=TRAINER_RESULT))
    assert result["iterations"] == 40 and result["steps"] == 162  # 3 epochs of 432 pairs in batches of 8
    assert result["initialization"] == "fairseq" and result["eta"] == 1e-3  # 2 × learning_rate
    assert (tmp_path / "out" / "gradinit" / "scales.json").exists()


def test_without_the_trainer(tmp_path):
    then = """
import json
print("PAGE", json.dumps({"iterations": result.iterations, "initialization": result.initialization,
    "eta": result.arguments["gradinit_eta"], "scales": len(result.scales)}))
"""
    result = page_result(run_page("docs/without-trainer.md", tmp_path, QUICK_TRY, then=then))
    assert result["iterations"] == 40 and result["initialization"] == "fairseq" and result["eta"] == 1e-3
    assert result["scales"] > 50
    assert (tmp_path / "init" / "scales.json").exists()


def _names(code: str) -> tuple[set, set]:
    """(names the code reads, names it binds: assignments, imports, definitions)."""
    import ast
    import builtins

    read, bound = set(), set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    return read - set(dir(builtins)), bound


def test_a_page_that_continues_the_quick_start_reads_only_what_it_or_the_quick_start_defines():
    """A page's python blocks are complete in themselves, or the page says it continues the Quick start and the
    names it reads but does not define are the Quick start's (its sentence is then true and needed)."""
    from doc_pages import CONTINUES_QUICK_START, text

    _, quick_start = _names(block("docs/quickstart.md"))
    continuing = []
    for page in pages():
        code = "\n".join(c for lang, c, _ in blocks(page) if lang == "python")
        if not code or page in ("README.md", "docs/quickstart.md"):
            continue
        read, bound = _names(code)
        missing = read - bound
        if CONTINUES_QUICK_START.search(text(page)):
            continuing.append(page)
            assert missing and missing <= quick_start, (page, missing - quick_start)
        else:
            assert not missing, (page, missing)
    assert {"docs/trainer.md", "docs/without-trainer.md", "docs/token-budgets.md", "docs/compare.md"} <= set(
        continuing
    )


def test_docstring_examples():
    import doctest

    import hf_gradinit.fairseq_init

    failures, tried = doctest.testmod(hf_gradinit.fairseq_init, verbose=False)
    assert tried > 0 and failures == 0


def test_token_budgets(tmp_path):
    then = (
        TRAINER_RESULT
        + """
print("PAGE", json.dumps({"max_tokens": trainer.get_train_dataloader().batch_sampler.max_tokens}))
"""
    )
    proc = run_page("docs/token-budgets.md", tmp_path, {"gradinit_iters=780": "gradinit_iters=10"}, then=then)
    result = page_result(proc)
    assert result["iterations"] == 10 and result["steps"] > 0
    budget = json.loads([line for line in proc.stdout.splitlines() if line.startswith("PAGE ")][1][5:])
    assert budget["max_tokens"] == 4096


def test_the_hub_page_pushes_as_written(hub, tmp_path):
    from hub_server import client_env

    proc = run_page("docs/hub.md", tmp_path, then=TRAINER_RESULT, env=client_env(hub, tmp_path))
    assert page_result(proc)["iterations"] == 40
    files = set(hub.state.repos["you/transformer-gradinit-init"]["files"])
    assert {"model.safetensors", "scales.json", "README.md"} <= files


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


def test_every_folder_the_docs_write_is_ignored_by_git():
    """Run from the repository's root, the documented commands and examples leave their output folders out of
    `git status`."""
    import shutil
    import subprocess

    import pytest

    if shutil.which("git") is None or not os.path.isdir(os.path.join(ROOT, ".git")):
        pytest.skip("not a git checkout")
    patterns = (
        r"--output_dir[ =]([\w./-]+)",
        r'output_dir="([\w./-]+)"',
        r'Seq2SeqTrainingArguments\("([\w./-]+)"',
        r'\.save\("([\w./-]+)"\)',
    )
    written = set()
    for page in pages():
        for language, code, _ in blocks(page):
            if language in ("bash", "python"):
                for pattern in patterns:
                    written |= {path.rstrip("/") for path in re.findall(pattern, code)}
    assert {"out", "cmp", "compare-demo", "init"} <= written
    probes = [f"{path}/probe.json" for path in sorted(written)]
    proc = subprocess.run(["git", "check-ignore", *probes], cwd=ROOT, capture_output=True, text=True)
    assert sorted(proc.stdout.split()) == sorted(probes), (
        f"not ignored: {sorted(set(probes) - set(proc.stdout.split()))}"
    )


def _relative_links(path: str) -> list[str]:
    source = re.sub(r"```.*?```", "", open(os.path.join(ROOT, path), encoding="utf-8").read(), flags=re.S)
    found = re.findall(r"\]\(([^)\s]+)\)", source)
    return [t.split("#")[0] for t in found if not re.match(r"[a-z]+:", t) and not t.startswith("#")]


def test_every_link_and_image_works_on_github():
    """Read on GitHub, a page's links resolve relative to its file: every one must name a file of the repository
    (the site's hook makes them relative to the published pages; `mkdocs build --strict` checks the site)."""
    import glob

    broken = []
    for path in ["README.md", "BENCHMARKS.md", "CHANGELOG.md"] + pages()[1:]:
        for target in _relative_links(path):
            if not os.path.exists(os.path.normpath(os.path.join(ROOT, os.path.dirname(path), target))):
                broken.append(f"{path}: {target}")
    assert not broken, broken
    # A page that only includes a file would be empty on GitHub: it says where to read it.
    for path in glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True):
        text = open(path, encoding="utf-8").read()
        visible = re.sub(r"<!--.*?-->", "", text, flags=re.S).strip()
        assert visible, f"{os.path.relpath(path, ROOT)} shows nothing on GitHub"


def test_the_site_drops_the_github_only_lines_and_links_results_from_the_page():
    import importlib.util
    from types import SimpleNamespace

    spec = importlib.util.spec_from_file_location("docs_hooks", os.path.join(ROOT, "docs", "hooks.py"))
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)

    def page(src):
        return SimpleNamespace(file=SimpleNamespace(src_uri=src))

    index = hooks.on_page_markdown(open(os.path.join(ROOT, "docs", "index.md")).read(), page("index.md"), {}, None)
    assert "on GitHub, read" not in index and index.startswith(open(os.path.join(ROOT, "README.md")).read()[:40])
    compare = open(os.path.join(ROOT, "docs", "compare.md")).read()
    assert "](../benchmarks/results/compare_2v/curves.png)" in compare
    site = hooks.on_page_markdown(compare, page("compare.md"), {}, None)
    assert "](benchmarks/results/compare_2v/curves.png)" in site and "](../benchmarks/results/" not in site
    deep = hooks.on_page_markdown("![x](../../benchmarks/results/a.png)", page("benchmarks/p.md"), {}, None)
    assert deep == "![x](results/a.png)"


def test_ci_runs_the_readmes_test_command():
    """`.ci/run` installs from the repository's files and runs the test command the README gives its users."""
    install = block("README.md", "bash")
    command = next(line.split("#")[0].strip() for line in install.splitlines() if "pytest" in line)
    ci = open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8").read().splitlines()
    assert command in [line.strip() for line in ci], command
    assert any(line.strip().startswith("python -m pip install") and "torch==2.13.0" in line for line in ci)
