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


def test_missing_runs_leave_the_verdict_open():
    ends = _ends((6.0, 6.0, 6.0, 6.0), (6.0, 6.0, 6.0, 6.0))
    del ends[("C", 204)]
    assert long_report.cpu_verdict(ends, (201, 202, 203, 204), (201, 202))[0] == "incomplete"
