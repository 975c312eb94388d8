"""`compare`: warmup or GradInit on your own task, side by side.

Each arm trains through `GradInitTrainer` from the same initial weights, on the same batches in the same order,
with the same dropout masks (the search puts the random streams back as it found them), so that the arms differ
by what they are named after and nothing else:

    none              the model's own initialization, no warmup
    warmup            the model's own initialization, linear warmup over `warmup_steps`
    gradinit          the GradInit search, then no warmup (the paper's recipe)
    gradinit_warmup   the GradInit search, then warmup

Every arm evaluates every `eval_steps` (default: 20 evaluations a run) and carries a `StabilityCallback`, so that a
collapse of the evaluated network is seen as it starts. Each arm's Trainer output goes to
`output_dir/compare/<arm>/` (checkpoints at every evaluation, so that the same call continues a cut run); the
comparison goes to `output_dir/compare/`: `results.json`, `curves.png` and `summary.md` (`comparison_report`).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import shutil
import time
from collections.abc import Sequence
from typing import Any

import torch
from accelerate import PartialState
from transformers.trainer_utils import get_last_checkpoint
from transformers.utils import logging as transformers_logging

from .comparison_output import arm_line, quiet, show
from .comparison_report import ARM_FILE, arm_record, arm_summary, write_atomically, write_report
from .comparison_settings import (
    ARMS,
    COMPARE_DIR,
    DEFAULT_ARMS,
    EVALUATIONS_PER_RUN,
    SETTINGS_FILE,
    arm_settings,
    check_call,
    recorded_settings,
)
from .config import GradInitConfig
from .result import GradInitResult
from .trainer import GRADINIT_DIR, GradInitTrainer


def check_arms(arms: Sequence[str] | str, warmup_steps: float) -> list[str]:
    """The arms as a list, refused (ValueError naming the arm or flag) when unknown, repeated, or a warmup arm
    without warmup."""
    arms = [a.strip() for a in arms.split(",")] if isinstance(arms, str) else list(arms)
    unknown = [a for a in arms if a not in ARMS]
    if unknown or not arms:
        raise ValueError(
            f"--arms: unknown arm {', '.join(map(repr, unknown)) or '(none given)'}; choose from "
            f"{', '.join(ARMS)} (comma-separated)."
        )
    if len(set(arms)) != len(arms):
        raise ValueError(f"--arms: an arm is named twice in {','.join(arms)}.")
    warming = [a for a in arms if ARMS[a][1]]
    if warming and not warmup_steps > 0:
        raise ValueError(
            f"--arms {','.join(warming)} warm up, but --warmup_steps is {warmup_steps:g}: give the warmup's length, "
            "e.g. --warmup_steps 300 (the other arms train without warmup)."
        )
    return arms


def arm_arguments(args: GradInitConfig, arm: str, output_dir: str) -> GradInitConfig:
    """`args` for one arm: its search and warmup, evaluation every `eval_steps` (default: 20 a run), a checkpoint
    at every evaluation (the last one kept) and the stability monitor on; nothing pushed."""
    search, warm = ARMS[arm]
    eval_steps = args.eval_steps if args.eval_steps else 1 / EVALUATIONS_PER_RUN
    return dataclasses.replace(
        args,
        output_dir=output_dir,
        gradinit=search,
        warmup_steps=args.warmup_steps if warm else 0,
        eval_strategy="steps",
        eval_steps=eval_steps,
        save_strategy="steps",
        save_steps=eval_steps,
        save_total_limit=1,
        load_best_model_at_end=False,
        predict_with_generate=False,
        stability_monitor=True,
        push_to_hub=False,
        gradinit_push_to_hub=False,
        do_train=True,
        do_eval=True,
    )


def weights_fingerprint(model: torch.nn.Module) -> str:
    """A hash of every parameter's values: equal for arms that start from the same weights."""
    digest = hashlib.sha256()
    for name, p in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(p.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def compare(
    model,
    args: GradInitConfig,
    train_dataset,
    eval_dataset,
    arms: Sequence[str] | str = DEFAULT_ARMS,
    *,
    data_collator=None,
    processing_class=None,
    compute_metrics=None,
    card_data: dict[str, Any] | None = None,
    settings: dict[str, dict] | None = None,
    overwrite_output_dir: bool = False,
) -> dict[str, Any]:
    """Train `model` once per arm, side by side, and write the comparison to `args.output_dir/compare/`.

    Args:
        model: the model every arm starts from (each arm trains a copy of it).
        args: the training arguments; `warmup_steps` is the warmup arms' warmup (the other arms train with none),
            `gradinit_*` the search of the GradInit arms, `eval_steps` how often every arm evaluates (unset: 20
            evaluations a run).
        train_dataset, eval_dataset: the training and evaluation data (an evaluation set is required).
        arms: which arms to run, a list or a comma list: `none`, `warmup`, `gradinit`, `gradinit_warmup`.
        data_collator, processing_class: as for `GradInitTrainer`.
        compute_metrics: if given (e.g. BLEU), each arm ends with an evaluation that generates and scores
            (`final_*` in the results).
        card_data: extra fields of the GradInit arms' initialized-checkpoint cards.
        settings: what else the arms' results depend on, recorded and checked with the flags, e.g. the command
            line's `{"model": {...}, "data": {...}}` arguments.
        overwrite_output_dir: start the comparison over: delete `output_dir/compare/` first.

    Returns the comparison as written to `results.json` (every arm found in the folder, not only this call's).
    An arm whose results are already in the folder is not run again; one that was cut continues from its last
    checkpoint. Before any work, every arm found in the folder is checked against this call: settings that differ
    (other than an arm's own search and warmup; the initial weights' hash counts) raise a ValueError naming them.
    Several processes may each run some arms into one folder; the last to finish writes the merged comparison (or
    `hf-gradinit compare --report`), which refuses arms run with different settings the same way.

    Shows per arm a progress bar and one line when it ends, then the verdict; each arm's logged records and
    messages go to `compare/<arm>/log.jsonl`.

    Example:

    ```python
    arms = ["none", "warmup", "gradinit"]
    results = compare(model, args, train_dataset, eval_dataset, arms, data_collator=collator)
    print(open(f"{args.output_dir}/compare/summary.md").read())
    ```
    """
    arms = check_arms(arms, args.warmup_steps)
    if eval_dataset is None:
        raise ValueError(
            "compare needs an evaluation set (eval_dataset, --validation_file): the arms are compared on it."
        )
    if train_dataset is None:
        raise ValueError("compare needs a train_dataset.")
    folder = os.path.join(args.output_dir, COMPARE_DIR)
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ValueError(f"output_dir {args.output_dir}: {folder} exists and is not a folder.")
    fingerprint = weights_fingerprint(model)
    is_main = args.process_index == 0  # one writer of the folder (the arguments set up the processes' state)
    if overwrite_output_dir:
        if is_main and os.path.isdir(folder):
            shutil.rmtree(folder)
        PartialState().wait_for_everyone()
    call = arm_settings(arm_arguments(args, "gradinit_warmup", folder).to_dict(), settings, fingerprint)
    check_call(folder, recorded_settings(folder), call, arms)
    bars = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()  # a bar per saved checkpoint would bury the arms' own
    trainer_kwargs = {"data_collator": data_collator, "processing_class": processing_class}
    try:
        for arm in arms:
            arm_dir = os.path.join(folder, arm)
            if os.path.isfile(os.path.join(arm_dir, ARM_FILE)):
                show(f"compare: {arm} finished already ({arm_dir}): not run again.")
                continue
            start = time.monotonic()
            arm_args = arm_arguments(args, arm, arm_dir)
            trainer = GradInitTrainer(copy.deepcopy(model), arm_args, train_dataset, eval_dataset, **trainer_kwargs)
            trainer.gradinit_card_data = dict(card_data or {})
            quiet(trainer, arm_dir)
            if is_main:
                # Recorded before it trains, so that a cut arm is checked against it too.
                recorded = {"arm": arm, "settings": arm_settings(arm_args.to_dict(), settings, fingerprint)}
                write_atomically(os.path.join(arm_dir, SETTINGS_FILE), json.dumps(recorded, indent=1))
            record = _train_arm(trainer, arm, arm_dir, fingerprint, compute_metrics, is_main)
            if is_main:
                show(arm_line(arm, arm_summary(record), time.monotonic() - start))
    finally:
        if bars:
            transformers_logging.enable_progress_bar()
    if not is_main:
        return {}
    results = write_report(folder)
    show(results["verdict"])
    show(f"compare: summary.md, curves.png and results.json are in {folder}")
    return results


def _train_arm(trainer, arm: str, arm_dir: str, fingerprint: str, compute_metrics, is_main: bool) -> dict | None:
    """Train one arm (continuing it from its last checkpoint) and write its record; return the record (main
    process)."""
    checkpoint = get_last_checkpoint(arm_dir) if os.path.isdir(arm_dir) else None
    if checkpoint:
        show(f"compare: {arm} continues from {checkpoint}.")
    trainer.train(resume_from_checkpoint=checkpoint)
    final = _final_evaluation(trainer, compute_metrics)
    record = None
    if is_main:
        search = _search_report(trainer, arm_dir)
        record = arm_record(arm, trainer.state.log_history, final, search, trainer.args, fingerprint)
        write_atomically(os.path.join(arm_dir, ARM_FILE), json.dumps(record, indent=1))
    trainer.accelerator.wait_for_everyone()
    return record


def _final_evaluation(trainer: GradInitTrainer, compute_metrics) -> dict[str, float]:
    """The last evaluation with generation and `compute_metrics` (BLEU for translation), when given."""
    if compute_metrics is None:
        return {}
    trainer.compute_metrics = compute_metrics
    trainer.args.predict_with_generate = True
    return trainer.evaluate(metric_key_prefix="final")


def _search_report(trainer: GradInitTrainer, arm_dir: str) -> dict[str, Any] | None:
    """How the arm's search went: from this run, or from the `scales.json` it wrote before it was cut."""
    if trainer.gradinit_result is not None:
        return trainer.gradinit_result.report()
    saved = os.path.join(arm_dir, GRADINIT_DIR)
    return GradInitResult.load(saved).report() if os.path.isdir(saved) else None
