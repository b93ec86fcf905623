"""Read and write one sequence array: ``.npy``, ``.npz`` and OpenGait's ``.pkl``.

The project writes ``.npy`` (a format that cannot run code when read). OpenGait's
``.pkl`` files are read through :class:`ArrayUnpickler`, which resolves only the
few names a pickled numpy array needs; anything else is refused with an error
naming the file.

A sequence is ``[T, h, w]`` of ``uint8`` (0 background .. 255 foreground). Boolean
masks are accepted and read as 0 / 255 (``True`` is the person); any other dtype
(float, int16...), another number of dimensions, or a truncated file is refused with
an error naming the file, because rescaling it by guess would train on wrong pixels.
"""
from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np

from hstl_core.atomic import atomic_write_bytes

ARRAY_SUFFIXES = (".npy", ".npz", ".pkl")
SILHOUETTE_DTYPES = (np.dtype(np.uint8), np.dtype(np.bool_))

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
    """Load one sequence ``uint8 [T, h, w]`` from ``.npy``, ``.npz`` (one array) or ``.pkl``.

    A bool array comes back as 0 / 255; a file that is truncated, not an array, or
    of another shape or dtype raises ``ValueError`` naming it.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            array = np.load(path, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                if len(archive.files) != 1:
                    raise ValueError(f"{path}: expected one array in the .npz, found {archive.files}")
                array = archive[archive.files[0]]
        elif suffix == ".pkl":
            array = load_pickled_array(path)
        else:
            raise ValueError(f"{path}: unsupported sequence file; expected one of {ARRAY_SUFFIXES}")
    except (ValueError, EOFError, OSError, zipfile.BadZipFile) as err:
        if str(path) in str(err):
            raise
        raise ValueError(f"{path}: cannot read the sequence ({type(err).__name__}: {err}); truncated or not an array file") from err
    check_silhouettes(array.shape, array.dtype, path)
    return array.astype(np.uint8) * 255 if array.dtype == np.bool_ else array


def check_silhouettes(shape: tuple[int, ...], dtype: np.dtype, path: str | os.PathLike) -> None:
    """Refuse anything but ``[T, h, w]`` of uint8 or bool, naming ``path``."""
    if len(shape) != 3:
        raise ValueError(f"{path}: a sequence is [frames, height, width], this array has shape {tuple(shape)}")
    if np.dtype(dtype) not in SILHOUETTE_DTYPES:
        raise ValueError(
            f"{path}: silhouettes are uint8 (0-255) or bool, this array is {np.dtype(dtype)}; "
            "convert it, e.g. (x * 255).round().astype(np.uint8) for values in [0, 1]"
        )


def npy_header(path: str | os.PathLike) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from a ``.npy`` header, checking that the file holds all the data.

    Reads about 128 bytes; raises ``ValueError`` naming the file when it is not a
    ``.npy`` or is shorter than its header says (an interrupted copy).
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read_header(handle)
            data_start = handle.tell()
    except (ValueError, EOFError, OSError) as err:
        raise ValueError(f"{path}: not a readable .npy file ({err})") from err
    expected = data_start + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    size = path.stat().st_size
    if size < expected:
        raise ValueError(f"{path}: truncated .npy ({size} bytes, its header announces {expected}); write it again")
    return tuple(shape), dtype


def sequence_length(path: str | os.PathLike) -> int:
    """Number of frames of a stored sequence (reads only the header of a ``.npy``)."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        shape, dtype = npy_header(path)
        check_silhouettes(shape, dtype, path)
        return int(shape[0])
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
