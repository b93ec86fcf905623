"""What ``python -m hstl_core --cfgs FILE --phase train|test`` does in each process."""
from __future__ import annotations

import contextlib
import copy
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from hstl_core import lifeline
from hstl_core.engine.checkpoints import restore, run_dir
from hstl_core.engine.distributed import CollectiveTimeout, DistInfo, init_distributed, shutdown
from hstl_core.engine.ownership import own_run_folder
from hstl_core.engine.evaluator import evaluate_model
from hstl_core.engine.trainer import Trainer
from hstl_core.evaluation import save_results
from hstl_core.model import build_model

log = logging.getLogger("hstl")

RESULT_FILE = "result-{phase}.json"
"""Rank 0 writes the phase's final metrics here, in the run folder (read by ``launch``)."""

LAUNCHER_ENV = "HSTL_LAUNCHER"
"""Set by ``launch`` to the launching process's :func:`hstl_core.lifeline.identity`: every
rank exits within a second of that process's death, and the launcher holds the run
folder's lock for the ranks."""


def tie_to_launcher() -> None:
    """Make this process end when whoever started it ends (no orphaned rank keeps a GPU).

    Under torchrun the kernel kills the rank when torchrun exits (``PR_SET_PDEATHSIG``);
    under ``launch`` a watchdog thread also ends it when the launching process (a
    notebook kernel) is gone, even when that was a SIGKILL that torchrun outlived.
    """
    if "TORCHELASTIC_RUN_ID" in os.environ:
        lifeline.die_with_parent(signal.SIGKILL)
    launcher = os.environ.get(LAUNCHER_ENV)
    if launcher:
        lifeline.exit_when_gone(launcher, "the launching process")


def setup_logging(info: DistInfo, folder: Path, log_to_file: bool) -> None:
    """Rank 0 logs INFO to stdout (and ``logs/<time>.txt`` with ``log_to_file``); others warnings only."""
    log.handlers.clear()
    log.propagate = False
    log.setLevel(logging.INFO if info.is_main else logging.WARNING)
    formatter = logging.Formatter("[%(asctime)s] %(message)s", "%Y-%m-%d %H:%M:%S")
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(formatter)
    log.addHandler(console)
    if log_to_file and info.is_main:
        (folder / "logs").mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(folder / "logs" / time.strftime("%Y-%m-%d-%H-%M-%S.txt"))
        handler.setFormatter(formatter)
        log.addHandler(handler)


def run(
    cfg: dict, phase: str, iteration: int = 0, log_to_file: bool = False, output_root: str | Path = "output"
) -> dict[str, Any] | None:
    """Train or test in this process (one of torchrun's, or alone); rank 0 returns the result."""
    cfg = copy.deepcopy(cfg)
    if iteration:
        cfg["trainer_cfg"]["restore_hint"] = iteration
        cfg["evaluator_cfg"]["restore_hint"] = iteration
    tie_to_launcher()
    folder = run_dir(cfg, phase, output_root)
    engine = cfg["trainer_cfg"] if phase == "train" else cfg["evaluator_cfg"]
    with contextlib.ExitStack() as stack:
        if LAUNCHER_ENV not in os.environ and int(os.environ.get("RANK", "0")) == 0:
            stack.enter_context(own_run_folder(folder, phase))
        info = init_distributed(timeout=engine.get("collective_timeout"))
        setup_logging(info, folder, log_to_file)
        try:
            result = _train(cfg, info, output_root) if phase == "train" else _test(cfg, info, output_root)
            if info.is_main:
                save_results(result, folder / RESULT_FILE.format(phase=phase))
        except BaseException as error:
            shutdown(wait_for_others=False)
            if CollectiveTimeout.matches(error):
                raise CollectiveTimeout.explain(error, engine.get("collective_timeout")) from error
            raise
        shutdown()
        return result if info.is_main else None


def _train(cfg: dict, info: DistInfo, output_root: str | Path) -> dict[str, Any]:
    outcome = Trainer(cfg, info, output_root).train()
    checkpoint = outcome["checkpoint"]
    return {
        "phase": "train",
        "iteration": outcome["iteration"],
        "scalars": outcome["scalars"],
        "checkpoint": str(checkpoint) if checkpoint else None,
        "tests": {str(k): v["summary"] for k, v in outcome["tests"].items() if v},
        "rank_weight_digests": outcome["rank_weight_digests"],
        "world_size": info.world_size,
        "backend": info.backend,
    }


def _test(cfg: dict, info: DistInfo, output_root: str | Path) -> dict[str, Any]:
    model = build_model(cfg["model_cfg"]).to(info.device)
    _, checkpoint = restore(cfg, "test", model, output_root=output_root)
    if checkpoint is None:
        log.warning("evaluator_cfg.restore_hint is 0: evaluating untrained weights")
    result = evaluate_model(cfg, model, info) or {}
    if info.is_main:
        result.update(phase="test", checkpoint=str(checkpoint) if checkpoint else None, world_size=info.world_size)
        if checkpoint is not None:
            saved = checkpoint.with_suffix(".test.json")
            save_results(result, saved)
            log.info("results saved to %s", saved)
    return result

