"""The arrays a shard holds: their keys, dtypes and shapes (the shard contract), checked before
a shard is written and after it is read.

Every shard holds SHARD_KEYS. A run with scene knobs on also holds, after them, the scene's
arrays for the knobs it uses (SCENE_KEYS, in that order; see trajgen.content.scene for
their columns), so a default run's shards are exactly what they were before the knobs.
"""

from __future__ import annotations

import numpy as np

from trajgen.content.config import GenerationConfig
from trajgen.content.scene import APPEARANCE_COLUMNS, DISTRACTOR_COLUMNS, OCCLUDER_COLUMNS, SCENE_ARRAYS
from trajgen.errors import CorruptShardError

SHARD_KEYS = ("videos", "labels", "index", "trajectory_3d", "points_2d", "camera", "equations", "descriptions")
SCENE_KEYS = SCENE_ARRAYS  # appearance, distractors, distractor_points_2d, occluders, visible
_TOGETHER = (("distractors", "distractor_points_2d"), ("occluders", "visible"))


def shard_keys(config: GenerationConfig) -> tuple[str, ...]:
    """Every array the shards of a run of ``config`` hold, in the order they are written."""
    on = {
        "appearance": config.appearance == "varied",
        "distractors": config.distractors > 0,
        "distractor_points_2d": config.distractors > 0,
        "occluders": config.occluders > 0,
        "visible": config.occluders > 0,
    }
    return SHARD_KEYS + tuple(key for key in SCENE_KEYS if on[key])


def _fail(message):
    raise CorruptShardError(message)


def validate_shard_arrays(arrays):
    """Check keys, dtypes and shapes against the shard contract; return n (samples)."""
    keys = set(arrays)
    if not set(SHARD_KEYS) <= keys <= set(SHARD_KEYS + SCENE_KEYS):
        missing = [k for k in SHARD_KEYS if k not in keys]
        extra = sorted(keys - set(SHARD_KEYS + SCENE_KEYS))
        _fail(f"shard arrays: missing {missing or 'none'}, unexpected {extra or 'none'}")
    for pair in _TOGETHER:
        if (pair[0] in keys) != (pair[1] in keys):
            _fail(
                f"shard arrays: {' and '.join(pair)} go together, but only {pair[0] if pair[0] in keys else pair[1]} is there"
            )
    for key in arrays:
        if not isinstance(arrays[key], np.ndarray):
            _fail(f"shard arrays: {key} is a {type(arrays[key]).__name__}, expected a numpy array")
    videos = arrays["videos"]
    if videos.ndim != 5 or videos.shape[-1] != 3:
        _fail(f"shard arrays: videos has shape {videos.shape}, expected (n, T, H, W, 3)")
    n, t = videos.shape[:2]
    expected = {
        "videos": ("u1", videos.shape),
        "labels": ("i8", (n,)),
        "index": ("i8", (n,)),
        "trajectory_3d": ("f4", (n, t, 3)),
        "points_2d": ("f4", (n, t, 2)),
        "equations": ("U", (n,)),
        "descriptions": ("U", (n,)),
        "appearance": ("f4", (n, len(APPEARANCE_COLUMNS))),
        "visible": ("f4", (n, t)),
    }
    if "distractors" in arrays:
        k = arrays["distractors"].shape[1:2] or (0,)
        expected["distractors"] = ("f4", (n, *k, len(DISTRACTOR_COLUMNS)))
        expected["distractor_points_2d"] = ("f4", (n, *k, t, 2))
    if "occluders" in arrays:
        k = arrays["occluders"].shape[1:2] or (0,)
        expected["occluders"] = ("f4", (n, *k, len(OCCLUDER_COLUMNS)))
    for key, (code, shape) in expected.items():
        if key not in arrays:
            continue
        arr = arrays[key]
        ok = arr.dtype.kind == "U" if code == "U" else arr.dtype == np.dtype(code)
        if not ok:
            _fail(f"shard arrays: {key} has dtype {arr.dtype}, expected {'str' if code == 'U' else np.dtype(code)}")
        if arr.shape != shape:
            _fail(f"shard arrays: {key} has shape {arr.shape}, expected {shape}")
    camera = arrays["camera"]
    if camera.dtype != np.float32 or camera.ndim != 2 or camera.shape[0] != n:
        _fail(f"shard arrays: camera has dtype {camera.dtype} shape {camera.shape}, expected float32 ({n}, K)")
    return n
