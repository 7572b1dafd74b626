"""make_sample(config, index): the deterministic per-index pipeline simulate → frame → render."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from trajgen.camera import UNIFORMS_PER_CAMERA, frame, max_coverage
from trajgen.config import GenerationConfig
from trajgen.errors import TrajgenError
from trajgen.motions import (
    MOTIONS, UNIFORMS_PER_AUGMENTATION, UNIFORMS_PER_DRAW, augment_params, draw_augmentation,
)
from trajgen.render import render_video

MAX_REDRAWS = 100
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


def simulate(config: GenerationConfig, motion, rng: np.random.Generator, t: np.ndarray):
    """One draw of a path: (uniforms, augmentation, parameters, (T, 3) points with noise)."""
    u = rng.random(_UNIFORMS).tolist()
    aug = draw_augmentation(u[UNIFORMS_PER_DRAW:], config.augment_prob, config.noise_scale)
    params = augment_params(motion, motion.draw(u), aug)
    points = motion.path(params, t)
    if aug.noise_std > 0:
        points = points + rng.normal(0.0, aug.noise_std, points.shape)
    return u, aug, params, points


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
    coverage = min(config.coverage, max_coverage(config.size, config.radius))
    for redraws in range(MAX_REDRAWS):
        u, aug, params, points = simulate(config, motion, rng, t)
        framing = frame(points, motion.view_normal(params), u[-UNIFORMS_PER_CAMERA:], config.size, coverage)
        if framing is not None:
            break
    else:  # pragma: no cover - only reachable with a broken motion definition
        raise TrajgenError(f"sample {index} ({motion.name}) could not be framed in {MAX_REDRAWS} draws")
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
