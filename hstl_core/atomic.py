"""Atomic file writes: a reader never sees a half-written file.

Every file the package writes (preprocessed arrays, checkpoints, reports, JSON
results) goes through these helpers: the bytes land in a temporary file
``.<name>.<random>.tmp`` in the same folder, are flushed to disk, and the temporary
file is renamed over the target. A run killed mid-write leaves the old file (or
none), never a truncated one; it may leave its temporary file, which readers skip
(:func:`is_temporary`) and writers remove (:func:`remove_temporaries`).

Files get the permissions ``open()`` would give them (``0o666`` less the umask), so
a dataset or checkpoint folder shared by a group stays readable by the group.
"""
from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import IO, Iterator

TEMPORARY = re.compile(r"^\.(?P<target>.+)\.[A-Za-z0-9_]{8}\.tmp$")
"""The name of an atomic writer's temporary file (``tempfile.mkstemp``'s 8 random characters)."""


def current_umask() -> int:
    """The process umask, read without changing it where Linux allows (``/proc/self/status``)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def is_temporary(path: str | os.PathLike) -> bool:
    """Whether ``path`` is the temporary file of an atomic write (finished or interrupted)."""
    return TEMPORARY.match(Path(path).name) is not None


def remove_temporaries(folder: str | os.PathLike, target_suffix: str = "") -> list[Path]:
    """Delete the temporaries an interrupted atomic write left in ``folder``; return them.

    Only names of this module's pattern whose target ends with ``target_suffix`` are
    touched. Call it only where no other writer works at the same time (the run
    folder's owner, a preprocessing run at its start).
    """
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for entry in Path(folder).iterdir():
            match = TEMPORARY.match(entry.name)
            if match and match["target"].endswith(target_suffix) and entry.is_file():
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()
                    removed.append(entry)
    return removed


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success rename it to ``path``.

    On an exception inside the ``with`` block the temporary file is removed and
    ``path`` is left untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, mode) as handle:
            os.fchmod(handle.fileno(), 0o666 & ~current_umask())
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path, "w") as handle:
        handle.write(text)
