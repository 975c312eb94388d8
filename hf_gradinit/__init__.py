"""GradInit for Hugging Face: learn per-tensor initial scales with the aim of training Post-LN Transformers without
warmup (whether it does is measured in BENCHMARKS.md)."""

import importlib

__version__ = "0.2.0"

# Where each public name lives. Nothing is imported until used, so that `hf-gradinit --help` does not wait for
# torch and transformers; the algorithm alone needs only torch, the Trainer side the Trainer stack.
_MODULES = {
    "GradInitArguments": "arguments",
    "GradInitConfig": "config",
    "GradInitError": "search",
    "GradInitPushError": "hub",
    "GradInitResult": "result",
    "GradInitSearch": "search",
    "GradInitTrainer": "trainer",
    "fairseq_init_": "fairseq_init",
    "gradinit": "search",
    "initialization_of": "fairseq_init",
    "is_gradinit_initialized": "search",
    "model_loss": "search",
    "push_initialization_to_hub": "hub",
    "save_initialization": "hub",
    "select_scaled_tensors": "parameters",
    "StabilityCallback": "stability_callback",
    "compare": "comparison",
    "split_batch": "search",
}

__all__ = sorted(_MODULES)


def __getattr__(name):
    if name in _MODULES:
        return getattr(importlib.import_module(f".{_MODULES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
