"""§2S's rules (benchmarks/regime_report.py), checked on results files written here, with each verdict worked out by
hand in the test rather than by the module's helpers."""

import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import regime_report  # noqa: E402


def _run(arm, seed, values, steps=range(100, 1300, 100), test_loss=None):
    curve = [{"step": s, "train_loss": v, "val_loss": v} for s, v in zip(steps, values)]
    return {"arm": arm, "lr": 1e-3, "seed": seed, "curve": curve, "test_loss": test_loss, "test_bleu": 0.0}


def _flat(arm, seed, end):
    """A 1,200-update run whose endpoint (mean of updates 1,000–1,200) is `end`: 9.0 before, then end ± 0.1."""
    return _run(arm, seed, [9.0] * 9 + [end + 0.1, end, end - 0.1])


def _write(folder, runs):
    os.makedirs(folder, exist_ok=True)
    for i, r in enumerate(runs):
        with open(os.path.join(folder, f"results_{r['arm']}_seed{r['seed']}_{i}.json"), "w") as f:
            json.dump({"args": {}, "results": [r]}, f)


def test_a_probe_fails_without_warmup_from_half_a_nat_up(tmp_path, capsys):
    steps = (100, 200, 300, 400)
    _write(
        tmp_path / "regime" / "probe256",
        [
            _run("A_d256", 1, [7.2, 7.1, 7.1, 7.25], steps),
            _run("B_d256", 1, [7.3, 7.0, 6.9, 6.75], steps),  # +0.50
        ],
    )
    _write(
        tmp_path / "regime" / "probe",
        [
            _run("A_lr2e-3", 1, [7.1, 7.1, 7.1, 7.2], steps),
            _run("B_lr2e-3", 1, [7.1, 7.0, 6.9, 6.8], steps),  # +0.40
        ],
    )
    regime_report.main(["--regime", str(tmp_path / "regime"), "--confirm", str(tmp_path / "none")])
    out = capsys.readouterr().out
    assert "| d256 | 7.250 | 6.750 | +0.500 | yes |" in out
    assert "| lr2e-3 | 7.200 | 6.800 | +0.400 | no |" in out


def test_continued_probes_are_judged_at_the_endpoint_not_the_last_evaluation(tmp_path, capsys):
    # A's last evaluation is 0.9 above B's, but its endpoint (mean of updates 1,000–1,200) only 0.3 above
    a = _run("A_d256", 1, [7.1] * 9 + [6.5, 6.5, 7.4])
    b = _run("B_d256", 1, [7.1] * 9 + [6.5, 6.5, 6.5])
    cut = _run("A_lr2e-3", 1, [7.1] * 10)  # a continued run still short of update 1,200: no row for its cell
    _write(tmp_path / "regime" / "probe1200", [a, b, cut, _run("B_lr2e-3", 1, [7.0] * 12)])
    regime_report.main(["--regime", str(tmp_path / "regime"), "--confirm", str(tmp_path / "none")])
    out = capsys.readouterr().out
    assert f"| d256 | {(6.5 + 6.5 + 7.4) / 3:.3f} | 6.500 | {(6.5 + 6.5 + 7.4) / 3 - 6.5:+.3f} | no |" in out
    assert "lr2e-3" not in out


@pytest.mark.parametrize(
    "a_end, ends, chosen",
    [
        (7.9, {300: 6.70, 600: 6.50}, "W = 600"),  # 300 stays above 6.60
        (7.9, {300: 6.55, 1000: 6.20}, "W = 300"),  # the shorter of two that train (files list 1000 first)
        (6.9, {300: 6.55, 600: 6.45}, "none of these"),  # below 6.60, but less than 0.5 under A
    ],
)
def test_the_lr_2e3_cells_warmup_is_the_shortest_that_trains(tmp_path, capsys, a_end, ends, chosen):
    _write(tmp_path / "regime" / "probe1200", [_flat("A_lr2e-3_b0.98", 1, a_end)])
    _write(tmp_path / "regime" / "warmup2e-3", [_flat(f"Bw{w}_lr2e-3", 1, e) for w, e in ends.items()])
    regime_report.main(["--regime", str(tmp_path / "regime"), "--confirm", str(tmp_path / "none")])
    out = capsys.readouterr().out
    assert f"Chosen: {chosen}" in out
    for w, e in ends.items():
        trains = e <= 6.60 and a_end - e >= 0.5
        assert f"| {w} | {e:.3f} | {'yes' if trains else 'no'} |" in out


@pytest.mark.parametrize(
    "ratio_ends, value_ends, rule",
    [
        ([6.05, 6.09, 6.30], [6.30, 6.40, 6.05], "ratio"),  # ratio within 0.10 on 2 seeds, value on 1
        ([6.30, 6.40, 6.05], [6.00, 5.90, 6.50], "value"),
        ([6.00, 6.00, 7.00], [6.05, 7.00, 6.00], "either"),
        ([6.20, 6.30, 6.00], [6.50, 6.11, 6.02], "neither"),  # 1 of 3 each: 6.11 is outside
    ],
)
def test_eta_rule_by_ratio_value_either_or_neither(tmp_path, capsys, ratio_ends, value_ends, rule):
    runs = [_flat("Bw150", s, 6.0) for s in (1, 2, 3)]
    runs += [_flat("Cratio", s, e) for s, e in zip((1, 2, 3), ratio_ends)]
    runs += [_flat("Cvalue", s, e) for s, e in zip((1, 2, 3), value_ends)]
    _write(tmp_path / "regime" / "cell", runs)
    regime_report.main(["--regime", str(tmp_path / "regime"), "--confirm", str(tmp_path / "none")])
    out = capsys.readouterr().out
    assert f"η's rule: **{rule}**" in out
    within = {
        name: sum(e - 6.0 <= 0.10 for e in ends) for name, ends in (("ratio", ratio_ends), ("value", value_ends))
    }
    assert f"ratio {within['ratio']} of 3, value {within['value']} of 3" in out


def test_eta_rule_waits_for_every_run(tmp_path, capsys):
    runs = [_flat("Bw150", s, 6.0) for s in (1, 2, 3)] + [_flat("Cratio", s, 6.0) for s in (1, 2, 3)]
    runs.append(_run("Cvalue", 3, [9.0] * 10))  # cut at update 1,000: no endpoint yet
    _write(tmp_path / "regime" / "cell", runs)
    regime_report.main(["--regime", str(tmp_path / "regime"), "--confirm", str(tmp_path / "none")])
    assert "η's rule: not yet" in capsys.readouterr().out


@pytest.mark.parametrize(
    "details_ends, verdict",
    [
        ([6.40, 6.38, 6.40], "become the paper’s"),  # C − C-details: +0.20, −0.08 (not more than 0.10 worse), +0.40
        ([6.40, 6.60, 6.00], "stay"),  # mean gain +0.133 but seed 102 worse by 0.20
        ([6.55, 6.40, 6.60], "stay"),  # gains +0.05, −0.10, +0.20: mean +0.05
    ],
)
def test_theta_details_become_the_defaults_only_on_a_clear_gain(tmp_path, capsys, details_ends, verdict):
    c_ends = {101: 6.60, 102: 6.30, 103: 6.80}
    confirm = [_flat("C", s, e) for s, e in c_ends.items()] + [_flat("Bw300", s, 6.2) for s in c_ends]
    confirm.append(_flat("C", 104, 9.9))  # another seed of §2P: not one of the three
    _write(tmp_path / "confirm", confirm)
    _write(tmp_path / "regime" / "details", [_flat("Cdetails", s, e) for s, e in zip(c_ends, details_ends)])
    regime_report.main(["--regime", str(tmp_path / "regime"), "--confirm", str(tmp_path / "confirm")])
    out = capsys.readouterr().out
    gains = [c - d for c, d in zip(c_ends.values(), details_ends)]
    assert f"C − C-details {sum(gains) / 3:+.3f} in the mean" in out
    assert f"the defaults {verdict}." in out
    row = next(line for line in out.splitlines() if line.startswith("| 101 |"))
    assert [c.strip() for c in row.strip("|").split("|")][6] == f"{details_ends[0] - 6.60:+.3f}"  # C-details − C


def test_admin_stands_beside_warmup_and_gradinit_of_the_same_seed(tmp_path, capsys):
    _write(
        tmp_path / "confirm",
        [_flat("A", 101, 8.0), _flat("Bw300", 101, 6.2), _flat("C", 101, 6.5), _flat("Bw75", 101, 6.0)],
    )
    d = _flat("D", 101, 6.35)
    d["test_loss"] = 6.4
    _write(tmp_path / "regime" / "admin", [d])
    regime_report.main(["--regime", str(tmp_path / "regime"), "--confirm", str(tmp_path / "confirm")])
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| 101 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1:6] == ["8.000", "6.200", "6.500", "—", "6.350"]  # A, B (W = 300, not 75), C, C-details, D
    assert cells[7] == "+0.150"  # D − B
    assert cells[8].endswith("/ 6.400")  # D's held-out test loss


def test_the_cells_seed1_a_and_b_come_from_the_earlier_runs_of_the_same_flags(tmp_path, capsys):
    # seed 1's A is probe1200's; its B is warmup2e-3's run of the chosen W (600: 300 did not train), not W = 300's
    _write(tmp_path / "regime" / "probe1200", [_flat("A_lr2e-3_b0.98", 1, 7.9), _flat("B_lr2e-3_b0.98", 1, 7.1)])
    _write(tmp_path / "regime" / "warmup2e-3", [_flat("Bw300_lr2e-3", 1, 6.9), _flat("Bw600_lr2e-3", 1, 6.3)])
    cell = [_flat("A", s, 7.5) for s in (2, 3)] + [_flat("Bw600", s, 6.2) for s in (2, 3)]
    cell += [_flat("Cratio", s, 6.35) for s in (1, 2, 3)] + [_flat("Cvalue", s, 6.25) for s in (1, 2, 3)]
    _write(tmp_path / "regime" / "cell", cell)
    regime_report.main(["--regime", str(tmp_path / "regime"), "--confirm", str(tmp_path / "none")])
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| 1 | "))
    assert [c.strip() for c in row.strip("|").split("|")][1:5] == ["7.900", "6.300", "6.350", "6.250"]
    # seed 1: ratio 0.05 above B (within), value 0.05 below; seeds 2-3: ratio 0.15 above, value 0.05 above
    assert "η's rule: **value** (within 0.1 of B: ratio 1 of 3, value 3 of 3)" in out


def test_the_details_searches_stand_beside_cs_of_the_same_seed(tmp_path, capsys):
    def search(folder, scales, constraint_fraction, first_objective_step):
        os.makedirs(folder)
        tensors = {name: {"group": group, "scale": scale} for name, (group, scale) in scales.items()}
        with open(os.path.join(folder, "scales.json"), "w") as f:
            json.dump({"tensors": tensors}, f)
        return {"constraint_fraction": constraint_fraction, "first_objective_step": first_objective_step}

    c = _flat("C", 101, 6.0)
    c["gradinit"] = search(
        tmp_path / "confirm" / "gradinit_C_seed101",
        {"w1": ("weight", 1.0), "w2": ("weight", 2.0), "b": ("bias", 0.0), "ln": ("norm", 1.0)},
        0.40,
        96,
    )
    details = _flat("Cdetails", 101, 6.0)
    details["gradinit"] = search(
        tmp_path / "regime" / "details" / "gradinit_Cdetails_seed101",
        {"w1": ("weight", 2.0), "w2": ("weight", 2.0), "b": ("bias", 0.3), "ln": ("norm", 0.5)},
        0.48,
        110,
    )
    _write(tmp_path / "confirm", [c])
    _write(tmp_path / "regime" / "details", [details])
    regime_report.main(["--regime", str(tmp_path / "regime"), "--confirm", str(tmp_path / "confirm")])
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| 101 | 0.40"))
    # weights: |log 2| and 0, mean log 2 / 2, factor √2; LayerNorm: |log 0.5|, factor 2
    assert row == f"| 101 | 0.40 / 0.48 | 96 / 110 | ×{2**0.5:.2f} | ×2.00 |"


def _seed_rows(table):
    """{seed: cells} of a printed markdown table's per-seed rows."""
    rows = [line.strip("|").split("|") for line in table.splitlines() if line.startswith("| ") and line[2].isdigit()]
    return {int(cells[0]): [c.strip() for c in cells] for cells in rows}


def test_admin_in_the_cell_stands_beside_that_cells_runs_of_the_same_seed(tmp_path, capsys):
    cell = [_flat("A", s, 7.9) for s in (1, 2, 3)]
    cell += [_flat("Bw600", s, e) for s, e in zip((1, 2, 3), (6.5, 8.3, 6.7))]
    cell += [_flat(arm, s, 8.0) for arm in ("Cratio", "Cvalue") for s in (1, 2, 3)]
    _write(tmp_path / "regime" / "cell", cell)
    # D: seed 1 0.05 above B and 1.35 below A; seed 2 below B (which diverged) but only 0.3 below A; seed 3 0.2 above B
    _write(tmp_path / "regime" / "celladmin", [_flat("D", s, e) for s, e in zip((1, 2, 3), (6.55, 7.6, 6.9))])
    regime_report.main(["--regime", str(tmp_path / "regime"), "--confirm", str(tmp_path / "none")])
    out = capsys.readouterr().out
    cell_table, admin_table = out.split("**The failing cell**")[1].split("**Admin in the failing cell**")
    admin = _seed_rows(admin_table)
    assert admin[1][1:] == ["7.900", "6.500", "8.000", "8.000", "6.550", "+0.050", "+1.350", "yes", "yes"]
    assert admin[2][5:] == ["7.600", "-0.700", "+0.300", "yes", "no"]
    assert admin[3][5:] == ["6.900", "+0.200", "+1.000", "no", "yes"]
    assert "Admin: matches warmup on 2 of 3, beats no warmup on 2 of 3" in out
    # the cell's own table says where warmup itself trained (≤ 6.60 and ≥ 0.5 below A): seed 1 only (6.7 > 6.60)
    assert [cells[-1] for cells in _seed_rows(cell_table.split("η's rule:")[0]).values()] == ["yes", "no", "no"]
