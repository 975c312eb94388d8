"""Model cards for GradInit-trained and GradInit-initialized models, with `huggingface_hub.ModelCard`."""

from __future__ import annotations

import json
import os
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

from .result import GradInitResult
from .scale_report import summary_markdown
from .search_report import report_lines

GRADINIT_TAGS = ["gradinit", "post-ln"]
_INITIALIZATIONS = {
    "fairseq": "fairseq's Transformer initialization (`hf_gradinit.fairseq_init_`), as in the GradInit paper",
    "model": "the model's own initialization (its `_init_weights`, or its pretrained weights)",
}


def model_kind(config) -> str:
    """What a card calls the model, a noun phrase: the layout it was built as, when its config records one
    (`--model_type transformer`: "fairseq Post-LN Transformer in Marian's classes"), else "<model_type> model"."""
    layout = getattr(config, "layout", None)
    if layout:
        # "fairseq Post-LN Transformer (in Marian's classes)", as configs record it: no parenthesis in a sentence.
        return layout.replace(" (in ", " in ").rstrip(")")
    return f"{config.model_type} model"


def hub_base_model(model) -> str | None:
    """The Hub repo `model` was loaded from, or None for a model made from a config or loaded from a local folder
    (a card must not link a local path as its base model)."""
    name_or_path = getattr(model.config, "_name_or_path", "") or ""
    return name_or_path if name_or_path and not os.path.isdir(name_or_path) else None


def _gradinit_section(result: GradInitResult | None, arguments: dict[str, Any] | None) -> str:
    if result is None and not arguments:
        return ""
    lines = ["## GradInit", ""]
    lines.append(
        "The initial weights were rescaled by [GradInit](https://arxiv.org/abs/2102.08098) (one learned scale per "
        "tensor), with the aim of training without learning-rate warmup. Whether it does is not shown by this "
        "search: what was measured is in `BENCHMARKS.md` of the hf_gradinit package, and the search's own report "
        "follows."
    )
    initialization = result.initialization if result is not None else (arguments or {}).get("initialization")
    if initialization:
        lines += [
            "",
            "The search started from "
            f"{_INITIALIZATIONS.get(initialization, f'the `{initialization}` initialization')}.",
        ]
    if result is not None:
        lines += [
            "",
            f"Search: {result.iterations} iterations, gradient-norm constraint active in "
            f"{100 * result.constraint_fraction:.1f}% of them; simulated step η = "
            f"{result.arguments.get('gradinit_eta', float('nan')):g}"
            + (f" ({result.eta_rule})" if result.eta_rule and result.eta_rule != "set" else "")
            + ".",
            "",
            *report_lines(result.report()),
            "",
            summary_markdown(result),
        ]
    args = arguments if arguments is not None else result.arguments
    lines += [
        "",
        "<details><summary>GradInit arguments</summary>",
        "",
        "```json",
        json.dumps(args, indent=2),
        "```",
        "",
        "</details>",
    ]
    return "\n".join(lines)


DATA_FILE_SUFFIXES = (".json", ".jsonl", ".csv", ".tsv", ".txt", ".parquet", ".arrow")


def is_data_file(name: str) -> bool:
    """Whether a dataset name is a local data file (e.g. `train.jsonl.gz`) rather than a Hub dataset id."""
    return name.lower().removesuffix(".gz").endswith(DATA_FILE_SUFFIXES)


def build_model_card(
    *,
    model_name: str,
    model_type: str,  # what the card calls the model, a noun phrase (`model_kind`): "bart model"
    base_model: str | None,
    datasets: list[str] | None = None,
    languages: list[str] | None = None,
    result: GradInitResult | None = None,
    gradinit_arguments: dict[str, Any] | None = None,
    metrics: dict[str, float] | None = None,
    training_arguments: dict[str, Any] | None = None,
    initialization_only: bool = False,
    extra_tags: list[str] | None = None,
    post_ln: bool = True,
    load_from: str | None = None,
) -> ModelCard:
    """A card whose YAML says `library_name: transformers` and the GradInit tags, and whose text says how the
    model was made ("trained from scratch" when there is no base model) and how to continue training it.

    `datasets` are Hub dataset ids or local data files; only the ids go into the YAML's `datasets`. `load_from` is
    what the card's snippet loads: the Hub id once pushed, else the folder the card was written to (default:
    `model_name`)."""
    # A Pre-LN model is searched when asked, but never tagged as the Post-LN kind GradInit's claim is about.
    own = [t for t in GRADINIT_TAGS if post_ln or t != "post-ln"]
    tags = own + [t for t in (extra_tags or []) if t not in own]
    data = ModelCardData(
        library_name="transformers",
        tags=tags,
        datasets=[d for d in datasets or [] if not is_data_file(d)] or None,
        language=languages or None,
        base_model=base_model,
        pipeline_tag="translation" if languages and len(languages) == 2 else None,
    )
    on_data = f" on {', '.join(f'`{d}`' for d in datasets)}" if datasets else ""
    if initialization_only:
        of_base = f" from `{base_model}`" if base_model else ""
        origin = (
            f"A GradInit initialization of a {model_type}{of_base}, with scales searched{on_data}. It has not been "
            "trained "
            "yet: it is a starting point for training, meant for training without warmup."
        )
    elif base_model:
        origin = f"This {model_type} is a fine-tuned version of [`{base_model}`](https://huggingface.co/{base_model}){on_data}."
    else:
        origin = f"This {model_type} was trained from scratch{on_data}."
    sections = [f"# {model_name}", "", origin, ""]
    if metrics:
        sections += ["## Results", "", "| metric | value |", "|---|---:|"]
        sections += [f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in metrics.items()]
        sections.append("")
    gradinit_text = _gradinit_section(result, gradinit_arguments)
    if gradinit_text:
        sections += [gradinit_text, ""]
    if training_arguments:
        sections += ["## Training hyperparameters", ""]
        sections += [f"- {k}: {v}" for k, v in training_arguments.items()]
        sections.append("")
    sections += [
        "## How to use",
        "",
        "```python",
        "from datasets import Dataset",
        "from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, DataCollatorForSeq2Seq",
        "from hf_gradinit import GradInitConfig, GradInitTrainer",
        "",
        f'model = AutoModelForSeq2SeqLM.from_pretrained("{load_from or model_name}")',
        f'tokenizer = AutoTokenizer.from_pretrained("{load_from or model_name}")',
        "# Your (source, target) pairs; two here to show the format.",
        'pairs = Dataset.from_dict({"source": ["Guten Morgen .", "Danke ."], '
        '"target": ["Good morning .", "Thank you ."]})',
        "train_dataset = pairs.map(",
        '    lambda rows: tokenizer(rows["source"], text_target=rows["target"]), batched=True, '
        'remove_columns=["source", "target"]',
        ")",
        "# Train from this initialization; it is recorded in model.config.gradinit, so no second search runs.",
        'args = GradInitConfig(output_dir="trained", gradinit=False, learning_rate=5e-4, adam_beta2=0.98, '
        'max_steps=2, report_to="none")',
        "collator = DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100)",
        "trainer = GradInitTrainer(model, args, train_dataset, data_collator=collator)",
        "trainer.train()",
        "```",
        "",
    ]
    content = f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(sections)
    return ModelCard(content)
