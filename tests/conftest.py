import os
import sys

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest-xdist runs one worker per core (pyproject.toml): each computes on one thread, and the processes the
    # tests start (torchrun, the example scripts) inherit it.
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)
sys.path.insert(0, os.path.dirname(__file__))


@pytest.fixture
def hub():
    """A local Hub-protocol server (tests/hub_server.py); the test fails on any request it does not know."""
    from hub_server import HubServer

    with HubServer() as server:
        yield server
        assert not server.state.unknown, f"requests the test hub does not know: {server.state.unknown}"
