#!/usr/bin/env python
"""Write the Ding corpus with BENCHMARKS.md §2P's held-out pairs taken out of training, as JSON lines files that
`hf-gradinit compare` and `run_translation.py` read.

    python benchmarks/heldout_split.py --data_dir ../shared/data/ding-de-en --out runs/ding-heldout18

Of the training pairs that are full sentences (both sides end in . ? or ! and have at least 3 words: the validation
file's rule), the 18th, 36th, … in file order are held out (§2P's `--heldout_every 18`: 1,001 pairs); every other
pair stays in training, in file order. Writes train.jsonl (227,134 pairs), test.jsonl (the held-out pairs) and
validation.jsonl (a copy).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil


def is_sentence_pair(de: str, en: str) -> bool:
    """The validation file's rule for a full sentence pair: both sides end in . ? or ! and have at least 3 words."""
    return all(side.rstrip()[-1:] in (".", "?", "!") and len(side.split()) >= 3 for side in (de, en))


def split(items, every: int, pair=lambda item: item) -> tuple[list, list]:
    """(training items, held-out items): of the items whose `pair(item)` = (de, en) is a sentence pair, the
    `every`-th, 2·`every`-th, ... in order are held out; every other item stays in training, in its order."""
    train, heldout, sentences = [], [], 0
    for item in items:
        if is_sentence_pair(*pair(item)):
            sentences += 1
            if sentences % every == 0:
                heldout.append(item)
                continue
        train.append(item)
    return train, heldout


def _de_en(line: str) -> tuple[str, str]:
    pair = json.loads(line)["translation"]
    return pair["de"], pair["en"]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data_dir", required=True, help="the folder of train.jsonl.gz and validation.jsonl")
    p.add_argument("--out", required=True)
    p.add_argument("--every", type=int, default=18)
    a = p.parse_args(argv)
    with gzip.open(os.path.join(a.data_dir, "train.jsonl.gz"), "rt", encoding="utf-8") as f:
        train, heldout = split([line for line in f if line.strip()], a.every, _de_en)
    os.makedirs(a.out, exist_ok=True)
    for name, lines in (("train.jsonl", train), ("test.jsonl", heldout)):
        with open(os.path.join(a.out, name), "w", encoding="utf-8") as f:
            f.writelines(line if line.endswith("\n") else line + "\n" for line in lines)
    shutil.copy(os.path.join(a.data_dir, "validation.jsonl"), os.path.join(a.out, "validation.jsonl"))
    print(f"{a.out}: {len(train):,} training pairs, {len(heldout):,} held out")


if __name__ == "__main__":
    main()
