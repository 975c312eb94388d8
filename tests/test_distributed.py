"""Two real processes (torchrun, gloo on CPU) against one process over the same global batches."""

import json
import os
import subprocess
import sys

import pytest
import torch
from helpers import tiny_bart

from hf_gradinit import GradInitArguments, gradinit

SCRIPT = os.path.join(os.path.dirname(__file__), "distributed_search.py")


def _interleave(shards):
    """Row j of process p goes to row j·P + p: then the first and last 2/3 of the global batch are the unions of
    the processes' own S̃ and S (shards of 3 rows each)."""
    return {k: torch.stack([s[k] for s in shards], 1).flatten(0, 1) for k in shards[0]}


def _launch_all(script, configs, root):
    """One `torchrun --nproc_per_node 2` launch of `script`, which runs each configuration into root/<name>/."""
    env = {**os.environ, "GRADINIT_CONFIGS": json.dumps(configs), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", script, str(root)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (root / "launch_stderr.txt").write_text(proc.stderr)
    return root


# Tolerances a small factor above the differences measured against the one-process replay (relative for loss,
# ‖ḡ‖ and objective, absolute for scales). float64 where rounding would otherwise show through: a finite
# difference divides it by ε, and the SGD path's Hessian term accumulates it over the iterations (LayerNorm scales
# are unbounded up to 100). The finite differences run on a ReLU model, so that each process's held activation
# pattern is part of the comparison.
CONFIGS = {
    # measured: loss 1.3e-7, ‖ḡ‖ 1.6e-7, objective 1.3e-7, scales 8.8e-7
    "adam-exact-float32": (
        dict(alg="adam", gamma=22, hvp="exact", dtype="float32", activation="gelu"),
        {"loss": 1e-6, "grad_norm": 1e-6, "objective": 1e-6, "scale": 5e-6},
    ),
    # measured: 2.4e-16, 2.2e-16, 1.2e-16, 2.3e-13
    "sgd-exact-float64": (
        dict(alg="sgd", gamma=0.9, hvp="exact", dtype="float64", activation="gelu"),
        {"loss": 2e-15, "grad_norm": 2e-15, "objective": 2e-15, "scale": 2e-12},
    ),
    # measured: 4.1e-15, 1.4e-12, 9.6e-15, 1.1e-10
    "adam-fd-float64": (
        dict(alg="adam", gamma=22, hvp="finite_difference", dtype="float64", activation="relu"),
        {"loss": 5e-14, "grad_norm": 1e-11, "objective": 1e-13, "scale": 1e-9},
    ),
    # measured: 9.5e-14, 1.6e-11, 8.0e-14, 7.4e-7
    "sgd-fd-float64": (
        dict(alg="sgd", gamma=0.9, hvp="finite_difference", dtype="float64", activation="relu"),
        {"loss": 1e-12, "grad_norm": 1e-10, "objective": 1e-12, "scale": 5e-6},
    ),
}
ITERS = 6


@pytest.fixture(scope="module")
def two_process_searches(tmp_path_factory):
    """Every configuration above in one torchrun launch (one after the other in the same two processes): a new
    interpreter pair per configuration would cost more than the searches."""
    configs = {name: {**config, "iters": ITERS} for name, (config, _) in CONFIGS.items()}
    return _launch_all(SCRIPT, configs, tmp_path_factory.mktemp("two_processes"))


@pytest.mark.parametrize("config_name", list(CONFIGS))
def test_two_processes_match_one_process(two_process_searches, config_name):
    (config, tol), tmp_path = CONFIGS[config_name], two_process_searches / config_name
    dtype, activation = config["dtype"], config["activation"]
    ranks = [torch.load(tmp_path / f"rank-{r}.pt") for r in range(2)]
    # (a) Both processes end the search with bit-identical parameters.
    assert ranks[0]["params"].keys() == ranks[1]["params"].keys()
    for name, tensor in ranks[0]["params"].items():
        assert torch.equal(tensor, ranks[1]["params"][name]), name
    # Both kinds of step happened, so both code paths were compared.
    kinds = {h["constraint"] for h in ranks[0]["history"]}
    assert kinds == {True, False}, ranks[0]["history"]

    # (b) One process over the same global batches finds the same scales.
    with open(tmp_path / "run" / "gradinit" / "scales.json") as f:
        saved = json.load(f)
    shards = [torch.load(tmp_path / f"batches-{r}.pt") for r in range(2)]
    global_batches = [_interleave(list(pair)) for pair in zip(*shards)][: saved["iterations"]]
    reference = gradinit(
        tiny_bart(seed=0, dtype=getattr(torch, dtype), activation_function=activation),
        global_batches,
        GradInitArguments(**saved["arguments"]),
        progress_bar=False,
    )
    # Per step, the whole batch's loss, ‖ḡ‖ and objective L(θ'; S): a sum over processes where a mean belongs
    # doubles them, which the scales alone would barely show (Adam on α is nearly blind to a constant factor).
    errors = {"loss": 0.0, "grad_norm": 0.0, "objective": 0.0, "scale": 0.0}
    for r in range(2):
        assert len(ranks[r]["history"]) == len(reference.history) == ITERS
        for h, h_ref in zip(ranks[r]["history"], reference.history):
            assert h.keys() == h_ref.keys()
            assert (h["step"], h["constraint"]) == (h_ref["step"], h_ref["constraint"])
            for key in set(h) - {"step", "constraint"}:
                errors[key] = max(errors[key], abs(h[key] - h_ref[key]) / abs(h_ref[key]))
    for name, alpha in reference.scales.items():
        errors["scale"] = max(errors["scale"], abs(alpha - saved["tensors"][name]["scale"]))
    for key, error in errors.items():
        assert error < tol[key], (key, error)
    assert {n: t["scale"] for n, t in saved["tensors"].items()} == ranks[0]["scales"]


PARAMETERS_SCRIPT = os.path.join(os.path.dirname(__file__), "distributed_parameters.py")


def test_processes_are_synced_and_a_difference_is_found_and_named(tmp_path):
    """Models from different seeds: the check refuses them; after `sync_parameters` every process holds process
    0's weights (the model built from seed 0 here) and the check passes; one weight changed by 1e-7 on one process
    is found, by its tensor's name, on both."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        PARAMETERS_SCRIPT,
        str(tmp_path),
    ]
    proc = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    seen = [torch.load(tmp_path / f"parameters-{r}.pt") for r in range(2)]
    expected = dict(tiny_bart(seed=0).named_parameters())
    for r in range(2):
        assert "processes hold different values" in seen[r]["before"]
        assert seen[r]["synced"] is None
        assert seen[r]["params"].keys() == expected.keys()
        for name, p in expected.items():
            assert torch.equal(seen[r]["params"][name], p), (r, name)
        assert "for 1 tensors (first: model.decoder.layers.0.fc2.weight)" in seen[r]["one_changed"]


TOKEN_SCRIPT = os.path.join(os.path.dirname(__file__), "distributed_token_budget.py")
PAD = {"input_ids": 1, "attention_mask": 0, "labels": -100, "decoder_input_ids": 1}


def _pad(t, rows, cols, key):
    """`t` padded to `rows` × `cols`; added rows carry one unmasked pad token and no label token."""
    padded = torch.full((rows, cols), PAD[key], dtype=t.dtype)
    padded[: t.shape[0], : t.shape[1]] = t
    if key == "attention_mask":
        padded[t.shape[0] :, 0] = 1
    return padded


def _union(shards):
    """The processes' batches as one batch: rows stacked, columns padded."""
    cols = {k: max(s[k].shape[1] for s in shards) for k in shards[0]}
    return {k: torch.cat([_pad(s[k], s[k].shape[0], cols[k], k) for s in shards]) for k in shards[0]}


def _union_for_split(shards):
    """One batch whose first and last 2/3 of rows are the unions of the processes' own first and last 2/3
    (their S̃ and S): each process's rows in three parts (only in S̃, in both, only in S), every part padded to
    one size r with rows that carry no label token, laid out as all first parts, all middle parts, all last
    parts: 3·P·r rows, whose first 2/3 are exactly the first two groups."""
    parts = []
    for s in shards:
        n = next(iter(s.values())).shape[0]
        k = -(-2 * n // 3)
        parts.append([slice(0, n - k), slice(n - k, k), slice(k, n)])
    r = max(sl.stop - sl.start for p in parts for sl in p)
    cols = {k: max(s[k].shape[1] for s in shards) for k in shards[0]}
    return {
        key: torch.cat([_pad(s[key][p[j]], r, cols[key], key) for j in range(3) for s, p in zip(shards, parts)])
        for key in shards[0]
    }


def _smoothed_cross_entropy(model, batch, epsilon=0.1):
    """Label-smoothed cross-entropy, mean over label tokens, written out here (not the Trainer's LabelSmoother)."""
    logits = model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        decoder_input_ids=batch["decoder_input_ids"],
    ).logits
    logp = torch.log_softmax(logits, -1)
    active = batch["labels"] != -100
    nll = -logp.gather(-1, batch["labels"].clamp(min=0).unsqueeze(-1)).squeeze(-1)
    uniform = -logp.mean(-1)
    return ((1 - epsilon) * nll + epsilon * uniform)[active].sum() / active.sum()


# Tolerances on scales and parameters, a small factor above the measured differences (Adam 1.3e-10; SGD 3.7e-7:
# its constraint steps divide rounding by the finite difference's ε, and the Trainer's label smoother sums its
# smoothing term in float32).
TOKEN_CONFIGS = {"adam": ({"alg": "adam", "gamma": 14.9}, 1e-9), "sgd": ({"alg": "sgd", "gamma": 0.62}, 1e-6)}


@pytest.fixture(scope="module")
def two_process_token_budget_runs(tmp_path_factory):
    """Both configurations in one torchrun launch."""
    configs = {name: config for name, (config, _) in TOKEN_CONFIGS.items()}
    return _launch_all(TOKEN_SCRIPT, configs, tmp_path_factory.mktemp("token_budget"))


@pytest.mark.parametrize("config_name", list(TOKEN_CONFIGS))
def test_token_budget_processes_match_one_process_on_the_union(two_process_token_budget_runs, config_name):
    """Two processes on token-budget batches of different token counts search and train as one process on the
    union of their batches: the same scales after the search, the same parameters after two SGD steps."""
    tmp_path, tol = two_process_token_budget_runs / config_name, TOKEN_CONFIGS[config_name][1]
    search = [torch.load(tmp_path / f"search-{r}.pt") for r in range(2)]
    train = [torch.load(tmp_path / f"train-{r}.pt") for r in range(2)]
    # The processes' batches differ in rows and in label tokens, so an unweighted mean of their losses would differ.
    tokens = [[int((b["labels"] != -100).sum()) for b in s["batches"]] for s in search]
    assert any(a != b for a, b in zip(*tokens)), tokens
    # DDP trained quietly: no per-rank warning about unused parameters (GradInitConfig turns that search off).
    assert "find_unused_parameters" not in (two_process_token_budget_runs / "launch_stderr.txt").read_text()
    assert {h["constraint"] for h in search[0]["history"]} == {True, False}, search[0]["history"]

    with open(tmp_path / "run" / "gradinit" / "scales.json") as f:
        saved = json.load(f)
    model = tiny_bart(seed=0, dtype=torch.float64, dropout=0.0, activation_function="relu")
    union_batches = [_union_for_split(list(pair)) for pair in zip(search[0]["batches"], search[1]["batches"])]
    reference = gradinit(
        model,
        union_batches,
        GradInitArguments(**saved["arguments"]),
        loss_fn=_smoothed_cross_entropy,
        progress_bar=False,
    )
    assert [h["constraint"] for h in reference.history] == [h["constraint"] for h in search[0]["history"]]
    errors = {}
    for r in range(2):
        assert len(search[r]["history"]) == len(reference.history)
        for h, h_ref in zip(search[r]["history"], reference.history):
            for key in set(h_ref) - {"step", "constraint"}:
                errors[key] = max(errors.get(key, 0.0), abs(h[key] - h_ref[key]) / abs(h_ref[key]))
    # Relative; measured ≤ 9.0e-9 (loss, objective) and 1.1e-10 (‖ḡ‖): the Trainer's label smoother sums its
    # smoothing term in float32.
    assert errors["loss"] < 5e-8 and errors["objective"] < 5e-8 and errors["grad_norm"] < 1e-9, errors
    for name, alpha in reference.scales.items():
        assert abs(alpha - saved["tensors"][name]["scale"]) < tol, name

    # Two SGD steps (lr 0.5, constant) on the union of the processes' training batches.
    for step in zip(train[0]["batches"], train[1]["batches"]):
        model.zero_grad()
        _smoothed_cross_entropy(model, _union(list(step))).backward()
        with torch.no_grad():
            for p in model.parameters():
                if p.grad is not None:
                    p -= 0.5 * p.grad
    for name, p in model.named_parameters():
        for r in range(2):
            assert torch.allclose(train[r]["params"][name], p, rtol=0, atol=tol), (name, r)
