"""§2V's cell for the authors' fairseq: the package's tokens and each seed's initial weights, in fairseq's forms.

Run with the package's Python. It builds the tokenizer, the tokenized splits and the model exactly as
`hf-gradinit compare` does with `benchmarks/tokenizer_runs.sh`'s flags (the paper's text preparation), and writes
under --out:

    text/{train,valid}.{de,en}   the package's token ids as their pieces, one sentence a line, without the `</s>`
                                 fairseq appends itself (truncated to 64 as the package truncates)
    dict.txt                     the tokenizer's pieces in id order: fairseq puts `<s> <pad> </s> <unk>` first, as the
                                 tokenizer does, so a fairseq row is the package's id
    tokenizer/                   the package's tokenizer (for model_parity.py)
    init/seed<S>.pt              the package's initial weights for seed S, converted (`hf_gradinit.fairseq_convert`),
                                 with their fingerprint (the one `compare` writes into compare_settings.json)

    python benchmarks/peer/export_cell.py --out runs/peer/cell --seeds 101 102
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch
from transformers import set_seed

from hf_gradinit.comparison import weights_fingerprint
from hf_gradinit.fairseq_convert import fairseq_rows, load_fairseq_weights_, to_fairseq
from hf_gradinit.translation import build_model, parse_translation_arguments, prepare

DATA = "runs/ding-heldout18"
# tokenizer_runs.sh's model and data flags (the training flags do not change the tokens or the weights).
CELL_FLAGS = [
    "--model_type", "transformer", "--init", "fairseq", "--train_tokenizer", "--vocab_size", "10000",
    "--tokenizer_preprocessing", "paper",
    "--config_overrides",
    "d_model=128,encoder_layers=6,decoder_layers=6,encoder_ffn_dim=512,decoder_ffn_dim=512,"
    "encoder_attention_heads=4,decoder_attention_heads=4,dropout=0.1,attention_dropout=0.1,activation_dropout=0.1",
    "--train_file", f"{DATA}/train.jsonl", "--validation_file", f"{DATA}/validation.jsonl",
    "--source_lang", "de", "--target_lang", "en", "--max_source_length", "64", "--max_target_length", "64",
    "--do_train", "--do_eval", "--use_cpu", "--report_to", "none",
]  # fmt: skip
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]  # fairseq's Dictionary puts these first, in this order


def max_positions(data_args) -> int:
    return max(data_args.max_source_length, data_args.max_target_length) + 2  # as prepare()


def cell_model(model_args, data_args, tokenizer, seed: int, cell: str):
    """The package's model of the cell with seed S's initial weights read back from `cell/init/seed<S>.pt`; raises
    unless they are the weights `compare` started from (its fingerprint)."""
    model = build_model(model_args, tokenizer, data_args.source_lang, data_args.target_lang, max_positions(data_args))
    load_fairseq_weights_(model, torch.load(f"{cell}/init/seed{seed}.pt")["model"])
    expected = json.load(open(f"{cell}/init/fingerprints.json"))[str(seed)]
    if weights_fingerprint(model) != expected:
        raise SystemExit(f"seed {seed}: the weights converted back are not compare's ({expected})")
    return model


def cell_example(tokenizer, source: str, target: str) -> dict:
    """One pair of `text/` lines (pieces without `</s>`) as the package's collator takes it."""
    s = tokenizer.convert_tokens_to_ids(source.split()) + [tokenizer.eos_token_id]
    t = tokenizer.convert_tokens_to_ids(target.split()) + [tokenizer.eos_token_id]
    return {"input_ids": s, "attention_mask": [1] * len(s), "labels": t}


def write_split(split, tokenizer, prefix: str) -> int:
    pieces = tokenizer.convert_ids_to_tokens
    eos = tokenizer.eos_token_id
    with open(f"{prefix}.de", "w", encoding="utf-8") as src, open(f"{prefix}.en", "w", encoding="utf-8") as tgt:
        for row in split:
            for ids, out in ((row["input_ids"], src), (row["labels"], tgt)):
                if ids[-1] != eos:
                    raise ValueError(f"{prefix}: a sentence that does not end with </s>: {ids[-5:]}")
                out.write(" ".join(pieces(ids[:-1])) + "\n")
    return len(split)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    options = parser.parse_args(argv)
    os.makedirs(f"{options.out}/text", exist_ok=True)
    os.makedirs(f"{options.out}/init", exist_ok=True)
    model_args, data_args, args = parse_translation_arguments(
        CELL_FLAGS + ["--output_dir", f"{options.out}/unused", "--seed", str(options.seeds[0])]
    )
    set_seed(args.seed)  # as compare: before the model is built
    tokenizer, model, tokenized = prepare(model_args, data_args, args)
    vocab = tokenizer.get_vocab()
    symbols = [tokenizer.convert_ids_to_tokens(i) for i in range(len(vocab))]
    if symbols[: len(SPECIALS)] != SPECIALS:
        raise ValueError(f"the tokenizer's first ids are {symbols[:4]}, not fairseq's {SPECIALS}")
    if any(len(s.split()) != 1 for s in symbols):
        raise ValueError("a piece holds whitespace: fairseq would split it")
    rows = fairseq_rows(vocab, symbols)
    with open(f"{options.out}/dict.txt", "w", encoding="utf-8") as f:
        f.writelines(f"{s} 1\n" for s in symbols[len(SPECIALS) :])
    sizes = {
        "train": write_split(tokenized["train"], tokenizer, f"{options.out}/text/train"),
        "valid": write_split(tokenized["validation"], tokenizer, f"{options.out}/text/valid"),
    }
    print(f"vocabulary {len(symbols)}, sentences {sizes}")
    tokenizer.save_pretrained(f"{options.out}/tokenizer")
    fingerprints = {}
    for seed in options.seeds:
        # Training the tokenizer draws nothing from torch's stream: seeding right before the model is the same as
        # compare's seeding before prepare() (the fingerprints match compare_settings.json's).
        set_seed(seed)
        model = build_model(
            model_args, tokenizer, data_args.source_lang, data_args.target_lang, max_positions(data_args)
        )
        fingerprints[seed] = weights_fingerprint(model)
        torch.save({"model": to_fairseq(model.state_dict(), rows)}, f"{options.out}/init/seed{seed}.pt")
        print(f"seed {seed}: initial weights {fingerprints[seed]}")
    with open(f"{options.out}/init/fingerprints.json", "w") as f:
        json.dump(fingerprints, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
