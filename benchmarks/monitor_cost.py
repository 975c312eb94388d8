#!/usr/bin/env python
"""What does the stability monitor cost next to the evaluation it joins? Time, side by side, in one process.

On §2V's model (fairseq's Transformer 6+6, d 128, ffn 512, fairseq init) and the 1,000 Ding validation sentences,
alternating, after one warm-up of each, median of --repeats:

    evaluation   `trainer.evaluate()` without the monitor (one forward pass over the evaluation set, eval_nll)
    monitor      `StabilityCallback.measure()`: two passes over its --rows rows, dropout off and on, with the
                 hidden states (what the monitor adds to every evaluation)

    python benchmarks/monitor_cost.py --data_dir ../shared/data/ding-de-en --threads 1
    python benchmarks/monitor_cost.py --tiny          # the shipped sample, a 1+1 model: a smoke test

Prints the two times and their ratio. `GradInitTrainer` attaches the monitor by default only if the ratio is at
most 0.15 (BENCHMARKS.md, "What the stability monitor costs").
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import datasets
import torch
from transformers import DataCollatorForSeq2Seq, set_seed

from hf_gradinit import GradInitConfig, GradInitTrainer, StabilityCallback
from hf_gradinit.translation import ModelArguments, build_model, train_tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(ROOT, "examples", "translation", "data", "tiny-de-en.jsonl")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", default=os.path.join("..", "shared", "data", "ding-de-en"))
    p.add_argument("--rows", type=int, default=256, help="the monitor's rows (its default)")
    p.add_argument("--eval_batch_size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--tiny", action="store_true")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    set_seed(0)
    path = SAMPLE if a.tiny else os.path.join(a.data_dir, "validation.jsonl")
    pairs = datasets.load_dataset("json", data_files=path, split="train")["translation"]
    tokenizer = train_tokenizer((s for t in pairs for s in (t["de"], t["en"])), "bpe", 300 if a.tiny else 8000)
    size = (
        "d_model=16,encoder_layers=1,decoder_layers=1,encoder_ffn_dim=32,decoder_ffn_dim=32"
        if a.tiny
        else (
            "d_model=128,encoder_layers=6,decoder_layers=6,encoder_ffn_dim=512,decoder_ffn_dim=512,"
            "encoder_attention_heads=4,decoder_attention_heads=4"
        )
    )
    model_args = ModelArguments(model_type="transformer", init="fairseq", train_tokenizer=True, config_overrides=size)
    model = build_model(model_args, tokenizer, "de", "en", max_positions=66)
    encoded = tokenizer([t["de"] for t in pairs], text_target=[t["en"] for t in pairs], max_length=64, truncation=True)
    evaluation = datasets.Dataset.from_dict(dict(encoded))
    args = GradInitConfig(
        output_dir=os.path.join("runs", "monitor_cost"),
        gradinit=False,
        per_device_eval_batch_size=a.eval_batch_size,
        use_cpu=True,
        report_to="none",
        disable_tqdm=True,
    )
    trainer = GradInitTrainer(
        model,
        args,
        eval_dataset=evaluation,
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100),
    )
    monitor = StabilityCallback(trainer, max_rows=a.rows)
    times = {"evaluation": [], "monitor": []}
    runs = {"evaluation": trainer.evaluate, "monitor": monitor.measure}
    for repeat in range(a.repeats + 1):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            if repeat:  # the first round warms up
                times[name].append(time.perf_counter() - start)
    evaluation_s, monitor_s = (statistics.median(times[k]) for k in ("evaluation", "monitor"))
    print(f"evaluation set: {len(evaluation)} rows; monitor: {min(a.rows, len(evaluation))} rows, dropout off and on")
    print(f"evaluation {evaluation_s:.2f} s, monitor {monitor_s:.2f} s (medians of {a.repeats})")
    print(f"monitor / evaluation = {monitor_s / evaluation_s:.3f}")


if __name__ == "__main__":
    main()
