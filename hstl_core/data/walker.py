"""The SynGait walker: a 3D articulated body that walks with its own style.

A subject is three independent draws, each from its own random stream:

* :class:`Body`: proportions (height, limb lengths, shoulder/hip width, limb
  thickness, head size), in metres;
* :class:`Style`: how it walks: joint-angle curves for hip, knee, ankle, shoulder and
  elbow as short Fourier series around a normal gait cycle, cadence, torso lean,
  vertical bounce, lateral sway, left/right asymmetry;
* :class:`Outfit`: the bag it carries in ``bg`` sequences and the coat it wears in
  ``cl`` sequences (the same in all its sequences).

:func:`pose_solids` turns (body, style, outfit, phase) into convex solids in 3D;
``hstl_core.data.render`` projects and fills them. Coordinates: x points along the
walking direction, y to the walker's left, z up; the body frame moves along x.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HARMONICS = 4
"""Fourier harmonics per joint-angle curve (plus the mean)."""

JOINTS = ("hip", "knee", "ankle", "shoulder", "elbow")


def _bump(t: np.ndarray, centre: float, width: float) -> np.ndarray:
    """A periodic Gaussian bump on the unit cycle, peak 1 at ``centre``."""
    d = (t - centre + 0.5) % 1.0 - 0.5
    return np.exp(-0.5 * (d / width) ** 2)


def _template_curves(samples: int = 256) -> dict[str, np.ndarray]:
    """Normal gait joint angles in degrees over one cycle (t=0: heel strike of that leg)."""
    t = np.arange(samples) / samples
    return {
        "hip": 10.0 + 21.0 * np.cos(2 * np.pi * (t - 0.9)),
        "knee": 5.0 + 15.0 * _bump(t, 0.15, 0.07) + 58.0 * _bump(t, 0.72, 0.11),
        "ankle": -5.0 * _bump(t, 0.07, 0.04) + 10.0 * _bump(t, 0.42, 0.10) - 18.0 * _bump(t, 0.63, 0.06),
        "shoulder": -2.0 - 16.0 * np.cos(2 * np.pi * (t - 0.9)),
        "elbow": 22.0 + 10.0 * np.cos(2 * np.pi * (t - 0.4)),
    }


def _fourier(curve: np.ndarray) -> np.ndarray:
    """Complex coefficients ``c[0..HARMONICS]`` with ``curve(t) = Re sum_k c_k e^{2 pi i k t}``."""
    spectrum = np.fft.rfft(curve) / len(curve)
    spectrum[1:] *= 2.0
    return spectrum[: HARMONICS + 1]


NORMAL_GAIT = {name: _fourier(curve) for name, curve in _template_curves().items()}
"""The normal gait cycle as Fourier coefficients per joint, shape ``[HARMONICS + 1]`` complex."""


def evaluate_curve(coeffs: np.ndarray, phase: np.ndarray | float) -> np.ndarray:
    """Angle in degrees of a Fourier curve at ``phase`` (cycles, any shape)."""
    phase = np.asarray(phase, dtype=np.float64)
    k = np.arange(len(coeffs))
    waves = np.exp(2j * np.pi * phase[..., None] * k)
    return np.real(waves @ coeffs)


@dataclass(frozen=True)
class Body:
    """Proportions in metres; ``thickness`` and ``head`` are factors around 1."""

    height: float
    thigh: float
    shank: float
    ankle_height: float
    foot: float
    torso: float
    neck: float
    upper_arm: float
    forearm: float
    shoulder_width: float
    hip_width: float
    thickness: float
    depth: float
    head: float


@dataclass(frozen=True)
class Style:
    """How a subject walks.

    ``curves`` maps each joint of :data:`JOINTS` to its left-side Fourier coefficients;
    the right side is the same curve half a cycle later, scaled by ``1 + asymmetry``
    and shifted by ``asymmetry_phase`` cycles.
    """

    curves: dict
    cadence: float
    lean_deg: float
    bounce: float
    sway: float
    asymmetry: float
    asymmetry_phase: float
    arm_abduction_deg: float


@dataclass(frozen=True)
class Outfit:
    """Bag kind (``shoulder``, ``backpack``, ``hand``), its side and size; the coat."""

    bag: str
    bag_side: int
    bag_size: float
    coat_thickness: float
    coat_length: float


def sample_body(rng: np.random.Generator, spread: float) -> Body:
    """Draw proportions; ``spread`` scales every deviation from the average adult."""

    def vary(mean: float, rel_sd: float) -> float:
        return float(mean * np.exp(spread * rel_sd * rng.standard_normal()))

    height = float(np.clip(1.72 + spread * 0.09 * rng.standard_normal(), 1.45, 2.0))
    return Body(
        height=height,
        thigh=vary(0.245 * height, 0.05),
        shank=vary(0.246 * height, 0.05),
        ankle_height=0.039 * height,
        foot=vary(0.15 * height, 0.05),
        torso=vary(0.30 * height, 0.05),
        neck=vary(0.045 * height, 0.15),
        upper_arm=vary(0.186 * height, 0.06),
        forearm=vary(0.20 * height, 0.06),
        shoulder_width=vary(0.245 * height, 0.08),
        hip_width=vary(0.17 * height, 0.08),
        thickness=vary(1.0, 0.15),
        depth=vary(1.0, 0.12),
        head=vary(1.0, 0.08),
    )


def sample_style(rng: np.random.Generator, spread: float) -> Style:
    """Draw a walking style: perturbed normal-gait harmonics plus global gait parameters."""
    scales = {
        "hip": np.exp(spread * 0.15 * rng.standard_normal()),  # stride
        "knee": np.exp(spread * 0.18 * rng.standard_normal()),  # knee flexion
        "ankle": np.exp(spread * 0.25 * rng.standard_normal()),
        "shoulder": np.exp(spread * 0.45 * rng.standard_normal()),  # arm swing
        "elbow": np.exp(spread * 0.30 * rng.standard_normal()),
    }
    curves = {}
    for name in JOINTS:
        base = NORMAL_GAIT[name].copy()
        k = np.arange(1, HARMONICS + 1)
        gain = scales[name] * np.exp(spread * 0.08 * rng.standard_normal(HARMONICS))
        shift = np.exp(1j * spread * 0.12 * rng.standard_normal(HARMONICS) / k)
        wobble = spread * 0.06 * abs(base[1]) * (rng.standard_normal(HARMONICS) + 1j * rng.standard_normal(HARMONICS)) / k
        base[1:] = base[1:] * gain * shift + wobble
        base[0] += spread * 3.0 * rng.standard_normal()
        curves[name] = base
    return Style(
        curves=curves,
        cadence=float(np.clip(112.0 + spread * 8.0 * rng.standard_normal(), 85.0, 140.0)),
        lean_deg=float(np.clip(4.0 + spread * 3.0 * rng.standard_normal(), -4.0, 15.0)),
        bounce=float(np.clip(0.025 + spread * 0.01 * rng.standard_normal(), 0.005, 0.06)),
        sway=float(np.clip(0.02 + spread * 0.01 * rng.standard_normal(), 0.0, 0.05)),
        asymmetry=float(spread * 0.08 * rng.standard_normal()),
        asymmetry_phase=float(spread * 0.02 * rng.standard_normal()),
        arm_abduction_deg=float(np.clip(8.0 + spread * 4.0 * rng.standard_normal(), 2.0, 20.0)),
    )


def sample_outfit(rng: np.random.Generator) -> Outfit:
    """Draw the subject's bag and coat (their size is scaled later by the preset)."""
    return Outfit(
        bag=str(rng.choice(["shoulder", "backpack", "hand"])),
        bag_side=int(rng.choice([-1, 1])),
        bag_size=float(rng.uniform(0.8, 1.25)),
        coat_thickness=float(rng.uniform(0.03, 0.06)),
        coat_length=float(rng.uniform(0.5, 1.05)),
    )


def stride_length(body: Body, style: Style) -> float:
    """Metres per gait cycle, from the hip's range of motion and the leg length."""
    hip = evaluate_curve(style.curves["hip"], np.linspace(0, 1, 64, endpoint=False))
    leg = body.thigh + body.shank
    return float(2.0 * 0.9 * leg * (np.sin(np.radians(hip.max())) - np.sin(np.radians(hip.min()))))


def _angles(style: Style, phase: float, side: int) -> dict[str, float]:
    """Joint angles (degrees) of one side at ``phase``; side +1 = left, -1 = right."""
    if side == 1:
        return {j: float(evaluate_curve(style.curves[j], phase)) for j in JOINTS}
    p = phase + 0.5 + style.asymmetry_phase
    gain = 1.0 + style.asymmetry
    out = {}
    for j in JOINTS:
        c = style.curves[j]
        out[j] = float(c[0].real + gain * (evaluate_curve(c, p) - c[0].real))
    return out


def _sagittal(angle_deg: float, lateral: float = 0.0) -> np.ndarray:
    """Unit vector hanging down, rotated forward by ``angle_deg``, tilted by ``lateral`` rad."""
    a = np.radians(angle_deg)
    return np.array([np.sin(a) * np.cos(lateral), np.sin(lateral), -np.cos(a) * np.cos(lateral)])


Solid = list[tuple[np.ndarray, np.ndarray]]
"""A convex solid: the convex hull of a few ellipsoids, each (centre [3], radii [3])."""


def pose_solids(
    body: Body,
    style: Style,
    outfit: Outfit,
    phase: float,
    condition: str,
    strength: float,
) -> dict[str, Solid]:
    """The walker's solids at one phase, in the body frame (pelvis centre above x=y=0).

    Returns an ordered mapping name -> solid. ``condition`` is ``nm``, ``bg`` or
    ``cl``; ``strength`` scales the bag and coat. Limb names start with ``limb:`` so
    the renderer can drop one of them as a segmentation fault.
    """
    h = body.height
    th = body.thickness
    coat = outfit.coat_thickness * strength if condition == "cl" else 0.0
    cycle = 2.0 * np.pi * phase
    bounce = style.bounce * np.cos(2.0 * cycle)
    sway = style.sway * np.sin(cycle)
    pelvis = np.array([0.0, sway, 0.97 * (body.thigh + body.shank + body.ankle_height) + bounce])
    lean = np.radians(style.lean_deg)
    up = np.array([np.sin(lean), 0.0, np.cos(lean)])
    neck_base = pelvis + up * body.torso
    head_centre = neck_base + up * (body.neck + 0.06 * h * body.head)
    solids: dict[str, Solid] = {}

    def ball(centre: np.ndarray, rx: float, ry: float | None = None, rz: float | None = None):
        return (np.asarray(centre, dtype=np.float64), np.array([rx, rx if ry is None else ry, rx if rz is None else rz]))

    solids["pelvis"] = [ball(pelvis + up * 0.02 * h, 0.055 * h * body.depth + coat, body.hip_width / 2 + 0.02 * h + coat, 0.055 * h)]
    solids["torso"] = [
        ball(pelvis + up * 0.06 * h, 0.06 * h * body.depth + coat, body.hip_width / 2 + 0.01 * h + coat, 0.03 * h),
        ball(neck_base - up * 0.07 * h, 0.07 * h * body.depth + coat, body.shoulder_width / 2 - 0.015 * h + coat, 0.05 * h),
    ]
    solids["neck"] = [ball(neck_base, 0.028 * h), ball(head_centre - up * 0.04 * h, 0.026 * h)]
    solids["head"] = [ball(head_centre, 0.058 * h * body.head, 0.05 * h * body.head, 0.068 * h * body.head)]

    arm_swing_gain = {1: 1.0, -1: 1.0}
    if condition == "bg" and outfit.bag == "hand":
        arm_swing_gain[outfit.bag_side] = 0.3
    wrists = {}
    for side in (1, -1):
        ang = _angles(style, phase, side)
        hip = pelvis + np.array([0.0, side * body.hip_width / 2, 0.0])
        thigh_dir = _sagittal(ang["hip"])
        knee = hip + thigh_dir * body.thigh
        shank_dir = _sagittal(ang["hip"] - ang["knee"])
        ankle = knee + shank_dir * body.shank
        foot_dir = _sagittal(ang["hip"] - ang["knee"] + 90.0 + ang["ankle"])
        heel = ankle - foot_dir * 0.25 * body.foot + shank_dir * 0.02 * h
        toe = ankle + foot_dir * 0.75 * body.foot
        solids[f"limb:thigh{side}"] = [ball(hip, 0.05 * h * th + coat / 2), ball(knee, 0.033 * h * th)]
        solids[f"limb:shank{side}"] = [ball(knee, 0.032 * h * th), ball(ankle, 0.02 * h * th)]
        solids[f"limb:foot{side}"] = [ball(heel, 0.02 * h), ball(toe, 0.013 * h)]

        abduction = np.radians(style.arm_abduction_deg) * side
        shoulder_angle = ang["shoulder"] * arm_swing_gain[side]
        shoulder = neck_base - up * 0.035 * h + np.array([0.0, side * body.shoulder_width / 2, 0.0])
        elbow = shoulder + _sagittal(shoulder_angle + style.lean_deg, abduction) * body.upper_arm
        wrist = elbow + _sagittal(shoulder_angle + style.lean_deg + ang["elbow"], abduction * 0.5) * body.forearm
        wrists[side] = wrist
        solids[f"limb:upperarm{side}"] = [ball(shoulder, 0.03 * h * th + coat), ball(elbow, 0.023 * h * th + coat)]
        solids[f"limb:forearm{side}"] = [ball(elbow, 0.022 * h * th + coat * 0.8), ball(wrist, 0.017 * h * th)]
        if coat > 0.0:
            hem = hip + thigh_dir * body.thigh * outfit.coat_length * min(strength, 1.2)
            solids.setdefault("coat", [ball(pelvis, 0.06 * h * body.depth + coat, body.hip_width / 2 + 0.03 * h + coat, 0.04 * h)])
            solids["coat"].append(ball(hem, 0.045 * h * th + coat * 1.5, 0.045 * h * th + coat, 0.01 * h))

    if condition == "bg":
        size = 1.35 * outfit.bag_size * strength
        side = outfit.bag_side
        if outfit.bag == "backpack":
            back = neck_base - up * 0.17 * h - np.array([0.08 * h * body.depth + 0.06 * size, 0.0, 0.0])
            solids["bag"] = [ball(back, 0.07 * size, 0.13 * size, 0.17 * size)]
        elif outfit.bag == "shoulder":
            swing = 0.04 * np.sin(cycle + 0.8)
            centre = pelvis + np.array([swing, side * (body.hip_width / 2 + 0.04 * h + 0.02 * size), 0.0])
            solids["bag"] = [ball(centre, 0.13 * size, 0.05 * size, 0.11 * size)]
        else:
            solids["bag"] = [ball(wrists[side] + np.array([0.0, 0.0, -0.1 * size]), 0.12 * size, 0.05 * size, 0.09 * size)]
    return solids
