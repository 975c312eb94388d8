"""`hf-gradinit compare` with fairseq's position tables in the package's `transformer` model: the one difference
model_parity.py finds between the two models. Takes `hf-gradinit compare`'s flags; used by
`POSITIONS=fairseq bash benchmarks/tokenizer_runs.sh`. Benchmark only: transformers rebuilds Marian's table when a
Marian checkpoint is loaded, so the package cannot keep these tables in the models it saves.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model_parity import use_fairseq_positions_  # noqa: E402

from hf_gradinit import cli  # noqa: E402
from hf_gradinit.translation import setup  # noqa: E402

build_model = setup.build_model


def build_model_with_fairseq_positions(*args, **kwargs):
    model = build_model(*args, **kwargs)
    use_fairseq_positions_(model)
    return model


setup.build_model = build_model_with_fairseq_positions  # what prepare() calls
cli.main(["compare", *sys.argv[1:]])
