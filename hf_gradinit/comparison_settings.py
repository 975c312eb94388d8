"""What makes two arms of `compare` comparable: the same settings but for each arm's own search and warmup.

Each arm records, when it starts, the flags it runs with, the call's model and data settings (the command line's)
and a hash of its initial weights, in `compare_settings.json` beside its checkpoints.
A call that finds arms in its folder refuses, before any work, to run beside arms recorded with other settings,
and the merge refuses to put such arms in one table: a comparison that mixes settings compares nothing.
"""

from __future__ import annotations

import glob
import json
import os
from typing import Any

SETTINGS_FILE = "compare_settings.json"

# Flags that change where the output goes or how it is shown, not what is trained.
NOT_SETTINGS = frozenset(
    {
        "output_dir",
        "run_name",
        "report_to",
        "project",
        "disable_tqdm",
        "logging_steps",
        "logging_first_step",
        "logging_strategy",
        "logging_nan_inf_filter",
        "log_level",
        "log_level_replica",
        "log_on_each_node",
        "push_to_hub",
        "hub_model_id",
        "hub_strategy",
        "hub_token",
        "hub_private_repo",
        "hub_always_push",
        "hub_revision",
        "gradinit_push_to_hub",
        "gradinit_hub_model_id",
        "trackio_bucket_id",
        "trackio_space_id",
        "trackio_static_space_id",
        "dataloader_num_workers",
        "dataloader_pin_memory",
        "dataloader_persistent_workers",
        "dataloader_prefetch_factor",
        "dataloader_multiprocessing_context",
        "resume_from_checkpoint",
        "local_rank",
        "ddp_timeout",
        "skip_memory_metrics",
        "save_on_each_node",
        "torch_empty_cache_steps",
        "per_device_eval_batch_size",
        "eval_accumulation_steps",
        "do_predict",
        # what the command line's model and data arguments hold that changes nothing trained
        "model.cache_dir",
        "model.token",
        "data.overwrite_cache",
        "data.preprocessing_num_workers",
    }
)
# arm → (runs the GradInit search, warms up): what an arm may differ in from the others.
ARMS = {
    "none": (False, False),
    "warmup": (False, True),
    "gradinit": (True, False),
    "gradinit_warmup": (True, True),
}
DEFAULT_ARMS = ("none", "warmup", "gradinit")
COMPARE_DIR = "compare"
EVALUATIONS_PER_RUN = 20  # every arm evaluates this many times a run unless eval_steps is given
RESTART = (
    "start over with --overwrite_output_dir (in Python: compare(..., overwrite_output_dir=True)) or give another "
    "--output_dir"
)


def arm_settings(flags: dict[str, Any], extra: dict[str, dict] | None, initial_weights: str) -> dict[str, Any]:
    """One flat dict of what an arm's result depends on: its flags, the model and data settings given with the
    call (`extra`, e.g. `{"model": {...}, "data": {...}}`, keys flattened as `model.vocab_size`) and the hash of
    its initial weights. JSON values, so that a recorded arm and a new call compare equal when they are."""
    flat = dict(flags)
    for group, values in (extra or {}).items():
        flat.update({f"{group}.{key}": value for key, value in values.items()})
    flat["initial_weights"] = initial_weights
    return {k: v for k, v in json.loads(json.dumps(flat, default=str)).items() if k not in NOT_SETTINGS}


def differences(first: dict[str, Any], second: dict[str, Any], *, search: bool, warmup: bool) -> list[tuple]:
    """(name, first's value, second's value) of every setting that differs but the arms' own: the search's flags
    count only when both sides search (`search`), the warmup's length only when both warm up (`warmup`)."""
    found = []
    for name in sorted(set(first) | set(second)):
        if name == "gradinit" or (name.startswith("gradinit_") and not search):
            continue
        if name == "warmup_steps" and not warmup:
            continue
        if first.get(name) != second.get(name):
            found.append((name, first.get(name), second.get(name)))
    return found


def _describe(found: list[tuple], first: str, second: str) -> str:
    return ", ".join(f"{name} {_short(a)} ({first}) against {_short(b)} ({second})" for name, a, b in found)


def _short(value: Any) -> str:
    text = "unset" if value is None else repr(value) if value == "" else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_call(folder: str, recorded: dict[str, dict], call: dict[str, Any], arms: list[str]) -> None:
    """Raise ValueError, naming the differing settings and both values, if an arm already in `folder` (finished
    or cut) was run with settings other than this call's, which runs `arms` with `call`."""
    searches = any(ARMS[a][0] for a in arms)
    warms = any(ARMS[a][1] for a in arms)
    for arm, settings in recorded.items():
        search, warm = ARMS.get(arm, (False, False))
        found = differences(settings, call, search=search and searches, warmup=warm and warms)
        if found:
            raise ValueError(
                f"{os.path.join(folder, arm)} was run with other settings than this call: "
                f"{_describe(found, arm, 'this call')}; {RESTART}."
            )


def check_agree(folder: str, recorded: dict[str, dict]) -> None:
    """Raise ValueError if two arms of `folder` were run with different settings (beyond their own)."""
    arms = list(recorded)
    for i, first in enumerate(arms):
        for second in arms[i + 1 :]:
            (s1, w1), (s2, w2) = ARMS.get(first, (False, False)), ARMS.get(second, (False, False))
            found = differences(recorded[first], recorded[second], search=s1 and s2, warmup=w1 and w2)
            if found:
                raise ValueError(
                    f"{folder}: arms {first!r} and {second!r} were run with different settings, so they do not "
                    f"compare: {_describe(found, first, second)}; run them again with one command "
                    "(--overwrite_output_dir starts over)."
                )


def recorded_settings(folder: str) -> dict[str, dict[str, Any]]:
    """arm → its recorded settings, for every arm of `folder` that started (finished or cut)."""
    found = {}
    for path in sorted(glob.glob(os.path.join(folder, "*", SETTINGS_FILE))):
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
        found[record["arm"]] = record["settings"]
    return found
