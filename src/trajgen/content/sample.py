"""make_sample(config, index): one sample of the dataset, made by the bulk pipeline (bulk.py) for one index."""

from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np

from trajgen.content.config import GenerationConfig
from trajgen.content.scene import SCENE_ARRAYS
from trajgen.errors import TrajgenError


@dataclass(frozen=True, eq=False)
class Sample:
    """One sample. ``camera`` holds the columns of ``trajgen.content.camera.CAMERA_COLUMNS``:
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
    # the scene knobs' arrays (trajgen.content.scene's columns), None where the knob is off
    appearance: np.ndarray | None = None  # float32 (len(APPEARANCE_COLUMNS),)
    distractors: np.ndarray | None = None  # float32 (K, len(DISTRACTOR_COLUMNS))
    distractor_points_2d: np.ndarray | None = None  # float32 (K, T, 2)
    occluders: np.ndarray | None = None  # float32 (K, len(OCCLUDER_COLUMNS))
    visible: np.ndarray | None = None  # float32 (T,): the dot's visible share per frame
    occlusion_redraws: int = 0  # occluder redraws it took (--max-hidden)


def make_sample(config: GenerationConfig, index: int, *, out: np.ndarray | None = None) -> Sample:
    """Make sample ``index`` of the dataset ``config`` describes (pure in config content, seed, index):
    exactly the row a shard holds for it (``trajgen.content.bulk.make_one`` makes it as ``make_samples`` does).

    ``out``: an optional C-contiguous uint8 (T, H, W, 3) array to render into; the sample's
    ``video`` is then that array."""
    from trajgen.content.bulk import make_one

    index = operator.index(index)
    if index < 0:
        raise TrajgenError(f"sample index must be ≥ 0, got {index}")
    made = make_one(config, index, None if out is None else out[None])
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
        **{key: None if getattr(made, key) is None else getattr(made, key)[0] for key in SCENE_ARRAYS},
        occlusion_redraws=0 if made.occlusion_redraws is None else int(made.occlusion_redraws[0]),
    )
