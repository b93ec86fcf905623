"""Shared pieces of the fault-injection suite: the ``slow`` marker and a tiny training config.

Tests marked ``slow`` start real torchrun runs and kill them; ``make test`` (and CI)
runs them too; ``pytest -m "not slow"`` leaves them out while iterating.
"""
from __future__ import annotations

import copy

import pytest

from hstl_core import config
from hstl_core.data.syngait import ensure_syngait
from hstl_core.paths import CONFIG_ROOT


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: starts and kills real torchrun runs (tens of seconds)")


@pytest.fixture(scope="session")
def tiny_cfg() -> dict:
    """The small SynGait config cut down to seconds per iteration."""
    ensure_syngait("small", img_size=32)
    cfg = config.load(CONFIG_ROOT / "syngait_small.yaml")
    cfg["data_cfg"]["num_workers"] = 0
    cfg["trainer_cfg"].update(total_iter=6, save_iter=3, log_iter=1, save_name="tiny")
    cfg["trainer_cfg"]["sampler"].update(batch_size=[4, 2], frames_num_fixed=8)
    cfg["evaluator_cfg"]["save_name"] = "tiny"
    return copy.deepcopy(cfg)
