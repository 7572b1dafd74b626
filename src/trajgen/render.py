"""Points → uint8 video with OpenCV. The only module that imports cv2."""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from trajgen.config import GenerationConfig

def opencv_version() -> str:
    return cv2.__version__


_SHIFT = 4  # fixed-point bits: cv2 draws at 1/16 px positions
_ONE = 1 << _SHIFT


def render_video(points_2d: np.ndarray, config: GenerationConfig, out: np.ndarray | None = None) -> np.ndarray:
    """(T, 2) pixel positions → (T, H, W, 3) uint8 RGB frames, dots anti-aliased at sub-pixel position.

    ``out``, if given, is the C-contiguous array to draw into (e.g. a row of a shard's videos)."""
    frames = len(points_2d)
    video = np.empty((frames, config.size, config.size, 3), np.uint8) if out is None else out
    video[...] = _blank_frame(config.size, config.background)  # frame-wise copy: 100× faster than a colour tuple
    centres = [tuple(p) for p in np.rint(points_2d * _ONE).astype(np.int64).tolist()]
    radius = int(round(config.radius * _ONE))
    if config.style == "dot":
        color = config.color
        for t in range(frames):
            cv2.circle(video[t], centres[t], radius, color, -1, cv2.LINE_AA, _SHIFT)
        return video
    length = config.trail_length
    bg = np.array(config.background, np.float64)
    fg = np.array(config.color, np.float64)
    # older positions fade towards the background: the newest has full colour
    faded = [tuple(np.rint(bg + (fg - bg) * (k + 1) / length).tolist()) for k in range(length)]
    for t in range(frames):
        first = max(0, t - length + 1)
        for s in range(first, t + 1):
            cv2.circle(video[t], centres[s], radius, faded[length - 1 - (t - s)], -1, cv2.LINE_AA, _SHIFT)
    return video


@lru_cache(maxsize=16)
def _blank_frame(size: int, background: tuple[int, int, int]) -> np.ndarray:
    frame = np.empty((size, size, 3), np.uint8)
    frame[...] = background
    frame.flags.writeable = False
    return frame


# ---------------------------------------------------------------- pictures for people (preview)

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def put_text(image: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.45,
             color: tuple[int, int, int] = (40, 40, 40)) -> None:
    """Write ``text`` on an RGB image in place; ``org`` is the baseline's left end."""
    cv2.putText(image, text, org, _FONT, scale, color, 1, cv2.LINE_AA)


def text_width(text: str, scale: float = 0.45) -> int:
    return cv2.getTextSize(text, _FONT, scale, 1)[0][0]


def encode_png(image: np.ndarray) -> bytes:
    """RGB uint8 image → PNG file bytes."""
    ok, data = cv2.imencode(".png", np.ascontiguousarray(image[:, :, ::-1]))
    if not ok:  # pragma: no cover - OpenCV always encodes uint8 RGB
        raise ValueError("OpenCV could not encode the PNG")
    return data.tobytes()


def encode_image(image: np.ndarray, suffix: str) -> bytes:
    """RGB uint8 image → file bytes in the format ``suffix`` names (".png", ".jpg" or ".jpeg")."""
    if suffix.lower() == ".png":
        return encode_png(image)
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(image[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not ok:  # pragma: no cover
        raise ValueError("OpenCV could not encode the JPEG")
    return data.tobytes()


def write_mp4(path: str, frames, fps: float, width: int, height: int) -> bool:
    """Write RGB uint8 frames of width×height to an MP4 (mp4v); False if OpenCV cannot open a writer."""
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        return False
    try:
        for frame in frames:
            writer.write(np.ascontiguousarray(frame[:, :, ::-1]))
    finally:
        writer.release()
    return True
