"""SynGait: CASIA-B-shaped silhouette videos of procedural walkers.

Each sequence is a pure function of ``(seed, subject, condition, sequence, view)``
and the preset's knobs: every random number comes from a stream keyed by exactly
those values, so a sequence does not depend on which others are generated, on the
number of workers or on their order. The layout and names follow CASIA-B:

* ``VIEWS``: 11 azimuths ``000`` .. ``180`` (``090`` = side view, ``000`` = the walker
  comes toward the camera);
* ``CONDITIONS``: ``nm-01..06`` (normal), ``bg-01..02`` (bag), ``cl-01..02`` (coat);
* raw frames: binary ``uint8`` silhouettes ``[240, 320]`` with values 0/255.

The 11 views of one ``(subject, type-seq)`` are the same walk filmed by 11 cameras,
as in CASIA-B; each view has its own camera distance, length and segmentation noise.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np
from tqdm.auto import tqdm

from hstl_core.data.render import (
    RAW_HEIGHT,
    RAW_WIDTH,
    SPHERE,
    Camera,
    false_blob,
    fill_solids,
    punch_holes,
    ragged_edges,
    solid_points,
    to_raw_size,
)
from hstl_core.data.walker import Body, Outfit, Style, pose_solids, sample_body, sample_outfit, sample_style, stride_length

VIEWS = [f"{a:03d}" for a in range(0, 181, 18)]
CONDITIONS = [f"nm-{i:02d}" for i in range(1, 7)] + ["bg-01", "bg-02", "cl-01", "cl-02"]
FPS = 25.0
"""CASIA-B's frame rate."""

_CODES = {"nm": 0, "bg": 1, "cl": 2}
_BODY, _STYLE, _OUTFIT, _WALK, _VIEW = 1, 2, 3, 4, 5


@dataclass(frozen=True)
class Preset:
    """Difficulty knobs of a SynGait set.

    ``subjects``: number of identities (ids 001..N); ``frames``: (min, max) frames per
    sequence; ``noise``: segmentation-fault level (0 = clean, 1 = CASIA-B-like);
    ``style_spread`` / ``body_spread``: how far subjects' walking style and
    proportions spread around the average (smaller = harder to tell apart);
    ``condition_strength``: size of bags and thickness/length of coats;
    ``sequence_spread``: how much two sequences of one subject differ (speed, phase,
    camera distance); ``render_scale``: internal rendering resolution relative to
    240 x 320 (frames are always returned at 240 x 320); ``train_fraction``: share of
    ids (the first ones) in the training partition.
    """

    subjects: int
    frames: tuple[int, int]
    noise: float
    style_spread: float
    body_spread: float
    condition_strength: float
    sequence_spread: float
    render_scale: float
    train_fraction: float = 0.6


PRESETS: dict[str, Preset] = {
    "small": Preset(subjects=24, frames=(26, 34), noise=0.6, style_spread=1.0, body_spread=1.0,
                    condition_strength=1.0, sequence_spread=1.0, render_scale=0.5),
    "default": Preset(subjects=124, frames=(60, 100), noise=1.0, style_spread=0.8, body_spread=0.8,
                      condition_strength=1.0, sequence_spread=1.0, render_scale=1.0),
    "hard": Preset(subjects=124, frames=(60, 100), noise=1.5, style_spread=0.5, body_spread=0.5,
                   condition_strength=1.4, sequence_spread=1.5, render_scale=1.0),
}


@dataclass(frozen=True)
class Subject:
    """One identity: body, walking style and outfit (see ``hstl_core.data.walker``)."""

    body: Body
    style: Style
    outfit: Outfit


def _rng(seed: int, *keys: int) -> np.random.Generator:
    """An independent random stream for ``(seed, *keys)``."""
    return np.random.default_rng(np.random.SeedSequence([seed, *keys]))


P = TypeVar("P")


def lookup_preset(preset: object, presets: Mapping[str, P], kind: type[P], what: str) -> P:
    """``presets[preset]`` for a name; an instance of ``kind`` passes through.

    Raises ``ValueError`` naming ``what`` (e.g. ``"SynGait"``) and the known names.
    """
    if isinstance(preset, kind):
        return preset
    if preset not in presets:
        raise ValueError(f"unknown {what} preset {preset!r}; known: {sorted(presets)}")
    return presets[preset]


def get_preset(preset: str | Preset) -> Preset:
    """Look a preset up by name (a :class:`Preset` passes through)."""
    return lookup_preset(preset, PRESETS, Preset, "SynGait")


def parse_type_seq(type_seq: str) -> tuple[str, int]:
    """``"bg-02"`` -> ``("bg", 2)``; raises on names outside :data:`CONDITIONS`."""
    if type_seq not in CONDITIONS:
        raise ValueError(f"unknown condition {type_seq!r}; expected one of {CONDITIONS}")
    code, number = type_seq.split("-")
    return code, int(number)


def make_subject(subject: int, preset: str | Preset = "default", seed: int = 0) -> Subject:
    """The body, style and outfit of ``subject`` (1-based), each from its own stream."""
    knobs = get_preset(preset)
    return subject_with_spreads(subject, knobs.body_spread, knobs.style_spread, seed)


def subject_with_spreads(subject: int, body_spread: float, style_spread: float, seed: int = 0) -> Subject:
    """``make_subject`` for given spreads (SynGait-Wild's presets use it too): body,
    style and outfit of ``subject`` each from its own random stream of ``(seed, subject)``."""
    return Subject(
        body=sample_body(_rng(seed, subject, _BODY), body_spread),
        style=sample_style(_rng(seed, subject, _STYLE), style_spread),
        outfit=sample_outfit(_rng(seed, subject, _OUTFIT)),
    )


def render_sequence(
    walker: Subject, subject: int, type_seq: str, view: str, preset: str | Preset = "default", seed: int = 0
) -> np.ndarray:
    """Render ``walker`` for the sequence ``(seed, subject, type_seq, view)``.

    ``subject`` keys the per-sequence random streams (walk variation, camera, noise);
    passing a modified ``walker`` with the same keys changes nothing but the walker.
    Returns ``uint8 [T, 240, 320]`` with values 0/255.
    """
    knobs = get_preset(preset)
    code, number = parse_type_seq(type_seq)
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; expected one of {VIEWS}")
    spread = knobs.sequence_spread
    walk = _rng(seed, subject, _WALK, _CODES[code], number)
    cadence = walker.style.cadence * np.exp(spread * 0.03 * walk.standard_normal())
    cycles_per_s = cadence / 120.0
    speed = stride_length(walker.body, walker.style) * cycles_per_s
    phase0 = walk.uniform(0.0, 1.0)
    lateral = spread * 0.1 * walk.standard_normal()
    light = walk.uniform(-0.3, 0.3, size=2)

    cam_rng = _rng(seed, subject, _VIEW, _CODES[code], number, int(view))
    noise = knobs.noise
    frames = int(cam_rng.integers(knobs.frames[0], knobs.frames[1] + 1))
    t0 = spread * 0.15 * cam_rng.standard_normal()
    distance = 8.0 * np.exp(spread * 0.04 * cam_rng.standard_normal())
    camera = Camera(
        azimuth_deg=float(view),
        distance=distance,
        height=1.0 + spread * 0.05 * cam_rng.standard_normal(),
        focal=0.6 * RAW_HEIGHT * 8.0 / 1.72,
    )
    shadow = cam_rng.random() < 0.5 * noise
    scale = knobs.render_scale
    shape = (int(round(RAW_HEIGHT * scale)), int(round(RAW_WIDTH * scale)))
    out = np.zeros((frames, RAW_HEIGHT, RAW_WIDTH), np.uint8)
    for i in range(frames):
        t = (i - frames / 2) / FPS + t0
        phase = phase0 + t * cycles_per_s
        offset = np.array([speed * t, lateral, 0.0])
        solids = pose_solids(walker.body, walker.style, walker.outfit, phase, code, knobs.condition_strength)
        if cam_rng.random() < 0.03 * noise:
            limbs = [name for name in solids if name.startswith("limb:")]
            del solids[limbs[int(cam_rng.integers(len(limbs)))]]
        if shadow:
            foot = np.array([0.25 * light[0], 0.25 * light[1], 0.0])
            solids["shadow"] = [(foot, np.array([0.45, 0.25, 0.01]) * cam_rng.uniform(0.7, 1.1))]
        projected = camera.project(solid_points(solids, offset))
        counts = [len(SPHERE) * len(solid) for solid in solids.values()]
        polygons = np.split(projected, np.cumsum(counts)[:-1])
        mask = np.zeros(shape, np.uint8)
        fill_solids(mask, polygons, scale)
        if noise > 0:
            mask = ragged_edges(mask, cam_rng, 0.25 * noise)
            if cam_rng.random() < 0.3 * noise:
                punch_holes(mask, cam_rng, int(cam_rng.integers(1, 4)), scale)
            if cam_rng.random() < 0.1 * noise:
                false_blob(mask, cam_rng, scale)
        if cam_rng.random() < 0.01 * noise:
            mask[:] = 0
        out[i] = to_raw_size(mask)
    return out


def generate_sequence(subject: int, type_seq: str, view: str, preset: str = "default", seed: int = 0) -> np.ndarray:
    """Raw silhouettes ``uint8 [T, 240, 320]`` (0/255) of one SynGait sequence."""
    walker = make_subject(subject, preset, seed)
    return render_sequence(walker, subject, type_seq, view, preset, seed)


def subject_ids(preset: str | Preset, subjects: list[int] | None = None) -> list[int]:
    """The 1-based subject numbers of a preset (or the given subset, checked)."""
    count = get_preset(preset).subjects
    chosen = list(range(1, count + 1)) if subjects is None else sorted(set(subjects))
    bad = [s for s in chosen if not 1 <= s <= count]
    if bad:
        raise ValueError(f"subjects {bad} outside 1..{count} of this preset")
    return chosen


def _write_raw_task(args: tuple) -> tuple[int, int]:
    """Write one (subject, type-seq) into ``root``: 11 view folders of PNGs.

    Each view folder is filled under a temporary name and renamed when complete, so a
    killed run leaves only whole folders; existing folders are kept (resume).
    Returns (sequences written, frames written).
    """
    root, subject, type_seq, preset, seed = args
    walker = make_subject(subject, preset, seed)
    written = frames = 0
    sid = f"{subject:03d}"
    for view in VIEWS:
        target = Path(root) / sid / type_seq / view
        if target.is_dir():
            continue
        tmp = target.with_name(f".{view}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        sequence = render_sequence(walker, subject, type_seq, view, preset, seed)
        for i, frame in enumerate(sequence, start=1):
            cv2.imwrite(str(tmp / f"{sid}-{type_seq}-{view}-{i:03d}.png"), frame)
        os.replace(tmp, target)
        written += 1
        frames += len(sequence)
    return written, frames


def write_raw(
    root: str | os.PathLike,
    preset: str = "default",
    seed: int = 0,
    subjects: list[int] | None = None,
    workers: int = 2,
) -> dict:
    """Write raw PNG frames in OpenGait's raw layout under ``root``.

    Layout: ``root/<id>/<type-seq>/<view>/<id>-<type-seq>-<view>-<frame>.png``. Work is
    split into (subject, type-seq) tasks over ``workers`` processes (one task holds at
    most 11 sequences in memory). Rerunning skips finished view folders.
    Returns ``{"root", "preset", "seed", "subjects", "sequences", "frames", "seconds"}``.
    """
    ids = subject_ids(preset, subjects)
    tasks = [(str(root), s, c, preset, seed) for s in ids for c in CONDITIONS]
    started = time.perf_counter()
    sequences = frames = 0
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        for done, count in tqdm(pool.map(_write_raw_task, tasks, chunksize=2), total=len(tasks), desc="SynGait raw"):
            sequences += done
            frames += count
    return {
        "root": str(root),
        "preset": preset,
        "seed": seed,
        "subjects": len(ids),
        "sequences": sequences,
        "frames": frames,
        "seconds": time.perf_counter() - started,
    }


def preset_dict(preset: str | Preset) -> dict:
    """The knobs of a preset as a plain dict (for manifests and reports)."""
    return dataclasses.asdict(get_preset(preset))
