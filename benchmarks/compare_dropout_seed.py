"""`hf-gradinit compare` from one seed's initial weights and batches with another seed's dropout masks: how much of
an arm's endpoint is the draw of dropout masks alone (§8: seed 102's warmup run collapsed late in the package and
not in the authors' code, whose masks differ).

    python benchmarks/compare_dropout_seed.py --weights_seed 102 --seed 2102 --data_seed 102 <compare's flags>

`--seed` seeds everything the Trainer draws (the dropout masks); `--data_seed` the batches (fairseq's order, as
`--seed` would); `--weights_seed` the initial weights, drawn exactly as `compare --seed <weights_seed>` draws them.
`compare_settings.json` records the weights' fingerprint: it must equal the one of the run being repeated.
Benchmark only: `compare` itself keeps weights, batches and masks on one seed.
"""

import sys

from transformers import set_seed

from hf_gradinit import cli
from hf_gradinit.translation import setup

build_model = setup.build_model


def main(argv: list[str]) -> None:
    if "--weights_seed" not in argv:
        sys.exit("--weights_seed: give the seed whose initial weights to start from")
    i = argv.index("--weights_seed")
    weights_seed = int(argv[i + 1])
    rest = argv[:i] + argv[i + 2 :]

    def build_model_of_weights_seed(*args, **kwargs):
        set_seed(weights_seed)  # as the Trainer's seed before a plain `compare --seed <weights_seed>` builds it
        return build_model(*args, **kwargs)

    setup.build_model = build_model_of_weights_seed  # what prepare() calls
    cli.main(["compare", *rest])


if __name__ == "__main__":
    main(sys.argv[1:])
