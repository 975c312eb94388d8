"""Run by tests/test_distributed.py under `torchrun --nproc_per_node 2`: `sync_parameters` and
`check_parameters_match` on processes whose models start from different seeds.

Each process writes what it saw: the error of the check before syncing, its parameters after syncing, and the
error of the check after one tensor was changed on process 1 only.
"""

import os
import sys

import torch
from accelerate import PartialState

sys.path.insert(0, os.path.dirname(__file__))
from helpers import end_distributed_process, tiny_bart  # noqa: E402

from hf_gradinit.distributed import check_parameters_match, sync_parameters  # noqa: E402


def error_of(model):
    try:
        check_parameters_match(model)
    except RuntimeError as e:
        return str(e)
    return None


state = PartialState(cpu=True)
rank = state.process_index
model = tiny_bart(seed=rank)
seen = {"before": error_of(model)}
sync_parameters(model)
seen["params"] = {n: p.detach().clone() for n, p in model.named_parameters()}
seen["synced"] = error_of(model)
if rank == 1:
    with torch.no_grad():
        model.model.decoder.layers[0].fc2.weight[0, 0] += 1e-7
seen["one_changed"] = error_of(model)
torch.save(seen, os.path.join(sys.argv[1], f"parameters-{rank}.pt"))

end_distributed_process()
