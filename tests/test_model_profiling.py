"""profile_step: where one step's time goes, by category."""
from __future__ import annotations

import torch

from hstl_core.model import build_model
from hstl_core.model.profiling import OTHER, category_of, profile_step

TINY = {"model": "HSTL", "channels": [4, 8, 8], "class_num": 4, "input_height": 16}


def test_operator_names_fall_into_their_categories():
    assert category_of("convolution_backward") == category_of("mkldnn_convolution") == "convolution"
    assert category_of("cat") == category_of("copy_") == "copy / cat / fill"
    assert category_of("max_pool3d_with_indices") == "pooling / max"
    assert category_of("leaky_relu_") == "leaky ReLU"
    assert category_of("bmm") == "matrix product"
    assert category_of("mul") == OTHER


def test_profile_of_a_training_step_counts_the_backward_convolutions():
    torch.manual_seed(0)
    model = build_model(TINY).eval()
    sils = torch.rand(2, 6, 16, 11)
    table = profile_step(model, sils, train=True)
    assert not model.training, "the model's mode is restored"
    assert all(p.grad is not None for p in model.arme2.parameters())
    assert table.milliseconds["convolution"] > 0 and table.total_ms > 0
    assert abs(sum(table.percent(c) for c in table.milliseconds) - 100.0) < 1e-6
    assert "convolution" in str(table) and "training step [2, 6, 16, 11] fp32" in str(table)
    inference = profile_step(model, sils, train=False)
    assert inference.what.startswith("inference") and inference.milliseconds["convolution"] > 0
