"""GradInit for Hugging Face: learn per-tensor initial scales with the aim of training Post-LN Transformers without
warmup (whether it does is measured in BENCHMARKS.md)."""

from .arguments import GradInitArguments
from .fairseq_init import fairseq_init_, initialization_of
from .search import GradInitError, GradInitSearch, gradinit, is_gradinit_initialized, model_loss, split_batch
from .parameters import select_scaled_tensors
from .result import GradInitResult

__version__ = "0.2.0"

__all__ = [
    "GradInitArguments",
    "GradInitConfig",
    "GradInitError",
    "GradInitPushError",
    "GradInitResult",
    "GradInitSearch",
    "GradInitTrainer",
    "fairseq_init_",
    "gradinit",
    "initialization_of",
    "is_gradinit_initialized",
    "model_loss",
    "push_initialization_to_hub",
    "save_initialization",
    "select_scaled_tensors",
    "split_batch",
]


def __getattr__(name):
    # The Trainer side pulls in transformers' Trainer stack; the algorithm alone needs only torch.
    if name == "GradInitConfig":
        from .config import GradInitConfig

        return GradInitConfig
    if name == "GradInitTrainer":
        from .trainer import GradInitTrainer

        return GradInitTrainer
    if name in ("GradInitPushError", "push_initialization_to_hub", "save_initialization"):
        from . import hub

        return getattr(hub, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
