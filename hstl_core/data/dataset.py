"""The sequence index over OpenGait's layout ``root/<id>/<type>/<view>/<file>``.

One item is one sequence: ``(uint8 [T, h, w], id, type, view)``. The subjects are
those of the partition's split that exist on disk, in sorted order; inside a subject,
types and views are sorted (the order OpenGait indexes them in).

What the index does with untidy folders (a long job should fail at once or not at all):
* files an operating system or a file manager leaves (``.DS_Store``, ``Thumbs.db``,
  ``desktop.ini``, ``._*``) and temporaries of interrupted atomic writes
  (``.<name>.<random>.tmp``) are ignored, with one warning naming how many and which;
* every ``.npy`` header is read at construction (about 128 bytes each): a truncated
  file, a shape other than ``[T, h, w]`` or a dtype other than uint8 / bool is an
  error naming the file; a sequence of 0 frames is left out with a warning naming it.
  Other formats are checked when a sequence is loaded.
"""
from __future__ import annotations

import functools
import os
import warnings
from pathlib import Path

import numpy as np
import torch.utils.data

from hstl_core import paths
from hstl_core.atomic import is_temporary
from hstl_core.data.io import ARRAY_SUFFIXES, load_sequence, sequence_length
from hstl_core.data.partitions import load_partition


OS_CLUTTER = frozenset({".ds_store", "thumbs.db", "desktop.ini", "ehthumbs.db", ".directory"})
"""File names (lower case) that operating systems and file managers drop into folders."""


def is_clutter(path: Path) -> bool:
    """An OS or file-manager file (``.DS_Store``, ``Thumbs.db``, ``._x``) or an atomic-write temporary."""
    name = path.name
    return name.lower() in OS_CLUTTER or name.startswith("._") or is_temporary(path)


class GaitDataset(torch.utils.data.Dataset):
    """Index of the sequences of one split.

    Attributes (one entry per sequence, same order): ``label_list`` (subject ids),
    ``types_list``, ``views_list``, ``seq_paths`` (the array file), ``frame_counts``;
    plus ``label_set`` (sorted unique ids) and ``indices_dict`` (id -> indices).
    ``data_in_use`` (OpenGait's key) picks which of the sorted files of a view
    folder is the sequence, as booleans; exactly one must be picked.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        partition_path: str | os.PathLike,
        split: str = "train",
        cache: bool = False,
        data_in_use: list[bool] | None = None,
    ):
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', not {split!r}")
        self.root = paths.resolve_data_path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"dataset root {self.root} does not exist (run ensure_syngait or preprocess first)")
        partition = load_partition(paths.resolve_data_path(partition_path))
        wanted = partition["TRAIN_SET" if split == "train" else "TEST_SET"]
        present = sorted(sid for sid in wanted if (self.root / sid).is_dir())
        if not present:
            raise ValueError(f"{self.root}: none of the {len(wanted)} {split} ids of {partition_path} is a folder here")
        self.label_list: list[str] = []
        self.types_list: list[str] = []
        self.views_list: list[str] = []
        self.seq_paths: list[Path] = []
        self.ignored: list[Path] = []
        for sid in present:
            for type_dir in self._subfolders(self.root / sid, "<id>/<type-seq>/", self.ignored):
                for view_dir in self._subfolders(type_dir, "<id>/<type-seq>/<view>/", self.ignored):
                    files = self._sequence_files(view_dir, data_in_use, self.ignored)
                    if files is None:
                        continue
                    self.label_list.append(sid)
                    self.types_list.append(type_dir.name)
                    self.views_list.append(view_dir.name)
                    self.seq_paths.append(files)
        if self.ignored:
            warnings.warn(
                f"{self.root}: ignored {len(self.ignored)} file(s) that are not sequences "
                f"(OS clutter or temporaries of interrupted writes), e.g. {self.ignored[0]}",
                stacklevel=2,
            )
        self._drop_empty(self._read_npy_headers())
        self.label_set = sorted(set(self.label_list))
        self.indices_dict = {sid: [] for sid in self.label_set}
        for i, sid in enumerate(self.label_list):
            self.indices_dict[sid].append(i)
        self._cache = [load_sequence(p) for p in self.seq_paths] if cache else None

    def _read_npy_headers(self) -> dict[int, int]:
        """``{index: frames}`` of the ``.npy`` sequences; a bad file raises ``ValueError`` naming it."""
        return {i: sequence_length(p) for i, p in enumerate(self.seq_paths) if p.suffix.lower() == ".npy"}

    def _drop_empty(self, lengths: dict[int, int]) -> None:
        """Leave out sequences of 0 frames, with one warning naming them."""
        empty = {i for i, n in lengths.items() if n == 0}
        if empty:
            names = [str(self.seq_paths[i]) for i in sorted(empty)]
            warnings.warn(f"left out {len(names)} sequence(s) with 0 frames: {', '.join(names[:5])}", stacklevel=3)
        keep = [i for i in range(len(self.seq_paths)) if i not in empty]
        for name in ("label_list", "types_list", "views_list", "seq_paths"):
            setattr(self, name, [getattr(self, name)[i] for i in keep])
        self._npy_lengths = {j: lengths[i] for j, i in enumerate(keep) if i in lengths}

    @functools.cached_property
    def frame_counts(self) -> list[int]:
        """Frames per sequence (``.npy``: from the headers read at construction)."""
        if self._cache is not None:
            return [len(sils) for sils in self._cache]
        return [self._npy_lengths[i] if i in self._npy_lengths else sequence_length(p) for i, p in enumerate(self.seq_paths)]

    @staticmethod
    def _subfolders(folder: Path, expected: str, ignored: list[Path]) -> list[Path]:
        entries = sorted(folder.iterdir())
        ignored += [e for e in entries if not e.is_dir() and is_clutter(e)]
        entries = [e for e in entries if e.is_dir() or not is_clutter(e)]
        stray = [e for e in entries if not e.is_dir()]
        if stray:
            raise ValueError(f"{folder}: holds the file {stray[0].name!r} where the layout expects folders {expected}")
        return entries

    @staticmethod
    def _sequence_files(view_dir: Path, data_in_use: list[bool] | None, ignored: list[Path]) -> Path | None:
        entries = sorted(view_dir.iterdir())
        ignored += [e for e in entries if not e.is_dir() and is_clutter(e)]
        entries = [e for e in entries if e.is_dir() or not is_clutter(e)]
        bad = [e for e in entries if e.is_dir() or e.suffix.lower() not in ARRAY_SUFFIXES]
        if bad:
            raise ValueError(f"{view_dir}: {bad[0].name!r} does not fit the layout (expected {ARRAY_SUFFIXES} files only)")
        if not entries:
            return None
        if data_in_use is not None:
            if len(data_in_use) != len(entries):
                raise ValueError(f"{view_dir}: data_in_use has {len(data_in_use)} flags for {len(entries)} files")
            entries = [e for e, use in zip(entries, data_in_use) if use]
        if len(entries) != 1:
            raise ValueError(f"{view_dir}: expected one sequence file in use, found {[e.name for e in entries]}")
        return entries[0]

    @classmethod
    def from_data_cfg(cls, data_cfg: dict, train: bool) -> "GaitDataset":
        """Build from OpenGait's ``data_cfg`` (``dataset_root``, ``dataset_partition``,
        ``cache``, ``data_in_use``; ``remove_no_gallery`` belongs to the evaluation)."""
        for key in ("dataset_root", "dataset_partition"):
            if key not in data_cfg:
                raise KeyError(f"data_cfg needs {key!r}")
        return cls(
            data_cfg["dataset_root"],
            data_cfg["dataset_partition"],
            "train" if train else "test",
            cache=bool(data_cfg.get("cache", False)),
            data_in_use=data_cfg.get("data_in_use"),
        )

    def __len__(self) -> int:
        return len(self.seq_paths)

    def __getitem__(self, index: int) -> tuple[np.ndarray, str, str, str]:
        """``(uint8 [T, h, w], id, type, view)`` of sequence ``index``."""
        sils = self._cache[index] if self._cache is not None else load_sequence(self.seq_paths[index])
        if len(sils) == 0:
            raise ValueError(f"{self.seq_paths[index]}: the sequence has 0 frames; remove the file or preprocess again")
        return sils, self.label_list[index], self.types_list[index], self.views_list[index]

    def table(self) -> list[dict]:
        """One dict per sequence (id, type, view, frames, path), for a quick look."""
        return [
            {"id": s, "type": t, "view": v, "frames": n, "path": str(p)}
            for s, t, v, n, p in zip(self.label_list, self.types_list, self.views_list, self.frame_counts, self.seq_paths)
        ]
