"""The benchmark scripts run to the end at a tiny size (no timing assertions: numbers go to BENCHMARKS.md)."""

import gzip
import json
import math
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(script, *args, timeout=600):
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def _benchmark(script):
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    return __import__(script.removesuffix(".py"))


def bench_main(script, *args, capsys):
    """A benchmark script's main, in-process, returning what it printed (a test about its logic, not its command
    line)."""
    capsys.readouterr()
    _benchmark(script).main(list(args))
    return capsys.readouterr().out


def table_rows(stdout):
    return [line.split("|")[1:-1] for line in stdout.splitlines() if line.startswith("| ") and "---" not in line][1:]


def test_overhead_prints_ratios_for_every_variant(tmp_path, capsys):
    # in-process, times only (the memory columns take one new interpreter per variant: the next test measures one)
    out = bench_main(
        "overhead.py",
        "--tiny",
        "--repeats",
        "1",
        "--warmup",
        "1",
        "--no_memory",
        "--json",
        str(tmp_path / "o.json"),
        capsys=capsys,
    )
    rows = {r[0].strip(): r for r in table_rows(out) if not r[0].strip().startswith("search at")}
    assert set(rows) == {
        "train",
        "adam",
        "adam_constraint",
        "sgd",
        "adam_reference",
        "adam_constraint_fd",
        "sgd_fd",
        "whole search",
    }
    train_ms = float(rows["train"][1])
    for name in (
        "adam",
        "adam_constraint",
        "sgd",
        "adam_reference",
    ):  # each ratio is its time over the training step's
        ms, ratio = float(rows[name][1]), float(rows[name][2])
        printed = 0.005 + (ms / train_ms) * (0.05 / ms + 0.05 / train_ms)  # the rounding of the printed digits
        assert ratio == pytest.approx(ms / train_ms, abs=printed), name
    result = json.loads((tmp_path / "o.json").read_text())
    assert all(math.isfinite(v) and v > 0 for v in result["seconds"].values())


def test_overhead_memory_of_one_variant_is_the_peak_it_adds(capsys):
    """The measurement each memory column's process makes, here in-process for the search's Adam iteration."""
    import resource

    added = int(bench_main("overhead.py", "--tiny", "--memory_of", "adam", capsys=capsys).strip().splitlines()[-1])
    # Above zero (the search allocates θ⁰, g and α's state), below the whole process's peak.
    assert 0 < added < resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _toy_data(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    pairs = [({"de": f"das haus {i} ist rot .", "en": f"the house {i} is red ."}) for i in range(120)]
    with gzip.open(data / "train.jsonl.gz", "wt") as f:
        f.writelines(json.dumps({"translation": p}) + "\n" for p in pairs)
    with open(data / "validation.jsonl", "w") as f:
        f.writelines(json.dumps({"translation": p}) + "\n" for p in pairs[:10])
    return data


def test_distributed_times_one_and_two_processes(capsys):
    # the driver in-process; its workers are `torchrun ... distributed.py --worker` command lines
    out = bench_main(
        "distributed.py",
        "--iters",
        "1",
        "--layers",
        "1",
        "--d_model",
        "32",
        "--global_batch",
        "12",
        "--repeats",
        "1",
        capsys=capsys,
    )
    rows = table_rows(out)
    assert [r[0].strip() for r in rows] == ["1", "2"]
    assert float(rows[1][2]) > 0


def test_hvp_search_compares_both_ways(tmp_path, capsys):
    out = bench_main(
        "hvp_search.py",
        "--tiny",
        "--iters",
        "2",
        "--data_dir",
        str(_toy_data(tmp_path)),
        "--out",
        str(tmp_path / "o"),
        "--gradinit_gamma",
        "10",
        capsys=capsys,
    )
    rows = {r[0].strip(): r for r in table_rows(out)}
    assert set(rows) == {"exact", "finite_difference"}
    for r in rows.values():
        seconds, ratio = float(r[1]), float(r[2])
        assert seconds > 0 and ratio > 0 and float(r[3]) > 0 and 0 <= float(r[4]) <= 1 and math.isfinite(float(r[5]))
    assert "max |Δα|" in out and "a training step" in out


def test_hvp_accuracy_reports_every_variant(tmp_path, capsys):
    out = bench_main(
        "hvp_accuracy.py", "--tiny", "--data_dir", str(_toy_data(tmp_path)), "--batch_size", "12", capsys=capsys
    )
    rows = table_rows(out)
    assert len(rows) == 2 * 2 * 4  # two steps, two dtypes, four variants
    error = {(r[0].strip(), r[1].strip(), r[2].strip()): float(r[3]) for r in rows}
    # float64 as shipped, about 4× the errors measured here (1.4e-8 and 5.8e-11): the package's own ε rule.
    assert error["adam constraint", "float64", "as shipped"] < 6e-8
    assert error["sgd objective", "float64", "as shipped"] < 3e-10
    for step in ("adam constraint", "sgd objective"):
        # What the two parts of the rule are for: each one's absence costs accuracy (measured 3× to 300×).
        for dtype in ("float32", "float64"):
            assert error[step, dtype, "loss rule off"] > 2 * error[step, dtype, "as shipped"], (step, dtype)
        assert error[step, "float32", "pattern off"] > 10 * error[step, "float32", "as shipped"], step


def test_token_budget_compares_rows_with_a_budget_of_the_same_target_tokens(tmp_path, capsys):
    out = bench_main(
        "token_budget.py",
        "--tiny",
        "--steps",
        "2",
        "--batch_size",
        "16",
        "--data_dir",
        str(_toy_data(tmp_path)),
        "--device",
        "cpu",
        capsys=capsys,
    )
    rows = {r[0].strip().split(" ")[0]: r for r in table_rows(out)}
    assert set(rows) == {"rows", "token"}
    for r in rows.values():
        assert float(r[1]) > 0 and 0 <= float(r[3]) < 1 and float(r[5]) > 0
    assert "throughput ratio, token budget / rows" in out


def test_overhead_takes_token_budgets():
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    import overhead  # in-process: the budgets' arithmetic, not the timing (the overhead test above runs the command)

    args = overhead.parse_args(
        ["--tiny", "--device", "cpu", "--length", "10", "--max_tokens", "60", "--gradinit_max_tokens", "90"]
    )
    _, (batch, search_batch), _ = overhead.build(args)
    assert tuple(batch["input_ids"].shape) == (6, 10) and tuple(search_batch["input_ids"].shape) == (9, 10)


def test_monitor_cost_prints_both_times_and_their_ratio(capsys):
    out = bench_main("monitor_cost.py", "--tiny", "--repeats", "1", capsys=capsys)
    times = re.search(r"evaluation ([0-9.]+) s, monitor ([0-9.]+) s", out)
    ratio = float(re.search(r"monitor / evaluation = ([0-9.]+)", out).group(1))
    evaluation, monitor = float(times.group(1)), float(times.group(2))
    # The times are printed to 0.01 s, the ratio to 0.001: the ratio of the printed times is that far off at most.
    printed = 0.0005 + (monitor / evaluation) * (0.005 / evaluation + 0.005 / monitor)
    assert abs(ratio - monitor / evaluation) <= printed
    assert "monitor: 256 rows" in out


def test_heldout_split_writes_the_files_compare_reads(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    rows = [("Ein ganzer Satz hier .", "A whole sentence here ."), ("Wort", "word")] * 5
    with gzip.open(data / "train.jsonl.gz", "wt", encoding="utf-8") as f:
        for de, en in rows:
            f.write(json.dumps({"translation": {"de": de, "en": en}}) + "\n")
    (data / "validation.jsonl").write_text("{}\n")
    _benchmark("heldout_split.py").main(["--data_dir", str(data), "--out", str(tmp_path / "out"), "--every", "2"])
    train = (tmp_path / "out" / "train.jsonl").read_text().splitlines()
    test = (tmp_path / "out" / "test.jsonl").read_text().splitlines()
    # 5 sentence pairs: the 2nd and 4th held out; the 5 single words and 3 sentences stay, in file order.
    assert len(test) == 2 and len(train) == 8 and all("Satz" in line for line in test)
    assert [json.loads(line)["translation"]["en"] for line in train][:3] == ["A whole sentence here .", "word", "word"]
