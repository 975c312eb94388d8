"""§2U's rule (benchmarks/long_report.py), on runs written here, each verdict worked out by hand in the test."""

import math
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import long_report  # noqa: E402

STEPS = range(100, 4900, 100)


def _curve(end, at_1200=7.0):
    """4,800 updates: 7.0 up to update 1,200, then falling linearly so that the last three evaluations are
    end + 0.1, end, end − 0.1 (their mean: `end`)."""
    values = [at_1200 if s <= 1200 else None for s in STEPS]
    tail = [end + 0.1, end, end - 0.1]
    values[-3:] = tail
    known = [i for i, v in enumerate(values) if v is not None]
    for i, v in enumerate(values):
        if v is None:  # between update 1,200 and 4,600, linear
            lo = max(k for k in known if k < i)
            hi = min(k for k in known if k > i)
            values[i] = values[lo] + (values[hi] - values[lo]) * (i - lo) / (hi - lo)
    return [{"step": s, "train_loss": v, "val_loss": v} for s, v in zip(STEPS, values)]


def _ends(b, c, a=None):
    ends = {}
    for seed, (bs, cs) in zip((201, 202, 203, 204), zip(b, c)):
        ends[("Bw300", seed)], ends[("C", seed)] = bs, cs
    for seed, value in zip((201, 202), a or (8.0, 8.0)):
        ends[("A", seed)] = value
    return ends


def test_the_endpoint_is_the_mean_of_the_last_three_evaluations():
    curve = _curve(5.0)
    assert long_report.endpoint(curve) == pytest.approx(5.0)
    assert long_report.at_1200(curve) == pytest.approx(7.0)
    assert long_report.best_window(curve) == pytest.approx(5.0)
    for point in curve[-3:]:  # the training loss's endpoint is read from its own column
        point["train_loss"] = point["val_loss"] + 0.5
    assert long_report.endpoint(curve, "train_loss") == pytest.approx(5.5)
    curve[10]["val_loss"] = math.nan
    assert long_report.endpoint(curve) == math.inf


def test_c_first_reaches_b_at_1200():
    c = _curve(5.0)
    target = 6.0  # C falls linearly from 7.0 at 1,200 to 5.1 at 4,600: crossing 6.0 after update 2,900
    reached = long_report.first_reaching(c, target)
    assert reached == next(x["step"] for x in c if x["val_loss"] <= target)
    assert 2900 < reached <= 3000


@pytest.mark.parametrize(
    "b, c, a, verdict, k, n",
    [
        # within 0.10 on 3 of 4 (0.10 exactly counts), and A − C ≥ 0.5 on both A seeds
        ((6.0, 6.0, 6.0, 6.0), (6.10, 5.5, 6.05, 6.3), (7.0, 7.0), "trains without warmup", 3, 4),
        # the same C, but A − C = 0.49 on seed 202
        ((6.0, 6.0, 6.0, 6.0), (6.10, 5.5, 6.05, 6.3), (7.0, 5.99), "does not meet the rule", 3, 4),
        # within on 2 of 4
        ((6.0, 6.0, 6.0, 6.0), (6.11, 5.5, 6.05, 6.3), (7.0, 7.0), "does not meet the rule", 2, 4),
        # B trained (below 6.6) on two seeds only: undecided, whatever C does
        (
            (6.0, 6.7, 6.0, 6.65),
            (6.0, 6.7, 6.0, 6.65),
            (8.0, 8.0),
            "undecided (B trained on fewer than 3 seeds)",
            2,
            2,
        ),
        # B did not train on seed 204: 3 of the 3 where it did
        ((6.0, 6.0, 6.0, 6.6), (6.0, 6.0, 6.0, 9.0), (8.0, 8.0), "trains without warmup", 3, 3),
    ],
)
def test_the_rule(b, c, a, verdict, k, n):
    assert long_report.cpu_verdict(_ends(b, c, a), (201, 202, 203, 204), (201, 202)) == (verdict, k, n)


def test_b_failing_on_two_seeds_decides_before_the_other_runs():
    """Two of four seeds where B did not train leave at most 2 where it can: "undecided" whatever the rest do."""
    ends = _ends((6.7, 8.0, 6.0, 6.0), (6.0, 4.5, 6.0, 6.0), (8.0, 8.0))
    for key in [("Bw300", 203), ("C", 203), ("Bw300", 204), ("C", 204), ("A", 201), ("A", 202)]:
        del ends[key]
    assert long_report.cpu_verdict(ends, (201, 202, 203, 204), (201, 202)) == (
        "undecided (B trained on fewer than 3 seeds; decided before Bw300 203, C 203, Bw300 204, C 204, A 201, "
        "A 202 finished)",
        0,
        0,
    )
    # one seed where B did not train, two still to come: open (B may train on 3 of 4)
    ends = _ends((6.0, 8.0, 6.0, 6.0), (6.0, 4.5, 6.0, 6.0), (8.0, 8.0))
    del ends[("Bw300", 204)]
    assert long_report.cpu_verdict(ends, (201, 202, 203, 204), (201, 202))[0] == (
        "incomplete: no results yet for Bw300 204"
    )


def test_missing_runs_leave_the_verdict_open():
    ends = _ends((6.0, 6.0, 6.0, 6.0), (6.0, 6.0, 6.0, 6.0))
    del ends[("C", 204)], ends[("A", 202)]
    verdict = long_report.cpu_verdict(ends, (201, 202, 203, 204), (201, 202))[0]
    assert verdict == "incomplete: no results yet for C 204, A 202"


def test_run_progress_reads_a_saved_states_curve_and_writes_it(tmp_path, capsys):
    """A state written by run_state.save_state (as stability.py --resumable writes it) is read back without its
    weights; the snapshot holds the curve and search exactly as saved."""
    import argparse
    import json

    import torch

    import run_progress
    from run_state import TRAINING_FLAGS, SEARCH_FLAGS, save_state, state_path

    args = argparse.Namespace(**{name: None for name in TRAINING_FLAGS + SEARCH_FLAGS})
    args.out, args.tag, args.seed, args.steps, args.gradinit_eta = str(tmp_path), "", 7, 4800, 2e-3
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    curve = _curve(5.5)[:12]  # to update 1,200, at 7.0
    curve[-1] = {**curve[-1], "val_loss": 6.85}
    search = {"constraint_fraction": 0.56, "first_objective_step": 128}
    path = state_path(args, "C", 1e-3)
    save_state(path, args, "C", 1e-3, 0, 1200, model, optimizer, schedule, {"curve": curve, "search": search})
    args.seed = 8  # a finished run: its results file is the record, so it gets no snapshot
    finished = state_path(args, "C", 1e-3)
    save_state(finished, args, "C", 1e-3, 0, 4800, model, optimizer, schedule, {"curve": curve, "search": search})

    out = tmp_path / "snapshots"
    run_progress.main([os.path.dirname(path), "--write", str(out)])
    printed = capsys.readouterr().out
    assert "C seed 7: update 1200 of 4800, validation 6.850 (lowest 6.850; mean at 1,000–1,200 6.950)" in printed
    assert "C seed 8: update 4800 of 4800" in printed and not (out / "progress_C_seed8.json").exists()
    written = json.loads((out / "progress_C_seed7.json").read_text())
    assert (written["arm"], written["seed"], written["lr"], written["step"]) == ("C", 7, 1e-3, 1200)
    assert written["curve"] == curve and written["gradinit"] == search


def test_run_progress_refuses_a_file_that_is_not_a_state(tmp_path):
    import run_progress

    (tmp_path / "weights.pt").write_bytes(b"")
    with pytest.raises(SystemExit, match="weights.pt: not a stability.py state"):
        run_progress.main([str(tmp_path)])
