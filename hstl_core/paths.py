"""Where the repository keeps things: the repository root, generated data, runs."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
"""The checkout that holds ``hstl_core`` (installed in editable mode)."""

DATA_ROOT = REPO_ROOT / "data"
"""Shipped partitions and layouts (``data/partitions``) and generated data."""

SYNGAIT_ROOT = DATA_ROOT / "syngait"
"""Generated SynGait sets, one folder per preset (git-ignored)."""

OUTPUT_ROOT = REPO_ROOT / "output"
"""Training runs in OpenGait's layout ``output/<dataset>/<model>/<save_name>/``."""

CONFIG_ROOT = Path(__file__).resolve().parent / "configs"
"""YAML configs shipped as package data."""


def resolve_data_path(path: str | os.PathLike) -> Path:
    """Find a dataset root or partition file named in a config.

    OpenGait resolves relative paths against the working directory; notebooks run
    from ``notebooks/`` and the official configs name ``./misc/partitions/...``. So a
    relative path is tried, in order, against the working directory, the repository
    root, and (for a partition file) ``data/partitions/`` by file name. The first that
    exists wins; if none does, the working-directory reading is returned so the
    caller's error names the path the user wrote.
    """
    candidate = Path(path).expanduser()
    if candidate.is_absolute():
        return candidate
    tries = [Path.cwd() / candidate, REPO_ROOT / candidate, DATA_ROOT / "partitions" / candidate.name]
    for option in tries:
        if option.exists():
            return option.resolve()
    return tries[0]


def folder_name_problem(name: object) -> str | None:
    """Why ``name`` cannot be one folder inside another (None when it can).

    Config names that become folders (``dataset_name``, ``save_name``) must not be
    absolute, ``..`` or hold a separator: the run would write outside ``output_root``.
    """
    text = str(name)
    if text in ("", ".", ".."):
        return "is empty, '.' or '..'"
    if "/" in text or "\\" in text or "\0" in text:
        return "holds a path separator (or is absolute)"
    return None
