"""Model parity: the package's `transformer` model and the authors' fairseq model, the same weights, one batch of
§2V's cell, eval mode. Two halves, one per Python:

    python benchmarks/peer/model_parity.py package --seed 101          # the package's Python: writes its side
    runs/peer/venv/bin/python benchmarks/peer/model_parity.py fairseq  # the authors' venv: compares, prints

The package's side loads the seed's converted initial weights back (`load_fairseq_weights_`; their fingerprint must
be the one `compare` recorded), runs the first 16 validation sentences (right-padded, as the package's collator
pads) and keeps the logits at every target token, the label-smoothed loss as the Trainer computes it
(`LabelSmoother`, ε over all V classes) and fairseq's formula (ε over the V − 1 wrong classes) on the same logits.
It runs twice: with the package's own position table, and with the table replaced by fairseq's sinusoids (written
out here from fairseq's formula: frequencies 10000^(−i/(d/2−1)), positions counted from padding_idx + 1 = 2), so
that a difference the positions explain is told apart from any other.

The fairseq side builds `transformer_iwslt_de_en` with runs.sh's flags, loads the same weights, runs the same
sentences as fairseq batches them (left-padded source) and prints, for each package variant, the largest relative
difference of the logits and of the loss.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

import torch

PEER = "runs/peer"
SENTENCES = 16
EPSILON = 0.1


def fairseq_sinusoids(rows: int, dim: int, padding_idx: int = 1) -> torch.Tensor:
    """The package's table (positions 0, 1, …) with fairseq's values: fairseq's row p + padding_idx + 1."""
    half = dim // 2
    freq = torch.exp(torch.arange(half, dtype=torch.float) * -(math.log(10000) / (half - 1)))
    positions = torch.arange(rows, dtype=torch.float) + padding_idx + 1
    angles = positions[:, None] * freq[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


def use_fairseq_positions_(model) -> None:
    """Write fairseq's sinusoids into the package model's (frozen) position tables, in place."""
    for positions in (model.model.encoder.embed_positions, model.model.decoder.embed_positions):
        positions.weight.data.copy_(fairseq_sinusoids(*positions.weight.shape))


def fairseq_smoothed_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    lprobs = torch.log_softmax(logits.double(), dim=-1)
    nll = -lprobs.gather(-1, target[:, None]).squeeze(-1)
    smooth = -lprobs.sum(-1)
    eps_i = EPSILON / (lprobs.shape[-1] - 1)
    return ((1 - EPSILON - eps_i) * nll + eps_i * smooth).sum()


def package_side(seed: int) -> None:
    from export_cell import CELL_FLAGS, cell_example, cell_model
    from transformers import AutoTokenizer, DataCollatorForSeq2Seq
    from transformers.trainer_pt_utils import LabelSmoother

    from hf_gradinit.translation import parse_translation_arguments

    cell = f"{PEER}/cell"
    tokenizer = AutoTokenizer.from_pretrained(f"{cell}/tokenizer")
    model_args, data_args, _ = parse_translation_arguments(CELL_FLAGS + ["--output_dir", f"{PEER}/unused"])
    model = cell_model(model_args, data_args, tokenizer, seed, cell).eval()

    def lines(path):
        return open(path, encoding="utf-8").read().splitlines()[:SENTENCES]

    pairs = zip(lines(f"{cell}/text/valid.de"), lines(f"{cell}/text/valid.en"))
    features = [cell_example(tokenizer, source, target) for source, target in pairs]
    batch = DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100)(features)
    mask = batch["labels"] != -100
    variants = {}
    for variant in ("package positions", "fairseq positions"):
        if variant == "fairseq positions":
            use_fairseq_positions_(model)
        with torch.no_grad():
            logits = model(**batch).logits
        smoothed = LabelSmoother(epsilon=EPSILON)({"logits": logits}, batch["labels"])
        variants[variant] = {
            "logits": logits[mask].double(),
            "trainer_loss_per_token": smoothed.item(),
            "fairseq_formula_loss": fairseq_smoothed_loss(logits[mask], batch["labels"][mask]).item(),
        }
    out = {"seed": seed, "target": batch["labels"][mask], "tokens": int(mask.sum()), "variants": variants}
    torch.save(out, f"{PEER}/parity-package.pt")
    print(f"package side: {out['tokens']} target tokens of {SENTENCES} sentences, seed {seed}")


def fairseq_side() -> None:
    from fairseq import options, tasks
    from peer_train import load_peer_init

    package = torch.load(f"{PEER}/parity-package.pt")
    flags = [
        f"{PEER}/data-bin", "--arch", "transformer_iwslt_de_en", "--share-decoder-input-output-embed",
        "--encoder-embed-dim", "128", "--decoder-embed-dim", "128", "--encoder-ffn-embed-dim", "512",
        "--decoder-ffn-embed-dim", "512", "--encoder-attention-heads", "4", "--decoder-attention-heads", "4",
        "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", str(EPSILON), "--cpu",
    ]  # fmt: skip
    args = options.parse_args_and_arch(options.get_training_parser(), flags)
    task = tasks.setup_task(args)
    task.load_dataset("valid")
    model = task.build_model(args)
    load_peer_init(model, f"{PEER}/cell/init/seed{package['seed']}.pt")
    model.eval()
    criterion = task.build_criterion(args)
    dataset = task.dataset("valid")
    sample = dataset.collater([dataset[i] for i in range(SENTENCES)])
    order = sample["id"].argsort()  # fairseq sorts a batch by source length
    with torch.no_grad():
        logits = model(**sample["net_input"])[0][order]
        loss, _, log = criterion(model, sample)
    target = sample["target"][order]
    mask = target != task.target_dictionary.pad()
    fairseq_logits = logits[mask].double()
    if not torch.equal(target[mask], package["target"]):
        raise SystemExit("the two sides read different target tokens")
    print(f"fairseq side: {int(mask.sum())} target tokens, label-smoothed loss {loss.item() / log['ntokens']:.6f}")
    for name, side in package["variants"].items():
        logit_diff = (side["logits"] - fairseq_logits).abs().max() / fairseq_logits.abs().max()
        loss_diff = abs(side["fairseq_formula_loss"] - loss.item()) / abs(loss.item())
        trainer_vs_fairseq = side["trainer_loss_per_token"] - loss.item() / log["ntokens"]
        print(
            f"{name}: logits max |Δ| / max |logit| {logit_diff:.2e}; fairseq's loss formula on its logits "
            f"{loss_diff:.2e} relative; the Trainer's smoothing − fairseq's {trainer_vs_fairseq:+.2e} a token"
        )


def main() -> None:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # export_cell, peer_train
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("side", choices=("package", "fairseq"))
    parser.add_argument("--seed", type=int, default=101)
    options = parser.parse_args()
    package_side(options.seed) if options.side == "package" else fairseq_side()


if __name__ == "__main__":
    main()
