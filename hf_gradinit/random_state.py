"""Every random stream a training run draws from, saved and put back.

The search draws dropout masks and batch orders from the global streams. Putting them back afterwards makes the
training that follows a search draw exactly what it would have drawn without one: the same batches, in the same
order, with the same dropout masks. Runs with and without GradInit then differ by the search's scales alone.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import numpy as np
import torch


@contextlib.contextmanager
def restored_random_state() -> Iterator[None]:
    """Python's, numpy's and torch's random states (CPU and every CUDA device) on entry are restored on exit,
    whatever the block drew or re-seeded, and on an error too."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    cuda_devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    # fork_rng restores torch's CPU stream and those of the listed CUDA devices.
    with torch.random.fork_rng(devices=cuda_devices):
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)
