"""`compare`'s verdict: which arm ended lowest, by how much, whether one seed can tell, and which collapsed.

An arm's endpoint is its last validation loss (`eval_nll`, dropout off). Differences under `NOISE_BOUND` are not
called: one seed is one draw of the initial weights, the batches and the dropout masks, and on the benchmarks'
small model (BENCHMARKS.md, §2R: eight seeds, 1,200 updates) the warmup arm's endpoints spread over 0.10 nats
(6.14–6.24) from seed to seed, GradInit's over 2.0. Only more seeds separate arms closer than that.

The bound is the warmup arm's. An arm without warmup varies more from seed to seed (GradInit's 2.0 above), so when
such an arm ends lowest the verdict says so before anyone drops warmup on one seed's word.
"""

from __future__ import annotations

import math
from typing import Any

from .comparison_settings import ARMS

NOISE_BOUND = 0.1  # nats per token


def endpoint(record: dict[str, Any]) -> tuple[float, int | None]:
    """The arm's last finite validation loss and its update."""
    finite = [e for e in record["evaluations"] if math.isfinite(e.get("eval_nll", math.nan))]
    return (finite[-1]["eval_nll"], finite[-1]["step"]) if finite else (math.nan, None)


def verdict(arms: dict[str, dict], collapses: dict[str, list], noise_bound: float = NOISE_BOUND) -> str:
    """The verdict in plain words (Markdown): `arms` are the arms' records, `collapses` arm → [(update, stacks)]
    where the evaluated network collapsed (empty if never)."""
    ends = {arm: endpoint(record) for arm, record in arms.items()}
    ranked = sorted((loss, arm) for arm, (loss, _) in ends.items() if math.isfinite(loss))
    if not ranked:
        return "**Verdict:** no arm has a finite validation loss to compare."
    best_loss, best = ranked[0]
    where = f"{best_loss:.3f} (update {ends[best][1]:,})"
    if len(ranked) == 1:
        words = [f"**Verdict:** `{best}` ended at {where}, the only arm to compare."]
    else:
        margins = ", ".join(f"{loss - best_loss:.3f} below `{arm}`" for loss, arm in ranked[1:])
        words = [f"**Verdict:** `{best}` ended lowest, at {where}: {margins}."]
        close = [f"`{arm}`" for loss, arm in ranked[1:] if loss - best_loss < noise_bound]
        if close:
            words.append(
                f"{' and '.join(close)} {'is' if len(close) == 1 else 'are'} within the noise bound of "
                f"{noise_bound:.2f} nats, so one seed does not separate {'it' if len(close) == 1 else 'them'} from "
                f"`{best}`; more seeds (`--seed`) would."
            )
        else:
            words.append(f"Every margin is above the noise bound of {noise_bound:.2f} nats.")
        if not ARMS.get(best, (False, True))[1]:
            words.append(
                f"`{best}` trained without warmup, and such runs vary more than the bound from seed to seed "
                "(docs/compare.md): repeat the comparison with other `--seed`s before dropping warmup."
            )
    unfinished = [arm for arm, (loss, _) in ends.items() if not math.isfinite(loss)]
    if unfinished:
        words.append("No finite loss: " + ", ".join(f"`{arm}`" for arm in unfinished) + ".")
    collapsed = [(arm, found) for arm, found in collapses.items() if found]
    if collapsed:
        words.append(
            "Collapsed (the evaluated network, dropout off): "
            + "; ".join(f"`{arm}` from update {found[0][0]:,}" for arm, found in collapsed)
            + "."
        )
    else:
        words.append("No arm's evaluated network collapsed.")
    return " ".join(words)
