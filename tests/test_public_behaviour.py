"""Public behaviour no other test calls: a GradInitResult's save/load round trip, model_loss on mapping and tuple
outputs, the command line's exits for a missing data flag and an unknown subcommand, a failed save, and a push of a
folder that is not a GradInit checkpoint."""

import pytest
import torch
from torch import nn

from hf_gradinit import GradInitResult, model_loss


def test_result_round_trip_keeps_every_field(tmp_path):
    result = GradInitResult(
        scales={"a.weight": 0.5, "b.bias": 0.0},
        groups={"a.weight": "weight", "b.bias": "bias"},
        init_norms={"a.weight": 2.0, "b.bias": 0.3},
        final_norms={"a.weight": 1.0, "b.bias": 0.0},
        history=[
            {"step": 1, "loss": 3.0, "grad_norm": 1200.0, "constraint": True},
            {"step": 2, "loss": 2.9, "grad_norm": 900.0, "constraint": False, "objective": 2.8},
        ],
        arguments={"gradinit_eta": 2e-3, "gradinit_iters": 2},
        graph_rebuilds=1,
        initialization="fairseq",
        eta_rule="2 × learning_rate 0.001",
    )
    loaded = GradInitResult.load(result.save(tmp_path / "init"))
    assert loaded == result
    assert GradInitResult.load(tmp_path / "init") == result  # the folder or the file
    assert loaded.constraint_fraction == 0.5 and loaded.first_objective_step == 2
    assert loaded.scale_summary() == {"scale_min": 0.0, "scale_mean": 0.25, "scale_max": 0.5}


class _Out(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.kind, self.w = kind, nn.Parameter(torch.tensor(2.0))

    def forward(self, x):
        loss = (self.w * x).sum()
        return {"loss": loss, "logits": x} if self.kind == "mapping" else (loss, x)


@pytest.mark.parametrize("kind", ["mapping", "tuple"])
def test_model_loss_reads_mapping_and_tuple_outputs(kind):
    x = torch.tensor([1.0, 2.0])
    assert model_loss(_Out(kind), {"x": x}).item() == 6.0


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            [
                "init",
                "--output_dir",
                "o",
                "--model_type",
                "bart",
                "--train_tokenizer",
                "--source_lang",
                "de",
                "--target_lang",
                "en",
            ],
            "hf-gradinit init: error: Give --dataset_name or at least one of --train_file",
        ),
        (["frobnicate"], "hf-gradinit: unknown command 'frobnicate' (commands: init, push, compare)"),
    ],
)
def test_the_command_line_exits_2_with_a_message(argv, message, capsys, tmp_path, monkeypatch):
    from hf_gradinit.cli import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert message in captured.out + captured.err


def test_a_failed_save_keeps_the_older_checkpoint_whole(tmp_path, monkeypatch):
    from helpers import tiny_bart

    from hf_gradinit import save_initialization

    folder = tmp_path / "gradinit"
    folder.mkdir()
    (folder / "scales.json").write_text("older")
    result = GradInitResult({}, {}, {}, {})
    model = tiny_bart()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(model, "save_pretrained", fail)
    with pytest.raises(OSError, match="disk full"):
        save_initialization(model, result, str(folder))
    assert (folder / "scales.json").read_text() == "older" and sorted(p.name for p in tmp_path.iterdir()) == [
        "gradinit"
    ]


def test_pushing_a_folder_that_is_not_a_gradinit_checkpoint_is_refused_before_any_request(
    tmp_path, monkeypatch, capsys
):
    """A plain `save_pretrained` folder has no scales.json: the push names the folder and the missing file, and
    contacts no Hub (the client is never built)."""
    import hf_gradinit.hub as hub
    from helpers import tiny_bart

    from hf_gradinit.cli import main

    def no_client(*args, **kwargs):
        raise AssertionError("a Hub client was built")

    monkeypatch.setattr(hub, "HfApi", no_client)
    folder = tmp_path / "plain"
    tiny_bart().save_pretrained(folder)
    with pytest.raises(FileNotFoundError, match=r"plain is not a GradInit checkpoint: scales.json missing"):
        hub.push_initialization_to_hub(str(folder), "you/plain")
    # The console command says it in one line and exits 2.
    with pytest.raises(SystemExit) as exit_info:
        main(["push", str(folder), "--repo_id", "you/plain"])
    assert exit_info.value.code == 2
    assert "is not a GradInit checkpoint: scales.json missing" in capsys.readouterr().err
    # An empty folder misses both files.
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json, scales.json missing"):
        hub.push_initialization_to_hub(str(tmp_path / "empty"), "you/plain")
