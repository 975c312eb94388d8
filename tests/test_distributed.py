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


# float64 where rounding would otherwise show through 1e-5: a finite difference divides it by ε, and the SGD
# path's Hessian term accumulates it over the iterations (LayerNorm scales are unbounded up to 100). The finite
# differences run on a ReLU model, so that each process's held activation pattern is part of the comparison.
@pytest.mark.parametrize(
    "alg,gamma,hvp,dtype,activation",
    [
        ("adam", "22", "exact", "float32", "gelu"),
        ("sgd", "0.9", "exact", "float64", "gelu"),
        ("adam", "22", "finite_difference", "float64", "relu"),
        ("sgd", "0.9", "finite_difference", "float64", "relu"),
    ],
)
def test_two_processes_match_one_process(tmp_path, alg, gamma, hvp, dtype, activation):
    env = {
        **os.environ, "GRADINIT_ALG": alg, "GRADINIT_GAMMA": gamma, "GRADINIT_HVP": hvp, "GRADINIT_DTYPE": dtype,
        "GRADINIT_ACTIVATION": activation, "GRADINIT_ITERS": "6", "OMP_NUM_THREADS": "1",
    }
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", SCRIPT, str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

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
    reference = gradinit(tiny_bart(seed=0, dtype=getattr(torch, dtype), activation_function=activation), global_batches, GradInitArguments(**saved["arguments"]), progress_bar=False)
    assert [h["constraint"] for h in reference.history] == [h["constraint"] for h in ranks[0]["history"]]
    for name, alpha in reference.scales.items():
        assert abs(alpha - saved["tensors"][name]["scale"]) < 1e-5, name
    assert {n: t["scale"] for n, t in saved["tensors"].items()} == ranks[0]["scales"]
