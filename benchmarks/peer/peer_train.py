"""The authors' `gradinit/train.py`, run with two additions a side-by-side needs. Run with the peer venv's Python
from the fork's `fairseq/` folder, with train.py's own flags:

    --peer-init FILE   load these weights (a fairseq checkpoint's "model", e.g. export_cell.py's init/seed101.pt)
                       into the model as soon as it is built, so that the search, or the training, starts from
                       the package's initial weights (train.py's --restore-file is loaded after the search and
                       would overwrite it)

and the search runs with PyTorch's math attention kernel: the fused CPU kernels of torch 2 have no double
backward, which the search's second-order step needs (training keeps the default kernels); its time is printed.
"""

import os
import sys
import time

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel


def _pop(argv: list[str], flag: str) -> str | None:
    if flag not in argv:
        return None
    i = argv.index(flag)
    value = argv[i + 1]
    del argv[i : i + 2]
    return value


def load_peer_init(model, path: str) -> None:
    """Load a fairseq checkpoint's "model" into `model`; only the buffers fairseq rebuilds (positions, version
    numbers) may be missing."""
    missing, unexpected = model.load_state_dict(torch.load(path)["model"], strict=False)
    missing = [n for n in missing if not n.endswith(("_float_tensor", ".version"))]
    if missing or unexpected:
        raise ValueError(f"--peer-init {path}: missing {missing[:5]}, unexpected {unexpected[:5]}")


def main() -> None:
    init = _pop(sys.argv, "--peer-init")
    sys.path.insert(0, os.path.join(os.getcwd(), "gradinit"))
    sys.argv[0] = "gradinit/train.py"
    import fairseq.tasks.translation as translation
    import utils.gradinit_utils as search  # the module train.py imports gradinit_proc from (--user-dir)

    build_model = translation.TranslationTask.build_model

    def build_model_with_init(self, cfg, *args, **kwargs):
        model = build_model(self, cfg, *args, **kwargs)
        if init is not None:
            load_peer_init(model, init)
            print(f"peer_train: initial weights from {init}", flush=True)
        return model

    translation.TranslationTask.build_model = build_model_with_init
    gradinit_proc = search.gradinit_proc

    def gradinit_proc_math_attention(trainer, cfg):
        start = time.perf_counter()
        with sdpa_kernel(SDPBackend.MATH):
            gradinit_proc(trainer, cfg)
        print(f"peer_train: search took {time.perf_counter() - start:.1f} s", flush=True)

    search.gradinit_proc = gradinit_proc_math_attention

    import train  # gradinit/train.py

    train.cli_main(train.add_gradinit_args)


if __name__ == "__main__":
    main()
