"""The process group: one process per GPU (NCCL) or N CPU processes (gloo).

``torchrun`` starts the processes and sets ``RANK``, ``LOCAL_RANK`` and
``WORLD_SIZE``; a plain ``python -m hstl_core`` is a world of one and starts no
process group at all. Multi-node runs are ``torchrun``'s own rendezvous
(``--nnodes``, ``--rdzv-endpoint``): nothing here is node-specific.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
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


def init_distributed() -> DistInfo:
    """Join the process group torchrun prepared, or describe a plain single process.

    Backend: NCCL when CUDA is available (one GPU per process, chosen by
    ``LOCAL_RANK``, so several nodes work), gloo otherwise. Under torchrun the group
    is made even for one process, so a one-GPU run takes the same path (DDP, SyncBN,
    collectives) as a multi-GPU one.
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
        dist.init_process_group(backend=backend, device_id=device if cuda else None)
    return DistInfo(rank, world_size, local_rank, device, backend)


def shutdown() -> None:
    """Leave the process group (no-op for a single process)."""
    if dist.is_initialized():
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
