"""Smoke tests of the evaluation figures in hstl_core.viz (notebook 10 and the slides)."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

from hstl_core import evaluation, viz

VIEWS = [f"{v:03d}" for v in range(0, 181, 18)]


def _toy_result():
    rng = np.random.default_rng(0)
    subjects, types = ["a", "b", "c"], [*evaluation.CASIA_B_GALLERY, "nm-05", "bg-01", "cl-01"]
    rows = [(s, t, v) for s in subjects for t in types for v in VIEWS]
    feats = rng.normal(size=(len(rows), 2, 4)).astype(np.float32)
    return evaluation.evaluate_casia_b(feats, *zip(*rows))


def test_protocol_figure_has_sets_and_grid():
    fig = viz.plot_casia_b_protocol(VIEWS)
    sets_ax, grid_ax = fig.axes
    assert len(sets_ax.patches) == 10 * len(VIEWS)
    assert [t.get_text() for t in grid_ax.get_xticklabels()] == VIEWS
    plt.close(fig)


def test_view_matrices_one_panel_per_condition_and_annotated():
    result = _toy_result()
    fig = viz.plot_view_matrices(result)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title().split(":")[0] for ax in panels] == ["NM", "BG", "CL"]
    assert len(panels[0].texts) == len(VIEWS) ** 2
    plt.close(fig)


def test_retrieval_frames_green_for_correct_red_for_wrong():
    image = np.zeros((8, 6))
    fig = viz.show_retrieval([(image, "probe", [image, image], ["#1", "#2"], [True, False])])
    probe_ax, right_ax, wrong_ax = fig.axes
    assert matplotlib.colors.to_hex(right_ax.spines["top"].get_edgecolor()) == "#1a9850"
    assert matplotlib.colors.to_hex(wrong_ax.spines["top"].get_edgecolor()) == "#d73027"
    plt.close(fig)


def test_embedding_scatter_one_collection_per_subject_and_condition():
    points = np.arange(12, dtype=float).reshape(6, 2)
    ax = viz.plot_embedding_2d(points, ["1", "1", "2", "2", "2", "3"], ["NM", "CL", "NM", "BG", "BG", "NM"])
    assert len(ax.collections) == 5
    plt.close(ax.figure)
