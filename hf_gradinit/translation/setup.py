"""From parsed arguments to tokenizer, model and tokenized splits: the set-up shared by the translation example
and `hf-gradinit init`."""

from __future__ import annotations

import json
import os
import sys
from argparse import ArgumentDefaultsHelpFormatter

from transformers import HfArgumentParser

from ..arguments import help_names_default
from ..config import GradInitConfig
from .arguments import DataTrainingArguments, ModelArguments
from .data import load_raw_datasets, tokenize_datasets
from .modeling import PRESET_ALTERNATIVES, TRAINING_PRESETS, build_model
from .tokenizer import check_tokenizer_source, load_or_train_tokenizer


class _NamedDefaultsHelpFormatter(ArgumentDefaultsHelpFormatter):
    """argparse's "(default: None)" beside a flag whose help names what None stands for ("Default: the paper's
    2.5e-3") would contradict it: such a flag shows its help alone."""

    def _get_help_string(self, action):
        if help_names_default(action.default, action.help):
            return action.help
        return super()._get_help_string(action)


def translation_parser(prog: str | None = None) -> HfArgumentParser:
    """The parser of the translation example's flags (`ModelArguments`, `DataTrainingArguments`,
    `GradInitConfig`)."""
    return HfArgumentParser(
        (ModelArguments, DataTrainingArguments, GradInitConfig), prog=prog, formatter_class=_NamedDefaultsHelpFormatter
    )


def parse_translation_arguments(
    argv: list[str] | None = None,
) -> tuple[ModelArguments, DataTrainingArguments, GradInitConfig]:
    """Command-line flags, or a single JSON file holding them. A `--preset` fills in its training and GradInit
    flags (`TRAINING_PRESETS`) wherever they are not given explicitly."""
    argv = sys.argv[1:] if argv is None else argv
    parser = translation_parser()
    if len(argv) == 1 and argv[0].endswith(".json"):
        path = os.path.abspath(argv[0])
        with open(path, encoding="utf-8") as f:
            given = json.load(f)
        return parser.parse_dict({**_preset_defaults(given.get("preset"), set(given)), **given})
    explicit = {a[2:].split("=", 1)[0] for a in argv if a.startswith("--")}
    defaults = [f"--{key}={value}" for key, value in _preset_defaults(_flag_value(argv, "preset"), explicit).items()]
    return parser.parse_args_into_dataclasses(args=defaults + list(argv))


def _preset_defaults(preset: str | None, given: set[str]) -> dict:
    """The preset's flags that the user did not give, directly or through a row-count alternative (e.g.
    --per_device_train_batch_size leaves the preset's max_tokens out)."""
    return {
        key: value
        for key, value in TRAINING_PRESETS.get(preset, {}).items()
        if key not in given and not given.intersection(PRESET_ALTERNATIVES.get(key, ()))
    }


def _flag_value(argv: list[str], name: str) -> str | None:
    for i, a in enumerate(argv):
        if a == f"--{name}" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(f"--{name}="):
            return a.split("=", 1)[1]
    return None


def dataset_label(data_args: DataTrainingArguments) -> str:
    """How a model card names the data: the Hub dataset's id, or the local training file's name (e.g.
    `train.jsonl.gz`), which the card names in its text but not as a Hub dataset."""
    if data_args.dataset_name:
        return data_args.dataset_name
    return os.path.basename(data_args.train_file or data_args.validation_file or data_args.test_file)


def prepare(model_args: ModelArguments, data_args: DataTrainingArguments, training_args: GradInitConfig):
    """Load the data, get the tokenizer (trained if asked), build the model and tokenize every split.

    Returns `(tokenizer, model, tokenized_splits)`. Raises before any heavy work when a split the run needs is
    missing.
    """
    check_tokenizer_source(model_args)
    raw_datasets = load_raw_datasets(data_args, cache_dir=model_args.cache_dir, token=model_args.token)
    for needed, split in (("do_train", "train"), ("do_eval", "validation"), ("do_predict", "test")):
        if getattr(training_args, needed) and split not in raw_datasets:
            raise ValueError(f"--{needed} needs a {split} split: pass --{split}_file or a dataset that has one.")
    with training_args.main_process_first(desc="tokenizer training"):
        tokenizer = load_or_train_tokenizer(model_args, data_args, raw_datasets)
    max_positions = max(data_args.max_source_length, data_args.max_target_length) + 2
    model = build_model(model_args, tokenizer, data_args.source_lang, data_args.target_lang, max_positions)
    model.generation_config.max_length = data_args.val_max_target_length
    if data_args.num_beams is not None:
        model.generation_config.num_beams = data_args.num_beams
    tokenized = tokenize_datasets(raw_datasets, tokenizer, data_args, training_args.main_process_first)
    return tokenizer, model, tokenized
