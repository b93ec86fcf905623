"""Make a preprocessed SynGait set on demand: ``ensure_syngait("small")``, ``ensure_syngait("wild")``.

The set is rendered and pretreated in memory (no raw PNGs) into a temporary folder
beside the target, then renamed into place with its ``manifest.json``: a killed run
leaves no half set, and a folder without a matching manifest is rebuilt.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from hstl_core import paths
from hstl_core.data.partitions import syngait_partition_path, write_syngait_partition
from hstl_core.data.preprocess import pretreat_sequence
from hstl_core.data import synthetic, wild
from hstl_core.data.synthetic import CONDITIONS, VIEWS, make_subject, render_sequence, subject_ids

MANIFEST = "manifest.json"


def _make_subject_condition(args: tuple) -> tuple[int, int, int]:
    """Worker: render + pretreat the 11 views of one (subject, type-seq) into ``root``.

    Returns (sequences written, raw frames rendered, frames kept).
    """
    root, subject, type_seq, preset, img_size, seed = args
    walker = make_subject(subject, preset, seed)
    written = raw = kept = 0
    for view in VIEWS:
        frames = render_sequence(walker, subject, type_seq, view, preset, seed)
        raw += len(frames)
        sils = pretreat_sequence(frames, img_size)
        if sils is None:
            continue
        folder = Path(root) / f"{subject:03d}" / type_seq / view
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / f"{view}.npy", sils, allow_pickle=False)
        written += 1
        kept += len(sils)
    return written, raw, kept


def _make_wild_subject(args: tuple) -> tuple[int, int, int, list[dict[str, int]]]:
    """Worker: render + pretreat the sequences of one SynGait-Wild subject into ``root``.

    Returns (sequences written, raw frames rendered, frames kept, per-sequence
    ``wild.frame_counts``).
    """
    root, subject, preset, img_size, seed = args
    walker = wild.wild_subject(subject, preset, seed)
    written = raw = kept = 0
    counts = []
    for type_seq in wild.sequence_names(preset):
        sequence = wild.render_wild_sequence(walker, subject, type_seq, preset, seed)
        counts.append(wild.frame_counts(sequence))
        raw += len(sequence.frames)
        sils = pretreat_sequence(sequence.frames, img_size)
        if sils is None:
            continue
        folder = Path(root) / f"{subject:03d}" / type_seq / sequence.site
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / f"{sequence.site}.npy", sils, allow_pickle=False)
        written += 1
        kept += len(sils)
    return written, raw, kept, counts


def preset_dict(preset: str) -> dict:
    """The knobs of a CASIA-B-shaped or wild preset as a plain dict."""
    return wild.preset_dict(preset) if preset in wild.WILD_PRESETS else synthetic.preset_dict(preset)


def _manifest(preset: str, img_size: int, seed: int) -> dict:
    """The settings a set was made with, as they read back from JSON."""
    settings = {"preset": preset, "knobs": preset_dict(preset), "img_size": img_size, "seed": seed}
    return json.loads(json.dumps(settings))


def is_complete(root: Path, preset: str, img_size: int, seed: int) -> bool:
    """True when ``root`` holds a finished set made with these settings."""
    try:
        stored = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return all(stored.get(key) == value for key, value in _manifest(preset, img_size, seed).items())


def ensure_syngait(preset: str = "small", img_size: int = 32, seed: int = 0, workers: int = 2) -> Path:
    """Return ``SYNGAIT_ROOT/<preset>-<img_size>``, making it first when missing or stale.

    Layout ``<id>/<type-seq>/<view>/<view>.npy`` with ``uint8 [T, img_size, img_size]``
    (wild presets: ``<id>/wl-NN/<site>/<site>.npy``). Also writes
    ``data/partitions/SynGait-<preset>.json`` when it is not there. The manifest of a
    wild set holds its ``statistics`` (``wild.summarise_counts``).
    """
    target = paths.SYNGAIT_ROOT / f"{preset}-{img_size}"
    if not syngait_partition_path(preset).exists():
        write_syngait_partition(preset)
    if is_complete(target, preset, img_size, seed):
        return target
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    is_wild = preset in wild.WILD_PRESETS
    if is_wild:
        worker = _make_wild_subject
        tasks = [(str(tmp), s, preset, img_size, seed) for s in wild.subject_ids(preset)]
    else:
        worker = _make_subject_condition
        tasks = [(str(tmp), s, c, preset, img_size, seed) for s in subject_ids(preset) for c in CONDITIONS]
    started = time.perf_counter()
    totals = np.zeros(3, dtype=np.int64)
    frame_counts: list[dict[str, int]] = []
    try:
        with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
            for counts in tqdm(pool.map(worker, tasks, chunksize=2), total=len(tasks), desc=f"SynGait {preset}"):
                totals += counts[:3]
                frame_counts += counts[3] if is_wild else []
        manifest = _manifest(preset, img_size, seed) | {
            "sequences": int(totals[0]), "raw_frames": int(totals[1]), "frames": int(totals[2]),
            "seconds": round(time.perf_counter() - started, 1),
        }
        if is_wild:
            manifest["statistics"] = wild.summarise_counts(frame_counts)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
        if is_complete(target, preset, img_size, seed):  # another process finished first
            shutil.rmtree(tmp)
            return target
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if is_complete(target, preset, img_size, seed):
            return target
        raise
    return target
