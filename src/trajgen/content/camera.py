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
    if len(points) == 1:  # one sample (make_sample): the same arithmetic on floats, without numpy's per-call cost
        points_2d, camera, framed = frame_one(points[0], view_normal[0], u[0], config, float(max_tilt[0]))
        return points_2d[None], camera[None], np.array([framed])
    size, margin = config.size, config.margin
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


Vec3 = tuple[float, float, float]


def _unit3(v: Vec3) -> Vec3:
    n = math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
    return (v[0] / n, v[1] / n, v[2] / n)


def _cross3(a: Vec3, b: Vec3) -> Vec3:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def _dot1(rel: np.ndarray, axis: Vec3) -> np.ndarray:
    return rel[:, 0] * axis[0] + rel[:, 1] * axis[1] + rel[:, 2] * axis[2]


def frame_one(
    points: np.ndarray, view_normal: np.ndarray, u: np.ndarray, config: GenerationConfig, max_tilt: float
) -> tuple[np.ndarray, np.ndarray, bool]:
    """``frame`` for one path (T, 3): points_2d (T, 2), camera (15,) and whether it is framed, equal to
    the bit to its row of ``frame`` over many (each operation the same IEEE one, in the same order;
    sines and cosines by numpy's own functions), in Python floats: for one path numpy's cost per
    call is most of the work. Checks come before each division, so none can fail."""
    size, margin = config.size, config.margin
    u0, u1, u2, u3, u_roll, u_cover, u_x, u_y = u.tolist()
    path = points.tolist()
    xs, ys, zs = (list(c) for c in zip(*path))
    if not all(map(math.isfinite, xs + ys + zs)):  # the batch's min and max give NaN there: not framed
        return _unframed(len(path))
    c0, c1, c2 = 0.5 * (min(xs) + max(xs)), 0.5 * (min(ys) + max(ys)), 0.5 * (min(zs) + max(zs))
    radius = math.sqrt(max([(x - c0) * (x - c0) + (y - c1) * (y - c1) + (z - c2) * (z - c2) for x, y, z in path]))
    if not (math.isfinite(radius) and radius >= 1e-6):
        return _unframed(len(path))
    try:
        n = _unit3(tuple(view_normal.tolist()))
        a = _unit3(_cross3(n, (1.0, 0.0, 0.0) if abs(n[0]) < 0.9 else (0.0, 1.0, 0.0)))
        b = _cross3(n, a)
        tilt_angle = float(np.radians(max_tilt)) * u0
        turn = 2 * math.pi * u1
        roll = math.radians(config.roll) * (2 * u_roll - 1)
        angles = np.array([tilt_angle, turn, roll])  # numpy's sine and cosine, as the batch's, in two calls
        (sin_tilt, sin_turn, sin_roll), (cos_tilt, cos_turn, cos_roll) = (
            np.sin(angles).tolist(),
            np.cos(angles).tolist(),
        )
        tilt = sin_tilt / cos_tilt
        side = 1.0 if u2 < 0.5 else -1.0
        along_a, along_b = side * tilt * cos_turn, side * tilt * sin_turn
        forward = _unit3(
            (
                side * n[0] + along_a * a[0] + along_b * b[0],
                side * n[1] + along_a * a[1] + along_b * b[1],
                side * n[2] + along_a * a[2] + along_b * b[2],
            )
        )
        up = (0.0, 0.0, 1.0) if abs(forward[2]) < 0.99 else (1.0, 0.0, 0.0)
        level_right = _unit3(_cross3(forward, up))
        level_down = _cross3(forward, level_right)
        right = (
            cos_roll * level_right[0] + sin_roll * level_down[0],
            cos_roll * level_right[1] + sin_roll * level_down[1],
            cos_roll * level_right[2] + sin_roll * level_down[2],
        )
        down = _cross3(forward, right)
        distance = radius * (2.5 + 1.5 * u3) * math.sqrt(1 + tilt * tilt)
        eye = (c0 - distance * forward[0], c1 - distance * forward[1], c2 - distance * forward[2])
    except ZeroDivisionError:  # a degenerate pose: the batch's row is NaN there, and not framed
        return _unframed(len(path))
    e0, e1, e2 = eye
    f0, f1, f2 = forward
    r0, r1, r2 = right
    d0, d1, d2 = down
    depths, along_right, along_down = [], [], []
    for x, y, z in path:
        x, y, z = x - e0, y - e1, z - e2
        depths.append(x * f0 + y * f1 + z * f2)
        along_right.append(x * r0 + y * r1 + z * r2)
        along_down.append(x * d0 + y * d1 + z * d2)
    if not min(depths) >= 0.25 * distance:
        return _unframed(len(path))
    xs = [x / depth for x, depth in zip(along_right, depths)]
    ys = [y / depth for y, depth in zip(along_down, depths)]
    lo_x, hi_x, lo_y, hi_y = min(xs), max(xs), min(ys), max(ys)
    span = max(hi_x - lo_x, hi_y - lo_y)
    if not (math.isfinite(span) and span >= 1e-6):
        return _unframed(len(path))
    target = min(config.coverage, max_coverage(size, margin))
    coverage = min(max(target + config.coverage_jitter * (2 * u_cover - 1), 0.5 * target), max_coverage(size, margin))
    focal = coverage * size / span
    box_x, box_y = focal * (hi_x - lo_x), focal * (hi_y - lo_y)
    free_x = max(0.0, size - 1 - 2 * margin - box_x - 2 * _EDGE)
    free_y = max(0.0, size - 1 - 2 * margin - box_y - 2 * _EDGE)
    cx = 0.5 * (size - 1 - box_x) + config.placement * free_x * (u_x - 0.5) - focal * lo_x
    cy = 0.5 * (size - 1 - box_y) + config.placement * free_y * (u_y - 0.5) - focal * lo_y
    points_2d = np.array([c for x, y in zip(xs, ys) for c in (focal * x + cx, focal * y + cy)]).reshape(-1, 2)
    camera = np.array([focal, cx, cy, *eye, *right, *down, *forward])
    return points_2d, camera, True


def _unframed(frames: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """What ``frame_one`` gives for a path it cannot frame (the batch's rows hold garbage there)."""
    return np.full((frames, 2), np.nan), np.full(15, np.nan), False
