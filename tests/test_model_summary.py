"""Parameters and FLOPs per module (FLOPs = 2 x multiply-adds)."""
from __future__ import annotations

import pytest

from hstl_core.model import build_model, summary


def test_paper_config_costs_about_51_7_gflops():
    model = build_model({"model": "HSTL", "channels": [32, 64, 128], "class_num": 74})
    table = summary(model, input_shape=(1, 30, 64, 44))
    assert table.total_params == 4_745_834
    assert table.total_flops / 1e9 == pytest.approx(51.7, rel=0.02)
    rows = {row.name: row for row in table.rows}
    assert rows["arme3"].output_shape == (1, 128, 10, 64, 44)
    assert rows["Head1"].params == 73 * 128 * 74
    assert model.training
    assert "total" in str(table) and "4,745,834" in str(table)


def test_small_config_summary():
    model = build_model({"model": "HSTL", "channels": [8, 16, 32], "class_num": 16, "input_height": 32})
    table = summary(model.eval(), input_shape=(1, 30, 32, 22))
    assert table.total_params == 241_890
    assert 0 < table.total_flops < 1e9
    assert not model.training
