"""What ``python -m hstl_core --cfgs FILE --phase train|test`` does in each process."""
from __future__ import annotations

import copy
import logging
import sys
import time
from pathlib import Path
from typing import Any

from hstl_core.engine.checkpoints import restore, run_dir
from hstl_core.engine.distributed import DistInfo, init_distributed, shutdown
from hstl_core.engine.evaluator import evaluate_model
from hstl_core.engine.trainer import Trainer
from hstl_core.evaluation import save_results
from hstl_core.model import build_model

log = logging.getLogger("hstl")

RESULT_FILE = "result-{phase}.json"
"""Rank 0 writes the phase's final metrics here, in the run folder (read by ``launch``)."""


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
    info = init_distributed()
    folder = run_dir(cfg, phase, output_root)
    setup_logging(info, folder, log_to_file)
    try:
        result = _train(cfg, info, output_root) if phase == "train" else _test(cfg, info, output_root)
        if info.is_main:
            save_results(result, folder / RESULT_FILE.format(phase=phase))
        return result if info.is_main else None
    finally:
        shutdown()


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

