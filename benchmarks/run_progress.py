#!/usr/bin/env python
"""Where `stability.py --resumable` runs stand, read from their saved states, and their curves so far as small JSON.

A long run outlasts a working session, and its state (weights and Adam's moments, tens of MB) is not committed. This
reads each state's step, curve and search summary (memory-mapped: the weights are not read), prints one line per
run, and with `--write` keeps the curve so far of each unfinished run as `progress_<arm>_seed<seed>.json`, small
enough to commit, so a run cut for good still leaves its evidence. The files are snapshots, not results: the reports
read finished runs' `results_*.json` only, so a finished run's state (still in the folder) gets no snapshot.

    python benchmarks/run_progress.py runs/regime/long/state
    python benchmarks/run_progress.py runs/regime/long/state --write benchmarks/results/regime/long/in_progress
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import re

import torch

from long_report import at_1200

STATE_NAME = re.compile(r"^(?P<arm>.+)-lr(?P<lr>[^-]+)-seed(?P<seed>\d+)\.pt$")  # run_state.state_path's names


def read_state(path):
    """{arm, seed, lr, step, steps, curve, gradinit, flags} of one saved state, without reading its tensors."""
    match = STATE_NAME.match(os.path.basename(path))
    if match is None:
        raise SystemExit(f"{path}: not a stability.py state (expected <arm>-lr<lr>-seed<seed>.pt)")
    state = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    return {
        "arm": match["arm"],
        "seed": int(match["seed"]),
        "lr": float(match["lr"]),
        "step": state["step"],
        "steps": state["steps"],
        "curve": state["curve"],
        "gradinit": state.get("search"),
        "flags": state["flags"],
    }


def summary_line(run):
    losses = [c["val_loss"] for c in run["curve"]]
    last = f"{losses[-1]:.3f}" if losses else "–"
    best = f"{min(losses):.3f}" if losses and all(math.isfinite(v) for v in losses) else "–"
    mid = at_1200(run["curve"])
    return (
        f"{run['arm']} seed {run['seed']}: update {run['step']} of {run['steps']}, validation {last} "
        f"(lowest {best}; mean at 1,000–1,200 {'–' if mid is None else f'{mid:.3f}'})"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("state_dir", help="a --resumable run's state folder, e.g. runs/regime/long/state")
    parser.add_argument("--write", metavar="DIR", help="also write each unfinished run's curve so far to DIR as JSON")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.state_dir):
        raise SystemExit(f"{args.state_dir}: no such folder")
    paths = sorted(glob.glob(os.path.join(args.state_dir, "*.pt")))
    if not paths:
        print(f"{args.state_dir}: no saved states")
    for path in paths:
        run = read_state(path)
        print(summary_line(run))
        if args.write and run["step"] < run["steps"]:
            os.makedirs(args.write, exist_ok=True)
            with open(os.path.join(args.write, f"progress_{run['arm']}_seed{run['seed']}.json"), "w") as f:
                json.dump(run, f, indent=1)


if __name__ == "__main__":
    main()
