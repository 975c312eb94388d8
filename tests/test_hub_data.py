"""The Hub data path through the real `datasets` and `huggingface_hub` clients, against tests/hub_server.py:
the README's IWSLT'14 dataset name and revision (from iwslt14.json), the layouts Hub datasets come in, a
script-based name, and the trained model pushed and loaded back."""

import io
import json
import os
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from helpers import HF_GRADINIT
from hub_server import client_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "examples", "translation", "run_translation.py")
WORDS = {"der": "the", "hund": "dog", "katze": "cat", "sieht": "sees", "haus": "house", "rot": "red", "klein": "small"}


def pairs(n, seed):
    words = sorted(WORDS)
    out = []
    for i in range(n):
        de = [words[(seed + i * 3 + k * 5) % len(words)] for k in range(3 + i % 4)]
        out.append({"de": " ".join(de), "en": " ".join(WORDS[w] for w in de)})
    return out


def parquet(rows):
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer)
    return buffer.getvalue()


def tiny_model_args(out):
    return [
        "--model_type",
        "transformer",
        "--init",
        "fairseq",
        "--config_overrides",
        "d_model=16,encoder_layers=1,decoder_layers=1,encoder_ffn_dim=32,decoder_ffn_dim=32,"
        "encoder_attention_heads=2,decoder_attention_heads=2",
        "--train_tokenizer",
        "--vocab_size",
        "60",
        "--source_lang",
        "de",
        "--target_lang",
        "en",
        "--max_source_length",
        "16",
        "--max_target_length",
        "16",
        "--output_dir",
        str(out),
        "--gradinit_iters",
        "2",
        "--gradinit_batch_size",
        "12",
        "--per_device_train_batch_size",
        "8",
        "--report_to",
        "none",
        "--use_cpu",
        "--seed",
        "1",
    ]


def serve_documented_iwslt14(hub):
    """The dataset name and revision of iwslt14.json, served in the layout of the Hub's Parquet export of it:
    <config>/<split>/0000.parquet with a `translation` column; reachable at that commit and at the branch."""
    with open(os.path.join(ROOT, "examples", "translation", "iwslt14.json")) as f:
        documented = json.load(f)
    name, revision = documented["dataset_name"], documented["dataset_revision"]
    assert "dataset_config_name" not in documented
    files = {
        f"de-en/{split}/0000.parquet": parquet([{"translation": p} for p in pairs(n, seed)])
        for split, n, seed in (("train", 48, 0), ("validation", 8, 1), ("test", 8, 2))
    }
    hub.add_dataset(
        name,
        {**files, ".gitattributes": b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"},
        revisions=("refs/convert/parquet",),
        sha=revision,
    )
    return name, revision


def test_the_documented_iwslt14_dataset_trains_and_the_model_is_pushed_and_loads_back(hub, tmp_path):
    name, revision = serve_documented_iwslt14(hub)
    out = tmp_path / "out"
    args = [
        *tiny_model_args(out),
        "--dataset_name",
        name,
        "--dataset_revision",
        revision,
        "--do_train",
        "--do_eval",
        "--do_predict",
        "--predict_with_generate",
        "--num_beams",
        "1",
        "--per_device_eval_batch_size",
        "8",
        "--max_steps",
        "2",
        "--save_strategy",
        "no",
        "--push_to_hub",
        "--hub_model_id",
        "tester/iwslt14-tiny",
    ]
    proc = subprocess.run(
        [sys.executable, SCRIPT, *args],
        cwd=tmp_path,
        env=client_env(hub, tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-4000:]
    assert f"GET /datasets/{name}/resolve/{revision}/de-en/train/0000.parquet" in hub.state.log

    results = json.loads((out / "all_results.json").read_text())
    assert results["train_samples"] == 48 and results["eval_samples"] == 8 and results["predict_samples"] == 8
    assert isinstance(results["predict_bleu"], float)

    pushed = hub.state.repos["tester/iwslt14-tiny"]["files"]
    assert {"model.safetensors", "config.json", "tokenizer.json", "README.md", "gradinit/scales.json"} <= set(
        pushed
    ), set(pushed)
    card = pushed["README.md"].decode()
    assert yaml.safe_load(card.split("---")[1])["datasets"] == [name]
    # The pushed files load back with from_pretrained and hold the weights trained here.
    check = (
        "import sys, torch; from safetensors.torch import load_file\n"
        "from transformers import AutoModelForSeq2SeqLM, AutoTokenizer\n"
        "model = AutoModelForSeq2SeqLM.from_pretrained('tester/iwslt14-tiny')\n"
        "tok = AutoTokenizer.from_pretrained('tester/iwslt14-tiny')\n"
        "local = load_file(sys.argv[1])\n"
        "state = model.state_dict()\n"
        "assert all(torch.equal(state[k], v) for k, v in local.items()), 'weights differ'\n"
        "assert tok('der hund').input_ids[-1] == tok.eos_token_id\n"
        "print('LOADED', len(local))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", check, str(out / "model.safetensors")],
        env=client_env(hub, tmp_path, HF_HOME=str(tmp_path / "fresh")),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert loaded.returncode == 0 and "LOADED" in loaded.stdout, loaded.stderr[-3000:]


def test_one_text_column_per_language_through_hf_gradinit_init(hub, tmp_path):
    rows = [{"id": i, "de": p["de"], "en": p["en"]} for i, p in enumerate(pairs(40, 3))]
    hub.add_dataset("tester/plain-de-en", {"data/train-00000-of-00001.parquet": parquet(rows)})
    out = tmp_path / "init"
    cmd = [
        *HF_GRADINIT,
        "init",
        *tiny_model_args(out),
        "--dataset_name",
        "tester/plain-de-en",
        "--source_column",
        "de",
        "--target_column",
        "en",
    ]
    proc = subprocess.run(cmd, env=client_env(hub, tmp_path), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert json.loads((out / "gradinit" / "scales.json").read_text())["iterations"] == 2


def load_in_client(hub, tmp_path, **data_args):
    """`load_raw_datasets` in a process of its own (HF_ENDPOINT is read when `datasets` is imported)."""
    code = (
        "import json, sys\n"
        "from hf_gradinit.translation import DataTrainingArguments, load_raw_datasets\n"
        "args = DataTrainingArguments(source_lang='de', target_lang='en', **json.loads(sys.argv[1]))\n"
        "try:\n"
        "    raw = load_raw_datasets(args)\n"
        "except ValueError as e:\n"
        "    print('ERROR', e); sys.exit(3)\n"
        "print(json.dumps({s: list(d['translation']) for s, d in raw.items()}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(data_args)],
        env=client_env(hub, tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode in (0, 3), proc.stderr[-3000:]
    return proc.stdout


def test_the_readme_command_line_form_of_the_iwslt14_dataset(hub, tmp_path):
    name, _ = serve_documented_iwslt14(hub)
    loaded = json.loads(load_in_client(hub, tmp_path, dataset_name=name, dataset_revision="refs/convert/parquet"))
    assert {split: len(rows) for split, rows in loaded.items()} == {"train": 48, "validation": 8, "test": 8}
    assert loaded["train"][0] == pairs(1, 0)[0]


def test_a_script_based_dataset_gets_a_message_that_says_what_to_use(hub, tmp_path):
    hub.add_dataset("tester/scripted", {"scripted.py": b"import datasets\n", "README.md": b"# scripted\n"})
    stdout = load_in_client(hub, tmp_path, dataset_name="tester/scripted")
    assert stdout.startswith(
        "ERROR --dataset_name tester/scripted (revision main) is built by a loading script (scripted.py)"
    )
    assert "--dataset_revision refs/convert/parquet" in stdout and "--train_file" in stdout


def test_the_parquet_export_config_is_its_folder(hub, tmp_path):
    files = {
        f"{config}/train/0000.parquet": parquet(
            [{"translation": {"de": f"{config} {i}", "en": f"x {i}"}} for i in range(3)]
        )
        for config in ("de-en", "fr-en")
    }
    files["fr-en/train/0000.parquet"] = parquet([{"translation": {"fr": "oui", "en": "yes"}}])
    hub.add_dataset("tester/exported", files, revisions=("refs/convert/parquet",))
    stdout = load_in_client(
        hub,
        tmp_path,
        dataset_name="tester/exported",
        dataset_config_name="de-en",
        dataset_revision="refs/convert/parquet",
    )
    assert json.loads(stdout) == {"train": [{"de": f"de-en {i}", "en": f"x {i}"} for i in range(3)]}


def test_a_null_in_hub_data_is_refused_with_split_row_and_field(hub, tmp_path):
    rows = [{"translation": {"de": "a", "en": "b"}}, {"translation": {"de": "c", "en": None}}]
    hub.add_dataset("tester/holey", {"data/train-00000-of-00001.parquet": parquet(rows)})
    stdout = load_in_client(hub, tmp_path, dataset_name="tester/holey")
    assert stdout.startswith(
        "ERROR --dataset_name tester/holey, train split, row 1: translation.en is null, not a string."
    )
