"""`hf-gradinit`: the GradInit search, its checkpoint on the Hub, and warmup against GradInit on your task."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import textwrap
from dataclasses import MISSING, fields

from .arguments import help_names_default

logger = logging.getLogger("hf_gradinit")

USAGE = """usage: hf-gradinit <command> [flags]   (hf-gradinit <command> --help for its flags)

commands:
  init      run the GradInit scale search on training data and write (or push) the initialized checkpoint
  push      push an initialized checkpoint folder (output_dir/gradinit) to the Hub
  compare   train no warmup, warmup and GradInit from the same weights on your data and say which did better

example:
  hf-gradinit compare --arms none,warmup,gradinit --warmup_steps 300 --model_type transformer --init fairseq \\
      --train_tokenizer --train_file train.jsonl --validation_file validation.jsonl \\
      --source_lang de --target_lang en --output_dir cmp"""


# Training flags `hf-gradinit init --help` shows beside the GradInit, model and data flags; `--help-all` lists all.
ESSENTIAL_TRAINING_FLAGS = (
    "output_dir",
    "learning_rate",
    "per_device_train_batch_size",
    "max_tokens",
    "seed",
    "use_cpu",
    "bf16",
    "push_to_hub",
    "hub_model_id",
    "hub_private_repo",
    "hub_token",
)


def _flag_lines(cls, keep) -> list[str]:
    lines = []
    for f in fields(cls):
        if not keep(f.name) or not f.init:
            continue
        default = f.default if f.default is not MISSING else None
        named = help_names_default(default, f.metadata.get("help"))
        lines.append(f"  --{f.name}" if named else f"  --{f.name} (default: {default!r})")
        lines += textwrap.wrap(f.metadata.get("help", ""), 100, initial_indent="      ", subsequent_indent="      ")
    return lines


def init_help() -> str:
    """`hf-gradinit init --help`: the GradInit, model and data flags, and the essential training ones."""
    from .config import GradInitConfig
    from .translation import DataTrainingArguments, ModelArguments

    lines = ["usage: hf-gradinit init [flags]   (or: hf-gradinit init flags.json)", ""] + textwrap.wrap(
        "Run the GradInit scale search on the training data and write output_dir/gradinit/ (model, tokenizer, "
        "scales.json, model card); with --push_to_hub, push it. The flags are those of "
        "examples/translation/run_translation.py.",
        104,
    )
    groups = [
        ("GradInit", GradInitConfig, lambda name: name.startswith("gradinit")),
        ("model", ModelArguments, lambda name: True),
        ("data", DataTrainingArguments, lambda name: True),
        (
            "training (essential; --help-all lists every flag of Seq2SeqTrainingArguments)",
            GradInitConfig,
            lambda name: name in ESSENTIAL_TRAINING_FLAGS,
        ),
    ]
    for title, cls, keep in groups:
        lines += ["", f"{title}:"] + _flag_lines(cls, keep)
    return "\n".join(lines)


def write_init_help() -> str:
    """Regenerate `init_help.py`, the text `hf-gradinit init --help` prints without importing torch or
    transformers (a test checks it against `init_help()`)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "init_help.py")
    with open(path, "w", encoding="utf-8") as f:
        f.write(
            '"""`hf-gradinit init --help`, written by `hf_gradinit.cli.write_init_help()` from the argument '
            'classes."""'
            f"\n\nINIT_HELP = {init_help()!r}\n"
        )
    return path


def init(argv: list[str]) -> None:
    if {"-h", "--help"} & set(argv):
        from .init_help import INIT_HELP

        print(INIT_HELP)
        return
    from transformers import DataCollatorForSeq2Seq

    from .hub import check_hub_access
    from .trainer import GRADINIT_DIR, GradInitTrainer
    from .translation import dataset_label, parse_translation_arguments, prepare

    if "--help-all" in argv:
        from .translation.setup import translation_parser

        translation_parser(prog="hf-gradinit init").print_help()
        return
    model_args, data_args, args = parse_translation_arguments(argv)
    if data_args.train_file is None and data_args.dataset_name is None:
        raise ValueError("hf-gradinit init searches on training data: pass --train_file or --dataset_name.")
    args.do_train, args.gradinit = True, True
    # The pushed artifact is the initialization itself: it goes to --hub_model_id as given.
    repo_id = (
        (args.gradinit_hub_model_id or args.hub_model_id or os.path.basename(os.path.normpath(args.output_dir)))
        if args.push_to_hub
        else None
    )
    args.push_to_hub = args.gradinit_push_to_hub = False
    if repo_id is not None:
        repo_id = check_hub_access(repo_id, private=args.hub_private_repo, token=args.hub_token)

    tokenizer, model, tokenized = prepare(model_args, data_args, args)
    trainer = GradInitTrainer(
        model=model,
        args=args,
        train_dataset=tokenized["train"],
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100),
        processing_class=tokenizer,
    )
    trainer.gradinit_card_data = {
        "datasets": [dataset_label(data_args)],
        "languages": [data_args.source_lang, data_args.target_lang],
    }
    if repo_id is not None:
        trainer.gradinit_card_data["model_name"] = repo_id
    trainer.gradinit()
    print(f"Initialized checkpoint written to {os.path.join(args.output_dir, GRADINIT_DIR)}")
    if repo_id is not None:
        url = trainer.push_initialization_to_hub(repo_id)
        print(f"Pushed to {url}")


def push(argv: list[str]) -> None:
    from .hub import push_initialization_to_hub

    parser = argparse.ArgumentParser(prog="hf-gradinit push", description="Push an initialized checkpoint folder.")
    parser.add_argument("save_directory", help="a folder written by the search, e.g. out/gradinit")
    parser.add_argument("--repo_id", required=True)
    parser.add_argument("--private", action="store_true", default=None)
    parser.add_argument("--token", default=None)
    ns = parser.parse_args(argv)
    if not os.path.isdir(ns.save_directory):
        raise FileNotFoundError(
            f"{ns.save_directory}: no such folder (give a folder the search wrote, e.g. out/gradinit)."
        )
    print(f"Pushed to {push_initialization_to_hub(ns.save_directory, ns.repo_id, private=ns.private, token=ns.token)}")


def _pop_flag(argv: list[str], name: str, takes_value: bool) -> tuple[list[str], str | bool | None]:
    """`argv` without `--name [value]` (or `--name=value`), and the value (True for a switch, None if absent)."""
    rest, value, i = [], None, 0
    while i < len(argv):
        a = argv[i]
        if a == f"--{name}":
            if takes_value:
                if i + 1 >= len(argv):
                    raise ValueError(f"--{name} needs a value.")
                value, i = argv[i + 1], i + 2
                continue
            value = True
        elif takes_value and a.startswith(f"--{name}="):
            value = a.split("=", 1)[1]
        else:
            rest.append(a)
        i += 1
    return rest, value


def compare_help() -> str:
    """`hf-gradinit compare --help`: its own flags with their defaults (without importing torch)."""
    from .comparison_settings import ARMS, DEFAULT_ARMS, EVALUATIONS_PER_RUN

    own = [
        (
            "--arms",
            ",".join(DEFAULT_ARMS),
            f"Comma-separated arms to train, from {', '.join(ARMS)}: none (no search, no warmup), warmup (linear "
            "warmup over --warmup_steps), gradinit (the search, then no warmup: the paper's recipe), "
            "gradinit_warmup (the search, then warmup).",
        ),
        (
            "--warmup_steps",
            "0",
            "The warmup arms' warmup, in updates (a fraction of the run if < 1); needed when a warmup arm runs. The "
            "other arms train without warmup.",
        ),
        (
            "--eval_steps",
            f"{EVALUATIONS_PER_RUN} evaluations a run",
            "How often every arm evaluates (and saves a checkpoint to continue from).",
        ),
        (
            "--overwrite_output_dir",
            "off",
            "Start over: delete output_dir/compare/ first. Without it, arms found there are kept (finished) or "
            "continued (cut) when they were run with this call's settings, and the call is refused when not.",
        ),
        (
            "--report",
            "off",
            "Only merge the arms found in --output_dir (run by other processes) into summary.md, curves.png and "
            "results.json.",
        ),
    ]
    lines = [
        "usage: hf-gradinit compare [--arms ARMS] [--warmup_steps N] [--eval_steps N] [--overwrite_output_dir] "
        "[flags of init]",
        "       hf-gradinit compare --report --output_dir DIR",
        "",
        *textwrap.wrap(
            "Train each arm through GradInitTrainer from the same initial weights, on the same batches with the "
            "same dropout masks, each evaluating with the stability monitor and ending with BLEU; then write "
            "output_dir/compare/ (summary.md with the verdict, curves.png, results.json). The same command "
            "continues a cut run; one process per arm works too (the last to finish merges).",
            104,
        ),
        "",
        "compare's flags:",
    ]
    for flag, default, text in own:
        lines.append(f"  {flag} (default: {default})")
        lines += textwrap.wrap(text, 100, initial_indent="      ", subsequent_indent="      ")
    lines += [
        "",
        "Every other flag is init's: the model, data, training and gradinit_* flags of",
        "examples/translation/run_translation.py (`hf-gradinit init --help`).",
    ]
    return "\n".join(lines)


def compare(argv: list[str]) -> None:
    if {"-h", "--help"} & set(argv):
        print(compare_help())
        return
    argv, report_only = _pop_flag(argv, "report", takes_value=False)
    argv, arms = _pop_flag(argv, "arms", takes_value=True)
    argv, overwrite = _pop_flag(argv, "overwrite_output_dir", takes_value=False)
    if report_only:
        argv, output_dir = _pop_flag(argv, "output_dir", takes_value=True)
        if output_dir is None or argv or overwrite:
            raise ValueError("--report takes only --output_dir (the folder the arms were run into).")
        from .comparison_report import write_report
        from .comparison_settings import COMPARE_DIR

        folder = os.path.join(output_dir, COMPARE_DIR)
        write_report(folder)
        print(open(os.path.join(folder, "summary.md"), encoding="utf-8").read())
        return
    import datasets
    from transformers import DataCollatorForSeq2Seq, set_seed

    from .comparison import DEFAULT_ARMS, check_arms
    from .comparison import compare as compare_arms
    from .translation import dataset_label, parse_translation_arguments, prepare, translation_metrics

    model_args, data_args, args = parse_translation_arguments(argv)
    arms = check_arms(arms or ",".join(DEFAULT_ARMS), args.warmup_steps)
    if data_args.train_file is None and data_args.dataset_name is None:
        raise ValueError("hf-gradinit compare trains: pass --train_file or --dataset_name.")
    if data_args.validation_file is None and data_args.dataset_name is None:
        raise ValueError("hf-gradinit compare compares the arms on evaluation data: pass --validation_file.")
    args.do_train, args.do_eval = True, True
    # Quiet by default: the arms' progress bars and one line each; the rest goes to each arm's log.
    logger.setLevel(logging.WARNING)
    datasets.disable_progress_bars()
    set_seed(args.seed)  # before the model is built: every process, and every arm, starts from the same weights
    tokenizer, model, tokenized = prepare(model_args, data_args, args)
    compare_arms(
        model,
        args,
        tokenized["train"],
        tokenized["validation"],
        arms,
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100),
        processing_class=tokenizer,
        compute_metrics=translation_metrics(tokenizer),
        card_data={
            "datasets": [dataset_label(data_args)],
            "languages": [data_args.source_lang, data_args.target_lang],
        },
        settings={"model": dataclasses.asdict(model_args), "data": dataclasses.asdict(data_args)},
        overwrite_output_dir=bool(overwrite),
    )


COMMANDS = {"init": init, "push": push, "compare": compare}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        raise SystemExit(0 if argv else 2)
    if argv[0] not in COMMANDS:
        print(
            f"hf-gradinit: unknown command {argv[0]!r} (commands: {', '.join(COMMANDS)})\n\n{USAGE}", file=sys.stderr
        )
        raise SystemExit(2)
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    try:
        COMMANDS[argv[0]](argv[1:])
    except Exception as e:
        if not _is_user_error(e):
            raise
        # A user error: one line, no traceback, argparse's exit code.
        print(f"hf-gradinit {argv[0]}: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def _is_user_error(error: Exception) -> bool:
    """A mistake of the user's (a value, a path) or a failed search or push, each of which says what to do."""
    if isinstance(error, (ValueError, FileNotFoundError)):
        return True
    # Imported only now: `--help` must not wait for torch and huggingface_hub.
    from .hub import GradInitPushError
    from .search import GradInitError

    return isinstance(error, (GradInitError, GradInitPushError))


if __name__ == "__main__":
    main()
