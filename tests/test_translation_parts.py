"""Pieces of the translation example: model building, tokenizer training, argument checks."""

import logging

import pytest
from transformers import T5Config, T5ForConditionalGeneration

from hf_gradinit.translation import ModelArguments, build_model, train_tokenizer


def test_non_post_ln_pretrained_model_gets_a_warning_not_a_refusal(tmp_path, caplog):
    T5ForConditionalGeneration(
        T5Config(vocab_size=50, d_model=16, d_ff=32, num_layers=1, num_heads=2, d_kv=8)
    ).save_pretrained(tmp_path)
    with caplog.at_level(logging.WARNING, logger="hf_gradinit"):
        model = build_model(ModelArguments(model_name_or_path=str(tmp_path)), None, "de", "en")
    assert model.config.model_type == "t5"
    assert "not a Post-LN model" in caplog.text


@pytest.mark.parametrize("kind", ["bpe", "unigram"])
def test_trained_tokenizer_round_trips_and_ends_with_eos(kind):
    texts = ["Das Haus ist rot.", "The house is red.", "Der Hund schläft.", "The dog sleeps."] * 20
    tok = train_tokenizer(texts, kind, vocab_size=80)
    ids = tok("Das Haus ist rot.")["input_ids"]
    assert ids[-1] == tok.eos_token_id
    assert tok.decode(ids, skip_special_tokens=True) == "Das Haus ist rot."
    assert (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)


def test_model_arguments_refuse_inconsistent_choices():
    with pytest.raises(ValueError, match="--model_name_or_path.*--model_type"):
        ModelArguments()
    with pytest.raises(ValueError, match="--config_overrides"):
        ModelArguments(model_name_or_path="x", config_overrides="d_model=8")
    with pytest.raises(ValueError, match="--model_type 'gpt2'"):
        ModelArguments(model_type="gpt2", train_tokenizer=True)


def test_a_tokenizer_the_caller_made_needs_no_tokenizer_flag_but_the_command_line_needs_one(tmp_path, monkeypatch):
    """`build_model(ModelArguments(model_type=...), tokenizer, ...)` with a tokenizer of one's own (the Quick start's
    way) takes no --train_tokenizer; the command line, which has no tokenizer but what its flags name, refuses
    flags that name none before it reads any data."""
    from helpers import tiny_tokenizer

    from hf_gradinit.translation import build_model, prepare
    from hf_gradinit.translation import setup as setup_module

    model = build_model(ModelArguments(model_type="transformer", init="fairseq"), tiny_tokenizer(), "de", "en")
    assert model.config.vocab_size == len(tiny_tokenizer())
    model_args, data_args, args = _parse(tmp_path)
    model_args.train_tokenizer = False
    monkeypatch.setattr(setup_module, "load_raw_datasets", lambda *a, **k: pytest.fail("data read before the check"))
    with pytest.raises(ValueError, match="needs a tokenizer: pass --train_tokenizer or --tokenizer_name"):
        prepare(model_args, data_args, args)


def _parse(tmp_path, *flags):
    from hf_gradinit.translation import parse_translation_arguments

    train = tmp_path / "train.jsonl"
    train.write_text('{"translation": {"de": "ja", "en": "yes"}}\n')
    base = [
        "--model_type",
        "transformer",
        "--train_tokenizer",
        "--train_file",
        str(train),
        "--source_lang",
        "de",
        "--target_lang",
        "en",
        "--output_dir",
        str(tmp_path / "out"),
        "--report_to",
        "none",
    ]
    return parse_translation_arguments(base + list(flags))


def test_iwslt14_preset_sets_the_papers_training_flags_unless_given(tmp_path):
    _, _, plain = _parse(tmp_path)
    model_args, _, args = _parse(tmp_path, "--preset", "iwslt14", "--learning_rate", "1e-3", "--gradinit_iters=50")
    assert model_args.preset == "iwslt14"
    assert (args.learning_rate, args.gradinit_iters) == (1e-3, 50)  # explicit flags win
    assert (args.adam_beta1, args.adam_beta2, args.weight_decay, args.label_smoothing_factor) == (0.9, 0.98, 1e-4, 0.1)
    assert args.max_grad_norm == 0.0 and plain.max_grad_norm == 1.0  # no clipping, as the paper's --clip-norm 0
    assert args.lr_scheduler_type == "linear" and args.warmup_steps == 0
    assert (args.gradinit_lr, args.gradinit_beta2, args.gradinit_max_scale) == (2.5e-3, 0.98, 100.0)
    # η follows the lr: 2 × the user's 1e-3, and 2 × the preset's own 5e-4 (the paper's 1e-3)
    assert args.gradinit_eta == 2e-3 and _parse(tmp_path, "--preset", "iwslt14")[2].gradinit_eta == 1e-3
    assert (args.max_tokens, args.gradinit_max_tokens) == (4096, 6000) and plain.max_tokens is None
    assert (args.search_max_tokens, plain.search_max_tokens) == (6000, None)


def test_iwslt14_preset_budgets_give_way_to_given_sizes(tmp_path):
    _, _, args = _parse(tmp_path, "--preset", "iwslt14", "--max_tokens", "2000", "--gradinit_batch_size=64")
    assert (args.max_tokens, args.gradinit_max_tokens, args.gradinit_batch_size) == (2000, None, 64)
    # Batches given in rows: the search's batches are rows too, not the preset's 6,000 tokens.
    _, _, args = _parse(tmp_path, "--preset", "iwslt14", "--per_device_train_batch_size", "32")
    assert (args.max_tokens, args.per_device_train_batch_size, args.gradinit_max_tokens) == (None, 32, None)
    assert args.search_max_tokens is None


def test_iwslt14_preset_in_a_json_file(tmp_path):
    import json

    from hf_gradinit.translation import parse_translation_arguments

    train = tmp_path / "train.jsonl"
    train.write_text('{"translation": {"de": "ja", "en": "yes"}}\n')
    path = tmp_path / "args.json"
    path.write_text(
        json.dumps(
            {
                "model_type": "transformer",
                "init": "fairseq",
                "preset": "iwslt14",
                "train_tokenizer": True,
                "train_file": str(train),
                "source_lang": "de",
                "target_lang": "en",
                "output_dir": str(tmp_path / "o"),
                "weight_decay": 0.0,
            }
        )
    )
    model_args, _, args = parse_translation_arguments([str(path)])
    assert model_args.init == "fairseq" and args.weight_decay == 0.0 and args.max_grad_norm == 0.0
    assert (args.max_tokens, args.gradinit_max_tokens) == (4096, 6000)


def _data_args(**kw):
    from hf_gradinit.translation import DataTrainingArguments

    return DataTrainingArguments(**{"source_lang": "de", "target_lang": "en", **kw})


@pytest.mark.parametrize(
    "lines,message",
    [
        (
            ['{"translation": {"de": "ja", "en": "yes"}}', '{"translation": {"de": "nein", "en": }'],
            "line 2: not valid JSON",
        ),
        (
            ['{"translation": {"de": "ja", "en": "yes"}}', '{"translation": {"de": "nein"}}'],
            "line 2: translation.en is missing",
        ),
        (
            ['{"translation": {"de": "ja", "en": "yes"}}', '{"translation": {"de": null, "en": "no"}}'],
            "line 2: translation.de is null",
        ),
        (['{"translation": {"de": "ja", "en": "yes"}}', '["de", "en"]'], "line 2: expected"),
        ([], "no examples (the file is empty)"),
    ],
)
def test_every_line_of_a_data_file_is_checked_before_any_work(tmp_path, lines, message):
    from hf_gradinit.translation import load_raw_datasets

    path = tmp_path / "train.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    with pytest.raises(ValueError, match=f"--train_file {path}.*{message}".replace("(", r"\(").replace(")", r"\)")):
        load_raw_datasets(_data_args(train_file=str(path)))


def test_pairs_with_an_empty_side_are_dropped_and_counted(tmp_path, caplog):
    from hf_gradinit.translation import load_raw_datasets

    path = tmp_path / "train.jsonl"
    path.write_text(
        '{"translation": {"de": "ja", "en": "yes"}}\n{"translation": {"de": " ", "en": "no"}}\n'
        '{"translation": {"de": "gut", "en": ""}}\n'
    )
    with caplog.at_level(logging.WARNING):
        raw = load_raw_datasets(_data_args(train_file=str(path)))
    assert [r["translation"]["de"] for r in raw["train"]] == ["ja"]
    assert "dropped 2 of 3 pairs" in caplog.text


@pytest.mark.parametrize(
    "kw,message",
    [
        ({"target_lang": "de"}, "both 'de'"),
        ({"max_source_length": 0}, "--max_source_length must be a positive"),
        ({"max_target_length": -5}, "--max_target_length must be a positive"),
    ],
)
def test_data_arguments_refuse_what_cannot_train(tmp_path, kw, message):
    path = tmp_path / "train.jsonl"
    path.write_text('{"translation": {"de": "ja", "en": "yes"}}\n')
    with pytest.raises(ValueError, match=message):
        _data_args(train_file=str(path), **kw)


def test_lengths_leave_room_for_text(tmp_path):
    from hf_gradinit.translation import load_raw_datasets, tokenize_datasets

    path = tmp_path / "train.jsonl"
    path.write_text('{"translation": {"de": "ja", "en": "yes"}}\n' * 20)
    args = _data_args(train_file=str(path), max_target_length=1)
    tok = train_tokenizer(["ja yes"] * 20, "bpe", vocab_size=40)
    with pytest.raises(ValueError, match="--max_target_length 1 leaves no room"):
        tokenize_datasets(load_raw_datasets(args), tok, args, lambda desc: __import__("contextlib").nullcontext())


def test_the_documented_iwslt14_json_is_the_papers_setting():
    import os

    from hf_gradinit.translation import parse_translation_arguments

    path = os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "translation", "iwslt14.json"
    )
    model_args, data_args, args = parse_translation_arguments([path])
    assert (model_args.model_type, model_args.init, model_args.preset) == ("transformer", "fairseq", "iwslt14")
    assert args.max_grad_norm == 0.0 and args.lr_scheduler_type == "linear" and args.warmup_steps == 0
    assert (args.gradinit_iters, args.gradinit_lr, args.gradinit_max_scale) == (780, 2.5e-3, 100.0)
    assert (args.max_tokens, args.gradinit_max_tokens, args.gradinit_batch_size) == (4096, 6000, None)


def _splits(**columns):
    from datasets import Dataset, DatasetDict

    return DatasetDict({"train": Dataset.from_dict(columns)})


@pytest.mark.parametrize(
    "columns,kw,message",
    [
        ({"translation": [{"de": "a", "en": "b"}, {"de": "c", "en": None}]}, {}, "row 1: translation.en is null"),
        ({"translation": [{"de": "a", "en": "b"}, None]}, {}, "row 1: translation.de is null"),
        ({"translation": [{"de": "a", "fr": "b"}]}, {}, "language 'en' is missing: its translation pairs hold"),
        ({"de": ["a"], "en": ["b"]}, {}, "no 'translation' column.*--source_column de --target_column en"),
        ({"translation": ["a b"]}, {}, "'translation' holds string, not pairs"),
        (
            {"src": ["a"], "tgt": ["b"]},
            {"source_column": "src", "target_column": "en"},
            r"no column 'en' \(--target_column\)",
        ),
        (
            {"src": ["a", "b"], "tgt": [1, 2]},
            {"source_column": "src", "target_column": "tgt"},
            "tgt holds int64, not text",
        ),
        (
            {"src": ["a", None, "c"], "tgt": ["x", "y", "z"]},
            {"source_column": "src", "target_column": "tgt"},
            "row 1: src is null",
        ),
        ({"translation": []}, {}, "the split is empty"),
        # a selection: the row numbers are the selection's, not the file's
        (
            {"translation": [{"de": "a", "en": None}, {"de": "b", "en": "c"}, {"de": "d", "en": None}]},
            {"select": [1, 2, 0]},
            "row 1: translation.en is null",
        ),
    ],
)
def test_every_row_of_hub_data_is_checked_with_the_split_row_and_field(tmp_path, columns, kw, message):
    from hf_gradinit.translation.data import check_splits

    path = tmp_path / "unused.jsonl"
    path.write_text('{"translation": {"de": "ja", "en": "yes"}}\n')
    select = kw.pop("select", None)
    raw = (
        _splits(**columns)
        if columns.get("translation") != []
        else _splits(translation=[{"de": "a", "en": "b"}]).filter(lambda r: False)
    )
    if select:
        raw["train"] = raw["train"].select(select)
    with pytest.raises(ValueError, match=f"--dataset_name x/y, train split.*{message}"):
        check_splits(raw, _data_args(train_file=str(path), **kw), "--dataset_name x/y")


def test_local_files_with_one_column_per_language(tmp_path):
    from hf_gradinit.translation import load_raw_datasets

    path = tmp_path / "train.jsonl"
    path.write_text(
        '{"id": 1, "src": "ja", "tgt": "yes"}\n{"id": 2, "src": "nein", "tgt": "no"}\n{"id": 3, "src": "", "tgt": '
        '"x"}\n'
    )
    raw = load_raw_datasets(_data_args(train_file=str(path), source_column="src", target_column="tgt"))
    assert raw["train"].column_names == ["translation"]
    assert raw["train"]["translation"] == [
        {"de": "ja", "en": "yes"},
        {"de": "nein", "en": "no"},
    ]  # the empty pair dropped
    path.write_text('{"src": "ja", "tgt": "yes"}\n{"src": "nein"}\n')
    with pytest.raises(ValueError, match=r"train.jsonl, line 2: tgt is missing \(the row holds \['src'\]\)"):
        load_raw_datasets(_data_args(train_file=str(path), source_column="src", target_column="tgt"))
    with pytest.raises(ValueError, match="--source_column and --target_column go together"):
        _data_args(train_file=str(path), source_column="src")


def test_the_papers_preprocessing_lowercases_and_splits_punctuation_off_the_words_reversibly():
    """`preprocessing="paper"`: what Moses tokenization and lowercasing do to fairseq's IWSLT'14 data, with the
    text restored (lowercased) on decoding; the default keeps punctuation on its word and the case."""
    import unicodedata

    from helpers import translation_pairs

    from hf_gradinit.translation import train_tokenizer

    texts = [t for pair in translation_pairs(200) for t in pair] + ["Kabel r innen; (gut)... Ja!"] * 20
    paper = train_tokenizer(texts, vocab_size=300, preprocessing="paper")
    default = train_tokenizer(texts, vocab_size=300)

    def is_punctuation(char):
        return unicodedata.category(char).startswith("P")

    sentence = texts[0] + " Kabel r innen; (GUT)... Ja!"  # characters the tokenizer saw in training
    pieces = [p.lstrip("▁") for p in paper.tokenize(sentence)]
    assert all(not (any(map(is_punctuation, p)) and any(c.isalpha() for c in p)) for p in pieces), pieces
    assert paper.tokenize("Kabel") == paper.tokenize("kabel") and not any(c.isupper() for c in "".join(pieces))
    assert paper.decode(paper(sentence)["input_ids"], skip_special_tokens=True) == sentence.lower()
    glued = [p.lstrip("▁") for p in default.tokenize("Kabel r innen;")]
    assert any(any(map(is_punctuation, p)) and any(c.isalpha() for c in p) for p in glued), glued
    with pytest.raises(ValueError, match="preprocessing must be one of"):
        train_tokenizer(texts, preprocessing="moses")
