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
    """Make sample ``index`` of the dataset ``config`` describes (pure in config content, seed, index):
    exactly the row a shard holds for it (both are made by ``trajgen.bulk.make_samples``).

    ``out``: an optional C-contiguous uint8 (T, H, W, 3) array to render into; the sample's
    ``video`` is then that array."""
    from trajgen.bulk import make_samples

    if index < 0:
        raise TrajgenError(f"sample index must be ≥ 0, got {index}")
    made = make_samples(config, [index], None if out is None else out[None])
    label = int(made.labels[0])
    return Sample(
        index=index,
        label=label,
        class_name=config.classes[label],
        video=made.videos[0],
        trajectory_3d=made.trajectory_3d[0],
        points_2d=made.points_2d[0],
        camera=made.camera[0],
        equation=made.equations[0],
        description=made.descriptions[0],
        redraws=int(made.redraws[0]),
    )
