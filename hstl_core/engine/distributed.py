"""The process group: one process per GPU (NCCL) or N CPU processes (gloo).

``torchrun`` starts the processes and sets ``RANK``, ``LOCAL_RANK`` and
``WORLD_SIZE``; a plain ``python -m hstl_core`` is a world of one and starts no
process group at all. Multi-node runs are ``torchrun``'s own rendezvous
(``--nnodes``, ``--rdzv-endpoint``): nothing here is node-specific.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: its rank, the world size, its device and backend."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str | None

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, writes checkpoints and evaluates."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """A process group exists (started by torchrun, even for one process)."""
        return self.backend is not None


class CollectiveTimeout(RuntimeError):
    """A collective waited longer than ``collective_timeout``: a rank is stopped, hung or gone."""

    PATTERN = re.compile(r"Timed out waiting \d+ms|collective operation timeout")
    """gloo's message (a plain RuntimeError on the waiting ranks) and NCCL's watchdog's."""

    @classmethod
    def matches(cls, error: BaseException) -> bool:
        """Whether ``error`` is a backend's collective timeout."""
        return isinstance(error, RuntimeError) and not isinstance(error, cls) and bool(cls.PATTERN.search(str(error)))

    @classmethod
    def explain(cls, error: BaseException, timeout: float | None) -> "CollectiveTimeout":
        limit = f"{timeout:g} s" if timeout else "the backend's default"
        return cls(
            f"a collective operation waited longer than collective_timeout ({limit}): another rank is stopped "
            f"(SIGSTOP, a debugger), hung or dead; its log under <run_dir>/torchrun-*/ tells which. If a phase "
            f"legitimately keeps the other ranks waiting longer (a long evaluation on rank 0), raise "
            f"trainer_cfg/evaluator_cfg.collective_timeout. Backend error: {error}"
        )


def init_distributed(timeout: float | None = None) -> DistInfo:
    """Join the process group torchrun prepared, or describe a plain single process.

    Backend: NCCL when CUDA is available (one GPU per process, chosen by
    ``LOCAL_RANK``, so several nodes work), gloo otherwise. Under torchrun the group
    is made even for one process, so a one-GPU run takes the same path (DDP, SyncBN,
    collectives) as a multi-GPU one. ``timeout`` (seconds, ``collective_timeout`` in the
    config) bounds every collective: a rank that stops answering makes the others fail
    with a timeout instead of waiting forever (None: torch's default).
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(local_rank)
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if "TORCHELASTIC_RUN_ID" not in os.environ and world_size == 1:
        return DistInfo(0, 1, 0, device, None)
    backend = "nccl" if cuda else "gloo"
    if not dist.is_initialized():
        kwargs = {"timeout": timedelta(seconds=float(timeout))} if timeout else {}
        dist.init_process_group(backend=backend, device_id=device if cuda else None, **kwargs)
    return DistInfo(rank, world_size, local_rank, device, backend)


def shutdown(wait_for_others: bool = True) -> None:
    """Leave the process group (no-op for a single process).

    ``wait_for_others=False`` after an error: no barrier, which would wait on a
    stopped or dead rank for a whole timeout again.
    """
    if dist.is_initialized():
        if wait_for_others:
            dist.barrier()
        dist.destroy_process_group()


def all_gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` for a single process)."""
    if not info.distributed:
        return [obj]
    gathered: list[Any] = [None] * info.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def barrier(info: DistInfo) -> None:
    """Wait for every rank (no-op for a single process)."""
    if info.distributed:
        dist.barrier()


def broadcast_buffers(model: torch.nn.Module, info: DistInfo) -> None:
    """Give every rank rank 0's buffers (BatchNorm running statistics).

    Without SyncBN (gloo on CPUs) each rank's running statistics follow its own
    batches; before an evaluation every rank must embed with the same model, the one
    rank 0 saves.
    """
    if info.distributed:
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)
