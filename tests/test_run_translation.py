"""examples/translation/run_translation.py end to end on a tiny generated corpus, from scratch."""

import gzip
import json
import os
import random
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "examples", "translation", "run_translation.py")

# A toy language pair: each German word has one English word, and the word order is kept.
LEXICON = {
    "der": "the",
    "hund": "dog",
    "katze": "cat",
    "sieht": "sees",
    "mag": "likes",
    "ein": "a",
    "haus": "house",
    "baum": "tree",
    "rot": "red",
    "gross": "big",
    "klein": "small",
    "und": "and",
    "nicht": "not",
    "ist": "is",
}


def write_corpus(folder, n, seed, gz=False):
    rng = random.Random(seed)
    words = sorted(LEXICON)
    path = os.path.join(folder, f"part-{seed}.jsonl" + (".gz" if gz else ""))
    opener = gzip.open if gz else open
    with opener(path, "wt", encoding="utf-8") as f:
        for _ in range(n):
            de = [rng.choice(words) for _ in range(rng.randint(3, 7))]
            pair = {"de": " ".join(de).capitalize() + ".", "en": " ".join(LEXICON[w] for w in de).capitalize() + "."}
            f.write(json.dumps({"translation": pair}) + "\n")
    return path


def run(args, cwd):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_DISABLED": "true"}
    return subprocess.run(
        [sys.executable, SCRIPT, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def base_args(tmp_path, train, valid, test, out):
    return [
        "--model_type",
        "bart",
        "--config_overrides",
        "d_model=32,encoder_layers=2,decoder_layers=2,encoder_ffn_dim=64,decoder_ffn_dim=64,"
        "encoder_attention_heads=2,decoder_attention_heads=2",
        "--train_tokenizer",
        "--vocab_size",
        "120",
        "--train_file",
        train,
        "--validation_file",
        valid,
        "--test_file",
        test,
        "--source_lang",
        "de",
        "--target_lang",
        "en",
        "--max_source_length",
        "24",
        "--max_target_length",
        "24",
        "--output_dir",
        out,
        "--do_train",
        "--do_eval",
        "--do_predict",
        "--predict_with_generate",
        "--num_beams",
        "2",
        "--num_train_epochs",
        "1",
        "--per_device_train_batch_size",
        "16",
        "--per_device_eval_batch_size",
        "16",
        "--learning_rate",
        "3e-3",
        "--adam_beta2",
        "0.98",
        "--label_smoothing_factor",
        "0.1",
        "--gradinit_iters",
        "8",
        "--gradinit_batch_size",
        "24",
        "--gradinit_lr",
        "5e-2",
        "--logging_steps",
        "4",
        "--save_strategy",
        "no",
        "--report_to",
        "none",
        "--use_cpu",
        "--seed",
        "1",
    ]


@pytest.mark.parametrize("model_type,init", [("bart", "model"), ("fsmt", "model"), ("transformer", "fairseq")])
def test_from_scratch_with_trained_tokenizer(tmp_path, model_type, init):
    data = tmp_path / "toy-de-en"
    data.mkdir()
    train = write_corpus(data, 320, seed=0, gz=True)
    valid, test = write_corpus(data, 24, seed=1), write_corpus(data, 24, seed=2)
    out = str(tmp_path / "out")
    args = base_args(tmp_path, train, valid, test, out)
    args[args.index("--model_type") + 1] = model_type  # FSMT needs decoder_input_ids built from the labels
    args += ["--init", init]
    proc = run(args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    # where the initialized checkpoint and the search's records are, said on the console
    assert f"the initialized model, its scales.json and model card are in {os.path.join(out, 'gradinit')}" in (
        proc.stdout + proc.stderr
    )
    assert "GradInit search: 8 iterations" in proc.stdout + proc.stderr  # the search's report

    with open(os.path.join(out, "all_results.json")) as f:
        results = json.load(f)
    for key in ("eval_bleu", "eval_chrf", "predict_bleu", "train_loss"):
        assert isinstance(results[key], float), key
    with open(os.path.join(out, "generated_predictions.txt")) as f:
        assert len(f.read().splitlines()) == 24
    with open(os.path.join(out, "gradinit", "scales.json")) as f:
        scales = json.load(f)
    assert any(abs(t["scale"] - 1) > 1e-3 for t in scales["tensors"].values())
    assert scales["initialization"] == init
    with open(os.path.join(out, "gradinit", "README.md")) as f:
        assert f"The search started from {'fairseq' if init == 'fairseq' else 'the model'}" in f.read()
    for name in ("model.safetensors", "tokenizer.json", "config.json", "README.md"):
        assert os.path.exists(os.path.join(out, name)), name
    with open(os.path.join(out, "README.md")) as f:
        card = f.read()
    # the training file, by its name; a local file is not a Hub dataset, and its folder's name is not the data's
    assert f"trained from scratch on `{os.path.basename(train)}`" in card and "fine-tuned version of []" not in card
    assert "datasets:" not in card and "toy-de-en" not in card
    assert "library_name: transformers" in card and "- gradinit" in card


@pytest.mark.parametrize(
    "change,message",
    [
        ({"--train_file": "missing.jsonl"}, "--train_file missing.jsonl: no such file"),
        ({"--source_lang": "fr"}, "line 1: translation.fr is missing"),
        ({"--model_type": "t5"}, "invalid choice: 't5'"),
    ],
)
def test_bad_input_fails_with_a_clear_message(tmp_path, change, message, monkeypatch, capsys):
    data = tmp_path / "d"
    data.mkdir()
    train = write_corpus(data, 20, seed=0)
    args = base_args(tmp_path, train, train, train, str(tmp_path / "out"))
    for flag, value in change.items():
        args[args.index(flag) + 1] = value
    if "--train_file" in change:  # the command line, as a user meets it: a non-zero exit and the message on stderr
        proc = run(args, cwd=tmp_path)
        assert proc.returncode != 0
        assert message in proc.stderr, proc.stderr[-3000:]
    else:  # the same main() in this process: no new interpreter for each message
        sys.path.insert(0, os.path.dirname(SCRIPT))
        import run_translation

        monkeypatch.chdir(tmp_path)
        monkeypatch.setattr(sys, "argv", [SCRIPT, *args])
        with pytest.raises((SystemExit, ValueError)) as failure:
            run_translation.main()
        assert message in str(failure.value) + capsys.readouterr().err
    assert not os.path.exists(tmp_path / "out" / "gradinit")


def test_a_users_mistake_is_one_line_and_exit_status_2(tmp_path):
    proc = run(
        [
            "--model_type",
            "bart",
            "--train_tokenizer",
            "--train_file",
            "missing.jsonl",
            "--source_lang",
            "de",
            "--target_lang",
            "en",
            "--output_dir",
            str(tmp_path / "out"),
            "--do_train",
        ],
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last == "run_translation.py: error: --train_file missing.jsonl: no such file."
