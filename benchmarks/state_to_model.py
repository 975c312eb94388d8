#!/usr/bin/env python
"""A `stability.py --resumable` state as a model folder (save_pretrained, with its tokenizer), for the scripts that
read saved models (`eval_mode_gap.py`) when the run was not started with `--save_models`.

The model and tokenizer are rebuilt as the run built them, from the flags stored in the state (the tokenizer is
trained again on the same data: the same merges), then the state's weights are loaded. `--code` imports
`stability.py` and `hf_gradinit` from the frozen copy the run used, so that later changes cannot touch them.

    python benchmarks/state_to_model.py runs/regime/long/state/Bw300-lr0.001-seed201.pt runs/models/Bw300-seed201 \
        --code runs/frozen-e16b7e8
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("state", help="a state file under <out>/state/")
    p.add_argument("folder", help="where to write the model and its tokenizer")
    p.add_argument("--code", help="a frozen copy (benchmarks/ and hf_gradinit/) to build the model with")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    if not os.path.isfile(args.state):
        raise SystemExit(f"{args.state}: no such state file")
    if args.code:
        sys.path[:0] = [os.path.abspath(args.code), os.path.abspath(os.path.join(args.code, "benchmarks"))]
    import stability
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    state = torch.load(args.state, map_location="cpu", weights_only=False)
    run = stability.parse_args(["--data_dir", state["flags"]["data_dir"]])
    for name, value in state["flags"].items():
        if hasattr(run, name):
            setattr(run, name, value)
    run.device = "cpu"  # after the flags: a GPU run's state is rebuilt here on the CPU
    tokenizer = stability.load_data(run)[0]
    model = stability.make_model(run, tokenizer)
    model.load_state_dict(state["model"])
    model.save_pretrained(args.folder)
    tokenizer.save_pretrained(args.folder)
    print(f"{args.state}: update {state['step']}, written to {args.folder} (stability.py from {stability.__file__})")


if __name__ == "__main__":
    main()
