"""`hf-gradinit compare` under torchrun: two CPU processes (gloo) train each arm together, as training does."""

import json
import os
import subprocess
import sys

from test_compare import TINY


def test_compare_in_two_processes(tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
           "hf_gradinit.cli", "compare", *TINY, "--output_dir", str(out), "--arms", "none,gradinit",
           "--max_steps", "4", "--eval_steps", "2", "--per_device_train_batch_size", "8",
           "--per_device_eval_batch_size", "8", "--max_eval_samples", "64", "--gradinit_iters", "3",
           "--disable_tqdm", "true"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((out / "compare" / "results.json").read_text())
    assert list(results["arms"]) == ["none", "gradinit"] and results["same_initial_weights"]
    for arm in results["arms"].values():
        assert [e["step"] for e in arm["evaluations"]] == [2, 4]
        for e in arm["evaluations"]:
            # The 64 evaluation rows are all the monitor's rows: its dropout-off loss, summed across the two
            # processes by its own reduction, is the evaluation's eval_nll, summed by the trainer's.
            assert abs(e["eval_subset_nll"] - e["eval_nll"]) < 1e-5, e
