"""Read and write one sequence array: ``.npy``, ``.npz`` and OpenGait's ``.pkl``.

The project writes ``.npy`` (a format that cannot run code when read). OpenGait's
``.pkl`` files are read through :class:`ArrayUnpickler`, which resolves only the
few names a pickled numpy array needs; anything else is refused with an error
naming the file.
"""
from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np

from hstl_core.atomic import atomic_write_bytes

ARRAY_SUFFIXES = (".npy", ".npz", ".pkl")

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class ArrayUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild numpy arrays and nothing else."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}: only numpy arrays are accepted")
        return super().find_class(module, name)


def load_pickled_array(path: str | os.PathLike) -> np.ndarray:
    """Load an OpenGait ``.pkl`` that holds one numpy array; refuse anything else."""
    try:
        with open(path, "rb") as handle:
            value = ArrayUnpickler(handle).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as err:
        raise ValueError(f"{path}: not a pickled numpy array ({err})") from err
    if not isinstance(value, np.ndarray) or value.dtype == object:
        raise ValueError(f"{path}: the pickle holds {type(value).__name__}, expected a numpy array")
    return value


def load_sequence(path: str | os.PathLike) -> np.ndarray:
    """Load one sequence array ``[T, h, w]`` from ``.npy``, ``.npz`` (one array) or ``.pkl``."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return np.load(path, allow_pickle=False)
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            if len(archive.files) != 1:
                raise ValueError(f"{path}: expected one array in the .npz, found {archive.files}")
            return archive[archive.files[0]]
    if suffix == ".pkl":
        return load_pickled_array(path)
    raise ValueError(f"{path}: unsupported sequence file; expected one of {ARRAY_SUFFIXES}")


def sequence_length(path: str | os.PathLike) -> int:
    """Number of frames of a stored sequence (reads only the header of a ``.npy``)."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        return int(np.load(path, mmap_mode="r", allow_pickle=False).shape[0])
    return int(load_sequence(path).shape[0])


def save_sequence(path: str | os.PathLike, array: np.ndarray, fmt: str = "npy") -> None:
    """Write one sequence atomically as ``.npy`` or OpenGait ``.pkl``."""
    buffer = io.BytesIO()
    if fmt == "npy":
        np.save(buffer, array, allow_pickle=False)
    elif fmt == "pkl":
        pickle.dump(array, buffer)
    else:
        raise ValueError(f"unknown sequence format {fmt!r}; use 'npy' or 'pkl'")
    atomic_write_bytes(path, buffer.getvalue())
