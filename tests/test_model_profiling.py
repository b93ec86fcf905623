"""profile_step: where one step's time goes, by category."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from hstl_core.model import build_model
from hstl_core.model.profiling import OTHER, category_of, native_stderr_silenced, profile_step

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
    assert abs(sum(table.operators.values()) - table.total_ms) < 1e-6
    assert {category_of(name) for name in table.operators} == set(table.milliseconds)
    top = table.top_operators(3)
    assert len(top) == 3 and top[0][1] >= top[1][1] >= top[2][1] and "convolution_backward" in table.operators
    inference = profile_step(model, sils, train=False)
    assert inference.what.startswith("inference") and inference.milliseconds["convolution"] > 0


def test_a_profiled_step_writes_nothing_to_stderr():
    """Kineto's start/stop log lines (USDT, STAGE, gpuGetDeviceCount) must not reach a cell or ``make bench``."""
    script = (
        "import torch\n"
        "torch.set_num_threads(1)\n"
        "from hstl_core.model import build_model\n"
        "from hstl_core.model.profiling import profile_step\n"
        f"model = build_model({TINY!r})\n"
        "print(profile_step(model, torch.rand(1, 3, 16, 11), train=False).what)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("inference [1, 3, 16, 11] fp32")
    assert done.stderr == ""


def test_stderr_is_restored_after_an_error_inside_the_block(capfd):
    with pytest.raises(ValueError), native_stderr_silenced():
        os.write(2, b"hidden\n")
        raise ValueError("inside")
    os.write(2, b"visible\n")
    assert capfd.readouterr().err == "visible\n"
