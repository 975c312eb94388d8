"""The confirmatory test of BENCHMARKS §2P, computed from the lab loop's results files (`benchmarks/results/confirm/`).

The protocol, in code: the endpoint of a run is its mean validation loss at updates 1,000, 1,100 and 1,200 (+∞ if
it diverged); the warmup W is the one of {75, 150, 300} with the lowest mean endpoint on seeds 1–3 (a tie within
0.005 goes to the shorter); d = C − B per new seed; GradInit matches warmup if at least 7 of the 8 new seeds have
d ≤ 0.10 (the sign test's one-sided 96.5 % upper bound on the median d), and beats no warmup if A − C ≥ 0.5 in every
new seed where A ran. The mean d's one-sided 95 % t bound and a paired bootstrap are reported beside it, not
deciding. `lab_report.py` prints these tables whenever its folder holds runs of the protocol.
"""

from __future__ import annotations

import glob
import json
import math
import os
import random

ENDPOINT_STEPS = (1000, 1100, 1200)
TUNING_SEEDS = (1, 2, 3)
NEW_SEEDS = (101, 102, 103, 104, 105, 106, 107, 108)
WARMUPS = (75, 150, 300)
BOUND = 0.10  # GradInit matches warmup: the median d's upper bound at most this
MARGIN_OVER_A = 0.5  # GradInit beats no warmup: A − C at least this in every seed
TIE = 0.005
BOOTSTRAP_RESAMPLES = 10_000


def endpoint(curve):
    """Mean validation loss at the endpoint's updates; +∞ if the run diverged; None if it has not reached them."""
    losses = {c["step"]: c["val_loss"] for c in curve}
    if any(not math.isfinite(c["val_loss"]) or not math.isfinite(c["train_loss"]) for c in curve):
        return math.inf
    if not all(step in losses for step in ENDPOINT_STEPS):
        return None
    return sum(losses[step] for step in ENDPOINT_STEPS) / len(ENDPOINT_STEPS)


def sign_test_upper_bound(ds, level=0.95):
    """(k, the k-th smallest d, its coverage): the smallest order statistic that is a one-sided upper confidence bound
    of the median at `level`. X₍ₖ₎ < median only if at least k of the n values are, so its coverage is
    1 − P(Binomial(n, ½) ≥ k)."""
    n = len(ds)
    for k in range(1, n + 1):
        coverage = 1 - sum(math.comb(n, j) for j in range(k, n + 1)) / 2**n
        if coverage >= level:
            return k, sorted(ds)[k - 1], coverage
    return None, math.inf, 1.0


def student_t_quantile(p, df):
    """The p-quantile of Student's t with `df` degrees of freedom (p > ½), by bisection on the CDF, which is
    integrated from the density with Simpson's rule."""

    def density(t):
        c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
        return c * (1 + t * t / df) ** (-(df + 1) / 2)

    def cdf(x, intervals=2000):
        h = x / intervals
        total = density(0) + density(x) + sum((4 if i % 2 else 2) * density(i * h) for i in range(1, intervals))
        return 0.5 + total * h / 3

    lo, hi = 0.0, 100.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) < p else (lo, mid)
    return (lo + hi) / 2


def mean_t_upper_bound(ds, level=0.95):
    n = len(ds)
    mean = sum(ds) / n
    if n < 2 or not math.isfinite(mean):
        return mean, math.inf
    sd = math.sqrt(sum((d - mean) ** 2 for d in ds) / (n - 1))
    return mean, mean + student_t_quantile(level, n - 1) * sd / math.sqrt(n)


def bootstrap_upper_bound(ds, level=0.95, resamples=BOOTSTRAP_RESAMPLES, seed=0):
    """The `level` percentile of the mean d over resamples of the seeds with replacement (the pairs C, B of a seed
    stay together: d is already their difference)."""
    rng = random.Random(seed)
    means = sorted(sum(rng.choice(ds) for _ in ds) / len(ds) for _ in range(resamples))
    return means[math.ceil(level * resamples) - 1]


def _endpoints(results):
    """{(arm, seed): endpoint} of the runs that reached the endpoint (or diverged)."""
    out = {}
    for r in results:
        e = endpoint(r["curve"])
        if e is not None:
            out[(r["arm"], r.get("seed"))] = e
    return out


def chosen_warmup(ends):
    """(W, {W: [endpoints of seeds 1–3]}) — W None until every tuning run has reached the endpoint."""
    table = {w: [ends.get((f"Bw{w}", s)) for s in TUNING_SEEDS] for w in WARMUPS}
    if any(e is None for es in table.values() for e in es):
        return None, table
    means = {w: sum(es) / len(es) for w, es in table.items()}
    best = min(means.values())
    return min(w for w in WARMUPS if means[w] <= best + TIE), table


def decision(ds, a_minus_c):
    """The protocol's two verdicts, as text."""
    k, bound, coverage = sign_test_upper_bound(ds)
    within = sum(d <= BOUND for d in ds)
    matches = bound <= BOUND
    beats = all(x >= MARGIN_OVER_A for x in a_minus_c) if a_minus_c else None  # None: A has not run yet
    return {
        "within": within,
        "k": k,
        "median_bound": bound,
        "coverage": coverage,
        "matches": matches,
        "beats_no_warmup": beats,
    }


def _against_a(a_minus_c, beats):
    """The second verdict as text; `beats` is decision()'s (None before A has run)."""
    if beats is None:
        return "Against no warmup: not yet (A has not run on the new seeds)."
    return (
        f"A − C ≥ {MARGIN_OVER_A} in {sum(x >= MARGIN_OVER_A for x in a_minus_c)} of {len(a_minus_c)} seeds where "
        f"A ran: GradInit {'beats' if beats else 'does not beat'} no warmup."
    )


def _fmt(x, digits=3):
    return "—" if x is None else ("∞" if x == math.inf else f"{x:.{digits}f}")


def _signed(x):
    return "—" if x is None else f"{x:+.3f}"


def report(results, out=None):
    """Print the protocol's tables (whatever has finished so far); returns the decision once it can be made."""
    ends = _endpoints(results)
    if not any(s in NEW_SEEDS or (a.startswith("Bw") and s in TUNING_SEEDS) for a, s in ends):
        return None
    by_run = {(r["arm"], r.get("seed")): r for r in results}
    w, table = chosen_warmup(ends)
    print(
        "\n**Choosing the warmup** (§2P): endpoint = mean validation loss at updates "
        f"{', '.join(map(str, ENDPOINT_STEPS))}"
    )
    print("| warmup | " + " | ".join(f"seed {s}" for s in TUNING_SEEDS) + " | mean |")
    print("|---|" + "---:|" * (len(TUNING_SEEDS) + 1))
    for warm, es in table.items():
        done = [e for e in es if e is not None]
        mean = sum(done) / len(done) if len(done) == len(es) else None
        print(f"| {warm} | " + " | ".join(_fmt(e) for e in es) + f" | {_fmt(mean)} |")
    print(f"Chosen: W = {w}" if w else "Chosen: not yet (tuning runs missing)")
    if w is None:
        return None
    b_arm = f"Bw{w}"
    rows, ds, a_minus_c = [], [], []
    print(
        f"\n**The new seeds** (B = warmup {w}; endpoints; final = validation loss at update 1,200; test = held-out "
        "split)"
    )
    print(
        "| seed | A | B | C | d = C − B | A − C | final B / C | test loss A / B / C | test BLEU B / C | test chrF B "
        "/ C |"
    )
    print("|---:|---:|---:|---:|---:|---:|---|---|---|---|")
    for seed in NEW_SEEDS:
        a, b, c = ends.get(("A", seed)), ends.get((b_arm, seed)), ends.get(("C", seed))
        d = None if b is None or c is None else c - b
        if d is not None:
            ds.append(d)
        amc = None if a is None or c is None else a - c
        if amc is not None:
            a_minus_c.append(amc)
        runs = [by_run.get((arm, seed)) for arm in ("A", b_arm, "C")]
        final = " / ".join(_fmt(r["curve"][-1]["val_loss"]) if r else "—" for r in runs[1:])
        test = " / ".join(_fmt(r.get("test_loss")) if r else "—" for r in runs)
        bleu = " / ".join(_fmt(r.get("test_bleu"), 2) if r else "—" for r in runs[1:])
        chrf = " / ".join(_fmt(r.get("test_chrf"), 1) if r else "—" for r in runs[1:])
        print(
            f"| {seed} | {_fmt(a)} | {_fmt(b)} | {_fmt(c)} | {_signed(d)} | "
            f"{_signed(amc)} | {final} | {test} | {bleu} | {chrf} |"
        )
        rows.append((seed, d))
    outcome = None
    if len(ds) == len(NEW_SEEDS):
        outcome = decision(ds, a_minus_c)
        mean, t_bound = mean_t_upper_bound(ds)
        boot = bootstrap_upper_bound(ds)
        outcome.update(mean=mean, t_bound=t_bound, bootstrap_bound=boot)
        print(
            f"\n**Decision** (§2P): {outcome['within']} of {len(ds)} seeds have d ≤ {BOUND:.2f}; the {outcome['k']}th "
            f"smallest d, a {100 * outcome['coverage']:.1f} % upper bound on the median d, is "
            f"{outcome['median_bound']:+.3f}: "
            f"GradInit {'matches' if outcome['matches'] else 'does not match'} warmup. "
            + _against_a(a_minus_c, outcome["beats_no_warmup"])
        )
        print(
            f"Beside it: mean d {mean:+.3f}, one-sided 95 % t upper bound {t_bound:+.3f}, paired bootstrap "
            f"({BOOTSTRAP_RESAMPLES:,} resamples) 95th percentile {boot:+.3f}."
        )
    else:
        print(f"\nDecision: not yet ({len(ds)} of {len(NEW_SEEDS)} seeds have both B and C at the endpoint).")
    search_seed_spread(ends)
    if out is not None:
        scale_agreement(out)
    every_run(results, ends)
    if out is not None and ds:
        plot_d(rows, out)
    return outcome


def every_run(results, ends):
    """One row per run of the protocol: endpoint, final validation loss, held-out test loss, BLEU and chrF."""

    def order(r):
        warmup = int(r["arm"][2:]) if r["arm"].startswith("Bw") else 0
        return r["arm"][0], r.get("seed") or 0, warmup, r["arm"]

    runs = [r for r in results if (r["arm"], r.get("seed")) in ends]
    print("\n**Every run** (endpoint / final validation / held-out test loss / test BLEU, chrF)")
    print("| run | endpoint | final val | test loss | test BLEU | test chrF |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in sorted(runs, key=order):
        arm = r["arm"]
        name = (
            f"B, W = {arm[2:]}"
            if arm.startswith("Bw")
            else (arm if arm in ("A", "C") else f"C, search seed {arm[2:]}")
        )
        print(
            f"| {name}, seed {r.get('seed')} | {_fmt(ends[(arm, r.get('seed'))])} | "
            f"{_fmt(r['curve'][-1]['val_loss'])} | "
            f"{_fmt(r.get('test_loss'))} | {_fmt(r.get('test_bleu'), 2)} | {_fmt(r.get('test_chrf'), 1)} |"
        )


def search_seed_spread(ends):
    """C's endpoint on init seed 101 over its search seeds, beside C's spread over the init seeds."""
    searches = {arm: e for (arm, seed), e in ends.items() if seed == NEW_SEEDS[0] and arm.startswith("C")}
    inits = [e for (arm, seed), e in ends.items() if arm == "C" and seed in NEW_SEEDS]
    if len(searches) < 2:
        return
    print(
        f"\n**Search seeds apart** (init seed {NEW_SEEDS[0]}): C's endpoint "
        + ", ".join(f"{arm or 'C'} {_fmt(e)}" for arm, e in sorted(searches.items()))
        + f"; range {max(searches.values()) - min(searches.values()):.3f} over search seeds"
        + (f", {max(inits) - min(inits):.3f} over the {len(inits)} init seeds" if len(inits) > 1 else "")
    )


def _scales(path):
    """{tensor: (group, scale)} of a search's scales.json."""
    with open(path) as f:
        return {name: (t["group"], t["scale"]) for name, t in json.load(f)["tensors"].items()}


def _mean_pairwise_log_ratio(searches, group):
    """Over the tensors of `group` with every scale above 0: the mean over pairs of searches of |log(α / α′)|."""
    per_tensor = []
    for name, (g, _) in searches[0].items():
        scales = [s[name][1] for s in searches]
        if g == group and min(scales) > 0:
            pairs = [(a, b) for i, a in enumerate(scales) for b in scales[i + 1 :]]
            per_tensor.append(sum(abs(math.log(a / b)) for a, b in pairs) / len(pairs))
    return sum(per_tensor) / len(per_tensor) if per_tensor else None


def scale_agreement(out):
    """How far apart the searches' scales end: the searches of init seed 101 (its search seeds), against the
    searches of the eight init seeds. Pairwise, so that the two sets' sizes do not matter."""
    first = NEW_SEEDS[0]
    same_init = sorted(glob.glob(os.path.join(out, f"gradinit_C*_seed{first}_search*", "scales.json")))
    own = os.path.join(out, f"gradinit_C_seed{first}", "scales.json")
    inits = [os.path.join(out, f"gradinit_C_seed{s}", "scales.json") for s in NEW_SEEDS]
    if not same_init or not os.path.exists(own) or not all(os.path.exists(p) for p in inits):
        return
    same_init = [_scales(p) for p in [own] + same_init]
    inits = [_scales(p) for p in inits]
    print(
        "\n**Where the searches' scales end**: mean over tensors of the mean |log(α / α′)| over pairs of searches "
        "(×: exp of it, the typical factor between two searches' scales of one tensor)"
    )
    print(f"| tensors | {len(same_init)} search seeds, init seed {first} | {len(inits)} init seeds |")
    print("|---|---:|---:|")
    for group in ("weight", "bias", "norm"):
        a, b = _mean_pairwise_log_ratio(same_init, group), _mean_pairwise_log_ratio(inits, group)
        if a is not None and b is not None:
            print(f"| {group} | {a:.3f} (×{math.exp(a):.2f}) | {b:.3f} (×{math.exp(b):.2f}) |")


def plot_d(rows, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    seeds = [s for s, d in rows if d is not None]
    ds = [d for s, d in rows if d is not None]
    ax.axhline(BOUND, color="tab:red", linestyle="--", label=f"bound {BOUND:.2f}")
    ax.axhline(0, color="gray", linewidth=0.8)
    ax.scatter([str(s) for s in seeds], ds, color="tab:green", zorder=3, label="d = C − B (endpoint)")
    ax.set_xlabel("seed")
    ax.set_ylabel("d (validation loss)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "confirmatory_d.png"), dpi=110)
    plt.close(fig)
