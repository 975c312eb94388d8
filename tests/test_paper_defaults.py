"""The `gradinit_*` defaults against the GradInit authors' IWSLT'14 run, typed from their code, and the switch
that restores hf_gradinit 0.1's."""

import pytest
from transformers import HfArgumentParser

from helpers import batches, tiny_marian, tiny_tokenizer
from hf_gradinit import GradInitArguments, GradInitConfig, gradinit

# Typed from zhuchen03/gradinit: fairseq/gradinit/launch/run_iwslt_14_gradinit_no_clipping.sh (`runexp 0 2.5e-3 0.98
# 780 0.01 9017`, geta=1e-3, smax=100, lnlr=-1, gclip=1e8) and, for what the script leaves unset, the fork's
# GradInitParams in fairseq/fairseq/dataclass/configs.py (gradinit_gamma 1000, gradinit_alg 'adam'). The θ′
# details are its code's behaviour: take_opt_step skips decoder.output_projection (tied to the embedding), and
# RescaleAdam skips tensors of norm 0.
PAPER = {
    "gradinit_alg": "adam",
    "gradinit_iters": 780,
    "gradinit_lr": 2.5e-3,
    "gradinit_ln_lr": None,  # lnlr=-1: the scales' lr
    "gradinit_beta1": 0.9,
    "gradinit_beta2": 0.98,
    "gradinit_eta": 1e-3,
    "gradinit_gamma": 1000.0,
    "gradinit_min_scale": 0.01,
    "gradinit_ln_min_scale": None,  # the same floor
    "gradinit_max_scale": 100.0,
    "gradinit_step_moves_tied_output": False,
    "gradinit_freeze_zero_biases": True,
}
PAPER_GRAD_CLIP = 1e8  # the script's gclip: a per-coordinate clip of dL/dα that never binds
# hf_gradinit 0.1's defaults, typed from its release (pyproject version 0.1.0).
RELEASE_0_1 = {
    "gradinit_iters": 780,
    "gradinit_lr": 1e-3,
    "gradinit_beta1": 0.9,
    "gradinit_beta2": 0.999,
    "gradinit_eta": 1e-3,
    "gradinit_gamma": 1000.0,
    "gradinit_min_scale": 0.01,
    "gradinit_max_scale": 100.0,
    "gradinit_grad_clip": 0.0,
    "gradinit_hvp": "finite_difference",
    "gradinit_step_moves_tied_output": True,
    "gradinit_freeze_zero_biases": False,
}


def test_every_default_is_the_papers_run():
    args = GradInitArguments()
    assert {k: getattr(args, k) for k in PAPER} == PAPER
    # The package's "off" is the paper's clip that never binds: both leave dL/dα as it is.
    assert args.gradinit_grad_clip == 0.0 and PAPER_GRAD_CLIP > 1e6


def test_config_takes_the_papers_defaults_and_eta_from_the_lr():
    config = GradInitConfig(output_dir="out", learning_rate=5e-4, report_to="none")
    assert {k: getattr(config, k) for k in PAPER} == PAPER  # η: 2 × 5e-4 = the paper's 1e-3


def test_sgd_keeps_working_with_the_new_defaults():
    args = GradInitArguments(gradinit_alg="sgd", gradinit_iters=3)
    assert args.gradinit_step_moves_tied_output is True and args.gradinit_freeze_zero_biases is True
    model = tiny_marian()  # its output projection is tied to the decoder's embedding
    result = gradinit(model, batches(tiny_tokenizer(), model, 2), args, progress_bar=False)
    assert result.iterations == 3 and result.arguments["gradinit_alg"] == "sgd"


def test_the_switch_restores_release_0_1_defaults_exactly():
    args = GradInitArguments(gradinit_defaults="0.1")
    assert {k: getattr(args, k) for k in RELEASE_0_1} == RELEASE_0_1
    config = GradInitConfig(output_dir="out", learning_rate=5e-4, gradinit_defaults="0.1", report_to="none")
    assert {k: getattr(config, k) for k in RELEASE_0_1} == RELEASE_0_1


def test_the_switch_from_the_command_line_keeps_what_is_given():
    (config,) = HfArgumentParser(GradInitConfig).parse_args_into_dataclasses(
        [
            "--output_dir",
            "out",
            "--report_to",
            "none",
            "--gradinit_defaults",
            "0.1",
            "--gradinit_lr",
            "2.5e-3",
            "--gradinit_freeze_zero_biases",
            "true",
        ]
    )
    assert (config.gradinit_lr, config.gradinit_freeze_zero_biases) == (2.5e-3, True)  # given
    assert (config.gradinit_beta2, config.gradinit_step_moves_tied_output) == (0.999, True)  # 0.1's


def test_an_unknown_switch_value_names_the_field():
    with pytest.raises(ValueError, match="gradinit_defaults"):
        GradInitArguments(gradinit_defaults="0.3")
