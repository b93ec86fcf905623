"""OpenGait's run folder, checkpoint path rule and ``restore_hint``.

A run lives in ``output/<dataset_name>/<model>/<save_name>/``; its checkpoints are
``checkpoints/<save_name>-<iteration:05d>.pt``, for instance
``output/CASIA-B/HSTL/HSTL/checkpoints/HSTL-80000.pt``: ``model`` names the
architecture, ``save_name`` the experiment, so several experiments of one model
(``HSTL_bs16``, ``HSTL_noFTA``) sit side by side. When the two names are equal the
path repeats itself; that is the rule, not an accident.
"""
from __future__ import annotations

from pathlib import Path

import torch

from hstl_core.model import save_checkpoint
from hstl_core.model.checkpoint import load_content, read_checkpoint

__all__ = ["checkpoint_path", "read_scalars", "restore", "run_dir", "save_checkpoint"]


def _engine_cfg(cfg: dict, phase: str) -> dict:
    """``trainer_cfg`` for the train phase, ``evaluator_cfg`` otherwise."""
    return cfg["trainer_cfg"] if phase == "train" else cfg["evaluator_cfg"]


def run_dir(cfg: dict, phase: str = "train", output_root: str | Path = "output") -> Path:
    """``output_root/<dataset_name>/<model>/<save_name>`` for the phase's engine config."""
    engine = _engine_cfg(cfg, phase)
    return Path(output_root) / cfg["data_cfg"]["dataset_name"] / cfg["model_cfg"]["model"] / engine["save_name"]


def checkpoint_path(cfg: dict, iteration: int, phase: str = "train", output_root: str | Path = "output") -> Path:
    """``<run_dir>/checkpoints/<save_name>-<iteration:05d>.pt``."""
    engine = _engine_cfg(cfg, phase)
    return run_dir(cfg, phase, output_root) / "checkpoints" / f"{engine['save_name']}-{iteration:05d}.pt"


def restore(
    cfg: dict,
    phase: str,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    output_root: str | Path = "output",
) -> tuple[int, Path | None]:
    """Apply ``restore_hint``; return (iteration to continue from, file loaded).

    * ``0``: nothing to load, start at iteration 0.
    * an int ``N``: this run's checkpoint of iteration ``N``; training resumes at ``N``
      with the optimizer and scheduler states unless ``optimizer_reset`` /
      ``scheduler_reset`` are set.
    * a string: that file (fine-tuning); the iteration counter restarts at 0.
    """
    engine = _engine_cfg(cfg, phase)
    hint = engine.get("restore_hint", 0)
    if hint == 0:
        return 0, None
    if isinstance(hint, int):
        path, start = checkpoint_path(cfg, hint, phase, output_root), hint
    else:
        path, start = Path(hint), 0
    if not path.is_file():
        raise FileNotFoundError(f"restore_hint {hint!r}: no checkpoint at {path}")
    content = read_checkpoint(path)
    load_content(model, content, path, strict=engine.get("restore_ckpt_strict", True))
    if isinstance(hint, int) and phase == "train":
        if optimizer is not None and not engine.get("optimizer_reset", False) and content.get("optimizer"):
            optimizer.load_state_dict(content["optimizer"])
        if scheduler is not None and not engine.get("scheduler_reset", False) and content.get("scheduler"):
            scheduler.load_state_dict(content["scheduler"])
    return start, path


def read_scalars(folder: str | Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar TensorBoard holds for a run folder: ``{tag: [(step, value), ...]}``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(Path(folder) / "summary"))
    accumulator.Reload()
    return {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]}
