"""Fixtures shared by the unit tests and the fault-injection suite (tests/faults/)."""
from __future__ import annotations

import pytest

from hstl_core import config
from hstl_core.data.syngait import ensure_syngait
from hstl_core.paths import CONFIG_ROOT


@pytest.fixture(scope="session")
def tiny_cfg() -> dict:
    """The small SynGait config cut down to seconds per iteration: short clips, small batches.

    Shared by the session: a test that changes it works on ``copy.deepcopy(tiny_cfg)``.
    """
    ensure_syngait("small", img_size=32)
    cfg = config.load(CONFIG_ROOT / "syngait_small.yaml")
    cfg["data_cfg"]["num_workers"] = 0
    cfg["trainer_cfg"].update(total_iter=6, save_iter=3, log_iter=1, save_name="tiny")
    cfg["trainer_cfg"]["sampler"].update(batch_size=[4, 2], frames_num_fixed=8)
    cfg["evaluator_cfg"]["save_name"] = "tiny"
    return cfg
