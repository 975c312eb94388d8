"""Initialized checkpoints on a Hub over real HTTP: a local Hub-protocol server and the real client."""

import json
import os
import subprocess
import sys

import pytest
import torch
import yaml
from helpers import HF_GRADINIT
from hub_server import client_env

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = "tester/tiny-bart-gradinit-init"
EXPECTED_FILES = {
    "model.safetensors",
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "scales.json",
    "scales.png",
    "README.md",
}


def run_client(command, hub, tmp_path, repo=REPO, **env):
    proc = subprocess.run(
        [sys.executable, os.path.join(HERE, "hub_client.py"), command, str(tmp_path), repo],
        env=client_env(hub, tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc


def card_metadata(text):
    return yaml.safe_load(text.split("---")[1])


@pytest.mark.parametrize("lfs", [False, True], ids=["regular", "lfs"])
def test_push_after_search_then_load_and_train_without_second_search(hub, tmp_path, lfs):
    if lfs:
        hub.state.lfs_patterns = ["*.safetensors", "*.png"]
    proc = run_client("search-and-push", hub, tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    repo = hub.state.repos[REPO]
    assert EXPECTED_FILES <= set(repo["files"]), set(repo["files"])
    assert ("model.safetensors" in repo["lfs"]) == lfs
    card = repo["files"]["README.md"].decode()
    meta = card_metadata(card)
    assert meta["library_name"] == "transformers" and "gradinit" in meta["tags"]
    assert "GradInit arguments" in card and "| stack | part |" in card and "gradinit=False" in card
    scales = json.loads(repo["files"]["scales.json"])
    assert scales["iterations"] == 4
    assert repo["files"]["scales.png"][:8] == b"\x89PNG\r\n\x1a\n"

    proc = run_client("load-and-train", hub, tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "TRAINED-WITHOUT-SEARCH" in proc.stdout
    pushed, loaded = torch.load(tmp_path / "pushed.pt"), torch.load(tmp_path / "loaded.pt")
    assert pushed.keys() == loaded.keys()
    for name in pushed:
        assert torch.equal(pushed[name], loaded[name]), name


def test_server_error_keeps_local_checkpoint_and_says_how_to_retry(hub, tmp_path):
    hub.state.fail["commit"] = 500
    proc = run_client("search-and-push-explicit", hub, tmp_path)
    assert proc.returncode != 0
    assert "GradInitPushError" in proc.stderr and "Retry the push alone" in proc.stderr
    local = tmp_path / "run" / "gradinit"
    assert EXPECTED_FILES <= set(os.listdir(local))
    # The retry the message suggests works once the Hub answers again.
    hub.state.fail.clear()
    retry = subprocess.run(
        [*HF_GRADINIT, "push", str(local), "--repo_id", REPO],
        env=client_env(hub, tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert retry.returncode == 0, retry.stderr[-3000:]
    assert EXPECTED_FILES <= set(hub.state.repos[REPO]["files"])


def test_bad_token_fails_before_the_search(hub, tmp_path):
    proc = run_client("search-and-push", hub, tmp_path, HF_TOKEN="hf_wrong")
    assert proc.returncode != 0
    assert "Cannot create or reach the Hub repo" in proc.stderr and "Check your token" in proc.stderr
    assert "HF_HUB_OFFLINE" not in proc.stderr  # online: the token is the cause to name
    assert not (tmp_path / "run" / "gradinit").exists()  # no work was done


def test_console_script_init_end_to_end(hub, tmp_path):
    data = tmp_path / "data.jsonl"
    with open(data, "w") as f:
        for i in range(60):
            f.write(
                json.dumps({"translation": {"de": f"das haus {i % 7} ist rot", "en": f"the house {i % 7} is red"}})
                + "\n"
            )
    out = tmp_path / "init"
    cmd = [
        *HF_GRADINIT,
        "init",
        "--model_type",
        "bart",
        "--config_overrides",
        "d_model=16,encoder_layers=1,decoder_layers=1,encoder_ffn_dim=32,decoder_ffn_dim=32,"
        "encoder_attention_heads=2,decoder_attention_heads=2",
        "--train_tokenizer",
        "--vocab_size",
        "60",
        "--train_file",
        str(data),
        "--source_lang",
        "de",
        "--target_lang",
        "en",
        "--output_dir",
        str(out),
        "--gradinit_iters",
        "3",
        "--per_device_train_batch_size",
        "6",
        "--report_to",
        "none",
        "--use_cpu",
        "--push_to_hub",
        "--hub_model_id",
        "tester/cli-init",
    ]
    proc = subprocess.run(cmd, env=client_env(hub, tmp_path), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert EXPECTED_FILES <= set(os.listdir(out / "gradinit"))
    repo = hub.state.repos["tester/cli-init"]
    assert EXPECTED_FILES <= set(repo["files"])
    meta = card_metadata(repo["files"]["README.md"].decode())
    assert meta["language"] == ["de", "en"]


def test_an_offline_push_names_offline_mode_and_keeps_the_checkpoint(tmp_path, monkeypatch):
    from huggingface_hub import constants

    from hf_gradinit import GradInitPushError, push_initialization_to_hub

    # Offline whatever the environment said (HF_HUB_OFFLINE=0 there must not turn this into a real push).
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    for name in ("config.json", "scales.json"):
        (tmp_path / name).write_text("{}")
    with pytest.raises(GradInitPushError) as error:
        push_initialization_to_hub(str(tmp_path), "you/repo")
    message = str(error.value)
    assert "HF_HUB_OFFLINE is set" in message and "Check your token" not in message
    assert "hf-gradinit push" in message and {p.name for p in tmp_path.iterdir()} == {"config.json", "scales.json"}
