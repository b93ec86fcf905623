"""One owner per run folder and phase: ``<run_dir>/<phase>.lock``.

Two runs writing one folder would read each other's config and overwrite each
other's checkpoints and results. The owner holds an exclusive ``flock`` on the lock
file for as long as it runs and writes its PID, host and start time into it; a second
run is refused with an error naming that PID. The kernel drops the lock when the
owner's last process exits, however it died, so a lock left by a dead run is simply
taken over (the file stays; its content names the last owner). Training and testing
use separate lock files: evaluating a checkpoint while training goes on is allowed.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Iterator


class RunFolderBusy(RuntimeError):
    """Another live process owns the run folder for this phase."""


def lock_path(folder: str | os.PathLike, phase: str) -> Path:
    """``<folder>/<phase>.lock``."""
    return Path(folder) / f"{phase}.lock"


@contextlib.contextmanager
def own_run_folder(folder: str | os.PathLike, phase: str) -> Iterator[int]:
    """Hold the run folder's lock for ``phase`` inside the ``with`` block; yield its file descriptor.

    Raises :class:`RunFolderBusy` naming the owner's PID when a live process holds it.
    The descriptor may be handed to child processes (``pass_fds``): the lock then
    lasts until the last of them exits.
    """
    path = lock_path(folder, phase)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunFolderBusy(
                f"run folder {path.parent} is already used for {phase} by {_describe_owner(fd)} "
                f"(lock {path}). Wait for that run, stop it, or give this run another save_name."
            ) from None
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(owner).encode(), 0)
        yield fd
    finally:
        os.close(fd)


def _describe_owner(fd: int) -> str:
    """``PID 123 on host h since <time>`` from the lock file (``an unknown process`` if unreadable)."""
    try:
        owner = json.loads(os.pread(fd, 4096, 0).decode())
        return f"PID {owner['pid']} on {owner['host']} since {owner['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "an unknown process"
