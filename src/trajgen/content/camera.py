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

import numpy as np

from trajgen.content.config import GenerationConfig, max_coverage  # noqa: F401 (max_coverage: the camera's limit, read from here too)

MAX_TILT_DEG = 25.0
UNIFORMS_PER_CAMERA = 8
_EDGE = 0.005  # px kept clear of the margin so float rounding never leaves the frame
# camera vector columns, as stored in Sample.camera and the shards' `camera` array
CAMERA_COLUMNS = (
    "focal_px",
    "cx_px",
    "cy_px",
    "eye_x",
    "eye_y",
    "eye_z",
    "r00",
    "r01",
    "r02",
    "r10",
    "r11",
    "r12",
    "r20",
    "r21",
    "r22",
)


def project(points: np.ndarray, camera: np.ndarray) -> np.ndarray:
    """Pixel coordinates of world points seen by a camera vector (CAMERA_COLUMNS)."""
    f, cx, cy = camera[0:3]
    rel = (points - camera[3:6]) @ camera[6:15].reshape(3, 3).T
    return f * rel[:, :2] / rel[:, 2:3] + np.array([cx, cy])


def is_visible(points_2d: np.ndarray, size: int, radius: float) -> bool:
    """Every point lies inside the image with at least ``radius`` px of margin."""
    return bool(np.all(points_2d >= radius) and np.all(points_2d <= size - 1 - radius))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.sqrt(v[:, 0] * v[:, 0] + v[:, 1] * v[:, 1] + v[:, 2] * v[:, 2])[:, None]


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.stack(
        [
            a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1],
            a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2],
            a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0],
        ],
        axis=1,
    )


def _where(mask: np.ndarray, yes: tuple, no: tuple) -> np.ndarray:
    return np.where(mask[:, None], np.array(yes, np.float64), np.array(no, np.float64))


def _dot(rel: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """(m, T, 3) · (m, 3) → (m, T), added in a fixed order (no BLAS: a row's result never depends on the batch)."""
    return rel[..., 0] * axis[:, None, 0] + rel[..., 1] * axis[:, None, 1] + rel[..., 2] * axis[:, None, 2]


def frame(
    points: np.ndarray, view_normal: np.ndarray, u: np.ndarray, config: GenerationConfig, max_tilt: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Place a camera for each of m paths (m, T, 3) from its UNIFORMS_PER_CAMERA uniforms (m, 8),
    looking along its view normal (m, 3) tilted by up to its max_tilt (m,) degrees.

    Returns points_2d (m, T, 2), camera (m, 15) and framed (m,) bool: False where the draw
    cannot be framed (those rows hold garbage). Elementwise numpy only, so each row is the
    same whatever other rows share the call."""
    size, margin = config.size, config.radius
    u0, u1, u2, u3, u_roll, u_cover, u_x, u_y = u.T
    with np.errstate(all="ignore"):  # rows that cannot be framed may divide by zero
        lo3, hi3 = points.min(axis=1), points.max(axis=1)
        centre = 0.5 * (lo3 + hi3)
        d = points - centre[:, None, :]
        radius = np.sqrt((d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1] + d[..., 2] * d[..., 2]).max(axis=1))
        framed = np.isfinite(radius) & (radius >= 1e-6)

        # tilt the view direction by up to max_tilt degrees towards a random side, from either side
        n = _unit(view_normal)
        a = _unit(_cross(n, _where(np.abs(n[:, 0]) < 0.9, (1.0, 0.0, 0.0), (0.0, 1.0, 0.0))))
        b = _cross(n, a)
        tilt_angle = np.radians(max_tilt) * u0
        tilt = np.sin(tilt_angle) / np.cos(tilt_angle)
        side = np.where(u2 < 0.5, 1.0, -1.0)
        turn = 2 * math.pi * u1
        forward = _unit(
            side[:, None] * n + (side * tilt * np.cos(turn))[:, None] * a + (side * tilt * np.sin(turn))[:, None] * b
        )
        up = _where(np.abs(forward[:, 2]) < 0.99, (0.0, 0.0, 1.0), (1.0, 0.0, 0.0))  # world z up before the roll
        level_right = _unit(_cross(forward, up))
        level_down = _cross(forward, level_right)
        roll = math.radians(config.roll) * (2 * u_roll - 1)
        right = np.cos(roll)[:, None] * level_right + np.sin(roll)[:, None] * level_down
        down = _cross(forward, right)
        distance = radius * (2.5 + 1.5 * u3) * np.sqrt(1 + tilt * tilt)  # further when oblique: no stronger perspective
        eye = centre - distance[:, None] * forward

        rel = points - eye[:, None, :]
        depth = _dot(rel, forward)
        framed &= depth.min(axis=1) >= 0.25 * distance
        x, y = _dot(rel, right) / depth, _dot(rel, down) / depth
        lo_x, hi_x, lo_y, hi_y = x.min(axis=1), x.max(axis=1), y.min(axis=1), y.max(axis=1)
        span = np.maximum(hi_x - lo_x, hi_y - lo_y)
        framed &= np.isfinite(span) & (span >= 1e-6)
        target = min(config.coverage, max_coverage(size, margin))
        coverage = np.minimum(
            np.maximum(target + config.coverage_jitter * (2 * u_cover - 1), 0.5 * target), max_coverage(size, margin)
        )
        focal = coverage * size / span
        # the box's top-left corner: centred, then moved to a random place within the free margin
        box_x, box_y = focal * (hi_x - lo_x), focal * (hi_y - lo_y)
        free_x = np.maximum(0.0, size - 1 - 2 * margin - box_x - 2 * _EDGE)
        free_y = np.maximum(0.0, size - 1 - 2 * margin - box_y - 2 * _EDGE)
        cx = 0.5 * (size - 1 - box_x) + config.placement * free_x * (u_x - 0.5) - focal * lo_x
        cy = 0.5 * (size - 1 - box_y) + config.placement * free_y * (u_y - 0.5) - focal * lo_y
        points_2d = np.stack([focal[:, None] * x + cx[:, None], focal[:, None] * y + cy[:, None]], axis=-1)
        camera = np.concatenate([np.stack([focal, cx, cy], axis=1), eye, right, down, forward], axis=1)
    return points_2d, camera, framed
