"""memory_plan.png: every arena buffer as a box, layers (time) across, arena offset up.

A buffer written over its dying input (lagged overlap) has a dashed outline: its box
and its input's share the layer where one is read and the other written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .planner import MemoryPlan


def plot_memory_plan(plan: MemoryPlan, num_layers: int, path: Path, title: str,
                     layer_names: Sequence[str] | None = None) -> None:
    """layer_names: the op of each layer, shown under the layer axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    fig, ax = plt.subplots(figsize=(max(8.0, 0.35 * num_layers + 3), 5.0))
    colors = plt.get_cmap("tab20")
    arena = [b for b in plan.buffers if b.storage == "arena"]
    for k, buffer in enumerate(arena):
        start = max(buffer.first, -0.5)
        end = min(buffer.last, num_layers) + 1
        hatch = "//" if buffer.scratch_of is not None else None
        lagged = buffer.overlaps is not None
        ax.add_patch(Rectangle((start, buffer.offset), end - start, buffer.size, facecolor=colors(k % 20),
                               edgecolor="black", linewidth=0.9 if lagged else 0.6, alpha=0.7 if lagged else 0.85,
                               hatch=hatch, linestyle="--" if lagged else "-"))
        if buffer.size >= 0.06 * max(plan.arena_bytes, 1):
            label = f"{buffer.size} B" if buffer.scratch_of is None else f"scratch {buffer.size} B"
            if lagged:
                label += f"\n(lag {buffer.lag} B)"
            ax.text((start + end) / 2, buffer.offset + buffer.size / 2, label, ha="center", va="center", fontsize=7)
    ax.axhline(plan.arena_bytes, color="red", linestyle="--", linewidth=1)
    ax.set_xlim(-0.5, num_layers + 0.5)
    if layer_names:
        ticks = range(len(layer_names))
        ax.set_xticks([t + 0.5 for t in ticks], [f"{t}:{name}" for t, name in zip(ticks, layer_names)],
                      rotation=60, ha="right", fontsize=6 if len(layer_names) > 20 else 7)
    ax.set_ylim(0, max(plan.arena_bytes, 1) * 1.08)
    ax.set_xlabel("layer (tensor lifetime)" if not layer_names else "layer: op (tensor lifetime)")
    ax.set_ylabel("arena offset (bytes)")
    ax.set_title(f"{title}: arena {plan.arena_bytes} bytes")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
