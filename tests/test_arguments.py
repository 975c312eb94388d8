"""Argument validation and parsing."""

import json

import pytest
from transformers import HfArgumentParser, Seq2SeqTrainingArguments

from hf_gradinit import GradInitArguments, GradInitConfig


@pytest.mark.parametrize(
    "field,value",
    [
        ("gradinit_lr", 0.0),
        ("gradinit_lr", -1e-3),
        ("gradinit_eta", 0.0),
        ("gradinit_gamma", -1.0),
        ("gradinit_iters", -1),
        ("gradinit_alg", "rmsprop"),
        ("gradinit_ln_lr", 0.0),
        ("gradinit_ln_min_scale", -0.5),
        ("gradinit_beta2", 1.0),
        ("gradinit_batch_size", 0),
        ("gradinit_grad_clip", -1.0),
    ],
)
def test_invalid_values_name_their_field(field, value, tmp_path):
    with pytest.raises(ValueError, match=field):
        GradInitArguments(**{field: value})
    with pytest.raises(ValueError, match=field):
        GradInitConfig(output_dir=str(tmp_path), **{field: value})


def test_min_scale_above_max_scale_is_refused(tmp_path):
    with pytest.raises(ValueError, match="gradinit_min_scale.*gradinit_max_scale"):
        GradInitConfig(output_dir=str(tmp_path), gradinit_min_scale=2.0, gradinit_max_scale=1.0)


def test_ln_min_scale_above_max_scale_is_refused(tmp_path):
    with pytest.raises(ValueError, match="gradinit_ln_min_scale.*gradinit_max_scale"):
        GradInitConfig(output_dir=str(tmp_path), gradinit_ln_min_scale=2.0, gradinit_max_scale=1.0)
    assert GradInitArguments(gradinit_ln_min_scale=0.5, gradinit_min_scale=0.01).gradinit_ln_min_scale == 0.5


def test_config_is_training_arguments_plus_the_same_gradinit_fields(tmp_path):
    args = GradInitConfig(output_dir=str(tmp_path), gradinit_iters=7)
    assert isinstance(args, Seq2SeqTrainingArguments) and isinstance(args, GradInitArguments)
    # the same fields and defaults, but η follows the training lr (the Trainer's 5e-5 here)
    assert args.gradinit_dict() == {**GradInitArguments().gradinit_dict(), "gradinit_iters": 7, "gradinit_eta": 1e-4}
    assert args.warmup_steps == 0
    assert GradInitConfig(output_dir=str(tmp_path), warmup_steps=100).warmup_steps == 100


def test_every_gradinit_field_has_help_and_is_documented():
    from dataclasses import fields

    for f in fields(GradInitArguments):
        assert f.metadata.get("help"), f.name
        assert f"{f.name} (" in GradInitArguments.__doc__, f.name
        assert f"{f.name} (" in GradInitConfig.__doc__, f.name


def test_hf_argument_parser_command_line_and_json(tmp_path):
    parser = HfArgumentParser(GradInitConfig)
    (args,) = parser.parse_args_into_dataclasses(
        ["--output_dir", str(tmp_path), "--gradinit_alg", "sgd", "--gradinit_batch_size", "12", "--no_gradinit"]
    )
    assert (args.gradinit_alg, args.gradinit_batch_size, args.gradinit) == ("sgd", 12, False)
    with pytest.raises(SystemExit):
        parser.parse_args_into_dataclasses(["--output_dir", str(tmp_path), "--gradinit_alg", "lamb"])
    path = tmp_path / "args.json"
    path.write_text(json.dumps({"output_dir": str(tmp_path), "gradinit_iters": 3, "gradinit_eta": 2e-3}))
    (args,) = parser.parse_json_file(str(path))
    assert (args.gradinit_iters, args.gradinit_eta) == (3, 2e-3)


def test_initialization_repo_defaults_to_the_model_repo_with_a_suffix(tmp_path):
    assert (
        GradInitConfig(output_dir=str(tmp_path / "run"), hub_model_id="me/bart").gradinit_repo_id
        == "me/bart-gradinit-init"
    )
    assert GradInitConfig(output_dir=str(tmp_path / "run")).gradinit_repo_id == "run-gradinit-init"
    assert GradInitConfig(output_dir=str(tmp_path), gradinit_hub_model_id="me/init").gradinit_repo_id == "me/init"
    with pytest.raises(ValueError, match="gradinit_push_to_hub needs gradinit=True"):
        GradInitConfig(output_dir=str(tmp_path), gradinit=False, gradinit_push_to_hub=True)
