"""SynGait-Wild: SynGait's walkers filmed the way Gait3D and GREW are, not the way CASIA-B is.

CASIA-B films each walk from 11 fixed side-on cameras in an empty hall. Gait3D and GREW
film people wherever they walk: toward, away from or across a camera mounted above head
height, turning on the way, half hidden behind pillars and other people, cut by the frame
border, at uneven frame rates with dropped frames, with the segmentation faults of an
automatic segmenter in a crowded scene. A SynGait-Wild sequence is one walk of one
SynGait subject (the same bodies and walking styles as the CASIA-B-shaped presets; with
the same seed, subject N is the same person in both) filmed by one camera site of
``hstl_core.data.wild_scene.SITES``, with:

* a free walking direction (toward, away, side, two diagonals), a turn of 45-120
  degrees in ``turn`` of the sequences;
* the camera's height, tilt and zoom drifting within the sequence;
* the site's static occluders and, in ``other_walker`` of the sequences, a passer-by
  who either hides part of the walker (when nearer the camera) or is merged into its
  silhouette by the segmenter;
* the walker leaving the frame partly (cut by the border) as it comes close or crosses;
* a frame rate drawn per sequence, jittered frame times and dropped frames;
* holes, merged blobs, shadows at the feet, a lost limb, a too-wide or too-narrow
  threshold, empty frames;
* clothes and loads drawn per sequence (coat, puffy jacket, skirt, hat; backpack,
  shoulder bag, hand bag, trolley case).

Layout: ``<id>/wl-NN/<site>/``: type ``wl-01`` .. ``wl-<sequences>``, view = the camera
site. Each sequence is a pure function of ``(seed, subject, sequence)``; the site a
sequence is filmed by depends on ``(subject, sequence)`` only, so the partition's
``PROBE_SET`` is the same for every seed. Every frame carries flags (occluded, cut,
segmentation fault, ...) from which :func:`wild_statistics` counts how wild a set is.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np
from tqdm.auto import tqdm

from hstl_core.data.render import RAW_HEIGHT, RAW_WIDTH, SPHERE, fill_solids, punch_holes, ragged_edges, solid_points, to_raw_size
from hstl_core.data.synthetic import Subject, _rng, lookup_preset, subject_with_spreads
from hstl_core.data.walker import pose_solids, sample_body, sample_outfit, sample_style, stride_length
from hstl_core.data.wild_scene import FOCAL, SITES, TiltedCamera, Walk, Wear, add_wear, sample_walk, sample_wear

_WILD, _SITE, _PROBE = 11, 12, 13
_TIMING, _PATH, _WEAR, _CAMERA, _OTHER, _FRAMES = 1, 2, 3, 4, 5, 6


@dataclass(frozen=True)
class WildPreset:
    """Size and nuisance knobs of a SynGait-Wild set.

    ``subjects`` ids 001..N, ``sequences`` per subject (Gait3D has about 6);
    ``frames``: (min, max) frames the camera would deliver before drops; ``fps``:
    (min, max) frame rate drawn per sequence; ``drop``: the largest per-frame drop
    probability (drawn per sequence from 0..drop, plus bursts); ``other_walker``: share
    of sequences with a passer-by; ``turn``: share of sequences with a turn;
    ``noise``: segmentation-fault level (1 = the rates below); ``body_spread`` /
    ``style_spread`` as in ``synthetic.Preset`` (0.8 = the ``default`` preset's);
    ``render_scale``: internal resolution; ``train_fraction``: share of ids (the
    first ones) in the training partition; ``occluders``: whether the sites' static
    occluders are drawn.
    """

    subjects: int
    sequences: int
    frames: tuple[int, int]
    fps: tuple[float, float]
    drop: float
    other_walker: float
    turn: float
    noise: float
    body_spread: float
    style_spread: float
    render_scale: float
    train_fraction: float
    occluders: bool = True


WILD_PRESETS: dict[str, WildPreset] = {
    "wild": WildPreset(subjects=150, sequences=6, frames=(28, 44), fps=(12.0, 30.0), drop=0.2, other_walker=0.35,
                       turn=0.3, noise=1.0, body_spread=0.8, style_spread=0.8, render_scale=0.5, train_fraction=0.5),
}

GENERATOR_VERSION = 2
"""Bumped whenever the rendering changes; it is part of a set's manifest, so a stale set is rebuilt."""

FLAGS = ("occluded_static", "occluded_walker", "cut", "holes", "merge", "shadow", "lost_limb", "threshold", "empty")
"""Per-frame flags of a rendered sequence (see :class:`WildSequence`)."""

_OCCLUDED = 0.03
"""A frame counts as occluded (or cut) when more than this share of the walker's pixels is hidden."""


@dataclass(frozen=True)
class WildSequence:
    """One rendered SynGait-Wild sequence.

    ``frames``: ``uint8 [T, 240, 320]`` (0/255), the frames the camera delivered;
    ``flags``: name of :data:`FLAGS` -> ``bool [T]``; ``nominal``: frames before drops
    (``nominal - T`` were dropped); ``times``: ``float [T]`` seconds of the delivered
    frames; ``walk``: the walker's route on the ground (camera at the origin, looking
    along +x); ``site``, ``direction``, ``fps``, ``wear`` describe it.
    """

    frames: np.ndarray
    flags: dict[str, np.ndarray]
    nominal: int
    times: np.ndarray
    walk: Walk
    site: str
    direction: str
    fps: float
    wear: Wear


def get_wild_preset(preset: str | WildPreset) -> WildPreset:
    """Look a wild preset up by name (a :class:`WildPreset` passes through)."""
    return lookup_preset(preset, WILD_PRESETS, WildPreset, "SynGait-Wild")


def sequence_names(preset: str | WildPreset = "wild") -> list[str]:
    """The type folders of a preset: ``wl-01`` .. ``wl-<sequences>``."""
    return [f"wl-{k:02d}" for k in range(1, get_wild_preset(preset).sequences + 1)]


def subject_ids(preset: str | WildPreset = "wild", subjects: Iterable[int] | None = None) -> list[int]:
    """The 1-based subject numbers of a wild preset (or the given subset, checked)."""
    count = get_wild_preset(preset).subjects
    chosen = list(range(1, count + 1)) if subjects is None else sorted(set(subjects))
    bad = [s for s in chosen if not 1 <= s <= count]
    if bad:
        raise ValueError(f"subjects {bad} outside 1..{count} of this preset")
    return chosen


def _sequence_number(type_seq: str, preset: str | WildPreset) -> int:
    if type_seq not in sequence_names(preset):
        raise ValueError(f"unknown SynGait-Wild sequence {type_seq!r}; expected one of {sequence_names(preset)}")
    return int(type_seq[3:])


def site_of(subject: int, type_seq: str, preset: str | WildPreset = "wild") -> str:
    """The camera site (view folder) that films ``(subject, type_seq)``; independent of the seed."""
    number = _sequence_number(type_seq, preset)
    return SITES[int(_rng(0, subject, _SITE, number).integers(len(SITES)))].name


def partition(preset: str | WildPreset = "wild") -> dict[str, list[str]]:
    """Train/test ids and Gait3D's ``PROBE_SET`` for a wild preset (independent of the seed).

    The first ``round(train_fraction * subjects)`` ids train, the rest test. As in
    Gait3D, each test id has one query sequence, drawn at random (from a fixed
    stream per id); every other test sequence is gallery. Probe keys are
    ``"<id>-<type>-<view>"``, the form ``evaluation.evaluate_gait3d`` matches.
    """
    knobs = get_wild_preset(preset)
    ids = subject_ids(knobs)
    cut = round(knobs.train_fraction * knobs.subjects)
    names = sequence_names(knobs)
    probes = []
    for subject in ids[cut:]:
        query = names[int(_rng(0, subject, _PROBE).integers(len(names)))]
        probes.append(f"{subject:03d}-{query}-{site_of(subject, query, knobs)}")
    return {"TRAIN_SET": [f"{i:03d}" for i in ids[:cut]], "TEST_SET": [f"{i:03d}" for i in ids[cut:]], "PROBE_SET": probes}


def wild_subject(subject: int, preset: str | WildPreset = "wild", seed: int = 0) -> Subject:
    """Body, style and usual outfit of ``subject``: the same streams as ``synthetic.make_subject``."""
    knobs = get_wild_preset(preset)
    return subject_with_spreads(subject, knobs.body_spread, knobs.style_spread, seed)


def _frame_times(rng: np.random.Generator, knobs: WildPreset) -> tuple[np.ndarray, int, float]:
    """Times (s) of the delivered frames, the nominal frame count and the frame rate."""
    fps = float(rng.uniform(*knobs.fps))
    nominal = int(rng.integers(knobs.frames[0], knobs.frames[1] + 1))
    times = (np.arange(nominal) + rng.uniform(-0.25, 0.25, nominal)) / fps
    keep = rng.random(nominal) >= rng.uniform(0.0, knobs.drop)
    if rng.random() < 0.3:
        start = int(rng.integers(0, nominal))
        keep[start : start + int(rng.integers(2, 6))] = False
    keep[int(rng.integers(0, nominal))] = True
    return times[keep] - times[0], nominal, fps


def _world_points(solids: dict, heading: float, position: np.ndarray) -> np.ndarray:
    """Body-frame solids -> world surface points ``[26 * ellipsoids, 3]``, turned by ``heading``."""
    points = solid_points(solids, np.zeros(3))
    c, s = np.cos(heading), np.sin(heading)
    world = points.copy()
    world[:, 0] = c * points[:, 0] - s * points[:, 1] + position[0]
    world[:, 1] = s * points[:, 0] + c * points[:, 1] + position[1]
    return world


def _attached_blob(mask: np.ndarray, rng: np.random.Generator, scale: float) -> bool:
    """Glue a blob (a bag, a trolley, a bit of background the segmenter took for the walker) to
    the outline at a random foreground pixel; False when the frame has no foreground."""
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return False
    i = int(rng.integers(len(ys)))
    axes = (max(1, int(rng.integers(4, 13) * scale)), max(1, int(rng.integers(4, 13) * scale)))
    cv2.ellipse(mask, (int(xs[i]), int(ys[i])), axes, float(rng.uniform(0, 180)), 0, 360, 255, -1)
    return True


def _polygons(solids: dict, projected: np.ndarray) -> list[np.ndarray]:
    counts = [len(SPHERE) * len(solid) for solid in solids.values()]
    return np.split(projected, np.cumsum(counts)[:-1])


@dataclass(frozen=True)
class _Passer:
    """A passer-by: a walker that is not a subject of the set, on a straight walk."""

    walker: Subject
    walk: Walk
    phase0: float
    cycles_per_s: float


def _passer(rng: np.random.Generator, target: Walk, times: np.ndarray) -> _Passer:
    walker = Subject(sample_body(rng, 1.0), sample_style(rng, 1.0), sample_outfit(rng))
    cycles_per_s = walker.style.cadence / 120.0
    speed = stride_length(walker.body, walker.style) * cycles_per_s
    heading = np.radians(rng.choice([-90.0, 90.0]) + rng.normal(0.0, 20.0))
    crossing = float(rng.uniform(0.2, 0.8) * times[-1])
    at = target.positions(np.array([crossing]))[0] + np.array([rng.choice([-1.0, 1.0]) * rng.uniform(0.6, 2.0), 0.0])
    start = at - speed * crossing * np.array([np.cos(heading), np.sin(heading)])
    return _Passer(walker, Walk(start, float(heading), 0.0, 0.0, 1.0, speed), float(rng.uniform()), cycles_per_s)


def render_wild_sequence(walker: Subject, subject: int, type_seq: str, preset: str | WildPreset = "wild",
                         seed: int = 0) -> WildSequence:
    """Render ``walker`` for the SynGait-Wild sequence ``(seed, subject, type_seq)``.

    ``subject`` keys the sequence's random streams; a modified ``walker`` with the same
    keys changes nothing but the walker. Returns a :class:`WildSequence` whose frames
    are ``uint8 [T, 240, 320]``.
    """
    knobs = get_wild_preset(preset)
    number = _sequence_number(type_seq, knobs)
    site = next(s for s in SITES if s.name == site_of(subject, type_seq, knobs))
    stream = lambda key: _rng(seed, subject, _WILD, number, key)  # noqa: E731
    times, nominal, fps = _frame_times(stream(_TIMING), knobs)
    duration = max(float(times[-1]), 1.0 / fps)
    path_rng = stream(_PATH)
    cycles_per_s = walker.style.cadence * np.exp(0.04 * path_rng.standard_normal()) / 120.0
    speed = stride_length(walker.body, walker.style) * cycles_per_s
    phase0 = float(path_rng.uniform())
    walk, direction = sample_walk(path_rng, site, times, speed, knobs.turn)
    positions, headings = walk.positions(times), walk.heading_at(times)
    wear = sample_wear(stream(_WEAR), walker.outfit)

    cam_rng = stream(_CAMERA)
    drift = cam_rng.normal(0.0, [0.3, 2.0, 0.2])  # height (m), tilt (deg), log zoom over the sequence
    light = cam_rng.uniform(0.0, 2.0 * np.pi)
    shadow_length = cam_rng.uniform(0.5, 1.3) if cam_rng.random() < 0.45 * knobs.noise else 0.0
    other_rng = stream(_OTHER)
    passer = _passer(other_rng, walk, times) if other_rng.random() < knobs.other_walker else None
    passer_positions = passer.walk.positions(times) if passer is not None else None
    rng = stream(_FRAMES)

    scale = knobs.render_scale
    shape = (int(round(RAW_HEIGHT * scale)), int(round(RAW_WIDTH * scale)))
    pad = np.array([RAW_WIDTH / 2, RAW_HEIGHT / 2])
    padded = (2 * shape[0], 2 * shape[1])
    inner = (slice(shape[0] // 2, shape[0] // 2 + shape[0]), slice(shape[1] // 2, shape[1] // 2 + shape[1]))
    occluders = [(int(x0 * shape[1]), int(y0 * shape[0]), int(np.ceil(x1 * shape[1])), int(np.ceil(y1 * shape[0])))
                 for x0, y0, x1, y1 in site.occluders] if knobs.occluders else []
    kernel = np.ones((3, 3), np.uint8)
    out = np.zeros((len(times), RAW_HEIGHT, RAW_WIDTH), np.uint8)
    flags = {name: np.zeros(len(times), bool) for name in FLAGS}
    for i, t in enumerate(times):
        u = t / duration - 0.5
        camera = TiltedCamera(site.height + drift[0] * u, site.pitch_deg + drift[1] * u, FOCAL * np.exp(drift[2] * u))
        solids = pose_solids(walker.body, walker.style, wear.outfit, phase0 + t * cycles_per_s, wear.condition, 1.0)
        add_wear(solids, wear, walker.body.height)
        if rng.random() < 0.04 * knobs.noise:
            limbs = [name for name in solids if name.startswith("limb:")]
            del solids[limbs[int(rng.integers(len(limbs)))]]
            flags["lost_limb"][i] = True
        projected, depth = camera.project(_world_points(solids, headings[i], positions[i]))
        canvas = np.zeros(padded, np.uint8)
        fill_solids(canvas, [p + pad for p in _polygons(solids, projected)], scale)
        mask = canvas[inner].copy()
        body = int(np.count_nonzero(canvas))
        visible = int(np.count_nonzero(mask))
        flags["cut"][i] = body - visible > _OCCLUDED * body
        hidden = 0
        for x0, y0, x1, y1 in occluders:
            hidden += int(np.count_nonzero(mask[y0:y1, x0:x1]))
            mask[y0:y1, x0:x1] = 0
        flags["occluded_static"][i] = hidden > _OCCLUDED * body
        if passer is not None:
            p_solids = pose_solids(passer.walker.body, passer.walker.style, passer.walker.outfit,
                                   passer.phase0 + t * passer.cycles_per_s, "nm", 1.0)
            p_projected, p_depth = camera.project(_world_points(p_solids, passer.walk.heading, passer_positions[i]))
            other = np.zeros(shape, np.uint8)
            fill_solids(other, _polygons(p_solids, p_projected), scale)
            if p_depth.mean() < depth.mean():
                covered = int(np.count_nonzero(mask & other))
                mask[other > 0] = 0
                flags["occluded_walker"][i] = covered > _OCCLUDED * body
            touching = np.count_nonzero(cv2.dilate(other, kernel, iterations=2) & mask) > 0
            if touching and rng.random() < 0.4 * knobs.noise:
                mask |= other
                flags["merge"][i] = True
        if shadow_length > 0.0 and rng.random() < 0.9:
            foot = np.array([positions[i][0], positions[i][1], 0.0])
            tip = foot + shadow_length * np.array([np.cos(light), np.sin(light), 0.0])
            shadow = {"shadow": [(foot, np.array([0.2, 0.2, 0.005])), (tip, np.array([0.15, 0.15, 0.005]))]}
            fill_solids(mask, [camera.project(solid_points(shadow, np.zeros(3)))[0]], scale)
            flags["shadow"][i] = True
        mask = ragged_edges(mask, rng, 0.3 * knobs.noise)
        if rng.random() < 0.35 * knobs.noise:
            punch_holes(mask, rng, int(rng.integers(1, 6)), scale * 1.5)
            flags["holes"][i] = True
        if rng.random() < 0.12 * knobs.noise:
            flags["merge"][i] = _attached_blob(mask, rng, scale)
        if rng.random() < 0.15 * knobs.noise:
            grow = rng.random() < 0.5
            mask = (cv2.dilate if grow else cv2.erode)(mask, kernel)
            flags["threshold"][i] = True
        if rng.random() < 0.02 * knobs.noise:
            mask[:] = 0
            flags["empty"][i] = True
        out[i] = to_raw_size(mask)
    return WildSequence(out, flags, nominal, times, walk, site.name, direction, fps, wear)


def generate_wild_sequence(subject: int, type_seq: str, preset: str = "wild", seed: int = 0) -> WildSequence:
    """Render one SynGait-Wild sequence of ``subject`` (1-based)."""
    return render_wild_sequence(wild_subject(subject, preset, seed), subject, type_seq, preset, seed)


def frame_counts(sequence: WildSequence) -> dict[str, int]:
    """Counts of one sequence: ``nominal``, ``delivered`` frames and each flag of :data:`FLAGS`,
    plus ``occluded`` (by anything) and ``seg_fault`` (holes, merge, shadow, lost limb, threshold)."""
    f = sequence.flags
    fault = f["holes"] | f["merge"] | f["shadow"] | f["lost_limb"] | f["threshold"]
    counts = {"nominal": sequence.nominal, "delivered": len(sequence.frames)}
    counts |= {name: int(f[name].sum()) for name in FLAGS}
    counts |= {"occluded": int((f["occluded_static"] | f["occluded_walker"]).sum()), "seg_fault": int(fault.sum())}
    return counts


def summarise_counts(counts: Iterable[dict[str, int]]) -> dict[str, float | int]:
    """Sum per-sequence :func:`frame_counts` into the statistics of a set.

    Returns ``sequences``, ``nominal_frames``, ``frames`` (delivered), ``dropped``
    (share of nominal frames the camera dropped) and, as shares of the delivered
    frames, ``occluded``, ``occluded_static``, ``occluded_walker``, ``cut``,
    ``seg_fault``, ``holes``, ``merge``, ``shadow``, ``lost_limb``, ``threshold``, ``empty``;
    shares rounded to 4 decimals.
    """
    counts = list(counts)
    if not counts:
        raise ValueError("no sequences to summarise")
    total = {key: sum(c[key] for c in counts) for key in counts[0]}
    frames = total["delivered"]
    stats: dict[str, float | int] = {"sequences": len(counts), "nominal_frames": total["nominal"], "frames": frames,
                                      "dropped": round(1.0 - frames / total["nominal"], 4)}
    for key in ("occluded", "occluded_static", "occluded_walker", "cut", "seg_fault", *FLAGS[3:]):
        stats[key] = round(total[key] / frames, 4)
    return stats


def wild_statistics(preset: str | WildPreset = "wild", seed: int = 0, subjects: Iterable[int] | None = None) -> dict:
    """Render the sequences of ``subjects`` (default: all of the preset) and summarise them
    (:func:`summarise_counts`). ``ensure_syngait("wild")`` stores the same numbers for the
    whole set in its manifest."""
    knobs = get_wild_preset(preset)
    counts = []
    for subject in subject_ids(knobs, subjects):
        walker = wild_subject(subject, knobs, seed)
        counts += [frame_counts(render_wild_sequence(walker, subject, name, knobs, seed)) for name in sequence_names(knobs)]
    return summarise_counts(counts)


def _write_raw_task(args: tuple) -> tuple[int, int]:
    """Write the sequences of one subject into ``root`` as PNGs, each view folder renamed into
    place when complete (existing folders are kept). Returns (sequences, frames) written."""
    root, subject, preset, seed = args
    walker = wild_subject(subject, preset, seed)
    written = frames = 0
    sid = f"{subject:03d}"
    for type_seq in sequence_names(preset):
        site = site_of(subject, type_seq, preset)
        target = Path(root) / sid / type_seq / site
        if target.is_dir():
            continue
        tmp = target.with_name(f".{site}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        sequence = render_wild_sequence(walker, subject, type_seq, preset, seed)
        for i, frame in enumerate(sequence.frames, start=1):
            cv2.imwrite(str(tmp / f"{sid}-{type_seq}-{site}-{i:03d}.png"), frame)
        os.replace(tmp, target)
        written += 1
        frames += len(sequence.frames)
    return written, frames


def write_raw(root: str | os.PathLike, preset: str = "wild", seed: int = 0, subjects: list[int] | None = None,
              workers: int = 2) -> dict:
    """Write raw PNG frames ``root/<id>/wl-NN/<site>/<id>-wl-NN-<site>-<frame>.png``, one task per
    subject over ``workers`` processes; rerunning skips finished folders. Returns the same summary
    as ``synthetic.write_raw``."""
    ids = subject_ids(preset, subjects)
    started = time.perf_counter()
    sequences = frames = 0
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        tasks = [(str(root), s, preset, seed) for s in ids]
        for done, count in tqdm(pool.map(_write_raw_task, tasks), total=len(tasks), desc="SynGait-Wild raw"):
            sequences += done
            frames += count
    return {"root": str(root), "preset": preset, "seed": seed, "subjects": len(ids), "sequences": sequences,
            "frames": frames, "seconds": time.perf_counter() - started}


def preset_dict(preset: str | WildPreset) -> dict:
    """The knobs of a wild preset and the :data:`GENERATOR_VERSION`, as a plain dict (for manifests)."""
    return dataclasses.asdict(get_wild_preset(preset)) | {"generator_version": GENERATOR_VERSION}
