"""make_sample(config, index): the deterministic per-index pipeline simulate → frame → render."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from trajgen.camera import UNIFORMS_PER_CAMERA, frame
from trajgen.config import GenerationConfig
from trajgen.errors import TrajgenError
from trajgen.motions import (
    MOTIONS, UNIFORMS_PER_AUGMENTATION, UNIFORMS_PER_DRAW, Augmentation, Motion, augment_params, draw_augmentation,
)
from trajgen.render import render_video

MAX_REDRAWS = 100
# a varied pace keeps every frame-to-frame step within this share of the dot's diameter
SPEED_LIMIT = 0.95
_UNIFORMS = UNIFORMS_PER_DRAW + UNIFORMS_PER_AUGMENTATION + UNIFORMS_PER_CAMERA


@dataclass(frozen=True, eq=False)
class Sample:
    """One sample. ``camera`` holds the columns of ``trajgen.camera.CAMERA_COLUMNS``:
    focal length and principal point in pixels, camera position, and the world→camera
    rotation (rows: image right, image down, viewing direction)."""

    index: int
    label: int
    class_name: str
    video: np.ndarray  # uint8 (T, H, W, 3) RGB
    trajectory_3d: np.ndarray  # float32 (T, 3), the augmented path that was filmed
    points_2d: np.ndarray  # float32 (T, 2), pixel x, y of each frame's point
    camera: np.ndarray  # float32 (15,)
    equation: str
    description: str
    redraws: int = 0  # framing redraws it took


@lru_cache(maxsize=64)
def _times(frames: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, frames)
    t.flags.writeable = False
    return t


def sample_rng(seed: int, index: int) -> np.random.Generator:
    """The sample's own random stream, keyed by (seed, index) only."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence((seed, index))))


@dataclass(frozen=True, eq=False)
class Draw:
    """One draw of a path: its uniforms, augmentation, parameters, sensor noise and (T, 3) points."""

    u: list[float]
    aug: Augmentation
    params: dict
    noise: np.ndarray | None
    points: np.ndarray


def simulate(config: GenerationConfig, motion: Motion, rng: np.random.Generator, t: np.ndarray) -> Draw:
    """One draw of a path at the class's natural pace (no speed variation yet)."""
    u = rng.random(_UNIFORMS).tolist()
    aug = draw_augmentation(u[UNIFORMS_PER_DRAW:], config.augment_prob, config.noise_scale)
    params = augment_params(motion, motion.draw(u, len(t)), aug)
    noise = rng.normal(0.0, aug.noise_std, (len(t), 3)) if aug.noise_std > 0 else None
    return Draw(u, aug, params, noise, _noisy(motion.path(params, t), noise))


def _noisy(points: np.ndarray, noise: np.ndarray | None) -> np.ndarray:
    return points if noise is None else points + noise


def warp_limit(points_2d: np.ndarray, diameter: float, speed_variation: float) -> float:
    """The largest speed variation k (see motions.warped) that keeps every step of a path
    whose natural-pace steps are ``points_2d``'s within SPEED_LIMIT of the dot's diameter:
    a step grows by at most 1 + k when the pace varies."""
    longest = float(np.sqrt(np.square(np.diff(points_2d, axis=0)).sum(axis=1).max(initial=0.0)))
    if longest <= 0:
        return speed_variation
    return min(speed_variation, max(0.0, SPEED_LIMIT * diameter / longest - 1.0))


def retime(draw: Draw, motion: Motion, t: np.ndarray, warp: float) -> Draw:
    """The same draw with its pace varied by ``warp`` (the path's shape is unchanged)."""
    params = {**draw.params, "warp": warp}
    return Draw(draw.u, draw.aug, params, draw.noise, _noisy(motion.path(params, t), draw.noise))


def place(config: GenerationConfig, motion: Motion, rng: np.random.Generator, t: np.ndarray):
    """Draw a path, vary its pace within the speed limit and frame it: (draw, framing, redraws)."""
    for redraws in range(MAX_REDRAWS):
        draw = simulate(config, motion, rng, t)
        camera_u = draw.u[-UNIFORMS_PER_CAMERA:]
        framing = frame(draw.points, motion.view_normal(draw.params), camera_u, config, motion.max_tilt)
        if framing is None:
            continue
        if not motion.varies_speed or config.speed_variation == 0:
            return draw, framing, redraws
        # vary the pace as far as the speed limit allows, then frame the retimed path afresh
        reach = warp_limit(framing.points_2d, 2 * config.radius, config.speed_variation)
        if reach == 0:  # already as fast as the limit allows: the natural pace it is
            return draw, framing, redraws
        draw = retime(draw, motion, t, reach * (2 * draw.u[UNIFORMS_PER_DRAW - 1] - 1))
        framing = frame(draw.points, motion.view_normal(draw.params), camera_u, config, motion.max_tilt)
        if framing is not None:
            return draw, framing, redraws
    raise TrajgenError(  # pragma: no cover - only reachable with a broken motion definition
        f"a {motion.name} path could not be framed in {MAX_REDRAWS} draws")


def make_sample(config: GenerationConfig, index: int, *, out: np.ndarray | None = None) -> Sample:
    """Make sample ``index`` of the dataset ``config`` describes (pure in config content, seed, index).

    ``out``: an optional C-contiguous uint8 (T, H, W, 3) array to render into, so a shard
    can be filled without a copy; the sample's ``video`` is then that array."""
    if index < 0:
        raise TrajgenError(f"sample index must be ≥ 0, got {index}")
    rng = sample_rng(config.seed, index)
    label = index % len(config.classes)
    motion = MOTIONS[config.classes[label]]
    t = _times(config.frames)
    draw, framing, redraws = place(config, motion, rng, t)
    points, aug, params = draw.points, draw.aug, draw.params
    return Sample(
        index=index,
        label=label,
        class_name=motion.name,
        video=render_video(framing.points_2d, config, out),
        trajectory_3d=points.astype(np.float32),
        points_2d=framing.points_2d.astype(np.float32),
        camera=framing.camera.astype(np.float32),
        equation=motion.equation(params),
        description=motion.description(params) + aug.describe(),
        redraws=redraws,
    )
