"""The confirmatory protocol's arithmetic (benchmarks/confirmatory.py), the lab's report (benchmarks/lab_report.py) and
the held-out split (benchmarks/heldout_split.py), checked against computations written out here: enumerated sign
patterns, closed-form quantiles, a reimplemented split, and the tables of the §2R page against its results files."""

import itertools
import json
import math
import os
import re
import statistics
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import confirmatory  # noqa: E402
import lab_report  # noqa: E402
from heldout_split import split  # noqa: E402


def curve(values, steps=range(100, 1300, 100)):
    return [{"step": s, "train_loss": v, "val_loss": v} for s, v in zip(steps, values)]


def test_endpoint_is_the_mean_of_the_last_three_evaluations_and_infinite_after_a_divergence():
    values = [9.0] * 9 + [6.0, 6.3, 6.9]  # updates 1,000, 1,100, 1,200 hold 6.0, 6.3, 6.9
    assert confirmatory.endpoint(curve(values)) == pytest.approx((6.0 + 6.3 + 6.9) / 3, abs=1e-12)
    assert confirmatory.endpoint(curve(values[:10])) is None  # not at 1,200 yet
    assert confirmatory.endpoint(curve([9.0, float("nan")])) == math.inf


def test_sign_test_bound_for_eight_seeds_is_the_seventh_smallest_by_enumerating_every_sign_pattern():
    ds = [0.3, -0.2, 0.05, 0.01, 0.9, -1.0, 0.07, 0.08]
    k, bound, coverage = confirmatory.sign_test_upper_bound(ds)
    # X₍ₖ₎ < median ⇔ at least k of 8 values fall below the median: count the 2⁸ equally likely patterns.
    below = [sum(p) for p in itertools.product((0, 1), repeat=8)]
    covers = {j: sum(b < j for b in below) / 256 for j in range(1, 9)}
    expected_k = min(j for j, c in covers.items() if c >= 0.95)
    assert (k, coverage) == (expected_k, covers[expected_k]) == (7, 1 - 9 / 256)
    assert bound == sorted(ds)[6] == 0.3


@pytest.mark.parametrize("p", [0.9, 0.95, 0.99])
def test_student_t_quantile_against_closed_forms(p):
    # one degree of freedom is the Cauchy distribution; two has F⁻¹(p) = (2p − 1)·√(2 / (1 − (2p − 1)²))
    assert confirmatory.student_t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=2e-4)
    q = 2 * p - 1
    assert confirmatory.student_t_quantile(p, 2) == pytest.approx(q * math.sqrt(2 / (1 - q * q)), rel=1e-5)
    assert confirmatory.student_t_quantile(p, 2000) == pytest.approx(statistics.NormalDist().inv_cdf(p), rel=1e-3)


def test_mean_t_bound_and_bootstrap_bound():
    ds = [0.1, -0.3, 0.2, 0.05, 0.0, 0.4, -0.1, 0.15]
    mean, t_bound = confirmatory.mean_t_upper_bound(ds)
    assert mean == pytest.approx(statistics.fmean(ds))
    assert t_bound == pytest.approx(
        mean + confirmatory.student_t_quantile(0.95, 7) * statistics.stdev(ds) / math.sqrt(8)
    )
    # with many seeds the bootstrap's 95th percentile approaches mean + 1.645·σ/√n (σ the population sd)
    many = [math.sin(i) for i in range(400)]
    normal = statistics.fmean(many) + 1.6449 * statistics.pstdev(many) / math.sqrt(len(many))
    assert confirmatory.bootstrap_upper_bound(many, resamples=4000) == pytest.approx(normal, abs=0.012)
    assert confirmatory.bootstrap_upper_bound([0.2] * 8) == pytest.approx(0.2)


def _run(arm, seed, end):
    return {
        "arm": arm,
        "seed": seed,
        "lr": 1e-3,
        "curve": curve([9.0] * 9 + [end] * 3),
        "test_loss": end + 0.1,
        "test_bleu": 0.1,
        "test_chrf": 5.0,
        "bleu": 0.1,
        "chrf": 5.0,
        "gradinit": None,
    }


def _protocol_results(ds, warm_ends=None):
    warm_ends = warm_ends or {75: 6.30, 150: 6.20, 300: 6.25}
    results = [_run(f"Bw{w}", s, e) for w, e in warm_ends.items() for s in (1, 2, 3)]
    for seed, d in zip(confirmatory.NEW_SEEDS, ds):
        results += [_run("Bw150", seed, 6.2), _run("C", seed, 6.2 + d)]
        if seed <= 104:
            results.append(_run("A", seed, 7.5))
    return results


def test_the_decision_needs_seven_of_eight_seeds_within_the_bound(capsys):
    holds = confirmatory.report(_protocol_results([-1.0, 0.0, 0.05, 0.08, 0.09, 0.02, 0.5, -0.3]))
    assert holds["within"] == 7 and holds["matches"] and holds["beats_no_warmup"]
    assert holds["median_bound"] == pytest.approx(0.09)
    fails = confirmatory.report(_protocol_results([-1.0, 0.0, 0.05, 0.08, 0.11, 0.02, 0.5, -0.3]))
    assert fails["within"] == 6 and not fails["matches"]
    assert fails["median_bound"] == pytest.approx(0.11)
    out = capsys.readouterr().out
    assert "Chosen: W = 150" in out and "does not match" in out


def test_no_warmup_must_trail_by_half_a_nat_in_every_seed_where_it_ran():
    results = _protocol_results([0.0] * 8)
    next(r for r in results if r["arm"] == "A" and r["seed"] == 103)["curve"] = curve([9.0] * 9 + [6.6] * 3)
    outcome = confirmatory.report(results)
    assert outcome["matches"] and not outcome["beats_no_warmup"]


def test_without_a_runs_there_is_no_verdict_against_no_warmup(capsys):
    results = [r for r in _protocol_results([0.0] * 8) if r["arm"] != "A"]
    outcome = confirmatory.report(results)
    assert outcome["matches"] and outcome["beats_no_warmup"] is None
    assert "Against no warmup: not yet" in capsys.readouterr().out


def test_scale_agreement_compares_search_seeds_and_init_seeds_pair_by_pair(tmp_path, capsys):
    def write(folder, weight, bias):
        os.makedirs(tmp_path / folder)
        tensors = {"w": {"group": "weight", "scale": weight}, "b": {"group": "bias", "scale": bias}}
        (tmp_path / folder / "scales.json").write_text(json.dumps({"tensors": tensors}))

    for seed in range(101, 109):  # weight scale 1 everywhere but e on seed 108: 7 of the 28 pairs differ by 1 in log
        write(f"gradinit_C_seed{seed}", math.e if seed == 108 else 1.0, 0.5)
    write("gradinit_Cs1001_seed101_search1001", 2.0, 0.0)  # a bias at 0 on one search: that tensor is left out
    write("gradinit_Cs1002_seed101_search1002", 4.0, 0.5)
    confirmatory.scale_agreement(str(tmp_path))
    out = capsys.readouterr().out
    same_init = (math.log(2) + math.log(4) + math.log(2)) / 3  # scales 1, 2, 4
    assert f"| weight | {same_init:.3f} (×{math.exp(same_init):.2f}) | {7 / 28:.3f} (×{math.exp(0.25):.2f}) |" in out
    assert "| bias |" not in out


def test_every_run_table_lists_each_run_once_in_the_protocols_order(capsys):
    runs = [
        _run_curve(arm, seed, end)
        for arm, seed, end in [
            ("C", 101, 5.0),
            ("Bw300", 1, 6.1),
            ("Cs1001", 101, 5.1),
            ("Bw75", 1, 6.3),
            ("A", 101, 8.0),
            ("Bw300", 101, 6.2),
        ]
    ]
    confirmatory.every_run(runs, confirmatory._endpoints(runs))
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "seed" in line]
    assert [row.split(" | ")[0] + " | " + row.split(" | ")[1] for row in rows] == [
        "| A, seed 101 | 8.000",
        "| B, W = 75, seed 1 | 6.300",
        "| B, W = 300, seed 1 | 6.100",
        "| B, W = 300, seed 101 | 6.200",
        "| C, seed 101 | 5.000",
        "| C, search seed 1001, seed 101 | 5.100",
    ]


def _run_curve(arm, seed, end):
    return {
        "arm": arm,
        "seed": seed,
        "curve": curve([9.0] * 9 + [end] * 3),
        "test_loss": end,
        "test_bleu": 0.0,
        "test_chrf": 0.0,
    }


def test_warmup_ties_go_to_the_shorter_warmup():
    ends = {(f"Bw{w}", s): e for w, e in {75: 6.204, 150: 6.200, 300: 6.300}.items() for s in (1, 2, 3)}
    assert confirmatory.chosen_warmup(ends)[0] == 75
    ends.update({("Bw75", s): 6.206 for s in (1, 2, 3)})
    assert confirmatory.chosen_warmup(ends)[0] == 150
    del ends[("Bw300", 2)]
    assert confirmatory.chosen_warmup(ends)[0] is None


def test_heldout_split_takes_every_nth_sentence_pair_and_nothing_else():
    pairs = [
        ("ein Haus .", "a house ."),
        ("das ist gut .", "that is good ."),
        ("Wort", "word"),
        ("wie geht es dir ?", "how are you ?"),
        ("er kam nicht !", "he did not come !"),
        ("zwei Worte .", "two words ."),
        ("sie liest ein Buch .", "she reads a book ."),
        ("ja", "yes"),
        ("Halt !", "stop !"),
        ("wir gehen jetzt .", "we go now ."),
    ]
    full = re.compile(r"^(\S+\s+){2,}\S*[.?!]$")  # three words or more, ending in . ? !
    sentences = [p for p in pairs if full.match(p[0].strip()) and full.match(p[1].strip())]
    train, heldout = split(pairs, 2)
    assert heldout == sentences[1::2] and len(heldout) == 3
    assert train == [p for p in pairs if p not in heldout]


def test_report_keeps_tagged_arms_in_the_claim_table(capsys):
    results = [
        _run("A", 1, 7.9),
        _run("B", 1, 6.2),
        _run("Ceta2e3", 1, 6.25),
        _run("A", 2, 7.9),
        _run("B", 2, 6.2),
        _run("C", 2, 6.5),
    ]
    lab_report.seed_summary(results, reach=6.5)
    rows = [
        line
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("| 0.001 |") and ("C:" in line or "Ceta2e3:" in line)
    ]
    assert len(rows) == 2
    tagged = next(r for r in rows if "Ceta2e3: 6.250" in r)
    assert "+0.050" in tagged and tagged.rstrip(" |").endswith("yes")
    assert next(r for r in rows if "| C: 6.500" in r).rstrip(" |").endswith("no")


def test_report_of_a_folder_without_results_says_so(tmp_path):
    with pytest.raises(SystemExit, match="no results_\\*.json files there"):
        lab_report.main([str(tmp_path)])


def test_the_lab_report_prints_every_row_of_the_confirmatory_results_page_from_its_committed_files(tmp_path, capsys):
    # The page's tables were pasted from this report; rebuilt now from the committed results files (a copy: the
    # report writes its curves into the folder it reads), every data row must come out again, digit for digit.
    import shutil

    folder = tmp_path / "confirm"
    shutil.copytree(os.path.join(ROOT, "benchmarks", "results", "confirm"), folder)
    capsys.readouterr()
    lab_report.main([str(folder)])
    printed = {line.replace("−", "-") for line in capsys.readouterr().out.splitlines()}
    with open(os.path.join(ROOT, "docs", "benchmarks", "confirmatory-results.md"), encoding="utf-8") as f:
        page = f.read().splitlines()
    rows = [
        line
        for i, line in enumerate(page)
        if line.startswith("|") and "---" not in line and not (i + 1 < len(page) and "---" in page[i + 1])
    ]
    assert len(rows) >= 30
    assert [row for row in rows if row.replace("−", "-") not in printed] == []
