"""benchmarks/compare_2v_report.py: §2V's endpoints and verdicts, against §2R's published table and a
constructed results file whose answers are written here."""

import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
from compare_2v_report import lab_endpoint, report  # noqa: E402

LAB = os.path.join(ROOT, "benchmarks", "results", "confirm")


def test_the_lab_endpoints_are_those_section_2R_published():
    assert round(lab_endpoint(LAB, "A", 101), 3) == 8.014
    assert round(lab_endpoint(LAB, "Bw300", 101), 3) == 6.184
    assert round(lab_endpoint(LAB, "C", 101), 3) == 4.979


def _evaluation(step, nll, collapsed=False):
    record = {"step": step, "eval_loss": nll + 0.3, "eval_nll": nll, "eval_subset_nll": nll}
    record["eval_train_mode_nll"] = nll - (1.0 if collapsed else 0.0)
    record["eval_spread/decoder_0"] = 0.001 if collapsed else 0.5
    record["eval_train_mode_spread/decoder_0"] = 0.2 if collapsed else 0.55
    return record


def _arm(arm, losses, collapsed_from=None):
    evaluations = [
        _evaluation(100 * (i + 1), loss, collapsed_from is not None and 100 * (i + 1) >= collapsed_from)
        for i, loss in enumerate(losses)
    ]
    return {"arm": arm, "evaluations": evaluations, "final": {"final_bleu": 0.5}, "search": None}


def test_endpoints_and_verdicts_of_a_constructed_run(tmp_path):
    flat = [7.0] * 9
    arms = {
        "none": _arm("none", flat + [8.0, 8.2, 8.3], collapsed_from=1000),
        "warmup": _arm("warmup", flat + [6.3, 6.25, 6.2]),  # endpoint 6.25: +0.066 from 6.184
        "gradinit": _arm("gradinit", flat + [5.0, 5.1, 5.2]),
    }
    (tmp_path / "results.json").write_text(json.dumps({"arms": arms, "same_initial_weights": True}))
    text = report(str(tmp_path), LAB)
    assert "| none | 8.167 | 8.014 (A) | +0.153 | 7.000 (100) | 0.50 | from update 1,000 |" in text
    assert (
        "| warmup | 6.250 | 6.184 (Bw300) | +0.066 |" in text and "| gradinit | 5.100 | 4.979 (C) | +0.121 |" in text
    )
    assert "by the rule (within 0.15) the paths agree" in text
    assert "flagged none: yes; flagged warmup: no: it works by the rule" in text
    arms["warmup"] = _arm("warmup", flat + [6.4, 6.35, 6.3], collapsed_from=1100)  # endpoint 6.35: +0.166
    (tmp_path / "results.json").write_text(json.dumps({"arms": arms, "same_initial_weights": False}))
    text = report(str(tmp_path), LAB)
    assert "the paths do not agree" in text and "it does not work by the rule" in text
    assert "did not start from the same weights" in text
