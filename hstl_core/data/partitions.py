"""Dataset partitions in OpenGait's JSON form: ``{"TRAIN_SET": [...], "TEST_SET": [...]}``.

The shipped files in ``data/partitions/`` are made by :func:`write_shipped_partitions`
from the partition files the HSTL repositories publish in ``misc/partitions/`` (CASIA-B,
OU-MVLP) and from SynGait's presets.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from hstl_core import paths
from hstl_core.atomic import atomic_write_text
from hstl_core.data import wild
from hstl_core.data.synthetic import PRESETS, get_preset

PARTITION_ROOT = paths.DATA_ROOT / "partitions"


def load_partition(path: str | os.PathLike) -> dict[str, list[str]]:
    """Read a partition file; raise ``ValueError`` naming it when keys are missing."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: cannot read partition JSON ({err})") from err
    for key in ("TRAIN_SET", "TEST_SET"):
        if not isinstance(data.get(key), list):
            raise ValueError(f"{path}: partition needs a list {key!r}")
        not_text = [item for item in data[key] if not isinstance(item, str)]
        if not_text:
            raise ValueError(
                f"{path}: {key} holds {type(not_text[0]).__name__} {not_text[0]!r}; ids are folder names and "
                f"must be strings written as the folders are named (\"001\", not 1: leading zeros matter)"
            )
    return data


def casia_b(include_005: bool = True) -> dict[str, list[str]]:
    """CASIA-B: train 001-074 (without 005 unless ``include_005``), test 075-124."""
    train = [f"{i:03d}" for i in range(1, 75) if include_005 or i != 5]
    return {"TRAIN_SET": train, "TEST_SET": [f"{i:03d}" for i in range(75, 125)]}


def ou_mvlp() -> dict[str, list[str]]:
    """OU-MVLP: odd ids 00001..10305 train (5153), even 00002..10306 plus 10307 test (5154)."""
    train = [f"{i:05d}" for i in range(1, 10306, 2)]
    test = [f"{i:05d}" for i in range(2, 10307, 2)] + ["10307"]
    return {"TRAIN_SET": train, "TEST_SET": test}


def syngait(preset: str) -> dict[str, list[str]]:
    """SynGait: the first ``round(train_fraction * subjects)`` ids train, the rest test.

    Wild presets add Gait3D's ``PROBE_SET`` (one query sequence per test id, see
    ``hstl_core.data.wild.partition``).
    """
    if preset in wild.WILD_PRESETS:
        return wild.partition(preset)
    knobs = get_preset(preset)
    ids = [f"{i:03d}" for i in range(1, knobs.subjects + 1)]
    cut = round(knobs.train_fraction * knobs.subjects)
    return {"TRAIN_SET": ids[:cut], "TEST_SET": ids[cut:]}


def syngait_partition_path(preset: str) -> Path:
    return PARTITION_ROOT / f"SynGait-{preset}.json"


def write_partition(path: str | os.PathLike, partition: dict[str, list[str]]) -> None:
    """Write a partition atomically, one id per line (as OpenGait's files)."""
    atomic_write_text(path, json.dumps(partition, indent=1) + "\n")


def write_syngait_partition(preset: str) -> Path:
    path = syngait_partition_path(preset)
    write_partition(path, syngait(preset))
    return path


def write_shipped_partitions() -> None:
    """(Re)write every partition file shipped in ``data/partitions``."""
    write_partition(PARTITION_ROOT / "CASIA-B_include_005.json", casia_b(include_005=True))
    write_partition(PARTITION_ROOT / "CASIA-B.json", casia_b(include_005=False))
    write_partition(PARTITION_ROOT / "OUMVLP.json", ou_mvlp())
    for preset in [*PRESETS, *wild.WILD_PRESETS]:
        write_syngait_partition(preset)
