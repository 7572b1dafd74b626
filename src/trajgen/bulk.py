"""Samples in bulk: simulate → frame → render many sample indices at once, as arrays.

The same pipeline as one sample, over a whole shard: each sample's uniforms come from
its own counter-based stream (streams.py), its motion parameters are drawn from them
(plain Python floats: cheap), and then the paths, the sensor noise, the framing and the
drawing are numpy over all samples of a class, or of the shard. Only elementwise
operations are used on the arrays (no BLAS, no reductions that add along an axis), so
sample i's numbers do not depend on which other samples share its batch:
``make_sample(config, i)`` is exactly row i of the shard that holds it.

Stream layout of one draw of sample i (a draw that cannot be framed is redrawn from the
next block of the same stream): ``UNIFORMS`` uniforms (motion, augmentation, camera),
then 2·T·3 uniforms for the T×3 normal numbers of the sensor noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from trajgen import streams
from trajgen.camera import MAX_TILT_DEG, UNIFORMS_PER_CAMERA, max_coverage
from trajgen.config import GenerationConfig
from trajgen.errors import TrajgenError
from trajgen.motions import (
    MOTIONS, UNIFORMS_PER_AUGMENTATION, UNIFORMS_PER_DRAW, Augmentation, Motion, Params, augment_params,
    draw_augmentation,
)
from trajgen.render import render_videos

MAX_REDRAWS = 100
UNIFORMS = UNIFORMS_PER_DRAW + UNIFORMS_PER_AUGMENTATION + UNIFORMS_PER_CAMERA


@dataclass
class SampleArrays:
    """Samples as arrays, rows in the order of ``index`` (the shard's columns, and the rest)."""

    index: np.ndarray  # int64 (n,)
    labels: np.ndarray  # int64 (n,)
    videos: np.ndarray  # uint8 (n, T, H, W, 3)
    trajectory_3d: np.ndarray  # float32 (n, T, 3)
    points_2d: np.ndarray  # float32 (n, T, 2)
    camera: np.ndarray  # float32 (n, 15)
    equations: list[str]
    descriptions: list[str]
    redraws: np.ndarray  # int64 (n,): framing redraws each sample took


@lru_cache(maxsize=64)
def _times(frames: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, frames)
    t.flags.writeable = False
    return t


def draw_parameters(config: GenerationConfig, motion: Motion, u: list[float]) -> tuple[Augmentation, Params]:
    """One sample's augmentation and motion parameters from its draw's uniforms."""
    aug = draw_augmentation(u[UNIFORMS_PER_DRAW:], config.augment_prob, config.noise_scale)
    return aug, augment_params(motion, motion.draw(u), aug)


def make_samples(config: GenerationConfig, indices, videos: np.ndarray | None = None) -> SampleArrays:
    """Samples ``indices`` of the dataset ``config`` describes; each a pure function of (content config, seed, index).

    ``videos``: an optional C-contiguous uint8 (n, T, H, W, 3) array to draw into."""
    index = np.asarray(indices, np.int64).reshape(-1)
    if index.size and index.min() < 0:
        raise TrajgenError(f"sample index must be ≥ 0, got {int(index.min())}")
    n, frames = len(index), config.frames
    if videos is None:
        videos = np.empty((n, frames, config.size, config.size, 3), np.uint8)
    labels = index % len(config.classes)
    keys = streams.sample_keys(config.seed, index)
    t = _times(frames)
    points = np.empty((n, frames, 3))
    points_2d = np.empty((n, frames, 2))
    camera = np.empty((n, 15))
    redraws = np.zeros(n, np.int64)
    chosen: list = [None] * n  # (motion, augmentation, parameters) of the draw that was framed
    pending = np.arange(n)
    block = UNIFORMS + 6 * frames
    for draw in range(MAX_REDRAWS):
        if not len(pending):
            break
        u = streams.uniforms(keys[pending], draw * block, UNIFORMS)
        noise = streams.normals(keys[pending], draw * block + UNIFORMS, 3 * frames).reshape(-1, frames, 3)
        u_rows = u.tolist()
        path = np.empty((len(pending), frames, 3))
        normal = np.empty((len(pending), 3))
        noise_std = np.empty(len(pending))
        draws = []
        for label in np.unique(labels[pending]).tolist():
            rows = np.flatnonzero(labels[pending] == label)
            motion = MOTIONS[config.classes[label]]
            params = []
            for row in rows.tolist():
                aug, p = draw_parameters(config, motion, u_rows[row])
                draws.append((row, (motion, aug, p)))
                params.append(p)
                noise_std[row] = aug.noise_std
                normal[row] = motion.view_normal(p)
            path[rows] = batch_path(motion, params, t)
        path += noise * noise_std[:, None, None]
        framed, camera_rows, ok = frame_batch(path, normal, u[:, UNIFORMS - UNIFORMS_PER_CAMERA:], config)
        done = pending[ok]
        points[done], points_2d[done], camera[done] = path[ok], framed[ok], camera_rows[ok]
        redraws[done] = draw
        for row, what in draws:
            if ok[row]:
                chosen[pending[row]] = what
        pending = pending[~ok]
    else:
        if len(pending):  # pragma: no cover - only reachable with a broken motion definition
            i = int(index[pending[0]])
            raise TrajgenError(f"sample {i} ({config.classes[i % len(config.classes)]}) could not be framed "
                               f"in {MAX_REDRAWS} draws")
    render_videos(points_2d, config, videos)
    return SampleArrays(
        index=index,
        labels=labels,
        videos=videos,
        trajectory_3d=points.astype(np.float32),
        points_2d=points_2d.astype(np.float32),
        camera=camera.astype(np.float32),
        equations=[motion.equation(p) for motion, _, p in chosen],
        descriptions=[motion.description(p) + aug.describe() for motion, aug, p in chosen],
        redraws=redraws,
    )


# ---------------------------------------------------------------- paths of many samples of one class

def _column(params: list[Params], key: str) -> np.ndarray:
    """One parameter of every sample: (m,) for numbers, (m, 3) for vectors."""
    return np.array([p[key] for p in params], np.float64)


def _line(params, t):
    p0, v = _column(params, "p0"), _column(params, "v")
    return t[None, :, None] * v[:, None, :] + p0[:, None, :]


def _circle(params, t, radius="R"):
    angle = _column(params, "omega")[:, None] * t[None, :] + _column(params, "phi")[:, None]
    r = _column(params, radius)[:, None]
    a, b, c = _column(params, "a") * r, _column(params, "b") * r, _column(params, "c")
    return np.cos(angle)[..., None] * a[:, None, :] + np.sin(angle)[..., None] * b[:, None, :] + c[:, None, :]


def _helix(params, t):
    climb = _column(params, "h")[:, None] * t[None, :]
    return _circle(params, t, "r") + climb[..., None] * _column(params, "k")[:, None, :]


def _throw(params, t):
    p0, v0, g = _column(params, "p0"), _column(params, "v0"), _column(params, "g")
    points = t[None, :, None] * v0[:, None, :] + p0[:, None, :]
    points[..., 2] -= 0.5 * g[:, None] * (t * t)[None, :]
    return points


_PATHS = {"linear": _line, "circular": _circle, "helical": _helix, "parabolic": _throw}


def batch_path(motion: Motion, params: list[Params], t: np.ndarray) -> np.ndarray:
    """(m, T, 3) points of m samples of one motion class (a motion without a batch form: one by one)."""
    if motion.name in _PATHS:
        return _PATHS[motion.name](params, t)
    return np.stack([motion.path(p, t) for p in params]).reshape(len(params), len(t), 3)


# ---------------------------------------------------------------- framing many samples at once

def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.sqrt(v[:, 0] * v[:, 0] + v[:, 1] * v[:, 1] + v[:, 2] * v[:, 2])[:, None]


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.stack([a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1],
                     a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2],
                     a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]], axis=1)


def _choose(mask: np.ndarray, yes, no) -> np.ndarray:
    return np.where(mask[:, None], np.asarray(yes, np.float64), np.asarray(no, np.float64))


def frame_batch(points: np.ndarray, view_normal: np.ndarray, u: np.ndarray, config: GenerationConfig):
    """camera.frame for m paths at once: (points_2d (m, T, 2), camera (m, 15), framed (m,) bool).

    Rows whose draw cannot be framed hold garbage and framed False."""
    size = config.size
    coverage = min(config.coverage, max_coverage(size, config.radius))
    with np.errstate(all="ignore"):  # rows that cannot be framed may divide by zero
        lo3, hi3 = points.min(axis=1), points.max(axis=1)
        centre = 0.5 * (lo3 + hi3)
        d = points - centre[:, None, :]
        radius = np.sqrt((d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1] + d[..., 2] * d[..., 2]).max(axis=1))
        ok = np.isfinite(radius) & (radius >= 1e-6)

        # tilt the view direction by up to MAX_TILT_DEG towards a random side, from either side
        n = _unit(view_normal)
        a = _unit(_cross(n, _choose(np.abs(n[:, 0]) < 0.9, (1.0, 0.0, 0.0), (0.0, 1.0, 0.0))))
        b = _cross(n, a)
        tilt_angle = math.radians(MAX_TILT_DEG) * u[:, 0]
        tilt = np.sin(tilt_angle) / np.cos(tilt_angle)
        side = np.where(u[:, 2] < 0.5, 1.0, -1.0)[:, None]
        turn = 2 * np.pi * u[:, 1]
        forward = _unit(side * n + (side * tilt[:, None] * np.cos(turn)[:, None]) * a
                        + (side * tilt[:, None] * np.sin(turn)[:, None]) * b)
        up = _choose(np.abs(forward[:, 2]) < 0.99, (0.0, 0.0, 1.0), (1.0, 0.0, 0.0))  # world z up on screen
        right = _unit(_cross(forward, up))
        down = _cross(forward, right)
        distance = radius * (2.5 + 1.5 * u[:, 3])
        eye = centre - distance[:, None] * forward

        rel = points - eye[:, None, :]
        depth = rel[..., 0] * forward[:, None, 0] + rel[..., 1] * forward[:, None, 1] + rel[..., 2] * forward[:, None, 2]
        x = (rel[..., 0] * right[:, None, 0] + rel[..., 1] * right[:, None, 1] + rel[..., 2] * right[:, None, 2]) / depth
        y = (rel[..., 0] * down[:, None, 0] + rel[..., 1] * down[:, None, 1] + rel[..., 2] * down[:, None, 2]) / depth
        ok &= depth.min(axis=1) >= 0.25 * distance
        lo_x, hi_x, lo_y, hi_y = x.min(axis=1), x.max(axis=1), y.min(axis=1), y.max(axis=1)
        span = np.maximum(hi_x - lo_x, hi_y - lo_y)
        ok &= np.isfinite(span) & (span >= 1e-6)
        focal = coverage * size / span
        cx = 0.5 * (size - 1) - 0.5 * focal * (lo_x + hi_x)
        cy = 0.5 * (size - 1) - 0.5 * focal * (lo_y + hi_y)
        points_2d = np.stack([focal[:, None] * x + cx[:, None], focal[:, None] * y + cy[:, None]], axis=-1)
        camera = np.concatenate([np.stack([focal, cx, cy], axis=1), eye, right, down, forward], axis=1)
    return points_2d, camera, ok
