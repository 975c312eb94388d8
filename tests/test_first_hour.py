"""What a new user meets first: η follows the training lr, bad input is refused before work, a Pre-LN or
single-stack model is named, and torchrun on CPU without use_cpu is refused instead of running twice."""

import json
import logging
import os
import subprocess
import sys

import pytest
from helpers import tiny_bart, tiny_config, tiny_tokenizer, tokenized_dataset
from transformers import BertConfig, BertForSequenceClassification, GPT2Config, GPT2LMHeadModel, HfArgumentParser
from transformers import MBartConfig, MBartForConditionalGeneration

from hf_gradinit import GradInitConfig, GradInitTrainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("lr", [1e-3, 5e-4, 5e-5])
def test_eta_left_unset_is_twice_the_training_lr(tmp_path, lr):
    assert GradInitConfig(output_dir=str(tmp_path), learning_rate=lr).gradinit_eta == 2 * lr
    (parsed,) = HfArgumentParser(GradInitConfig).parse_args_into_dataclasses(
        ["--output_dir", str(tmp_path), "--learning_rate", str(lr)]
    )
    assert parsed.gradinit_eta == 2 * lr
    assert GradInitConfig(output_dir=str(tmp_path), learning_rate=lr, gradinit_eta=3e-3).gradinit_eta == 3e-3


def _warnings(caplog, about):
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and about in r.getMessage()]


def test_an_eta_far_from_twice_the_lr_is_warned_about(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="hf_gradinit.config"):
        GradInitConfig(output_dir=str(tmp_path), learning_rate=1e-3, gradinit_eta=4e-3)  # 4 ×: measured
        GradInitConfig(output_dir=str(tmp_path), learning_rate=1e-3, gradinit_eta=1e-3)  # 1 ×: measured
        assert not _warnings(caplog, "gradinit_eta")
        GradInitConfig(output_dir=str(tmp_path), gradinit_eta=1e-3)  # the Trainer's lr 5e-5: 20 ×
        GradInitConfig(output_dir=str(tmp_path), learning_rate=1e-3, gradinit_eta=5e-4)  # ½ ×
    eta_warnings = _warnings(caplog, "gradinit_eta")
    assert len(eta_warnings) == 2 and "20 × learning_rate" in eta_warnings[0]
    assert "docs/eta-gamma.md" in eta_warnings[1]


def test_training_without_warmup_is_warned_about_once_when_training_starts(tmp_path, caplog):
    # The default (GradInit on, warmup off) is the paper's; BENCHMARKS' tests did not bear it out. Building a
    # config trains nothing (`hf-gradinit init` builds one): only train() warns.
    tok = tiny_tokenizer()
    with caplog.at_level(logging.WARNING):
        for kw in ({"warmup_steps": 300}, {"gradinit": False}, {}):
            tiny_config(tmp_path, **kw)
        assert not _warnings(caplog, "learning-rate warmup")
        trainer = GradInitTrainer(tiny_bart(), tiny_config(tmp_path), tokenized_dataset(tok, 12), processing_class=tok)
        trainer.train()
        GradInitTrainer(
            tiny_bart(), tiny_config(tmp_path, warmup_steps=1), tokenized_dataset(tok, 12), processing_class=tok
        ).train()
    (warning,) = _warnings(caplog, "learning-rate warmup")
    assert "warmup_steps=0" in warning and "Does GradInit let" in warning and "set warmup_steps" in warning


@pytest.mark.parametrize("lr", [-1e-3, 0.0, float("nan"), float("inf")])
def test_a_training_lr_that_cannot_train_is_refused_when_the_config_is_built(tmp_path, lr):
    with pytest.raises(ValueError, match="learning_rate must be a positive finite number"):
        GradInitConfig(output_dir=str(tmp_path), learning_rate=lr)


def test_the_search_uses_and_records_the_eta_it_derived(tmp_path, caplog):
    tok, model = tiny_tokenizer(), tiny_bart()
    args = tiny_config(tmp_path, learning_rate=1e-3)
    trainer = GradInitTrainer(model, args, tokenized_dataset(tok, 12), processing_class=tok)
    with caplog.at_level(logging.INFO, logger="hf_gradinit.search"):
        trainer.gradinit()
    saved = json.loads((tmp_path / "gradinit" / "scales.json").read_text())
    assert saved["arguments"]["gradinit_eta"] == 2e-3 and saved["eta_rule"] == "2 × learning_rate 0.001"
    assert "η = 0.002 (2 × learning_rate 0.001)" in (tmp_path / "gradinit" / "README.md").read_text()
    messages = [r.getMessage() for r in caplog.records]
    assert any("η = 0.002 (2 × learning_rate 0.001)" in m for m in messages)
    first_objective = next(r["step"] for r in saved["history"] if not r["constraint"])
    assert any(f"first objective step at iteration {first_objective}" in m for m in messages)


def test_a_search_that_never_left_the_constraint_says_so(tmp_path, caplog):
    tok, model = tiny_tokenizer(), tiny_bart()
    trainer = GradInitTrainer(
        model, tiny_config(tmp_path, gradinit_gamma=1e-9), tokenized_dataset(tok, 12), processing_class=tok
    )
    with caplog.at_level(logging.WARNING, logger="hf_gradinit.search"):
        trainer.gradinit()
    assert any("no objective step ran" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


def test_gradinit_with_zero_iterations_is_said_at_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="hf_gradinit.config"):
        tiny_config(tmp_path, gradinit_iters=0)
        tiny_config(tmp_path, gradinit_iters=0, gradinit=False)
    assert len(_warnings(caplog, "gradinit_iters=0")) == 1


def _mbart():
    config = MBartConfig(
        vocab_size=64,
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        max_position_embeddings=64,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=2,
    )
    return MBartForConditionalGeneration(config)


def test_a_pre_ln_model_is_warned_about_and_never_tagged_post_ln(tmp_path, caplog):
    from hf_gradinit.layer_norm_placement import is_pre_ln

    assert is_pre_ln(_mbart()) and not is_pre_ln(tiny_bart())
    tok = tiny_tokenizer()
    with caplog.at_level(logging.WARNING, logger="hf_gradinit.trainer"):
        GradInitTrainer(tiny_bart(), tiny_config(tmp_path / "bart"), tokenized_dataset(tok, 12), processing_class=tok)
        assert not _warnings(caplog, "LN")
        model = _mbart()
        model.resize_token_embeddings(len(tok))
        trainer = GradInitTrainer(model, tiny_config(tmp_path), tokenized_dataset(tok, 12), processing_class=tok)
    assert len(_warnings(caplog, "Pre-LN")) == 1
    trainer.gradinit()
    card = (tmp_path / "gradinit" / "README.md").read_text()
    header = card.split("---")[1]
    assert "- gradinit" in header and "post-ln" not in header
    bart = GradInitTrainer(
        tiny_bart(), tiny_config(tmp_path / "bart"), tokenized_dataset(tok, 12), processing_class=tok
    )
    bart.gradinit()
    assert "post-ln" in (tmp_path / "bart" / "gradinit" / "README.md").read_text().split("---")[1]


@pytest.mark.parametrize("kind", ["encoder-only", "decoder-only"])
def test_single_stack_models_get_a_message_naming_what_to_do(tmp_path, kind):
    if kind == "encoder-only":
        model = BertForSequenceClassification(
            BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
        )
    else:
        model = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_embd=16, n_layer=1, n_head=2))
    with pytest.raises(ValueError, match=f"{type(model).__name__} is {kind}.*gradinit\\(model, batches"):
        GradInitTrainer(model, tiny_config(tmp_path), tokenized_dataset(tiny_tokenizer(), 12))


_UNJOINED = """
import sys
sys.path.insert(0, {tests!r})
from helpers import end_distributed_process, tiny_bart, tiny_tokenizer, tokenized_dataset
from hf_gradinit import GradInitConfig, GradInitTrainer
args = GradInitConfig(output_dir={out!r}, gradinit_iters=2, per_device_train_batch_size=6, max_steps=1,
                      report_to="none", save_strategy="no", disable_tqdm=True)
tok = tiny_tokenizer()
GradInitTrainer(tiny_bart(), args, tokenized_dataset(tok, 12), processing_class=tok).train()
end_distributed_process()
"""


def _torchrun(tmp_path):
    tmp_path.mkdir()
    script = tmp_path / "job.py"
    out = tmp_path / "out"
    script.write_text(_UNJOINED.format(tests=os.path.join(ROOT, "tests"), out=str(out)))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    return proc, out


def test_torchrun_on_cpu_without_use_cpu_is_refused(tmp_path):
    # With --use_cpu the processes join one run: tests/test_docs_processes.py runs the documented command.
    proc, out = _torchrun(tmp_path / "plain")
    assert proc.returncode != 0 and "pass --use_cpu" in proc.stderr + proc.stdout
    assert not (out / "gradinit").exists()


def test_init_help_shows_the_gradinit_flags_under_its_own_name_and_points_to_the_rest(capsys):
    from dataclasses import fields

    from hf_gradinit import GradInitArguments
    from hf_gradinit.cli import main

    main(["init", "--help"])
    short = capsys.readouterr().out
    assert short.startswith("usage: hf-gradinit init") and "--help-all" in short
    assert all(f"  --{f.name}\n" in short or f"  --{f.name} (" in short for f in fields(GradInitArguments))
    assert "--learning_rate (" in short and "--use_cpu (" in short and "--lr_scheduler_type" not in short
    main(["init", "--help-all"])
    full = capsys.readouterr().out
    assert full.startswith("usage: hf-gradinit init") and "--lr_scheduler_type" in full
    assert len(short.splitlines()) < len(full.splitlines()) / 3
    # A flag whose help names its default gets no argparse "(default: None)" beside it; the others keep theirs.
    chunks = [" ".join(chunk.split()) for chunk in full.split("\n  --")]
    named = [c for c in chunks if "Default: the paper's" in c or "Defaults to" in c]
    assert len(named) >= 5 and not [c for c in named if "(default: None)" in c]
    assert any(c.startswith("gradinit_gamma ") and "(default: 1000" in c for c in chunks)


def test_init_help_is_the_argument_classes_help_and_needs_neither_torch_nor_transformers():
    from hf_gradinit import cli
    from hf_gradinit.init_help import INIT_HELP

    # The stored text is what the argument classes give today: after changing a field or its help, run
    # `python -c "from hf_gradinit.cli import write_init_help; write_init_help()"`.
    assert INIT_HELP == cli.init_help()
    probe = (
        "import sys; from hf_gradinit.cli import main; main(['init', '--help']); print(sorted(m for m in "
        "('torch', 'transformers', 'huggingface_hub') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("[]"), proc.stderr[-2000:]


def test_the_top_level_help_lists_each_command_on_one_line(capsys):
    from hf_gradinit.cli import COMMANDS, main

    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    text = capsys.readouterr().out
    assert exit_.value.code == 0
    listed = [line.split()[0] for line in text.split("commands:\n")[1].split("\n\n")[0].splitlines()]
    assert listed == list(COMMANDS) == ["init", "push", "compare"]


def test_compare_help_shows_its_own_flags_with_their_defaults_and_needs_no_torch():
    """The defaults shown are the code's: the default arms, GradInitConfig's warmup_steps, the evaluation count."""
    from hf_gradinit import GradInitConfig
    from hf_gradinit.comparison import DEFAULT_ARMS, EVALUATIONS_PER_RUN

    probe = (
        "import sys; from hf_gradinit.cli import main; main(['compare', '--help']); print(sorted(m for m in "
        "('torch', 'transformers') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    text = proc.stdout
    assert proc.returncode == 0 and text.strip().endswith("[]"), proc.stderr[-2000:]
    assert text.startswith("usage: hf-gradinit compare")
    assert f"  --arms (default: {','.join(DEFAULT_ARMS)})\n" in text
    assert f"  --warmup_steps (default: {GradInitConfig('x').warmup_steps:g})\n" in text
    assert f"  --eval_steps (default: {EVALUATIONS_PER_RUN} evaluations a run)\n" in text
    assert "  --overwrite_output_dir (default: off)\n" in text and "  --report (default: off)\n" in text
    assert "hf-gradinit init --help" in text
