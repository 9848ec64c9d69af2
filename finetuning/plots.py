"""PNG charts written next to the results: the loss curves and the context ablation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display on a cluster node
    import matplotlib.pyplot as plt

    return plt


def plot_loss(log_history: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Training and validation loss against the optimizer step, from ``trainer.state.log_history``."""
    train = [(e["step"], e["loss"]) for e in log_history if "loss" in e and "step" in e]
    valid = [(e["step"], e["eval_loss"]) for e in log_history if "eval_loss" in e and "step" in e]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    if train:
        ax.plot(*zip(*train, strict=True), label="training loss")
    if valid:
        ax.plot(*zip(*valid, strict=True), marker="o", label="validation loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy per response token")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_ablation(perplexities: Mapping[str, float], path: Path, title: str = "") -> Path:
    """Bar chart of response perplexity per context condition."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    names = list(perplexities)
    bars = ax.bar(names, [perplexities[n] for n in names], color=["#2a7", "#999", "#c55"][: len(names)])
    ax.bar_label(bars, fmt="%.2f")
    ax.set_ylabel("response perplexity (lower is better)")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
