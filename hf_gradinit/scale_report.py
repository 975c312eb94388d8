"""Readable summaries of a `GradInitResult`: a table per component and a plot per layer.

Grouping here is by parameter name (encoder/decoder, attention/FFN/LayerNorm/embedding) and serves reading only;
which tensors are scaled is decided by module type (see `parameters.py`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: result.py imports this module, not the other way round
    from .result import GradInitResult

PARTS = ("embedding", "attention", "FFN", "LayerNorm", "other")


def component(name: str) -> tuple[str, int | None, str]:
    """(stack, layer index or None, part) of a parameter name such as `model.decoder.layers.3.fc1.weight`."""
    lowered = name.lower()
    # The first path segment that names a stack: a decoder's `encoder_attn` belongs to the decoder.
    stack = next((seg for seg in lowered.split(".") if seg in ("encoder", "decoder")), "shared")
    match = re.search(r"layers?\.(\d+)\.", name)
    layer = int(match.group(1)) if match else None
    module = lowered.rsplit(".", 1)[0]
    if "norm" in module:
        part = "LayerNorm"
    elif "attn" in module or "attention" in module:
        part = "attention"
    elif any(k in module for k in ("fc1", "fc2", "ffn", "mlp", "dense", "intermediate", "output")):
        part = "FFN"
    elif "embed" in module or "shared" in module or "lm_head" in module:
        part = "embedding"
    else:
        part = "other"
    return stack, layer, part


def summary_rows(result: GradInitResult) -> list[dict]:
    """One row per (stack, part, group): tensor count and min / mean / max of α."""
    buckets: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for name, alpha in result.scales.items():
        stack, _, part = component(name)
        buckets[(stack, part, result.groups[name])].append(alpha)
    order = {p: i for i, p in enumerate(PARTS)}
    rows = []
    for (stack, part, group), values in sorted(buckets.items(), key=lambda kv: (kv[0][0], order[kv[0][1]], kv[0][2])):
        rows.append(
            {
                "stack": stack,
                "part": part,
                "group": group,
                "tensors": len(values),
                "min": min(values),
                "mean": sum(values) / len(values),
                "max": max(values),
            }
        )
    return rows


def summary_markdown(result: GradInitResult) -> str:
    lines = ["| stack | part | group | tensors | min α | mean α | max α |", "|---|---|---|---:|---:|---:|---:|"]
    for r in summary_rows(result):
        lines.append(
            f"| {r['stack']} | {r['part']} | {r['group']} | {r['tensors']} | {r['min']:.3f} | {r['mean']:.3f} | "
            f"{r['max']:.3f} |"
        )
    return "\n".join(lines)


def plot_scales(result: GradInitResult, path: str) -> str:
    """A PNG of mean α per layer, one panel per stack, one line per part (needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    per_layer: dict[str, dict[str, dict[int, list[float]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list))
    )
    for name, alpha in result.scales.items():
        stack, layer, part = component(name)
        per_layer[stack][part][-1 if layer is None else layer].append(alpha)
    stacks = [s for s in ("encoder", "decoder", "shared") if s in per_layer]
    fig, axes = plt.subplots(1, len(stacks), figsize=(5 * len(stacks), 3.6), squeeze=False, sharey=True)
    for ax, stack in zip(axes[0], stacks):
        for part in PARTS:
            if part not in per_layer[stack]:
                continue
            layers = sorted(per_layer[stack][part])
            means = [sum(per_layer[stack][part][i]) / len(per_layer[stack][part][i]) for i in layers]
            ax.plot(layers, means, marker="o", label=part)
        ax.axhline(1.0, color="grey", linewidth=0.8, linestyle=":")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(stack)
        ax.set_xlabel("layer (-1: outside the layers)")
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("mean scale α")
    fig.suptitle("GradInit scales")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
