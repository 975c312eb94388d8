"""docs/several-gpus.md's two-CPU-process command, run exactly as written: both processes search and train as one,
and the search takes objective steps (the page's reason for its γ)."""

import json
import os

from doc_pages import block, run_command


def test_the_two_process_command_runs_as_written(tmp_path):
    command = block("docs/several-gpus.md", "bash", 1)
    assert command.startswith("torchrun --nproc_per_node 2 ")
    proc = run_command(command, tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "out-2proc"
    assert {"model.safetensors", "config.json", "scales.json", "README.md"} <= set(os.listdir(out / "gradinit"))
    assert not [f for f in os.listdir(out) if f.startswith(".gradinit")]  # no staging folder left behind
    scales = json.loads((out / "gradinit" / "scales.json").read_text())
    report = scales["report"]
    assert report["first_objective_step"] is not None and report["constraint_fraction"] < 0.5, report
    # Both processes joined one run: one search written once, 20 training steps counted once.
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 20
