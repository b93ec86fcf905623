"""The training-curve figure of notebooks 08 and 09."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from hstl_core.viz import plot_training_curves


def test_curves_draw_what_was_logged_in_percent_with_chance() -> None:
    history = {
        "scalar/total_loss": [(1, 3.0), (2, 2.5)],
        "scalar/softmax/accuracy": [(1, 0.05), (2, 0.30)],
        "scalar/triplet/nonzero_frac": [(1, 0.60), (2, 0.40)],
    }
    fig = plot_training_curves(history, title="t", chance=1 / 14)
    loss_ax, acc_ax = fig.axes[:2]
    assert [line.get_label() for line in loss_ax.get_lines()] == ["total"]
    curves = {line.get_label(): list(line.get_ydata()) for line in acc_ax.get_lines()}
    assert curves["training accuracy (all parts)"] == [5.0, 30.0]
    assert curves["triplets violating the margin"] == [60.0, 40.0]
    assert curves["chance (7.1 %)"] == [100 * (1 / 14)] * 2
    plt.close(fig)


def test_curves_without_accuracy_or_chance_leave_the_panel_empty() -> None:
    fig = plot_training_curves({"scalar/total_loss": [(1, 1.0)]})
    assert fig.axes[1].get_lines() == [] and fig.axes[1].get_legend() is None
    plt.close(fig)
