"""Pinhole camera: aimed at the path, placed and focused so the projection fills the
target coverage, centred; projection and the visibility check.

The camera looks along the motion's preferred view direction, tilted by up to
``MAX_TILT_DEG`` in a random direction, from a random distance of 2.5–4 path radii,
with world z up on screen. The focal length is then solved so that
max(bbox width / W, bbox height / H) equals the coverage exactly, and the principal
point is placed so the bounding box is centred. Both are exact for a fixed pose, so
framing needs no trial and error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from trajgen._vec import Vec, combine, cross, orthonormal_pair, unit

MAX_TILT_DEG = 25.0
UNIFORMS_PER_CAMERA = 4
# camera vector columns, as stored in Sample.camera and the shards' `camera` array
CAMERA_COLUMNS = (
    "focal_px", "cx_px", "cy_px", "eye_x", "eye_y", "eye_z",
    "r00", "r01", "r02", "r10", "r11", "r12", "r20", "r21", "r22",
)


@dataclass(frozen=True)
class Framing:
    points_2d: np.ndarray  # (T, 2) float64 pixel x, y (pixel centres at integers)
    camera: np.ndarray  # (15,) float64, see CAMERA_COLUMNS


def max_coverage(size: int, radius: float) -> float:
    """The largest coverage that still leaves the dot radius of margin on every side."""
    return (size - 1 - 2 * radius - 0.01) / size


def project(points: np.ndarray, camera: np.ndarray) -> np.ndarray:
    """Pixel coordinates of world points seen by a camera vector (CAMERA_COLUMNS)."""
    f, cx, cy = camera[0:3]
    rel = (points - camera[3:6]) @ camera[6:15].reshape(3, 3).T
    return f * rel[:, :2] / rel[:, 2:3] + np.array([cx, cy])


def is_visible(points_2d: np.ndarray, size: int, radius: float) -> bool:
    """Every point lies inside the image with at least ``radius`` px of margin."""
    return bool(np.all(points_2d >= radius) and np.all(points_2d <= size - 1 - radius))


def frame(points: np.ndarray, view_normal: Vec, u: list[float], size: int, coverage: float) -> Framing | None:
    """Place a camera for ``points`` from 4 uniforms; None if the draw cannot be framed."""
    lo3, hi3 = points.min(axis=0), points.max(axis=0)
    centre = 0.5 * (lo3 + hi3)
    radius = math.sqrt(float(np.square(points - centre).sum(axis=1).max()))
    if not math.isfinite(radius) or radius < 1e-6:
        return None

    # tilt the view direction by up to MAX_TILT_DEG towards a random side, from either side
    n = unit(view_normal)
    a, b = orthonormal_pair(n)
    u0, u1, u2, u3 = u
    tilt = math.tan(math.radians(MAX_TILT_DEG) * u0)
    side = 1.0 if u2 < 0.5 else -1.0
    forward = unit(combine((side, n), (side * tilt * math.cos(2 * math.pi * u1), a), (side * tilt * math.sin(2 * math.pi * u1), b)))
    up = (0.0, 0.0, 1.0) if abs(forward[2]) < 0.99 else (1.0, 0.0, 0.0)  # world z up on screen
    right = unit(cross(forward, up))
    rotation = np.array([right, cross(forward, right), forward])
    distance = radius * (2.5 + 1.5 * u3)
    eye = centre - distance * rotation[2]

    rel = (points - eye) @ rotation.T
    depth = rel[:, 2:3]
    if float(depth.min()) < 0.25 * distance:
        return None
    uv = rel[:, :2] / depth
    lo, hi = uv.min(axis=0).tolist(), uv.max(axis=0).tolist()
    span = max(hi[0] - lo[0], hi[1] - lo[1])
    if not math.isfinite(span) or span < 1e-6:
        return None
    focal = coverage * size / span
    cx = 0.5 * (size - 1) - 0.5 * focal * (lo[0] + hi[0])
    cy = 0.5 * (size - 1) - 0.5 * focal * (lo[1] + hi[1])
    camera = np.array([focal, cx, cy, *eye.tolist(), *right, *rotation[1].tolist(), *forward])
    return Framing(points_2d=focal * uv + np.array([cx, cy]), camera=camera)
