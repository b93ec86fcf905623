"""show_at_scale: every panel is as large as its image, at one scale."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from hstl_core.viz import show_at_scale  # noqa: E402


def test_panels_keep_one_pixel_scale():
    images = [np.zeros((240, 320), np.uint8), np.zeros((64, 64), np.uint8), np.zeros((64, 44), np.float32)]
    fig = show_at_scale(images, ["raw", "64 x 64", "64 x 44"], inches_per_pixel=0.02, title="scale")
    fig_w, fig_h = fig.get_size_inches()
    for ax, image in zip(fig.axes, images):
        box = ax.get_position()
        assert box.width * fig_w == pytest.approx(image.shape[1] * 0.02)
        assert box.height * fig_h == pytest.approx(image.shape[0] * 0.02)
    assert fig.axes[2].images[0].get_clim() == (0, 1), "float images are drawn on 0..1"
    plt.close(fig)
