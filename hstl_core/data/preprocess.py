"""Silhouette pretreatment: raw frame folders -> one ``uint8 [T, S, S]`` array per sequence.

:func:`pretreat_sequence` is OpenGait's per-frame algorithm (``datasets/pretreatment.py``), pixel for pixel:
drop empty frames, crop rows, resize to height S, centre on the median column of the
foreground mass, cut S columns. :func:`preprocess_dataset` runs it over a raw tree
``raw/<id>/<type>/<view>/*.png`` in parallel and writes
``out/<id>/<type>/<view>/<view>.npy`` (or ``.pkl``), resumably and atomically, with a
JSON report of everything written, dropped and skipped.

Interruptions and resumes (the policy a long preprocessing run wants):
* the report is rewritten every few seconds while running (``"complete": false``), so
  a killed run leaves the problems it found; a resumed run keeps them;
* a resumed run must use the same ``img_size``, format, ``clean`` and ``min_frames``
  as the report in the output folder says, otherwise it is refused (mixing 64- and
  128-pixel arrays in one folder would be silent); an existing ``.npy`` of another
  size is reported and skipped;
* temporaries left by a killed run are deleted at the start;
* pool workers exit within a second when the parent process dies (even by SIGKILL).
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from hstl_core import lifeline
from hstl_core.atomic import TEMPORARY, atomic_write_text
from hstl_core.data.io import npy_header, save_sequence

MIN_PIXEL_SUM = 10000
"""A frame whose pixel sum is at most this has "no data" (about 39 white pixels)."""

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
REPORT_NAME = "preprocess_report.json"
SETTINGS = ("img_size", "format", "clean", "min_frames")
"""Report keys a resumed run must share with the run that began the output folder."""
REPORT_EVERY_S = 2.0


def check_img_size(img_size: int) -> None:
    """Refuse an output size that is not a positive even number of pixels.

    The cut takes ``img_size // 2`` columns each side of the centre: an odd size
    would give ``S x (S - 1)`` frames.
    """
    if not isinstance(img_size, int) or isinstance(img_size, bool) or img_size <= 0 or img_size % 2:
        raise ValueError(f"img_size must be a positive even number of pixels (64 as CASIA-B's), not {img_size!r}")


def pretreat_frame(frame: np.ndarray, img_size: int = 64) -> tuple[np.ndarray | None, str]:
    """One grey frame ``[H, W]`` -> ``(uint8 [S, S], "kept")`` or ``(None, reason)``.

    Reasons: ``"no data"`` (pixel sum <= 10000) and ``"no center"`` (no column passes
    half the mass, or the first one that does is column 0).
    """
    if frame.sum(dtype=np.int64) <= MIN_PIXEL_SUM:
        return None, "no data"
    rows = np.nonzero(frame.sum(axis=1))[0]
    cropped = frame[rows[0] : rows[-1] + 1]
    ratio = cropped.shape[1] / cropped.shape[0]
    width = int(img_size * ratio)
    resized = cv2.resize(cropped, (width, img_size), interpolation=cv2.INTER_CUBIC)
    column_mass = np.cumsum(resized.sum(axis=0, dtype=np.int64))
    above = np.nonzero(column_mass > column_mass[-1] / 2)[0]
    if len(above) == 0 or above[0] == 0:
        return None, "no center"
    centre = int(above[0])
    half = img_size // 2
    left, right = centre - half, centre + half
    if left <= 0 or right >= width:
        pad = np.zeros((img_size, half), dtype=resized.dtype)
        resized = np.concatenate([pad, resized, pad], axis=1)
        left, right = left + half, right + half
    return resized[:, left:right].astype(np.uint8), "kept"


def pretreat_sequence(frames, img_size: int = 64) -> np.ndarray | None:
    """Raw grey or binary uint8 frames (a list or ``[T, H, W]``) -> ``uint8 [kept, S, S]``.

    Frames are taken in the given order; dropped frames simply disappear. Returns
    ``None`` when no frame survives. Equal to OpenGait's pretreatment output.
    """
    kept = [out for out, _ in (pretreat_frame(np.asarray(f), img_size) for f in frames) if out is not None]
    return np.stack(kept) if kept else None


def clean_mask(frame: np.ndarray, max_hole: int = 30) -> np.ndarray:
    """Keep the largest connected component and fill its holes of at most ``max_hole`` pixels."""
    binary = (frame > 127).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    if count <= 1:
        return np.zeros_like(frame)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    body = labels == largest
    holes, hole_labels, hole_stats, _ = cv2.connectedComponentsWithStats((~body).astype(np.uint8), connectivity=4)
    small = [i for i in range(1, holes) if hole_stats[i, cv2.CC_STAT_AREA] <= max_hole]
    body |= np.isin(hole_labels, small)
    return np.where(body, 255, 0).astype(np.uint8)


def read_grey(path: Path) -> np.ndarray:
    """Read one frame as 8-bit grey; raise ``ValueError`` naming the file when it is not one."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f"{path}: not a readable image")
    if image.dtype != np.uint8:
        raise ValueError(f"{path}: expected 8-bit pixels, found {image.dtype}")
    if image.ndim == 3:
        channels = image[..., :3]
        if not (np.array_equal(channels[..., 0], channels[..., 1]) and np.array_equal(channels[..., 0], channels[..., 2])):
            raise ValueError(f"{path}: colour image; silhouettes must be grey or binary")
        image = channels[..., 0]
    return image


def discover(raw_root: Path) -> tuple[list[tuple[str, str, str, list[Path]]], list[str]]:
    """Find the sequences ``(id, type, view, sorted frame files)`` of a raw tree.

    Returns the sequences and a list of problems (each naming the path): files or
    folders at a level where the layout ``<id>/<type>/<view>/<frames>`` has none,
    and non-image files inside view folders.
    """
    sequences, problems = [], []
    for sid in sorted(raw_root.iterdir()):
        if not sid.is_dir():
            problems.append(f"{sid}: a file where the layout expects a subject folder <id>/")
            continue
        for seq in sorted(sid.iterdir()):
            if not seq.is_dir():
                problems.append(f"{seq}: a file where the layout expects a folder <id>/<type-seq>/")
                continue
            for view in sorted(seq.iterdir()):
                if not view.is_dir():
                    problems.append(f"{view}: a file where the layout expects a folder <id>/<type-seq>/<view>/")
                    continue
                frames = []
                for item in sorted(view.iterdir()):
                    if item.is_dir():
                        problems.append(f"{item}: a folder below <id>/<type-seq>/<view>/ does not fit the layout; skipped")
                    elif item.suffix.lower() not in IMAGE_SUFFIXES:
                        problems.append(f"{item}: not an image file; skipped")
                    else:
                        frames.append(item)
                if frames:
                    sequences.append((sid.name, seq.name, view.name, frames))
                else:
                    problems.append(f"{view}: no image files; skipped")
    return sequences, problems


def _output_path(out_root: Path, sid: str, seq: str, view: str, fmt: str) -> Path:
    return out_root / sid / seq / view / f"{view}.{fmt}"


def _process_sequence(args: tuple) -> dict:
    """Worker: read, pretreat and write one sequence; return its report entry."""
    sid, seq, view, files, out_root, img_size, fmt, clean, min_frames = args
    entry = {"sequence": f"{sid}/{seq}/{view}", "frames_in": len(files), "dropped": {}, "errors": []}
    target = _output_path(Path(out_root), sid, seq, view, fmt)
    if target.exists():
        entry["status"] = "exists"
        if fmt == "npy":
            try:
                shape = npy_header(target)[0]
            except ValueError as err:
                shape = None
                entry["errors"].append(str(err))
            if shape is None or shape[1:] != (img_size, img_size):
                entry["errors"].append(f"{target}: existing array of shape {shape} does not fit img_size={img_size}; delete it to redo")
                entry["status"] = "skipped: existing array does not fit img_size"
        return entry
    kept, size = [], None
    for path in files:
        try:
            frame = read_grey(path)
        except ValueError as err:
            entry["errors"].append(str(err))
            continue
        if size is None:
            size = frame.shape
        elif frame.shape != size:
            entry["errors"].append(f"{path}: size {frame.shape[1]}x{frame.shape[0]} differs from the sequence's {size[1]}x{size[0]}")
            entry["status"] = "skipped: frames of different sizes"
            return entry
        out, reason = pretreat_frame(clean_mask(frame) if clean else frame, img_size)
        if out is None:
            entry["dropped"][path.name] = reason
        else:
            kept.append(out)
    entry["frames_out"] = len(kept)
    if len(kept) < max(1, min_frames):
        entry["status"] = f"skipped: {len(kept)} valid frames < min_frames={max(1, min_frames)}"
        return entry
    save_sequence(target, np.stack(kept), fmt)
    entry["status"] = "written"
    return entry


def preprocess_dataset(
    raw_root: str | os.PathLike,
    out_root: str | os.PathLike,
    img_size: int = 64,
    workers: int = 2,
    fmt: str = "npy",
    clean: bool = False,
    min_frames: int = 1,
) -> dict:
    """Pretreat every sequence of ``raw_root`` into ``out_root``; return the report.

    ``out_root`` must not lie inside ``raw_root`` (nothing is ever written there).
    Finished sequences (their output file exists) are skipped, so an interrupted run
    resumes. Bad files are named in the report and skipped. The report, also written
    atomically to ``out_root/preprocess_report.json``, has ``written``,
    ``skipped_existing``, ``skipped`` (sequence -> why), ``dropped_frames``
    (sequence -> {file: reason}), ``errors`` and totals.
    """
    raw, out = Path(raw_root).resolve(), Path(out_root).resolve()
    if not raw.is_dir():
        raise FileNotFoundError(f"raw folder {raw} does not exist")
    if out == raw or raw in out.parents:
        raise ValueError(f"output folder {out} lies inside the input folder {raw}; choose a folder outside it")
    if fmt not in ("npy", "pkl"):
        raise ValueError(f"fmt must be 'npy' or 'pkl', not {fmt!r}")
    check_img_size(img_size)
    started = time.perf_counter()
    sequences, problems = discover(raw)
    if not sequences:
        raise ValueError(
            f"no sequence found in {raw}: the layout is <raw>/<id>/<type-seq>/<view>/<frame>.png "
            f"(one folder level off?); first problems: {problems[:3]}"
        )
    settings = {"img_size": img_size, "format": fmt, "clean": clean, "min_frames": min_frames}
    earlier = _earlier_report(out, settings)
    removed = _remove_temporaries(out)
    tasks = [(sid, seq, view, files, str(out), img_size, fmt, clean, min_frames) for sid, seq, view, files in sequences]
    report = {
        "raw_root": str(raw), "out_root": str(out), **settings, "complete": False,
        "written": [], "skipped_existing": [], "skipped": dict(earlier.get("skipped", {})),
        "dropped_frames": dict(earlier.get("dropped_frames", {})), "errors": list(earlier.get("errors", [])),
        "frames_in": 0, "frames_out": 0, "removed_temporaries": [str(p) for p in removed],
    }
    _add_errors(report, problems)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / REPORT_NAME, json.dumps(report, indent=1))
    last_save = time.monotonic()
    with ProcessPoolExecutor(max_workers=max(1, workers), initializer=_watch_parent, initargs=(lifeline.identity(),)) as pool:
        for entry in tqdm(pool.map(_process_sequence, tasks, chunksize=8), total=len(tasks), desc="preprocess"):
            _add_entry(report, entry)
            if time.monotonic() - last_save > REPORT_EVERY_S:
                atomic_write_text(out / REPORT_NAME, json.dumps(report, indent=1))
                last_save = time.monotonic()
    report["complete"] = True
    report["seconds"] = round(time.perf_counter() - started, 3)
    atomic_write_text(out / REPORT_NAME, json.dumps(report, indent=1))
    return report


def _add_entry(report: dict, entry: dict) -> None:
    """Fold one worker's entry into the report."""
    name, status = entry["sequence"], entry["status"]
    _add_errors(report, entry["errors"])
    if status == "exists":
        report["skipped_existing"].append(name)
        report["skipped"].pop(name, None)
        return
    report["frames_in"] += entry["frames_in"]
    if entry["dropped"]:
        report["dropped_frames"][name] = entry["dropped"]
    if status == "written":
        report["written"].append(name)
        report["frames_out"] += entry["frames_out"]
        report["skipped"].pop(name, None)
    else:
        report["skipped"][name] = status


def _add_errors(report: dict, errors: Iterable[str]) -> None:
    """Append the errors not already listed (a resumed run finds the earlier ones again)."""
    known = set(report["errors"])
    for error in errors:
        if error not in known:
            report["errors"].append(error)
            known.add(error)


def _earlier_report(out: Path, settings: dict) -> dict:
    """The report a previous (perhaps killed) run left in ``out``; refuse other settings."""
    path = out / REPORT_NAME
    if not path.is_file():
        return {}
    try:
        earlier = json.loads(path.read_text())
    except ValueError as err:
        raise ValueError(f"{path}: unreadable report of an earlier run ({err}); delete it to start over") from err
    different = [f"{k}={earlier.get(k)!r} (now {settings[k]!r})" for k in SETTINGS if earlier.get(k) != settings[k]]
    if different:
        raise ValueError(
            f"{out} was preprocessed with " + ", ".join(different) + f" ({path}); resuming would mix both: "
            "use another output folder, or delete this one to redo it"
        )
    return earlier


def _remove_temporaries(out: Path) -> list[Path]:
    """Delete the temporaries of atomic writes a killed run left anywhere under ``out``."""
    if not out.is_dir():
        return []
    removed = []
    for folder, _, names in os.walk(out):
        for name in names:
            if TEMPORARY.match(name):
                path = Path(folder) / name
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


def _watch_parent(parent: str) -> None:
    """Pool worker initializer: exit when the parent process is gone (no orphaned workers)."""
    lifeline.exit_when_gone(parent, "the preprocess parent")
