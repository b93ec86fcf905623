"""Project SynGait's convex solids through a pinhole camera and fill them; add faults.

Every solid is the convex hull of a few ellipsoids. Its image is the convex hull of
the projected points of those ellipsoids (26 points on each), filled with
``cv2.fillConvexPoly``: about fifteen polygons per frame, which is what keeps
rendering fast. Segmentation faults (ragged edges, holes, a lost limb, false blobs,
empty frames) are applied to the binary frame afterwards.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

RAW_HEIGHT = 240
RAW_WIDTH = 320
"""CASIA-B's raw silhouette size (rows, columns)."""

_SUBPIXEL_BITS = 2


def _sphere_template() -> np.ndarray:
    """26 unit vectors: the poles and three rings of eight, shape [26, 3]."""
    points = [(0.0, 0.0, 1.0), (0.0, 0.0, -1.0)]
    for z in (-0.7071, 0.0, 0.7071):
        r = np.sqrt(1.0 - z * z)
        for a in np.arange(8) * np.pi / 4 + (np.pi / 8 if z == 0.0 else 0.0):
            points.append((r * np.cos(a), r * np.sin(a), z))
    return np.asarray(points)


SPHERE = _sphere_template()


@dataclass(frozen=True)
class Camera:
    """A horizontal pinhole camera at ``azimuth_deg`` around the walkway centre.

    Azimuth 0: the camera stands ahead on the walking line (the walker comes toward
    it); 90: at the walker's left side; 180: behind. ``focal`` is in raw pixels.
    """

    azimuth_deg: float
    distance: float
    height: float
    focal: float

    def project(self, points: np.ndarray) -> np.ndarray:
        """World points ``[..., 3]`` -> raw-image pixel coordinates ``[..., 2]`` (x, y)."""
        a = np.radians(self.azimuth_deg)
        centre = np.array([self.distance * np.cos(a), self.distance * np.sin(a), self.height])
        forward = np.array([-np.cos(a), -np.sin(a), 0.0])
        right = np.array([-np.sin(a), np.cos(a), 0.0])
        d = points - centre
        depth = np.maximum(d @ forward, 0.3)
        x = RAW_WIDTH / 2 + self.focal * (d @ right) / depth
        y = RAW_HEIGHT / 2 - self.focal * d[..., 2] / depth
        return np.stack([x, y], axis=-1)


def solid_points(solids: dict, offset: np.ndarray) -> np.ndarray:
    """Surface points of all solids moved by ``offset``: ``[26 * total ellipsoids, 3]``.

    The points of each solid are contiguous, in the order of ``solids``.
    """
    balls = [ball for solid in solids.values() for ball in solid]
    centres = np.array([centre for centre, _ in balls]) + offset
    radii = np.array([r for _, r in balls])
    return (centres[:, None, :] + radii[:, None, :] * SPHERE).reshape(-1, 3)


def fill_solids(mask: np.ndarray, polygons: list[np.ndarray], scale: float) -> None:
    """Fill the convex hull of each projected point set (raw pixels) into ``mask`` (255)."""
    factor = scale * (1 << _SUBPIXEL_BITS)
    for points in polygons:
        pts = np.round(points * factor).astype(np.int32)
        hull = cv2.convexHull(pts)
        cv2.fillConvexPoly(mask, hull, 255, lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)


def ragged_edges(mask: np.ndarray, rng: np.random.Generator, rate: float) -> np.ndarray:
    """Flip a fraction ``rate`` of the pixels in the one-pixel band around the outline."""
    kernel = np.ones((3, 3), np.uint8)
    band = cv2.morphologyEx(mask, cv2.MORPH_GRADIENT, kernel) > 0
    flip = band & (rng.random(mask.shape, dtype=np.float32) < rate)
    out = mask.copy()
    out[flip] = 255 - out[flip]
    return out


def punch_holes(mask: np.ndarray, rng: np.random.Generator, count: int, scale: float) -> None:
    """Cut ``count`` small elliptic holes at random foreground pixels."""
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return
    for i in rng.integers(0, len(ys), size=count):
        axes = (max(1, int(rng.integers(2, 7) * scale)), max(1, int(rng.integers(2, 9) * scale)))
        cv2.ellipse(mask, (int(xs[i]), int(ys[i])), axes, float(rng.uniform(0, 180)), 0, 360, 0, -1)


def false_blob(mask: np.ndarray, rng: np.random.Generator, scale: float) -> None:
    """Add one small spurious foreground blob anywhere in the frame."""
    h, w = mask.shape
    centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
    axes = (max(1, int(rng.integers(3, 9) * scale)), max(1, int(rng.integers(3, 9) * scale)))
    cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 255, -1)


def to_raw_size(mask: np.ndarray) -> np.ndarray:
    """Bring a frame rendered at reduced resolution to 240 x 320, values 0/255."""
    if mask.shape == (RAW_HEIGHT, RAW_WIDTH):
        return mask
    up = cv2.resize(mask, (RAW_WIDTH, RAW_HEIGHT), interpolation=cv2.INTER_LINEAR)
    return cv2.threshold(up, 127, 255, cv2.THRESH_BINARY)[1]
