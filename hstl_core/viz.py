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


def plot_training_curves(
    history: dict[str, list[tuple[int, float]]], title: str = "training", chance: float | None = None
) -> plt.Figure:
    """Losses (left) and training accuracy with the share of violating triplets (right), against iteration.

    ``history`` is ``{tag: [(iteration, value), ...]}`` with tags as the trainer logs
    them (``scalar/total_loss``, ``scalar/triplet/loss``, ``scalar/softmax/loss``,
    ``scalar/softmax/accuracy``, ``scalar/triplet/nonzero_frac``); missing tags are
    skipped. ``chance`` (a fraction, e.g. 1/14) draws the accuracy of a uniform guess.
    """
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(12, 4))
    for tag, label in (("scalar/total_loss", "total"), ("scalar/triplet/loss", "triplet"), ("scalar/softmax/loss", "cross-entropy")):
        if history.get(tag):
            steps, values = zip(*history[tag])
            loss_ax.plot(steps, values, label=label, lw=2)
    loss_ax.set(title=f"{title}: losses", xlabel="iteration", ylabel="loss")
    loss_ax.legend()
    for tag, label, color in (
        ("scalar/softmax/accuracy", "training accuracy (all parts)", "#1b9e77"),
        ("scalar/triplet/nonzero_frac", "triplets violating the margin", "#7570b3"),
    ):
        if history.get(tag):
            steps, values = zip(*history[tag])
            acc_ax.plot(steps, [100 * v for v in values], color=color, lw=2, label=label)
    if chance is not None:
        acc_ax.axhline(100 * chance, color="gray", ls="--", lw=1.5, label=f"chance ({100 * chance:.1f} %)")
    acc_ax.set(title=f"{title}: accuracy and violating triplets", xlabel="iteration", ylabel="%", ylim=(0, 100))
    if acc_ax.get_legend_handles_labels()[0]:
        acc_ax.legend()
    fig.tight_layout()
    return fig


CONDITION_COLORS: dict[str, str] = {"gallery": "#4d4d4d", "NM": "#1b9e77", "BG": "#d95f02", "CL": "#7570b3"}
"""One colour per CASIA-B sequence set (gallery and the three probe sets), used by the evaluation figures."""

CONDITION_MARKERS: dict[str, str] = {"NM": "o", "BG": "s", "CL": "^"}
"""One marker per walking condition in embedding scatter plots."""


def plot_casia_b_protocol(
    views: Sequence[str],
    gallery: Sequence[str] = ("nm-01", "nm-02", "nm-03", "nm-04"),
    probes: dict[str, Sequence[str]] | None = None,
    title: str = "CASIA-B evaluation protocol",
) -> plt.Figure:
    """Draw the CASIA-B protocol: which sequences are gallery and probes, and the view grid.

    Left: the sequence types of one subject (columns) against the ``views`` (rows),
    coloured by role (``CONDITION_COLORS``). Right: the probe-view x gallery-view grid
    that every probe set is scored on, with the identical-view diagonal struck out.
    """
    probes = probes if probes is not None else {"NM": ("nm-05", "nm-06"), "BG": ("bg-01", "bg-02"), "CL": ("cl-01", "cl-02")}
    columns = [(t, "gallery") for t in gallery] + [(t, cond) for cond, ts in probes.items() for t in ts]
    n_views = len(views)
    fig, (ax_sets, ax_grid) = plt.subplots(1, 2, figsize=(15, 6.5), gridspec_kw={"width_ratios": [len(columns), n_views]})
    for col, (seq_type, role) in enumerate(columns):
        for row in range(n_views):
            ax_sets.add_patch(Rectangle((col, row), 0.92, 0.92, color=CONDITION_COLORS[role], alpha=0.85))
    ax_sets.set_xlim(-0.1, len(columns))
    ax_sets.set_ylim(n_views, -0.1)
    ax_sets.set_xticks(np.arange(len(columns)) + 0.46)
    ax_sets.set_xticklabels([t for t, _ in columns], rotation=60)
    ax_sets.set_yticks(np.arange(n_views) + 0.46)
    ax_sets.set_yticklabels(views)
    ax_sets.set(xlabel="sequence type (one subject)", ylabel="view (degrees)", title="one subject's 10 x 11 sequences")
    for spine in ax_sets.spines.values():
        spine.set_visible(False)
    handles = [Rectangle((0, 0), 1, 1, color=CONDITION_COLORS["gallery"], label="gallery")]
    handles += [Rectangle((0, 0), 1, 1, color=CONDITION_COLORS[c], label=f"probe {c}") for c in probes]
    ax_sets.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=len(handles), fontsize=12, frameon=False)

    grid = np.ones((n_views, n_views))
    np.fill_diagonal(grid, 0)
    ax_grid.imshow(grid, cmap="Greens", vmin=-0.6, vmax=1.6)
    for i in range(n_views):
        ax_grid.plot([i - 0.45, i + 0.45], [i - 0.45, i + 0.45], color="#c0392b", lw=2)
        ax_grid.plot([i - 0.45, i + 0.45], [i + 0.45, i - 0.45], color="#c0392b", lw=2)
    ax_grid.set_xticks(range(n_views))
    ax_grid.set_xticklabels(views, rotation=90)
    ax_grid.set_yticks(range(n_views))
    ax_grid.set_yticklabels(views)
    ax_grid.set(
        xlabel="gallery view (nm-01..04 of that view only)",
        ylabel="probe view",
        title=f"{n_views} x {n_views} view pairs, identical views struck out",
    )
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_view_matrices(
    result: dict,
    conditions: Sequence[str] = ("NM", "BG", "CL"),
    title: str = "rank-1 accuracy (%) per probe view and gallery view",
    cmap: str = "viridis",
) -> plt.Figure:
    """Annotated heat maps of ``result[cond]["matrix"]`` (an ``evaluate_casia_b`` result).

    One panel per condition, probe views as rows, gallery views as columns, the
    value in each cell (rounded to an integer) and the identical-view diagonal
    outlined; the panel title gives the mean with identical views excluded.
    """
    views = result["views"]
    n_views = len(views)
    fig, axes = plt.subplots(1, len(conditions), figsize=(7.0 * len(conditions), 7.4))
    image = None
    for ax, condition in zip(np.atleast_1d(axes), conditions):
        matrix = np.asarray(result[condition]["matrix"], dtype=float)
        image = ax.imshow(matrix, cmap=cmap, vmin=0, vmax=100)
        for i in range(n_views):
            for j in range(n_views):
                if np.isnan(matrix[i, j]):
                    continue
                ax.text(j, i, f"{matrix[i, j]:.0f}", ha="center", va="center", fontsize=10,
                        color="black" if matrix[i, j] > 60 else "white")
            ax.add_patch(Rectangle((i - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="#c0392b", lw=1.5))
        ax.set_xticks(range(n_views))
        ax.set_xticklabels(views, rotation=90, fontsize=11)
        ax.set_yticks(range(n_views))
        ax.set_yticklabels(views, fontsize=11)
        ax.set(xlabel="gallery view", ylabel="probe view", title=f"{condition}: mean {result[condition]['mean']:.1f} (diagonal excluded)")
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 0.94, 1))
    colorbar_ax = fig.add_axes((0.95, 0.2, 0.012, 0.6))
    fig.colorbar(image, cax=colorbar_ax, label="rank-1 (%)")
    return fig


def show_retrieval(
    rows: Sequence[tuple[np.ndarray, str, Sequence[np.ndarray], Sequence[str], Sequence[bool]]],
    title: str = "retrieval: probe and its nearest gallery sequences",
) -> plt.Figure:
    """Silhouette strips: per row a probe image, then its ranked gallery matches.

    ``rows``: ``(probe_image, probe_caption, match_images, match_captions, correct)``
    with ``[h, w]`` images (a GEI or a frame). Matches are framed green when
    ``correct`` is true (same subject) and red otherwise; the probe is framed black.
    """
    n_rows = len(rows)
    n_cols = 1 + max(len(r[2]) for r in rows)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(2.3 * n_cols, 3.1 * n_rows), squeeze=False)
    for row_axes, (probe, probe_caption, matches, captions, correct) in zip(axes, rows):
        panels = [(probe, probe_caption, "black")] + [
            (image, caption, "#1a9850" if ok else "#d73027") for image, caption, ok in zip(matches, captions, correct)
        ]
        for ax in row_axes:
            ax.axis("off")
        for ax, (image, caption, color) in zip(row_axes, panels):
            ax.axis("on")
            ax.imshow(image, cmap="gray", vmin=0, vmax=float(image.max()) or 1.0)
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_edgecolor(color)
                spine.set_linewidth(5)
            ax.set_title(caption, fontsize=11, color=color if color != "black" else "black")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_embedding_2d(
    points: np.ndarray,
    subjects: Sequence[str],
    conditions: Sequence[str],
    ax: plt.Axes | None = None,
    title: str = "embeddings in 2D",
    legend: bool = True,
) -> plt.Axes:
    """Scatter ``points [N, 2]`` coloured by subject and marked by condition (NM / BG / CL).

    ``conditions`` are N strings among ``CONDITION_MARKERS`` (e.g. a type's prefix
    upper-cased). Draws into ``ax`` (a new figure if None) and returns it.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 7))
    subjects = np.asarray(subjects)
    conditions = np.asarray(conditions)
    subject_list = sorted(set(subjects.tolist()))
    palette = plt.get_cmap("tab10" if len(subject_list) <= 10 else "tab20")
    for s_index, subject in enumerate(subject_list):
        for condition, marker in CONDITION_MARKERS.items():
            chosen = (subjects == subject) & (conditions == condition)
            if chosen.any():
                ax.scatter(points[chosen, 0], points[chosen, 1], s=28, marker=marker,
                           color=palette(s_index % palette.N), alpha=0.8, edgecolors="none")
    ax.set(title=title, xlabel="dimension 1", ylabel="dimension 2")
    ax.set_xticks([])
    ax.set_yticks([])
    if legend:
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], marker="o", ls="", color=palette(i % palette.N), label=f"subject {s}") for i, s in enumerate(subject_list)]
        handles += [Line2D([], [], marker=m, ls="", color="grey", label=c) for c, m in CONDITION_MARKERS.items()]
        ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=11, frameon=False)
    return ax


def level_color(module_name: str) -> str:
    """The ``LEVEL_COLORS`` colour of a pooling module or its level (``astp2``, ``arme2``, ``fta``, ``HPP``, ...).

    ``armeK`` and ``astpK`` share level K's colour, ``fta`` that of ``astp2_fta``,
    ``TP`` and ``HPP`` the rows' colour; levels beyond 3 (OU-MVLP, Gait3D) are grey.
    """
    name = {"fta": "astp2_fta", "TP": "HPP"}.get(module_name, module_name.replace("arme", "astp"))
    for key, color in LEVEL_COLORS.items():
        if key.endswith(f"({name})"):
            return color
    return "#999999"


def _shape_text(shape: Sequence[int]) -> str:
    return "[n, " + ", ".join(str(v) for v in shape[1:]) + "]"


def plot_architecture(stages: Sequence, title: str = "HSTL, drawn from the model") -> plt.Figure:
    """Draw an assembled HSTL from ``hstl_core.inspection.architecture(model, intermediates)``.

    Top row: the trunk (3D conv, ARME levels, FTA, temporal max, HPP) as boxes whose
    coloured bands are the regions each convolves or pools separately, with the
    output shape ``[n, c, T, h, w]`` under each box and the frame count where FTA
    strides time. Middle row: the ASTP after each level. Bottom: the parts
    concatenated (one cell per part, coloured by level) and the heads.
    """
    trunk_kinds = {"3D conv", "ARME", "FTA", "TP", "HPP", "max pool"}
    trunk = [s for s in stages if s.kind in trunk_kinds]
    pools = [s for s in stages if s.kind == "ASTP"]
    heads = {s.name: s for s in stages if s.kind in ("separate FCs", "BNNeck")}
    fig, ax = plt.subplots(figsize=(17, 8.2))
    step, width, box_height = 2.5, 1.7, 2.6
    first = trunk[0].shape
    full_rows = first[3] if len(first) == 5 else first[2]
    x_of: dict[str, float] = {}
    ax.add_patch(Rectangle((-step, 0), width, box_height, facecolor="0.85", edgecolor="0.3"))
    ax.text(-step + width / 2, box_height / 2, "input\nsilhouettes", ha="center", va="center", fontsize=12)
    ax.text(-step + width / 2, -0.35, f"[n, {first[2]}, {first[3]}, {first[4]}]" if len(first) == 5 else "",
            ha="center", va="top", fontsize=11)
    previous_frames = first[2] if len(first) == 5 else None
    for index, stage in enumerate(trunk):
        x = index * step
        x_of[stage.name] = x
        rows = stage.shape[3] if len(stage.shape) == 5 else stage.shape[2]
        height = box_height * rows / full_rows
        color = level_color(stage.name)
        regions = stage.regions or (rows,)
        top = box_height
        for r_index, region in enumerate(regions):
            band = height * region / sum(regions)
            ax.add_patch(Rectangle((x, top - band), width, band, facecolor=color,
                                   alpha=0.75 if r_index % 2 == 0 else 0.4, edgecolor="white", linewidth=0.5))
            top -= band
        ax.add_patch(Rectangle((x, box_height - height), width, height, fill=False, edgecolor="0.2", linewidth=1.5))
        ax.annotate("", xy=(x, box_height / 2), xytext=(x - step + width, box_height / 2),
                    arrowprops={"arrowstyle": "->", "color": "0.3", "lw": 1.5})
        label = {"TP": "TP\ntemporal max", "HPP": "HPP\nGeM per row"}.get(stage.kind, f"{stage.name}\n{stage.kind}")
        if stage.kind in ("ARME", "FTA", "HPP") and len(regions) > 1:
            label += f"\n{len(regions)} regions" if len(regions) <= 8 else f"\n{len(regions)} rows"
        ax.text(x + width / 2, box_height + 0.15, label, ha="center", va="bottom", fontsize=12, fontweight="bold")
        ax.text(x + width / 2, box_height - height - 0.12, _shape_text(stage.shape), ha="center", va="top", fontsize=10.5)
        frames = stage.shape[2] if len(stage.shape) == 5 else None
        if frames is not None and previous_frames is not None and frames != previous_frames:
            ax.text(x - (step - width) / 2, box_height / 2 + 0.12, f"T {previous_frames}\n\u2192 {frames}",
                    ha="center", va="bottom", fontsize=12, color="#c0392b", fontweight="bold")
        if frames is not None:
            previous_frames = frames
    pool_y = -2.2
    anchors: dict[str, float] = {}
    forward_order = [s.name for s in stages]
    for pool in pools:
        source = [s.name for s in trunk if forward_order.index(s.name) < forward_order.index(pool.name)][-1]
        x = x_of[source] + 0.1
        color = level_color(pool.name)
        ax.add_patch(Rectangle((x, pool_y), width - 0.2, 0.8, facecolor=color, alpha=0.85, edgecolor="0.2"))
        ax.text(x + (width - 0.2) / 2, pool_y + 0.4, f"{pool.name}\n{_shape_text(pool.shape)}", ha="center",
                va="center", fontsize=9.5, color="white", fontweight="bold")
        ax.annotate("", xy=(x + width / 2 - 0.1, pool_y + 0.8), xytext=(x + width / 2 - 0.1, -0.75),
                    arrowprops={"arrowstyle": "->", "color": color, "lw": 1.5})
        anchors[pool.name] = x + width / 2 - 0.1
    hpp = next((s for s in trunk if s.kind == "HPP"), None)
    groups = [(p.name, p.shape[2]) for p in pools] + ([(hpp.name, hpp.shape[2])] if hpp is not None else [])
    if hpp is not None:
        anchors[hpp.name] = x_of[hpp.name] + width / 2
    total = sum(count for _, count in groups)
    bar_y, bar_left = -4.2, 0.0
    bar_right = (len(trunk) - 1) * step + width
    cell = (bar_right - bar_left) / total
    start = 0
    for name, count in groups:
        left = bar_left + start * cell
        ax.add_patch(Rectangle((left, bar_y), count * cell, 0.6, facecolor=level_color(name), edgecolor="white", linewidth=0.4))
        ax.text(left + count * cell / 2, bar_y + 0.3, str(count), ha="center", va="center", fontsize=10,
                color="white", fontweight="bold")
        ax.annotate("", xy=(left + count * cell / 2, bar_y + 0.62), xytext=(anchors[name], pool_y - 0.02 if name != "HPP" else -0.75),
                    arrowprops={"arrowstyle": "->", "color": level_color(name), "lw": 1.0, "alpha": 0.7})
        start += count
    head_text = f"{total} parts concatenated  ->  "
    if "Head0" in heads:
        head_text += f"Head0: {total} separate FCs {_shape_text(heads['Head0'].shape)}  ->  "
    if "Bn" in heads:
        head_text += "Bn (BNNeck): the embeddings  ->  "
    if "Head1" in heads:
        head_text += f"Head1: logits {_shape_text(heads['Head1'].shape)}"
    ax.text(bar_left, bar_y - 0.35, head_text, ha="left", va="top", fontsize=12)
    ax.set_xlim(-step - 0.2, bar_right + 0.3)
    ax.set_ylim(bar_y - 1.1, box_height + 1.4)
    ax.axis("off")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_part_rank1(
    accuracy: dict[str, np.ndarray],
    groups: dict[str, Sequence[int]],
    title: str = "rank-1 of each part alone",
    chance: float | None = None,
    ax: plt.Axes | None = None,
) -> plt.Axes:
    """Rank-1 (%) of every part alone, one line per probe set, the levels as coloured bands.

    ``accuracy``: ``{"NM": [parts], ...}`` (``inspection.part_rank1``); ``groups``:
    part indices per pooling module (``inspection.part_groups``). Draws into ``ax``
    (a new figure if None) and returns it.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(13, 4.6))
    top = min(100.0, max(float(np.max(v)) for v in accuracy.values()) + 15.0)
    for index, (name, indices) in enumerate(groups.items()):
        indices = list(indices)
        ax.axvspan(indices[0] - 0.5, indices[-1] + 0.5, color=level_color(name), alpha=0.18, linewidth=0)
        ax.text((indices[0] + indices[-1]) / 2, top * (1.0 - 0.07 * (index % 2)), name, ha="center", va="bottom",
                fontsize=11, color=level_color(name), fontweight="bold")
    for condition, values in accuracy.items():
        ax.plot(np.arange(len(values)), values, "o-", markersize=4, lw=1.8, color=CONDITION_COLORS.get(condition), label=condition)
    if chance is not None:
        ax.axhline(chance, color="0.4", linestyle=":", lw=1.5, label=f"chance {chance:.0f} %")
    ax.set(xlabel="part index (order of the embedding)", ylabel="rank-1 (%)", ylim=(0, top * 1.08), title=title)
    ax.set_xlim(-1, max(len(v) for v in accuracy.values()))
    ax.legend(loc="lower left", ncol=4, fontsize=11)
    return ax


def show_at_scale(
    images: Sequence[np.ndarray], titles: Sequence[str], inches_per_pixel: float, title: str = "", gap: float = 0.6
) -> plt.Figure:
    """Images ``[h, w]`` side by side with every pixel the same size on the page.

    ``plt.subplots`` gives each panel the same box, which blows a 64 x 64 crop up to the
    height of a 240 x 320 frame; here each panel is ``h x w`` times ``inches_per_pixel``
    inches, so sizes compare by eye. Panels are bottom-aligned, each framed in grey.
    Grey colormap, 0 to 1 for float images and 0 to 255 otherwise.
    """
    widths = [image.shape[1] * inches_per_pixel for image in images]
    heights = [image.shape[0] * inches_per_pixel for image in images]
    bottom, top = 0.15, 0.75 + (0.45 if title else 0.0)
    fig_w, fig_h = sum(widths) + gap * (len(images) + 1), max(heights) + bottom + top
    fig = plt.figure(figsize=(fig_w, fig_h))
    left = gap
    for image, width, height, label in zip(images, widths, heights, titles):
        ax = fig.add_axes((left / fig_w, bottom / fig_h, width / fig_w, height / fig_h))
        ax.imshow(image, cmap="gray", vmin=0, vmax=1 if image.dtype.kind == "f" else 255, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_color("0.6")
        ax.set_title(label, fontsize=12)
        left += width + gap
    if title:
        fig.suptitle(title, y=1 - 0.2 / fig_h, va="top")
    return fig
