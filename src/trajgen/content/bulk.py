"""Samples in bulk: simulate → frame → render many sample indices at once, as arrays.

The same pipeline as one sample, over a whole shard: each sample's uniforms come from
its own counter-based stream (streams.py); its motion parameters are drawn from them in
plain Python floats (cheap); then the paths, the sensor noise, the framing, the pace and
the drawing are numpy over all samples of a class, or of the shard. Only elementwise
operations are used on the arrays (no BLAS, no sums along an axis), so sample i's numbers
do not depend on which other samples share its batch: ``make_sample(config, i)`` is
exactly row i of the shard that holds it.

Stream layout of one draw of sample i (a draw that cannot be framed is redrawn from the
next block of the same stream): ``UNIFORMS`` uniforms (motion, augmentation, camera),
then 2·T·3 uniforms for the T×3 normal numbers of the sensor noise.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from trajgen.content import streams
from trajgen.content.camera import UNIFORMS_PER_CAMERA, frame, frame_one
from trajgen.content.config import GenerationConfig
from trajgen.content.motions import (
    MOTIONS,
    UNIFORMS_PER_AUGMENTATION,
    UNIFORMS_PER_DRAW,
    Augmentation,
    Motion,
    Params,
    augment_params,
    draw_augmentation,
    stack,
)
from trajgen.content.render import render_videos
from trajgen.content.scene import SCENE_ARRAYS, make_scene
from trajgen.errors import TrajgenError

MAX_REDRAWS = 100
# a varied pace keeps every frame-to-frame step within this share of the dot's diameter
SPEED_LIMIT = 0.95
UNIFORMS = UNIFORMS_PER_DRAW + UNIFORMS_PER_AUGMENTATION + UNIFORMS_PER_CAMERA
_PACE = UNIFORMS_PER_DRAW - 1  # the motion's last uniform draws the pace


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
    # the scene knobs' arrays (trajgen.content.scene), None where the knob is off
    appearance: np.ndarray | None = None
    distractors: np.ndarray | None = None
    distractor_points_2d: np.ndarray | None = None
    occluders: np.ndarray | None = None
    visible: np.ndarray | None = None
    occlusion_redraws: np.ndarray | None = None  # int64 (n,), with --occluders


def _finish(config: GenerationConfig, keys: np.ndarray, points_2d: np.ndarray, made: SampleArrays) -> SampleArrays:
    """Draw the videos of ``made`` along ``points_2d`` (float64, as framed): the plain dot, or the
    scene the knobs ask for."""
    if not config.scene:
        render_videos(points_2d, config, made.videos)
        return made
    scene = make_scene(config, keys, points_2d, made.videos)
    made.descriptions = [text + more for text, more in zip(made.descriptions, scene.descriptions)]
    for key in SCENE_ARRAYS:
        setattr(made, key, getattr(scene, key))
    made.occlusion_redraws = scene.occlusion_redraws if config.occluders else None
    return made


@lru_cache(maxsize=64)
def _times(frames: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, frames)
    t.flags.writeable = False
    return t


def draw_parameters(config: GenerationConfig, motion: Motion, u: list[float]) -> tuple[Augmentation, Params]:
    """One sample's augmentation and motion parameters (at the class's natural pace) from its draw's uniforms."""
    aug = draw_augmentation(u[UNIFORMS_PER_DRAW:], config.augment_prob, config.noise_scale)
    return aug, augment_params(motion, motion.draw(u, config.frames), aug)


def pace_limit(points_2d: np.ndarray, diameter: float, speed_variation: float) -> np.ndarray:
    """The largest speed variation k (see motions.warped) that keeps every step of each path
    (m, T, 2) at its natural pace within SPEED_LIMIT of the dot's diameter: a step grows by
    at most 1 + k when the pace varies. (m,)"""
    steps = np.diff(points_2d, axis=1)
    longest = np.sqrt((steps[..., 0] * steps[..., 0] + steps[..., 1] * steps[..., 1]).max(axis=1, initial=0.0))
    with np.errstate(all="ignore"):  # rows that could not be framed hold garbage
        reach = np.minimum(speed_variation, np.maximum(0.0, SPEED_LIMIT * diameter / longest - 1.0))
    return np.where(longest > 0, reach, speed_variation)


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
        framed = np.zeros(len(pending), bool)
        for label in np.unique(labels[pending]).tolist():
            rows = np.flatnonzero(labels[pending] == label)
            motion = MOTIONS[config.classes[label]]
            drawn = [draw_parameters(config, motion, u_row) for u_row in u[rows].tolist()]
            params = [p for _, p in drawn]
            noise_std = np.array([aug.noise_std for aug, _ in drawn])
            found = _place(config, motion, params, noise[rows] * noise_std[:, None, None], u[rows], t)
            framed[rows] = found[3]
            done = rows[found[3]]
            points[pending[done]], points_2d[pending[done]], camera[pending[done]] = (a[found[3]] for a in found[:3])
            for row, ok, (aug, _), p in zip(rows.tolist(), found[3].tolist(), drawn, params):
                if ok:
                    chosen[pending[row]] = (motion, aug, p)
        redraws[pending[framed]] = draw
        pending = pending[~framed]
    if len(pending):  # pragma: no cover - only reachable with a broken motion definition
        i = int(index[pending[0]])
        raise TrajgenError(
            f"sample {i} ({config.classes[i % len(config.classes)]}) could not be framed in {MAX_REDRAWS} draws"
        )
    made = SampleArrays(
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
    return _finish(config, keys, points_2d, made)


def make_one(config: GenerationConfig, index: int, video: np.ndarray | None = None) -> SampleArrays:
    """``make_samples(config, [index], video)`` for one sample, without a batch's bookkeeping: the same
    streams, draws, framing (camera.frame_one) and drawing, so exactly the same arrays, at a fraction
    of the cost (make_sample; a notebook; verify --deep)."""
    index = operator.index(index)  # numpy integers too, as Python's (the key arithmetic is modulo 2**64)
    if index < 0:
        raise TrajgenError(f"sample index must be ≥ 0, got {index}")
    frames = config.frames
    video = np.empty((1, frames, config.size, config.size, 3), np.uint8) if video is None else video
    label = index % len(config.classes)
    motion = MOTIONS[config.classes[label]]
    key = streams.sample_key(config.seed, index)
    t = _times(frames)
    block = UNIFORMS + 6 * frames
    for draw in range(MAX_REDRAWS):
        # the draw's uniforms and its noise's, in one call: the same stream numbers as uniforms() + normals()
        u_all = streams.uniforms(key, draw * block, block)
        u = u_all[:, :UNIFORMS]
        noise = streams.normals_of(u_all[:, UNIFORMS:]).reshape(1, frames, 3)
        aug, params = draw_parameters(config, motion, u[0].tolist())
        points, points_2d, camera, framed = _place(config, motion, [params], noise * aug.noise_std, u, t)
        if framed[0]:
            break
    else:  # pragma: no cover - only reachable with a broken motion definition
        raise TrajgenError(f"sample {index} ({config.classes[label]}) could not be framed in {MAX_REDRAWS} draws")
    made = SampleArrays(
        index=np.array([index], np.int64),
        labels=np.array([label], np.int64),
        videos=video,
        trajectory_3d=points.astype(np.float32),
        points_2d=points_2d.astype(np.float32),
        camera=camera.astype(np.float32),
        equations=[motion.equation(params)],
        descriptions=[motion.description(params) + aug.describe()],
        redraws=np.array([draw], np.int64),
    )
    return _finish(config, key, points_2d, made)


def _place(
    config: GenerationConfig, motion: Motion, params: list[Params], noise: np.ndarray, u: np.ndarray, t: np.ndarray
):
    """Frame m draws of one motion, vary their pace within the speed limit and frame them afresh:
    (points (m, T, 3), points_2d, camera, framed (m,) bool). ``params`` gain their "warp"."""
    m = len(params)
    if m == 1:
        return _place_one(config, motion, params[0], noise, u, t)
    normal = np.array([motion.view_normal(p) for p in params], np.float64).reshape(m, 3)
    tilt = np.full(m, motion.max_tilt)
    camera_u = u[:, UNIFORMS - UNIFORMS_PER_CAMERA :]
    columns = stack(params)
    points = motion.path(columns, t) + noise
    points_2d, camera, framed = frame(points, normal, camera_u, config, tilt)
    if not motion.varies_speed or config.speed_variation == 0:
        return points, points_2d, camera, framed
    reach = pace_limit(points_2d, 2 * config.radius, config.speed_variation)
    retimed = reach > 0  # reach 0: already as fast as the limit allows, the natural pace it is
    warp = reach * (2 * u[:, _PACE] - 1)
    for p, k, yes in zip(params, warp.tolist(), retimed.tolist()):
        if yes:
            p["warp"] = k
    columns["warp"] = np.where(retimed, warp, 0.0)
    with np.errstate(all="ignore"):  # rows that could not be framed hold garbage
        paced = motion.path(columns, t) + noise
    paced_2d, paced_camera, framed_again = frame(paced, normal, camera_u, config, tilt)
    keep = ~retimed[:, None, None]
    return (
        np.where(keep, points, paced),
        np.where(keep, points_2d, paced_2d),
        np.where(keep[:, 0], camera, paced_camera),
        framed & (framed_again | ~retimed),
    )


def _place_one(
    config: GenerationConfig, motion: Motion, params: Params, noise: np.ndarray, u: np.ndarray, t: np.ndarray
):
    """``_place`` for one draw (make_sample), in Python floats where numpy's cost per call is most of the
    work: the same path, framing (camera.frame_one), pace (pace_limit's arithmetic, in its order) and
    framing again, so the same arrays to the bit."""
    normal = np.array(motion.view_normal(params), np.float64)
    camera_u = u[0, UNIFORMS - UNIFORMS_PER_CAMERA :]
    columns = stack([params])
    points = motion.path(columns, t) + noise
    points_2d, camera, framed = frame_one(points[0], normal, camera_u, config, motion.max_tilt)
    natural = points, points_2d[None], camera[None], np.array([framed])
    if not framed or not motion.varies_speed or config.speed_variation == 0:
        return natural  # (not framed: drawn again, its pace does not matter)
    path = points_2d.tolist()
    longest = math.sqrt(
        max(((x1 - x0) * (x1 - x0) + (y1 - y0) * (y1 - y0) for (x0, y0), (x1, y1) in zip(path, path[1:])), default=0.0)
    )
    variation = config.speed_variation
    reach = min(variation, max(0.0, SPEED_LIMIT * (2 * config.radius) / longest - 1.0)) if longest > 0 else variation
    if not reach > 0:  # already as fast as the limit allows: the natural pace it is
        return natural
    params["warp"] = warp = reach * (2 * float(u[0, _PACE]) - 1)
    columns["warp"] = np.array([warp])
    paced = motion.path(columns, t) + noise
    paced_2d, paced_camera, framed_again = frame_one(paced[0], normal, camera_u, config, motion.max_tilt)
    return paced, paced_2d[None], paced_camera[None], np.array([framed_again])
