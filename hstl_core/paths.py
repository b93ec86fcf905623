"""Where the repository keeps things: the repository root, generated data, runs."""
from __future__ import annotations

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
