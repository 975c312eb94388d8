"""The benchmark scripts run to the end at a tiny size (no timing assertions: numbers go to BENCHMARKS.md)."""

import gzip
import json
import math
import os
import re
import subprocess
import sys

import pytest
import torch

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


def stability_main(*args):
    """benchmarks/stability.py's main, in-process (the tests about its logic; those about its command line run it)."""
    return _benchmark("stability.py").main(list(args))


def _saved_tiny_warmup_run(data, out, steps, *extra):
    """Arm B of the tiny model at lr 1e-3 for `steps` updates, its final model saved under `out/models/`."""
    stability_main(
        *("--tiny", "--steps", str(steps), "--lrs", "1e-3", "--arms", "B", "--device", "cpu", "--save_models"),
        *("--data_dir", str(data), "--out", str(out), *extra),
    )


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


def test_stability_runs_every_arm_and_writes_curves(tmp_path, capsys):
    data = _toy_data(tmp_path)
    out = tmp_path / "out"
    stdout = bench_main(
        "stability.py",
        "--tiny",
        "--steps",
        "4",
        "--data_dir",
        str(data),
        "--out",
        str(out),
        "--device",
        "cpu",
        capsys=capsys,
    )
    results = json.loads((out / "results_ABC_seed1.json").read_text())["results"]
    assert {(r["arm"], r["lr"]) for r in results} == {(a, lr) for a in "ABC" for lr in (5e-4, 1e-3)}
    assert all(r["curve"] and isinstance(r["bleu"], float) for r in results)
    assert next(r for r in results if r["arm"] == "C")["gradinit"]["scale_min"] > 0
    assert (out / "curves.png").stat().st_size > 0 and (out / "curves.csv").exists()
    assert len(table_rows(stdout)) == 6


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


def test_stability_arms_in_separate_runs_merge_into_one_report(tmp_path, capsys):
    data, out = _toy_data(tmp_path), tmp_path / "out"
    common = ["--tiny", "--steps", "2", "--lrs", "1e-3", "--data_dir", str(data), "--out", str(out), "--device", "cpu"]
    stability_main(*common, "--arms", "A")
    stability_main(*common, "--arms", "C", "--tag", "x", "--gradinit_max_scale", "100")
    assert (out / "gradinit_Cx" / "scales.json").exists() and (out / "gradinit_Cx" / "scales.png").exists()
    rows = table_rows(bench_main("stability.py", "--report", "--out", str(out), capsys=capsys))
    assert sorted(r[1].split(":")[0].strip() for r in rows) == ["A", "Cx"]


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


def test_stability_and_overhead_take_token_budgets(tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    import overhead  # in-process: the budgets' arithmetic, not the timing (the overhead test above runs the command)

    data, out = _toy_data(tmp_path), tmp_path / "out"
    stability_main(
        "--tiny",
        "--steps",
        "2",
        "--lrs",
        "1e-3",
        "--arms",
        "C",
        "--data_dir",
        str(data),
        "--out",
        str(out),
        "--device",
        "cpu",
        "--max_tokens",
        "120",
        "--gradinit_max_tokens",
        "200",
    )
    result = json.loads((out / "results_C_seed1.json").read_text())
    assert result["args"]["max_tokens"] == 120 and result["results"][0]["curve"]
    args = overhead.parse_args(
        ["--tiny", "--device", "cpu", "--length", "10", "--max_tokens", "60", "--gradinit_max_tokens", "90"]
    )
    _, (batch, search_batch), _ = overhead.build(args)
    assert tuple(batch["input_ids"].shape) == (6, 10) and tuple(search_batch["input_ids"].shape) == (9, 10)


def test_stability_paper_preset_runs_the_arms_in_parallel(tmp_path, capsys):
    # the driver in-process; each arm runs as its own `stability.py` command line
    data, out = _toy_data(tmp_path), tmp_path / "out"
    stdout = bench_main(
        "stability.py",
        "--preset",
        "paper",
        "--tiny",
        "--parallel",
        "--steps",
        "2",
        "--data_dir",
        str(data),
        "--out",
        str(out),
        "--device",
        "cpu",
        "--max_tokens",
        "200",
        "--gradinit_max_tokens",
        "300",
        "--gradinit_reference_step",
        "--gradinit_freeze_zero_biases",
        capsys=capsys,
    )
    assert sorted(r[1].split(":")[0].strip() for r in table_rows(stdout)) == ["A", "B", "C"]
    args = json.loads((out / "results_C_seed1.json").read_text())["args"]
    # the preset's flags, except those given
    assert (args["lr_schedule"], args["lrs"], args["gradinit_iters"], args["dropout"]) == ("linear", [5e-4], 3, 0.3)
    assert (args["max_tokens"], args["gradinit_max_tokens"], args["gradinit_reference_step"]) == (200, 300, True)


def test_stability_reuses_a_saved_search_only_for_the_init_it_started_from(tmp_path, capsys):
    data = _toy_data(tmp_path)
    out = tmp_path / "out"
    common = [
        "--tiny",
        "--steps",
        "2",
        "--lrs",
        "1e-3",
        "--arms",
        "C",
        "--data_dir",
        str(data),
        "--device",
        "cpu",
        "--save_models",
    ]
    stability_main(*common, "--out", str(out))
    saved = json.loads((out / "gradinit_C" / "scales.json").read_text())
    reused = tmp_path / "reused"
    # lr 0: training leaves the weights as the scales made them
    capsys.readouterr()
    stability_main(*common, "--lrs", "0", "--out", str(reused), "--gradinit_scales_from", str(out / "gradinit_C"))
    stdout = capsys.readouterr().out
    assert "applied" in stdout and not (reused / "gradinit_C").exists()
    # the model after 0 training steps is α·θ⁰: each scaled tensor's norm is the search's final norm
    from safetensors.torch import load_file

    weights = load_file(str(reused / "models" / "C-lr0-seed1" / "model.safetensors"))
    assert set(saved["tensors"]) <= set(weights)  # every scaled tensor, by its exact name
    for name, tensor in saved["tensors"].items():
        assert abs(weights[name].double().norm().item() - tensor["final_norm"]) <= 1e-5 * (1 + tensor["final_norm"]), (
            name
        )
    with pytest.raises(ValueError, match="the search started at"):
        stability_main(
            *common, "--seed", "2", "--out", str(tmp_path / "x"), "--gradinit_scales_from", str(out / "gradinit_C")
        )


def test_stability_lr_zero_steps_fill_adams_moments_without_moving_the_weights(tmp_path, capsys):
    data = _toy_data(tmp_path)
    common = ["--tiny", "--steps", "6", "--arms", "A", "--data_dir", str(data), "--device", "cpu"]
    stability_main(*common, "--lrs", "0", "--out", str(tmp_path / "still"))
    stability_main(*common, "--lrs", "1e-2", "--lr_zero_steps", "4", "--out", str(tmp_path / "zero"), "--token_spread")
    stability_main(*common, "--lrs", "1e-2", "--out", str(tmp_path / "moving"))
    curves = {
        name: json.loads((tmp_path / name / "results_A_seed1.json").read_text())["results"][0]["curve"]
        for name in ("still", "zero", "moving")
    }
    assert [c["step"] for c in curves["zero"]] == [3, 6]  # --tiny evaluates every steps // 2
    # after 3 of the 4 updates at lr 0 the weights are the untrained ones; the last 2 updates move them
    assert curves["zero"][0]["val_loss"] == curves["still"][0]["val_loss"]
    assert curves["moving"][0]["val_loss"] != curves["still"][0]["val_loss"]
    assert curves["zero"][1]["val_loss"] != curves["still"][1]["val_loss"]
    # --token_spread before the first update: the same weights as after 3 updates at lr 0, not as after 6
    start = json.loads((tmp_path / "zero" / "results_A_seed1.json").read_text())["results"][0]["spread_at_start"]
    assert start == {
        "encoder": curves["zero"][0]["spread_encoder"],
        "decoder_min": curves["zero"][0]["spread_decoder_min"],
    }
    assert start["decoder_min"] != curves["zero"][1]["spread_decoder_min"]

    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        stability_main(*common, "--lr_zero_steps", "6", "--out", str(tmp_path / "x"))
    assert exit_info.value.code == 2
    assert "--lr_zero_steps 6: must be at least 0 and below --steps (6)" in capsys.readouterr().err


def test_stability_lr_factor_starts_each_schedule_after_the_zero_steps():
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    from stability import lr_factor

    class Args:
        lr_zero_steps, steps, lr_schedule = 2, 6, "constant"

    assert [lr_factor(0, Args)(s) for s in range(6)] == [0, 0, 1, 1, 1, 1]
    assert [lr_factor(2, Args)(s) for s in range(6)] == [0, 0, 0.5, 1, 1, 1]  # warmup over updates 3 and 4
    Args.lr_schedule = "linear"  # decay to 0 over the 4 updates that move the weights
    assert [lr_factor(0, Args)(s) for s in range(6)] == [0, 0, 1, 0.75, 0.5, 0.25]
    Args.lr_zero_steps = 0
    assert [lr_factor(3, Args)(s) for s in range(6)] == pytest.approx(
        [1 / 3, 2 / 3, 4 / 6, 3 / 6, 2 / 6, 1 / 6], abs=1e-15
    )
    Args.lr_schedule_horizon = 100  # the paper's schedule in a short run: towards 0 at update 100, stopped at 6
    assert [lr_factor(3, Args)(s) for s in range(6)] == pytest.approx(
        [1 / 3, 2 / 3, 0.98, 0.97, 0.96, 0.95], abs=1e-15
    )


def _final_weights(out, arm):
    from safetensors.torch import load_file

    return load_file(str(next((out / "models").glob(f"{arm}-*")) / "model.safetensors"))


@pytest.mark.parametrize("arm", ["B", "C", "D"])
def test_stability_resumable_run_cut_and_continued_ends_with_the_uninterrupted_runs_weights(tmp_path, arm, capsys):
    data = _toy_data(tmp_path)
    # lr 1e-2 and dropout: every update and every dropout mask changes the weights; B's warmup spans the cut
    common = [
        "--tiny",
        "--lrs",
        "1e-2",
        "--arms",
        arm,
        "--data_dir",
        str(data),
        "--device",
        "cpu",
        "--save_models",
        "--warmup_steps",
        "4",
    ]
    stability_main(*common, "--steps", "6", "--out", str(tmp_path / "straight"))
    cut = tmp_path / "cut"
    stability_main(*common, "--steps", "3", "--out", str(cut), "--resumable")
    capsys.readouterr()
    stability_main(*common, "--steps", "6", "--out", str(cut), "--resumable")
    stdout = capsys.readouterr().out
    assert "continuing from step 3" in stdout and "search 1:" not in stdout  # C: the scales come with the weights
    straight, continued = _final_weights(tmp_path / "straight", arm), _final_weights(cut, arm)
    assert straight.keys() == continued.keys()
    assert any("admin_omega" in name for name in straight) == (arm == "D")  # D: Admin's ω saved and restored too
    for name in straight:
        torch.testing.assert_close(continued[name], straight[name], rtol=0, atol=0, msg=name)
    results = [
        json.loads((out / f"results_{arm}_seed1.json").read_text())["results"][0]
        for out in (tmp_path / "straight", cut)
    ]
    assert results[1]["curve"][-1] == results[0]["curve"][-1]
    # C: the search's summary is the one the first part recorded (its seconds are its own)
    searches = [{k: v for k, v in (r["gradinit"] or {}).items() if k != "seconds"} for r in results]
    assert searches[1] == searches[0] and bool(searches[0]) == (arm == "C")


def test_stability_resumable_refuses_a_state_trained_otherwise(tmp_path, capsys):
    data = _toy_data(tmp_path)
    common = [
        "--tiny",
        "--lrs",
        "1e-2",
        "--arms",
        "B",
        "--data_dir",
        str(data),
        "--device",
        "cpu",
        "--resumable",
        "--warmup_fraction",
        "0.5",
        "--out",
        str(tmp_path / "out"),
    ]
    stability_main(*common, "--steps", "2", "--lr_schedule", "linear")
    capsys.readouterr()

    def refused(*flags):
        with pytest.raises(SystemExit) as exit_info:
            stability_main(*common, *flags)
        out = capsys.readouterr().out
        assert "training pairs" not in out and "arm " not in out  # refused before any work starts
        return str(exit_info.value.code)

    assert "saved with --dropout 0.1, this run has 0.2" in refused(
        "--steps", "2", "--lr_schedule", "linear", "--dropout", "0.2"
    )
    assert "--warmup_steps / --warmup_fraction 1, this run has 2" in refused("--steps", "4", "--lr_schedule", "linear")
    assert "only a constant schedule can be extended" in refused(
        "--steps", "4", "--lr_schedule", "linear", "--warmup_steps", "1"
    )
    assert "already trained 2 steps, more than --steps 1" in refused(
        "--steps", "1", "--lr_schedule", "linear", "--warmup_steps", "1"
    )
    # A has no state and B's cannot be continued: refused before A trains, not after
    assert "saved with --dropout 0.1" in refused(
        "--arms", "A", "B", "--steps", "2", "--lr_schedule", "linear", "--dropout", "0.2"
    )


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
