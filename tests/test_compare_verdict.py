"""`compare`'s verdict (which arm ended lowest, by how much, whether one seed separates them, which collapsed) and
`curves.png`, on arm records written here by hand."""

import numpy as np

from hf_gradinit.comparison_report import plot_curves, summary
from hf_gradinit.comparison_verdict import NOISE_BOUND, verdict


def _record(arm, losses, collapsed_at=()):
    evaluations = []
    for i, loss in enumerate(losses):
        step = 100 * (i + 1)
        record = {"step": step, "eval_nll": loss, "eval_subset_nll": loss, "eval_train_mode_nll": loss - 0.1}
        if step in collapsed_at:
            # what the StabilityCallback's rule flags: spread < 0.03 with dropout off, ≥ 3× with it on, loss gap
            record.update({"eval_spread/decoder_5": 0.01, "eval_train_mode_spread/decoder_5": 0.2})
            record["eval_train_mode_nll"] = loss - 1.0
        evaluations.append(record)
    return {"arm": arm, "evaluations": evaluations, "training_loss": [], "final": {}, "search": None}


def test_the_lowest_arm_and_its_margins_with_a_close_arm_called_unseparated():
    arms = {
        "none": _record("none", [7.0, 6.50]),
        "warmup": _record("warmup", [7.0, 6.20]),
        "gradinit": _record("gradinit", [7.0, 6.17]),
    }
    text = verdict(arms, {arm: [] for arm in arms})
    # by hand: 6.20 − 6.17 = 0.03 < 0.10 (close); 6.50 − 6.17 = 0.33 (separated)
    assert "`gradinit` ended lowest, at 6.170 (update 200): 0.030 below `warmup`, 0.330 below `none`." in text
    assert "`warmup` is within the noise bound of 0.10 nats" in text and "`none` is within" not in text
    assert "more seeds (`--seed`) would" in text
    assert "`gradinit` trained without warmup" in text and "before dropping warmup" in text
    assert "No arm's evaluated network collapsed." in text


def test_an_arm_with_warmup_ending_lowest_gets_no_warning_about_dropping_warmup():
    arms = {"none": _record("none", [7.0, 6.50]), "warmup": _record("warmup", [7.0, 6.20])}
    text = verdict(arms, {arm: [] for arm in arms})
    assert "`warmup` ended lowest, at 6.200 (update 200): 0.300 below `none`." in text
    assert "without warmup" not in text and "before dropping warmup" not in text
    arms["gradinit_warmup"] = _record("gradinit_warmup", [7.0, 6.10])
    assert "without warmup" not in verdict(arms, {arm: [] for arm in arms})


def test_margins_above_the_bound_are_called_and_collapses_are_named():
    arms = {
        "none": _record("none", [7.0, 6.9, 7.6], collapsed_at=(200, 300)),
        "gradinit": _record("gradinit", [7.0, 6.4, 6.0]),
    }
    collapses = {"none": [(200, ["decoder_5"]), (300, ["decoder_5"])], "gradinit": []}
    text = verdict(arms, collapses)
    assert "`gradinit` ended lowest, at 6.000 (update 300): 1.600 below `none`." in text
    assert f"Every margin is above the noise bound of {NOISE_BOUND:.2f} nats." in text
    assert "more seeds" not in text
    # A margin of 1.6 is far above the bound, but the winner ran without warmup: one seed is still one draw.
    assert "`gradinit` trained without warmup" in text and "other `--seed`s before dropping warmup" in text
    assert "Collapsed (the evaluated network, dropout off): `none` from update 200." in text


def test_the_summary_opens_with_the_verdict_and_finds_the_collapse_itself():
    arms = {
        "none": _record("none", [7.0, 6.9, 7.6], collapsed_at=(200, 300)),
        "gradinit": _record("gradinit", [7.0, 6.4, 6.0]),
    }
    from hf_gradinit.comparison_report import arm_summary

    results = {"arms": arms, "same_initial_weights": True}
    results["verdict"] = verdict(arms, {arm: arm_summary(r)["collapses"] for arm, r in arms.items()})
    lines = summary(results).splitlines()
    assert lines[0].startswith("# ") and lines[2].startswith("**Verdict:**")
    assert "`none` from update 200" in lines[2]


def test_arms_that_end_level_both_show_on_the_curves(tmp_path):
    """Two arms with the same curve: the one drawn first (C0, blue) must still show beside the one on top (C1)."""
    import matplotlib.image

    same = [7.0, 6.5, 6.2, 6.1]
    arms = {"none": _record("none", same), "gradinit": _record("gradinit", same)}
    path = str(tmp_path / "curves.png")
    plot_curves(arms, path)
    pixels = matplotlib.image.imread(path)[..., :3]
    legend_free = pixels[:, : pixels.shape[1] // 2]  # the curves' left half, away from the legend

    def count(rgb):
        return int((np.abs(legend_free - np.array(rgb)).max(axis=-1) < 0.08).sum())

    blue, orange = (0.122, 0.467, 0.706), (1.0, 0.498, 0.055)  # matplotlib's C0 and C1
    assert count(orange) > 200 and count(blue) > 200, (count(blue), count(orange))
