"""BENCHMARKS §2S's answers, computed from `stability.py`'s results files alone.

§2S's stages (`regime_runs.sh`) write to benchmarks/results/regime/<stage>/; the θ′-details and Admin arms run on
§2P's seeds 101–103 and stand beside §2P's own A, B (W = 300) and C runs of those seeds in
benchmarks/results/confirm/. The rules below are §2S's, fixed before its runs:

- a cell *fails without warmup* if A's validation loss at the probe's last evaluation is at least 0.5 above B's;
- in the failing cell, η's rule is *by ratio* if C with η = 2 × lr ends within 0.10 of B (endpoint) on at least 2 of
  3 seeds and C with η = 2e-3 does not, *by value* if the reverse, *either* if both do, *neither* if none does;
- the paper's θ′ details become the package's defaults if C-details' endpoint is lower than C's by more than 0.10 in
  the mean over the three seeds and higher by more than 0.10 on none;
- (addenda) the probes continued to 1,200 updates (`probe1200`) fail without warmup if A's endpoint is at least 0.5
  above B's; the lr 2e-3 cell's warmup is the shortest W whose B endpoint is at most 6.60 and 0.5 below A's; that
  cell's seed-1 A and B are `probe1200`'s A and `warmup2e-3`'s B of that W (the same flags and seed);
- (fifth addendum) Admin in that cell (`celladmin`) matches warmup on a seed if its endpoint is at most 0.10 above
  B's, and beats no warmup if it is at least 0.5 below A's.

    python benchmarks/regime_report.py            # every table whose runs have finished
"""

from __future__ import annotations

import argparse
import math
import os

from confirmatory import _endpoints, _fmt, _mean_pairwise_log_ratio, _scales, _signed, endpoint
from stability import merged_results

FAILS_WITHOUT_WARMUP = 0.5
WITHIN = 0.10
MATCHING_SEEDS = 2  # of the cell's three
DETAILS_GAIN = 0.10
SEEDS = (101, 102, 103)  # §2P's, shared by the details and Admin arms
WARMUP = 300  # §2P's chosen warmup: the B these arms stand beside
TRAINS_BELOW = 6.60  # a warmup trains at lr 2e-3 if its endpoint is at most this (0.5 under the 7.1 plateau)


def load(folder):
    """Every run of the results_*.json files in `folder` (none if it does not exist)."""
    return merged_results(folder) if os.path.isdir(folder) else []


def _by_arm_seed(runs):
    return {(r["arm"], r.get("seed")): r for r in runs}


def probe_table(runs, at_endpoint=False):
    """[(cell, A's loss, B's loss, A − B, fails)] for each cell (the arms' tag) with both arms run: the loss at the
    last evaluation, or with `at_endpoint` §2P's endpoint (a run not yet at it is left out)."""
    value = (lambda r: endpoint(r["curve"])) if at_endpoint else (lambda r: r["curve"][-1]["val_loss"])
    last = {arm: v for arm, v in ((r["arm"], value(r)) for r in runs) if v is not None}
    rows = []
    for cell in sorted({arm[1:] for arm in last}):
        a, b = last.get("A" + cell), last.get("B" + cell)
        if a is not None and b is not None:
            rows.append((cell.strip("_"), a, b, a - b, a - b >= FAILS_WITHOUT_WARMUP))
    return rows


def eta_rule(ends, b_arm, seeds=(1, 2, 3)):
    """'ratio', 'value', 'either' or 'neither' (None until every run has reached the endpoint), with the counts."""
    counts = {}
    for c_arm in ("Cratio", "Cvalue"):
        pairs = [(ends.get((c_arm, s)), ends.get((b_arm, s))) for s in seeds]
        if any(c is None or b is None for c, b in pairs):
            return None, counts
        counts[c_arm] = sum(c - b <= WITHIN for c, b in pairs)
    ratio, value = (counts[a] >= MATCHING_SEEDS for a in ("Cratio", "Cvalue"))
    return {(True, False): "ratio", (False, True): "value", (True, True): "either"}.get(
        (ratio, value), "neither"
    ), counts


def details_verdict(ends, seeds=SEEDS):
    """Whether the paper's θ′ details should become the defaults: (adopt, mean of C − C-details, seeds where
    C-details ends more than 0.10 above C); None until both arms have every seed."""
    pairs = [(ends.get(("C", s)), ends.get(("Cdetails", s))) for s in seeds]
    if any(c is None or cd is None for c, cd in pairs):
        return None
    gains = [c - cd for c, cd in pairs]
    mean_gain = sum(gains) / len(gains)
    worse = [s for s, g in zip(seeds, gains) if g < -DETAILS_GAIN]
    return {"adopt": mean_gain > DETAILS_GAIN and not worse, "mean_gain": mean_gain, "worse_on": worse}


def _gap(x, y):
    """x − y, or None while either is missing."""
    return None if x is None or y is None else x - y


def report_probes(regime):
    for stage in ("probe", "probe256", "probe1200"):
        at_endpoint = stage == "probe1200"  # the probes continued to 1,200 updates are judged at §2P's endpoint
        rows = probe_table(load(os.path.join(regime, stage)), at_endpoint)
        if not rows:
            continue
        measure = (
            "endpoint (mean validation loss at updates 1,000–1,200)"
            if at_endpoint
            else "validation loss at the last evaluation"
        )
        print(f"\n**{stage}**: {measure}; fails without warmup if A − B ≥ {FAILS_WITHOUT_WARMUP}")
        print("| cell | A | B | A − B | fails |")
        print("|---|---:|---:|---:|---|")
        for cell, a, b, gap, fails in rows:
            print(f"| {cell} | {a:.3f} | {b:.3f} | {gap:+.3f} | {'yes' if fails else 'no'} |")


def _trains(b, a):
    """Whether a warmup run trains by the third addendum's rule (None while either endpoint is missing)."""
    return None if a is None or b is None else b <= TRAINS_BELOW and a - b >= FAILS_WITHOUT_WARMUP


def cell_warmup(regime):
    """(W or None, rows): §2S's third addendum: at lr 2e-3 the shortest W whose B trains — endpoint at most 6.60 and
    at least 0.5 below A's (A continued to 1,200 updates, `probe1200`); rows are (W, endpoint, trains)."""
    a = next(
        (endpoint(r["curve"]) for r in load(os.path.join(regime, "probe1200")) if r["arm"] == "A_lr2e-3_b0.98"), None
    )
    rows = []
    for r in load(os.path.join(regime, "warmup2e-3")):
        e = endpoint(r["curve"])
        if e is not None:
            trains = bool(_trains(e, a))
            rows.append((int(r["arm"][2:].split("_")[0]), e, trains))
    rows.sort()
    return next((w for w, _, trains in rows if trains), None), rows, a


def report_cell_warmup(regime):
    w, rows, a = cell_warmup(regime)
    if not rows:
        return
    print(
        f"\n**The lr 2e-3 cell's warmup** (endpoints; A {_fmt(a)}; trains if ≤ {TRAINS_BELOW} and ≥ "
        f"{FAILS_WITHOUT_WARMUP} below A)"
    )
    print("| W | B endpoint | trains |")
    print("|---:|---:|---|")
    for warm, e, trains in rows:
        print(f"| {warm} | {_fmt(e)} | {'yes' if trains else 'no'} |")
    print(f"Chosen: W = {w}" if w else "Chosen: none of these")


def earlier_seed1_runs(regime):
    """The lr 2e-3 cell's seed-1 A and B, run before the cell with its flags and seed: `probe1200`'s A (continued from
    its 400-update state, which ends as the uninterrupted run does) and `warmup2e-3`'s B of the chosen W, named as
    the cell names them (A, BwW)."""
    w, _, _ = cell_warmup(regime)
    renamed = {"A_lr2e-3_b0.98": "A", f"Bw{w}_lr2e-3": f"Bw{w}"}
    runs = load(os.path.join(regime, "probe1200")) + load(os.path.join(regime, "warmup2e-3"))
    return [{**r, "arm": renamed[r["arm"]]} for r in runs if r["arm"] in renamed and r.get("seed") == 1]


def report_cell(regime):
    runs = load(os.path.join(regime, "cell"))
    if not runs:
        return
    ran = {(r["arm"], r.get("seed")) for r in runs}
    runs += [r for r in earlier_seed1_runs(regime) if (r["arm"], 1) not in ran]
    ends = _endpoints(runs)
    b_arm = next((arm for arm, _ in ends if arm.startswith("Bw")), None)
    print(
        f"\n**The failing cell** (endpoints; B = {b_arm}; seed 1's A and B from `probe1200` and `warmup2e-3` where "
        "the cell did not run them): is η's rule by ratio (2 × lr) or by value (2e-3)?"
    )
    print(
        f"| seed | A | B | C ratio | C value | C ratio − B | C value − B | "
        f"B trains (≤ {TRAINS_BELOW}, ≥ {FAILS_WITHOUT_WARMUP} below A)? |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    for s in (1, 2, 3):
        a, b, cr, cv = (ends.get((arm, s)) for arm in ("A", b_arm, "Cratio", "Cvalue"))
        print(
            f"| {s} | {_fmt(a)} | {_fmt(b)} | {_fmt(cr)} | {_fmt(cv)} | "
            f"{_signed(_gap(cr, b))} | {_signed(_gap(cv, b))} | {_yes_no(_trains(b, a))} |"
        )
    rule, counts = eta_rule(ends, b_arm)
    print(
        "η's rule: not yet"
        if rule is None
        else f"η's rule: **{rule}** (within {WITHIN} of B: ratio {counts['Cratio']} of 3, "
        f"value {counts['Cvalue']} of 3)"
    )
    report_cell_admin(regime, ends, b_arm)


def _yes_no(flag):
    return "—" if flag is None else ("yes" if flag else "no")


def report_cell_admin(regime, ends, b_arm):
    """§2S's fifth addendum: Admin (D) in the cell beside its A, B and C of the same seed."""
    admin = _endpoints(load(os.path.join(regime, "celladmin")))
    if not admin:
        return
    print(
        f"\n**Admin in the failing cell** (`celladmin`; endpoints): D matches warmup if D − B ≤ {WITHIN}, beats no "
        f"warmup if A − D ≥ {FAILS_WITHOUT_WARMUP}"
    )
    print("| seed | A | B | C ratio | C value | D (Admin) | D − B | A − D | matches warmup | beats no warmup |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    matches = beats = 0
    for s in (1, 2, 3):
        a, b, cr, cv = (ends.get((arm, s)) for arm in ("A", b_arm, "Cratio", "Cvalue"))
        d = admin.get(("D", s))
        match = None if d is None or b is None else d - b <= WITHIN
        beat = None if d is None or a is None else a - d >= FAILS_WITHOUT_WARMUP
        matches, beats = matches + bool(match), beats + bool(beat)
        print(
            f"| {s} | {_fmt(a)} | {_fmt(b)} | {_fmt(cr)} | {_fmt(cv)} | {_fmt(d)} | {_signed(_gap(d, b))} | "
            f"{_signed(_gap(a, d))} | {_yes_no(match)} | {_yes_no(beat)} |"
        )
    ran = sum(("D", s) in admin for s in (1, 2, 3))
    print(
        f"Admin: matches warmup on {matches} of 3, beats no warmup on {beats} of 3"
        + ("" if ran == 3 else f" (not yet: {ran} of 3 seeds at the endpoint)")
    )


def report_beside_confirm(regime, confirm):
    """The θ′-details and Admin arms beside §2P's A, B and C of the same seeds."""
    runs = load(os.path.join(regime, "details")) + load(os.path.join(regime, "admin"))
    if not runs:
        return
    runs += [r for r in load(confirm) if r.get("seed") in SEEDS and r["arm"] in ("A", f"Bw{WARMUP}", "C")]
    ends, by_run = _endpoints(runs), _by_arm_seed(runs)
    arms = ("A", f"Bw{WARMUP}", "C", "Cdetails", "D")
    names = ("A", f"B (W = {WARMUP})", "C", "C-details", "D (Admin)")
    print("\n**Beside §2P's runs** (endpoints = mean validation loss at updates 1,000–1,200; test = held-out split)")
    print(
        "| seed | "
        + " | ".join(names)
        + " | C-details − C | D − B | test loss "
        + " / ".join(names)
        + " | test BLEU "
        + " / ".join(names[1:])
        + " |"
    )
    print("|---:|" + "---:|" * (len(arms) + 2) + "---|---|")
    for s in SEEDS:
        e = {arm: ends.get((arm, s)) for arm in arms}
        test = " / ".join(_fmt(by_run[(arm, s)].get("test_loss")) if (arm, s) in by_run else "—" for arm in arms)
        bleu = " / ".join(
            _fmt(by_run[(arm, s)].get("test_bleu"), 2) if (arm, s) in by_run else "—" for arm in arms[1:]
        )
        details_minus_c, d_minus_b = _gap(e["Cdetails"], e["C"]), _gap(e["D"], e[f"Bw{WARMUP}"])
        print(
            f"| {s} | "
            + " | ".join(_fmt(e[arm]) for arm in arms)
            + f" | {_signed(details_minus_c)} | {_signed(d_minus_b)} | {test} | {bleu} |"
        )
    verdict = details_verdict(ends)
    if verdict is None:
        print("The θ′ details: not yet (C-details or C missing on a seed).")
    else:
        print(
            f"The θ′ details: C − C-details {verdict['mean_gain']:+.3f} in the mean; "
            f"more than {DETAILS_GAIN} worse on "
            f"{', '.join(map(str, verdict['worse_on'])) or 'no seed'}: the defaults "
            f"{'become the paper’s' if verdict['adopt'] else 'stay'}."
        )


def report_details_searches(regime, confirm):
    """How the θ′ details change the search itself, seed by seed: C's and C-details' constraint fraction and first
    objective step, and how far apart their scales end (the typical factor between the two searches' α of a tensor)."""
    runs = _by_arm_seed(load(os.path.join(regime, "details")) + load(confirm))
    rows = []
    for s in SEEDS:
        paths = [
            os.path.join(confirm, f"gradinit_C_seed{s}", "scales.json"),
            os.path.join(regime, "details", f"gradinit_Cdetails_seed{s}", "scales.json"),
        ]
        if ("C", s) in runs and ("Cdetails", s) in runs and all(os.path.exists(p) for p in paths):
            searches = [_scales(p) for p in paths]
            factor = {g: _mean_pairwise_log_ratio(searches, g) for g in ("weight", "norm")}
            rows.append((s, runs[("C", s)]["gradinit"], runs[("Cdetails", s)]["gradinit"], factor))
    if not rows:
        return
    print(
        "\n**The θ′ details' searches beside C's** (same seed, same batches): constraint fraction, first objective "
        "step, and the typical factor between the two searches' scales of one tensor (exp of the mean |log(α / α′)|)"
    )
    print(
        "| seed | constraint fraction C / C-details | first objective step C / C-details | factor: weights | "
        "factor: LayerNorm scales |"
    )
    print("|---:|---|---|---:|---:|")
    for s, c, cd, factor in rows:
        print(
            f"| {s} | {c['constraint_fraction']:.2f} / {cd['constraint_fraction']:.2f} | "
            f"{c['first_objective_step']} / {cd['first_objective_step']} | "
            + " | ".join("—" if factor[g] is None else f"×{math.exp(factor[g]):.2f}" for g in ("weight", "norm"))
            + " |"
        )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--regime", default="benchmarks/results/regime", help="§2S's results, one folder per stage")
    p.add_argument("--confirm", default="benchmarks/results/confirm", help="§2P's results (seeds 101–103's A, B, C)")
    args = p.parse_args(argv)
    report_probes(args.regime)
    report_cell_warmup(args.regime)
    report_cell(args.regime)
    report_beside_confirm(args.regime, args.confirm)
    report_details_searches(args.regime, args.confirm)


if __name__ == "__main__":
    main()
