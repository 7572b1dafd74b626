"""Pinhole camera: aimed at the path, rolled, focused to a drawn coverage and placed
anywhere the margin allows; projection and the visibility check.

The camera looks along the motion's preferred view direction, tilted by up to the
motion's ``max_tilt`` (default ``MAX_TILT_DEG``) in a random direction, from a random
distance of 2.5–4 path radii (over the cosine of the tilt, so an oblique view shows no
stronger perspective than a face-on one), and
rolled about its viewing axis by up to ``roll`` degrees (0: world z up on screen). The
focal length is then solved so that max(bbox width / W, bbox height / H) equals a
coverage drawn within ±``coverage_jitter`` of the target, and the principal point is
placed so the bounding box sits at a random place within the share ``placement`` of the
free margin (0: centred), keeping every point the dot radius inside the frame. All of it
is exact for a fixed pose, so framing needs no trial and error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from trajgen._vec import Vec, combine, cross, orthonormal_pair, unit
from trajgen.config import GenerationConfig

MAX_TILT_DEG = 25.0
UNIFORMS_PER_CAMERA = 8
_EDGE = 0.005  # px kept clear of the margin so float rounding never leaves the frame
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


def frame(points: np.ndarray, view_normal: Vec, u: list[float], config: GenerationConfig,
          max_tilt: float = MAX_TILT_DEG) -> Framing | None:
    """Place a camera for ``points`` from UNIFORMS_PER_CAMERA uniforms; None if the draw cannot be framed."""
    lo3, hi3 = points.min(axis=0), points.max(axis=0)
    centre = 0.5 * (lo3 + hi3)
    radius = math.sqrt(float(np.square(points - centre).sum(axis=1).max()))
    if not math.isfinite(radius) or radius < 1e-6:
        return None

    # tilt the view direction by up to max_tilt degrees towards a random side, from either side
    n = unit(view_normal)
    a, b = orthonormal_pair(n)
    u0, u1, u2, u3, u_roll, u_cover, u_x, u_y = u
    tilt = math.tan(math.radians(max_tilt) * u0)
    side = 1.0 if u2 < 0.5 else -1.0
    forward = unit(combine((side, n), (side * tilt * math.cos(2 * math.pi * u1), a), (side * tilt * math.sin(2 * math.pi * u1), b)))
    up = (0.0, 0.0, 1.0) if abs(forward[2]) < 0.99 else (1.0, 0.0, 0.0)  # world z up on screen before the roll
    level_right = unit(cross(forward, up))
    level_down = cross(forward, level_right)
    roll = math.radians(config.roll) * (2 * u_roll - 1)
    right = combine((math.cos(roll), level_right), (math.sin(roll), level_down))
    down = cross(forward, right)
    rotation = np.array([right, down, forward])
    distance = radius * (2.5 + 1.5 * u3) * math.sqrt(1 + tilt * tilt)  # further away when oblique: no stronger perspective
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
    size, margin = config.size, config.radius
    target = min(config.coverage, max_coverage(size, margin))
    coverage = min(max(target + config.coverage_jitter * (2 * u_cover - 1), 0.5 * target), max_coverage(size, margin))
    focal = coverage * size / span
    # the box's top-left corner: centred, then moved to a random place within the free margin
    box = (focal * (hi[0] - lo[0]), focal * (hi[1] - lo[1]))
    free = [max(0.0, size - 1 - 2 * margin - side_px - 2 * _EDGE) for side_px in box]
    corner = [0.5 * (size - 1 - box[k]) + config.placement * free[k] * (w - 0.5) for k, w in enumerate((u_x, u_y))]
    cx = corner[0] - focal * lo[0]
    cy = corner[1] - focal * lo[1]
    camera = np.array([focal, cx, cy, *eye.tolist(), *right, *down, *forward])
    return Framing(points_2d=focal * uv + np.array([cx, cy]), camera=camera)
