"""Reading and writing OpenGait checkpoints (``HSTL-80000.pt`` and our own).

An OpenGait checkpoint is a dict ``{"model", "optimizer", "scheduler",
"iteration"}`` whose ``"model"`` is the state dict, its keys prefixed ``module.``
when it was saved from a DDP wrapper. A bare state dict is accepted too. Files are
read with ``torch.load(weights_only=True)``: tensors and plain containers only, no
code runs while reading.

A checkpoint is refused, with the file and the offending keys named, when a value of
its state dict is not a tensor, or when a floating-point tensor holds NaN or an
infinity: a diverged run's weights would otherwise load silently and be trained on
or evaluated as if they were a model.
"""
from __future__ import annotations

import io
import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from hstl_core.atomic import atomic_write_bytes, remove_temporaries

DDP_PREFIX = "module."


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be read, or that does not fit the model."""


def read_checkpoint(path: str | os.PathLike) -> Mapping:
    """The checkpoint file's content as saved (an OpenGait dict or a bare state dict)."""
    path = Path(path)
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as error:
        raise CheckpointError(
            f"cannot read checkpoint {path}: {type(error).__name__}: {error} "
            "(truncated or corrupt file, or not a PyTorch checkpoint)"
        ) from error
    if not isinstance(content, Mapping):
        raise CheckpointError(f"checkpoint {path} holds a {type(content).__name__}, not a dict")
    return content


def read_state_dict(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], int | None]:
    """The state dict (``module.`` stripped) and iteration (None for a bare state dict)."""
    return _state_and_iteration(read_checkpoint(path))


def _state_and_iteration(content: Mapping) -> tuple[dict[str, torch.Tensor], int | None]:
    is_opengait = "model" in content and isinstance(content["model"], Mapping)
    state = content["model"] if is_opengait else content
    iteration = int(content["iteration"]) if is_opengait and "iteration" in content else None
    return {str(key).removeprefix(DDP_PREFIX): value for key, value in state.items()}, iteration


def check_values(state: Mapping, path: str | os.PathLike) -> None:
    """Refuse a state dict with a non-tensor value or a non-finite floating-point tensor.

    Raises one :class:`CheckpointError` naming the file and every such key.
    """
    not_tensors = [f"{key} ({type(value).__name__})" for key, value in state.items() if not isinstance(value, torch.Tensor)]
    if not_tensors:
        raise CheckpointError(
            f"checkpoint {path}: {len(not_tensors)} state-dict value(s) are not tensors: " + ", ".join(not_tensors[:20])
        )
    non_finite = [
        key for key, value in state.items()
        if value.is_floating_point() and value.numel() and not bool(torch.isfinite(value).all())
    ]
    if non_finite:
        raise CheckpointError(
            f"checkpoint {path}: {len(non_finite)} tensor(s) hold NaN or infinite values (a diverged run?): "
            + ", ".join(non_finite[:20]) + "; load an earlier checkpoint"
        )


def mismatch_report(model: nn.Module, state: Mapping[str, torch.Tensor]) -> tuple[list[str], list[str], list[str]]:
    """(missing keys, unexpected keys, ``"key: file shape vs model shape"`` lines)."""
    expected = model.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    wrong_shape = [
        f"{key}: checkpoint {list(state[key].shape)} vs model {list(expected[key].shape)}"
        for key in expected
        if key in state and state[key].shape != expected[key].shape
    ]
    return missing, unexpected, wrong_shape


def load_checkpoint(model: nn.Module, path: str | os.PathLike, strict: bool = True) -> int | None:
    """Load an OpenGait checkpoint (or bare state dict) into ``model``; return its iteration.

    ``strict``: every key must match in name and shape; otherwise one
    ``CheckpointError`` lists the missing, unexpected and wrongly shaped keys and
    names the file. Without ``strict`` missing and unexpected keys are skipped, but
    a wrongly shaped key is still an error (it cannot be loaded).
    """
    return load_content(model, read_checkpoint(path), path, strict)


def load_content(model: nn.Module, content: Mapping, path: str | os.PathLike, strict: bool = True) -> int | None:
    """:func:`load_checkpoint` for a checkpoint already read with :func:`read_checkpoint`."""
    state, iteration = _state_and_iteration(content)
    check_values(state, path)
    missing, unexpected, wrong_shape = mismatch_report(model, state)
    if wrong_shape or (strict and (missing or unexpected)):
        lines = [f"checkpoint {path} does not fit {type(model).__name__}:"]
        for title, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong_shape)):
            if keys:
                lines.append(f"  {title} ({len(keys)}): " + ", ".join(keys))
        raise CheckpointError("\n".join(lines))
    model.load_state_dict(state, strict=strict)
    return iteration


def save_checkpoint(
    model: nn.Module,
    path: str | os.PathLike,
    iteration: int,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
) -> Path:
    """Write an OpenGait-style checkpoint dict atomically; return the path.

    Temporaries of checkpoint writes that a kill interrupted earlier (``.*.pt.*.tmp``,
    as large as a checkpoint each) are removed from the folder first.
    """
    content = {
        "model": model.state_dict(),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "iteration": iteration,
    }
    buffer = io.BytesIO()
    torch.save(content, buffer)
    remove_temporaries(Path(path).parent, Path(path).suffix)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)
