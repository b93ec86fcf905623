"""OpenGait's run folder, checkpoint path rule and ``restore_hint``.

A run lives in ``output/<dataset_name>/<model>/<save_name>/``; its checkpoints are
``checkpoints/<save_name>-<iteration:05d>.pt``, for instance
``output/CASIA-B/HSTL/HSTL/checkpoints/HSTL-80000.pt``: ``model`` names the
architecture, ``save_name`` the experiment, so several experiments of one model
(``HSTL_bs16``, ``HSTL_noFTA``) sit side by side. When the two names are equal the
path repeats itself; that is the rule, not an accident.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch

from hstl_core.atomic import remove_temporaries
from hstl_core.model import save_checkpoint
from hstl_core.model.checkpoint import load_content, read_checkpoint
from hstl_core.paths import folder_name_problem

__all__ = ["checkpoint_path", "read_scalars", "restore", "run_dir", "save_checkpoint", "saved_iterations"]


def _engine_cfg(cfg: dict, phase: str) -> dict:
    """``trainer_cfg`` for the train phase, ``evaluator_cfg`` otherwise."""
    return cfg["trainer_cfg"] if phase == "train" else cfg["evaluator_cfg"]


def run_dir(cfg: dict, phase: str = "train", output_root: str | Path = "output") -> Path:
    """``output_root/<dataset_name>/<model>/<save_name>`` for the phase's engine config.

    Each of the three names must be one plain folder name (no ``/``, not ``..``, not
    absolute), so a run never writes outside ``output_root``; otherwise ``ValueError``.
    """
    engine = _engine_cfg(cfg, phase)
    section = "trainer_cfg" if phase == "train" else "evaluator_cfg"
    names = {
        "data_cfg.dataset_name": cfg["data_cfg"]["dataset_name"],
        "model_cfg.model": cfg["model_cfg"]["model"],
        f"{section}.save_name": engine["save_name"],
    }
    for key, name in names.items():
        problem = folder_name_problem(name)
        if problem:
            raise ValueError(f"{key} {name!r} {problem}: it names a folder under output_root")
    return Path(output_root).joinpath(*names.values())



def checkpoint_path(cfg: dict, iteration: int, phase: str = "train", output_root: str | Path = "output") -> Path:
    """``<run_dir>/checkpoints/<save_name>-<iteration:05d>.pt``."""
    engine = _engine_cfg(cfg, phase)
    return run_dir(cfg, phase, output_root) / "checkpoints" / f"{engine['save_name']}-{iteration:05d}.pt"


def saved_iterations(cfg: dict, phase: str = "train", output_root: str | Path = "output") -> list[int]:
    """The iterations of this run's checkpoints on disk, ascending."""
    engine = _engine_cfg(cfg, phase)
    pattern = re.compile(rf"{re.escape(engine['save_name'])}-(\d+)\.pt")
    folder = run_dir(cfg, phase, output_root) / "checkpoints"
    found = [pattern.fullmatch(p.name) for p in folder.glob("*.pt")] if folder.is_dir() else []
    return sorted(int(m.group(1)) for m in found if m)


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
    if isinstance(hint, int):
        remove_temporaries(path.parent, ".pt")
    if not path.is_file():
        message = f"restore_hint {hint!r}: no checkpoint at {path}"
        if isinstance(hint, int):
            found = saved_iterations(cfg, phase, output_root)
            message += f"; this run has checkpoints of iterations {found}" if found else "; this run has no checkpoint yet"
        raise FileNotFoundError(message)
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
