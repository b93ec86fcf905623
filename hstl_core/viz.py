"""Plotting helpers the notebooks share (matplotlib only).

Conventions: silhouettes in a grey colormap, large fonts, one colour per HSTL
hierarchy level (``LEVEL_COLORS``) in every figure.
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

LEVEL_COLORS: dict[str, str] = {
    "level 1 (astp1)": "#1b9e77",
    "level 2 (astp2)": "#d95f02",
    "level 2 + FTA (astp2_fta)": "#7570b3",
    "level 3 (astp3)": "#e7298a",
    "rows (HPP)": "#e6ab02",
}
"""One colour per hierarchy level of HSTL's parts (CASIA-B), used by every notebook."""

plt.rcParams.update({"font.size": 13, "axes.titlesize": 15, "axes.labelsize": 13, "figure.dpi": 90})


def show_frames(frames: np.ndarray, count: int = 6, title: str = "", axes_title: str = "frame") -> plt.Figure:
    """Show ``count`` evenly spaced frames of ``[T, h, w]`` silhouettes in grey."""
    picks = np.linspace(0, len(frames) - 1, count).round().astype(int)
    fig, axes = plt.subplots(1, count, figsize=(2.1 * count, 3.2))
    for ax, index in zip(np.atleast_1d(axes), picks):
        ax.imshow(frames[index], cmap="gray", vmin=0, vmax=1 if frames.dtype.kind == "f" else 255)
        ax.set_title(f"{axes_title} {index}", fontsize=12)
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def draw_regions(ax: plt.Axes, silhouette: np.ndarray, splits: Sequence[int], color: str, title: str = "") -> None:
    """Draw a silhouette ``[h, w]`` with horizontal regions of ``splits`` rows outlined in ``color``."""
    height, width = silhouette.shape
    ax.imshow(silhouette, cmap="gray", vmin=0, vmax=float(silhouette.max()) or 1.0)
    top = 0
    for index, rows in enumerate(splits):
        ax.add_patch(Rectangle((-0.5, top - 0.5), width, rows, facecolor=color, alpha=0.35 if index % 2 else 0.1))
        ax.axhline(top - 0.5, color=color, linewidth=2.5)
        top += rows
    ax.set_title(title, fontsize=12)
    ax.set_xticks([])
    ax.set_yticks(np.cumsum([0, *splits])[:-1] - 0.5)
    ax.set_yticklabels(np.cumsum([0, *splits])[:-1], fontsize=10)
    ax.set_ylim(height - 0.5, -0.5)


def show_channel_maps(maps: np.ndarray, title: str, labels: Sequence[str] | None = None, cmap: str = "viridis") -> plt.Figure:
    """Show feature maps ``[k, h, w]`` side by side, each with its own colour scale."""
    fig, axes = plt.subplots(1, len(maps), figsize=(2.4 * len(maps), 3.4))
    for index, (ax, image) in enumerate(zip(np.atleast_1d(axes), maps)):
        ax.imshow(image, cmap=cmap)
        ax.set_title(labels[index] if labels else f"channel {index}", fontsize=12)
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_training_curves(history: dict[str, list[tuple[int, float]]], title: str = "training") -> plt.Figure:
    """Loss and accuracy against iteration, from ``{tag: [(iteration, value), ...]}``.

    Tags as the trainer logs them (``scalar/triplet/loss``, ``scalar/softmax/loss``,
    ``scalar/softmax/accuracy``, ``scalar/total_loss``); missing tags are skipped.
    """
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(12, 4))
    for tag, label in (("scalar/total_loss", "total"), ("scalar/triplet/loss", "triplet"), ("scalar/softmax/loss", "cross-entropy")):
        if history.get(tag):
            steps, values = zip(*history[tag])
            loss_ax.plot(steps, values, label=label, lw=2)
    loss_ax.set(title=f"{title}: losses", xlabel="iteration", ylabel="loss")
    loss_ax.legend()
    if history.get("scalar/softmax/accuracy"):
        steps, values = zip(*history["scalar/softmax/accuracy"])
        acc_ax.plot(steps, [100 * v for v in values], color="#1b9e77", lw=2)
    acc_ax.set(title=f"{title}: training accuracy (all parts)", xlabel="iteration", ylabel="accuracy (%)", ylim=(0, 100))
    fig.tight_layout()
    return fig
