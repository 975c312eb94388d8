"""What `compare` shows while it runs: per arm a progress bar and one line when it ends. The arm's raw records
(every logged dictionary, the search's report) go to its log file, `output_dir/compare/<arm>/log.jsonl`."""

from __future__ import annotations

import json
import math
import os

from tqdm.auto import tqdm
from transformers.trainer_callback import PrinterCallback, ProgressCallback, TrainerCallback

LOG_FILE = "log.jsonl"


def append_to_log(arm_dir: str, record: dict) -> None:
    with open(os.path.join(arm_dir, LOG_FILE), "a", encoding="utf-8") as f:
        f.write(json.dumps(record, default=str) + "\n")


class ArmLog(TrainerCallback):
    """Every record the Trainer logs, appended to the arm's log as one JSON line."""

    def __init__(self, arm_dir: str):
        self.arm_dir = arm_dir

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            append_to_log(self.arm_dir, {"step": state.global_step, **logs})


class BarOnly(ProgressCallback):
    """The Trainer's training progress bar without the dictionaries it prints at every log, and without a bar
    per evaluation."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        pass

    def on_prediction_step(self, args, state, control, eval_dataloader=None, **kwargs):
        pass


def quiet(trainer, arm_dir: str) -> None:
    """Make `trainer` show only its progress bars; its records and messages go to the arm's log."""
    os.makedirs(arm_dir, exist_ok=True)
    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(BarOnly())
    trainer.pop_callback(PrinterCallback)  # what the Trainer prints instead of a bar (disable_tqdm)
    trainer.add_callback(ArmLog(arm_dir))
    trainer.show_message = lambda message: append_to_log(arm_dir, {"message": message})
    trainer.warn_without_warmup = False  # compare is the comparison that warning advises


def arm_line(arm: str, summary: dict, seconds: float) -> str:
    """The line shown when an arm ends."""
    last = (
        f"eval_nll {summary['last']:.3f} at update {summary['last_step']:,}"
        if summary["last_step"]
        else "no evaluation"
    )
    best = (
        f", best {summary['best']:.3f} at {summary['best_step']:,}"
        if summary["best_step"] is not None and summary["best_step"] != summary["last_step"]
        else ""
    )
    bleu = f", BLEU {summary['bleu']:.2f}" if summary.get("bleu") is not None else ""
    state = (
        f"the evaluated network collapsed from update {summary['collapses'][0][0]:,}"
        if summary["collapses"]
        else "no collapse"
    )
    return f"compare: {arm} done in {_duration(seconds)}: {last}{best}{bleu}; {state}."


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def show(line: str) -> None:
    """A line under the progress bars, on standard output."""
    tqdm.write(line)
