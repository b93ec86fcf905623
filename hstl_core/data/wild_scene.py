"""The scene of SynGait-Wild: camera sites, a tilted moving camera, paths, what people wear.

Gait3D films people in a supermarket with 39 fixed surveillance cameras mounted above
head height; GREW films streets. SynGait-Wild imitates that with a handful of fixed
camera *sites* (:data:`SITES`): each has its own mounting height, distance to where
people walk, down tilt and static occluders (a pillar, a counter, a hanging sign) that
stand between the camera and the walkers. Coordinates are those of
``hstl_core.data.walker``: metres, z up; a site's camera stands at the origin and looks
along +x, tilted down by ``pitch_deg``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from hstl_core.data.render import RAW_HEIGHT, RAW_WIDTH
from hstl_core.data.walker import Outfit, Solid

FOCAL = 0.6 * RAW_HEIGHT * 8.0 / 1.72
"""Focal length in raw pixels: a 1.72 m person 8 m away is 60 % of the frame height (as SynGait's)."""


@dataclass(frozen=True)
class Site:
    """A fixed camera: ``height`` (m), ``distance`` to the middle of the walking area (m),
    ``aim_deg`` (tilt added to the one that centres a walker's hips there, positive =
    lower) and static ``occluders``: image rectangles ``(x0, y0, x1, y1)`` as fractions
    of the frame width and height, always in front of the walkers."""

    name: str
    height: float
    distance: float
    aim_deg: float
    occluders: tuple[tuple[float, float, float, float], ...]

    @property
    def pitch_deg(self) -> float:
        """Down tilt of the camera (degrees)."""
        return float(np.degrees(np.arctan2(self.height - 0.9, self.distance))) + self.aim_deg


SITES: tuple[Site, ...] = (
    Site("c01", 2.2, 7.0, 0.0, ((0.62, 0.0, 0.70, 1.0),)),  # a pillar
    Site("c02", 3.0, 9.0, 1.0, ((0.0, 0.74, 0.45, 1.0),)),  # a counter hides the legs on the left
    Site("c03", 1.6, 7.0, 0.0, ()),
    Site("c04", 3.5, 10.0, 0.0, ((0.30, 0.80, 0.40, 1.0),)),  # a bin
    Site("c05", 2.5, 8.0, -1.0, ((0.18, 0.0, 0.26, 1.0), (0.80, 0.58, 0.92, 1.0))),  # a pillar and a plant
    Site("c06", 4.0, 12.0, 0.0, ()),
    Site("c07", 2.0, 7.5, 1.5, ((0.40, 0.0, 0.78, 0.20),)),  # a hanging sign over the heads
    Site("c08", 2.8, 8.5, 0.0, ((0.0, 0.0, 0.22, 1.0),)),  # a shelf
)
"""The camera sites; a sequence's view folder is its site's name."""

SITE_NAMES = [site.name for site in SITES]


@dataclass(frozen=True)
class TiltedCamera:
    """A pinhole camera at ``(0, 0, height)`` looking along +x, tilted down by ``pitch_deg``."""

    height: float
    pitch_deg: float
    focal: float

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points ``[..., 3]`` -> (pixel coordinates ``[..., 2]`` (x, y), depth ``[...]`` in m)."""
        p = np.radians(self.pitch_deg)
        forward = np.array([np.cos(p), 0.0, -np.sin(p)])
        up = np.array([np.sin(p), 0.0, np.cos(p)])
        d = points - np.array([0.0, 0.0, self.height])
        depth = np.maximum(d @ forward, 0.3)
        x = RAW_WIDTH / 2 - self.focal * d[..., 1] / depth
        y = RAW_HEIGHT / 2 - self.focal * (d @ up) / depth
        return np.stack([x, y], axis=-1), depth


DIRECTIONS = {"toward": 180.0, "away": 0.0, "side": 90.0, "diagonal toward": 135.0, "diagonal away": 45.0}
"""Walking directions: heading in degrees relative to the camera's axis (0 = away from it)."""


@dataclass(frozen=True)
class Walk:
    """A walk on the ground: heading (rad) ``h(t) = heading + turn * smoothstep((t - turn_at) / turn_time)``
    and speed (m/s); ``start`` is the position (m) at ``t = 0``."""

    start: np.ndarray
    heading: float
    turn: float
    turn_at: float
    turn_time: float
    speed: float

    def heading_at(self, t: np.ndarray) -> np.ndarray:
        s = np.clip((t - self.turn_at) / self.turn_time, 0.0, 1.0)
        return self.heading + self.turn * s * s * (3.0 - 2.0 * s)

    def positions(self, t: np.ndarray, step: float = 0.02) -> np.ndarray:
        """Ground positions ``[len(t), 2]`` at the (increasing) times ``t``, by numerical integration."""
        grid = np.arange(0.0, float(t[-1]) + 2 * step, step)
        heading = self.heading_at(grid)
        velocity = self.speed * np.stack([np.cos(heading), np.sin(heading)], axis=1)
        travelled = np.concatenate([[[0.0, 0.0]], np.cumsum(velocity[:-1] * step, axis=0)])
        return self.start + np.stack([np.interp(t, grid, travelled[:, k]) for k in range(2)], axis=1)


def sample_walk(rng: np.random.Generator, site: Site, times: np.ndarray, speed: float, turn_rate: float) -> tuple[Walk, str]:
    """A walk through ``site``'s field of view at the frame ``times`` (s); returns it and its direction name.

    The walker passes near the middle of the walking area halfway through and stays
    roughly centred in the view on average (a tracker only keeps people it sees); with
    probability ``turn_rate`` it turns by 45-120 degrees within the sequence.
    """
    direction = str(rng.choice(list(DIRECTIONS)))
    heading = np.radians(DIRECTIONS[direction] * rng.choice([-1.0, 1.0]) + rng.normal(0.0, 12.0))
    turns = rng.random() < turn_rate
    turn = np.radians(rng.uniform(45.0, 120.0)) * rng.choice([-1.0, 1.0]) if turns else 0.0
    duration = float(times[-1])
    walk = Walk(np.zeros(2), float(heading), float(turn), float(rng.uniform(0.2, 0.6) * duration),
                float(rng.uniform(0.6, 1.2)), speed)
    route = walk.positions(times)
    depth = site.distance + rng.normal(0.0, 0.8) - route[len(route) // 2, 0]
    depth = max(depth, 3.5 - route[:, 0].min())
    ahead = route[:, 0] + depth
    bearing = np.clip(rng.normal(0.0, 0.12), -0.15, 0.15)  # mean direction of the walker from the camera's axis (rad)
    lateral = (bearing - np.mean(route[:, 1] / ahead)) / np.mean(1.0 / ahead)
    return dataclasses.replace(walk, start=np.array([depth, lateral])), direction


CLOTHES = ("plain", "coat", "puffy", "skirt")
CARRIED = ("none", "backpack", "shoulder", "hand", "trolley")


@dataclass(frozen=True)
class Wear:
    """What one sequence's walker wears and carries: ``clothes`` of :data:`CLOTHES`,
    ``carried`` of :data:`CARRIED`, a ``hat`` or not, and the ``outfit`` (sizes, side)
    handed to ``pose_solids``."""

    clothes: str
    carried: str
    hat: bool
    outfit: Outfit

    @property
    def condition(self) -> str:
        """The condition code ``pose_solids`` draws: ``cl`` for coats, ``bg`` for bags, else ``nm``."""
        if self.clothes in ("coat", "puffy"):
            return "cl"
        return "bg" if self.carried in ("backpack", "shoulder", "hand") else "nm"


def sample_wear(rng: np.random.Generator, usual: Outfit) -> Wear:
    """Draw a sequence's clothes and load; half the bags are the subject's ``usual`` one."""
    clothes = str(rng.choice(CLOTHES, p=[0.45, 0.25, 0.12, 0.18]))
    carried = str(rng.choice(CARRIED, p=[0.4, 0.17, 0.17, 0.14, 0.12]))
    if carried in ("backpack", "shoulder", "hand") and rng.random() < 0.5:
        carried = usual.bag
    outfit = dataclasses.replace(
        usual,
        bag=carried,
        bag_side=int(rng.choice([-1, 1])),
        bag_size=float(usual.bag_size * rng.uniform(0.8, 1.2)),
        coat_thickness=float(rng.uniform(0.08, 0.11) if clothes == "puffy" else usual.coat_thickness),
        coat_length=float(rng.uniform(0.25, 0.45) if clothes == "puffy" else usual.coat_length),
    )
    return Wear(clothes, carried, bool(rng.random() < 0.15), outfit)


def add_wear(solids: dict[str, Solid], wear: Wear, height: float) -> None:
    """Add the solids ``pose_solids`` does not draw: a skirt, a hat, a trolley case (body frame)."""
    h = height
    pelvis = solids["pelvis"][0][0]
    if wear.clothes == "skirt":
        knees = (solids["limb:thigh1"][1][0] + solids["limb:thigh-1"][1][0]) / 2
        hem = np.array([knees[0], 0.0, knees[2] + 0.02 * h])
        solids["skirt"] = [(pelvis, np.array([0.07 * h, 0.11 * h, 0.03 * h])), (hem, np.array([0.13 * h, 0.14 * h, 0.01 * h]))]
    if wear.hat:
        head, radii = solids["head"][0]
        solids["hat"] = [(head + np.array([0.0, 0.0, 0.8 * radii[2]]), np.array([1.5, 1.5, 0.5]) * radii)]
    if wear.carried == "trolley":
        side = wear.outfit.bag_side
        wrist = solids[f"limb:forearm{side}"][1][0]
        case = np.array([wrist[0] - 0.35, wrist[1] + side * 0.05, 0.33])
        solids["trolley"] = [(case, np.array([0.11, 0.09, 0.3]) * wear.outfit.bag_size), (wrist, np.full(3, 0.015))]
