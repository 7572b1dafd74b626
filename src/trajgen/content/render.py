"""Points → uint8 video with OpenCV. The only module that imports cv2."""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from trajgen.content.config import GenerationConfig


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


def render_videos(points_2d: np.ndarray, config: GenerationConfig, out: np.ndarray) -> np.ndarray:
    """(n, T, 2) pixel positions → ``out``, a C-contiguous uint8 (n, T, H, W, 3): many videos at once.

    The same pixels as render_video. A dot on a plain frame is cv2.circle's anti-aliased
    dot: drawn once per 1/16-px offset onto a background tile (a sprite, cut to the pixels
    any offset touches), and copied into all frames row by row in one numpy assignment.
    Trails overlap, so they are drawn video by video."""
    if config.style != "dot":
        for video, points in zip(out, points_2d):
            render_video(points, config, video)
        return out
    n, frames, size = out.shape[0], out.shape[1], config.size
    out[...] = _blank_frame(size, config.background)
    sprites, offset = _dot_sprites(config.radius, config.color, config.background)
    side = sprites.shape[1]
    centres = np.rint(points_2d.reshape(-1, 2) * _ONE).astype(np.int64)
    left, top = (centres[:, 0] >> _SHIFT) - offset, (centres[:, 1] >> _SHIFT) - offset
    sprite = (centres[:, 1] & (_ONE - 1)) * _ONE + (centres[:, 0] & (_ONE - 1))
    fits = (left >= 0) & (top >= 0) & (left <= size - side) & (top <= size - side)
    inside = np.flatnonzero(fits)
    if len(inside) and side <= size:
        # each element is one sprite-wide row of pixels (3·side bytes) starting at any pixel of a frame
        row = np.dtype((np.void, 3 * side))
        spans = np.ndarray((n * frames, size, size - side + 1), row, out.data, 0, (3 * size * size, 3 * size, 3))
        spans[inside[:, None], top[inside, None] + np.arange(side), left[inside, None]] = sprites[sprite[inside]]
    else:
        fits[:] = False
    flat = out.reshape(n * frames, size, size, 3)
    radius = int(round(config.radius * _ONE))
    for f in np.flatnonzero(~fits).tolist():  # a dot whose tile reaches past the frame's edge: cv2 clips it
        cv2.circle(flat[f], tuple(centres[f].tolist()), radius, config.color, -1, cv2.LINE_AA, _SHIFT)
    return out


def fill_polygons(videos: np.ndarray, layers: list) -> None:
    """Fill each layer's polygons into ``videos`` (n, T, H, W, 3) uint8, anti-aliased, sample by sample,
    layer after layer. A layer is (polygons, colours, drawn): polygon t of sample i, ``polygons[i, t]``
    ((V, 2) px, float), goes into frame t of sample i in colour ``colours[i]`` (RGB), for the samples
    where ``drawn`` ((n,) bool, or None for all) is set.

    A sample's T polygons are one OpenCV call on its frames stacked into one tall image (about as
    fast as one polygon). Frames touch in that image, so a polygon that comes within _GUARD px of
    its frame's top or bottom (its soft edge would reach the next frame) is drawn in a copy of the
    rows it touches, stacked with room between the frames, and the rows copied back."""
    n, frames, size = videos.shape[0], videos.shape[1], videos.shape[2]
    prepared = []
    for polygons, colours, drawn in layers:
        fixed = np.rint(polygons * _ONE).astype(np.int32)
        ys = fixed[..., 1].reshape(n, -1)
        low, high = ys.min(axis=1) >> _SHIFT, ys.max(axis=1) >> _SHIFT
        stacked = (low >= _GUARD) & (high < size - _GUARD)
        tall = fixed + (np.arange(frames) * size * _ONE)[None, :, None, None] * np.array([0, 1], np.int32)
        on = np.ones(n, bool) if drawn is None else drawn
        extent = (low.tolist(), high.tolist())
        prepared.append((fixed, tall, stacked.tolist(), extent, np.rint(colours).astype(int).tolist(), on.tolist()))
    for i in range(n):
        video = videos[i]
        for fixed, tall, stacked, (low, high), colours, on in prepared:
            if not on[i]:
                continue
            if stacked[i]:
                cv2.fillPoly(video.reshape(frames * size, size, 3), tall[i], colours[i], cv2.LINE_AA, _SHIFT)
            else:
                _fill_apart(video, fixed[i], colours[i], low[i], high[i])


_GUARD = 2  # px: how far cv2's anti-aliased edge may reach past a polygon


def _fill_apart(video: np.ndarray, fixed: np.ndarray, colour, low: int, high: int) -> None:
    """fill_polygons for one sample whose polygons (T, V, 2) in 1/16 px reach rows ``low``..``high``
    (whole px, beyond the frame perhaps): the frame rows they touch, copied into frames with room
    above and below for what lies outside, in one call, then copied back."""
    frames, size = video.shape[0], video.shape[1]
    top, bottom = max(0, low - _GUARD), min(size, high + _GUARD + 1)
    if top >= bottom:  # wholly outside the frame
        return
    above, rows = max(0, -low) + _GUARD + 1, bottom - top
    pitch = above + rows + max(0, high - size + 1) + _GUARD + 1
    room = np.empty((frames, pitch, size, 3), np.uint8)
    room[:, above : above + rows] = video[:, top:bottom]
    shift = ((np.arange(frames) * pitch + above - top) * _ONE)[:, None, None] * np.array([0, 1], np.int32)
    cv2.fillPoly(room.reshape(frames * pitch, size, 3), fixed + shift, colour, cv2.LINE_AA, _SHIFT)
    video[:, top:bottom] = room[:, above : above + rows]


@lru_cache(maxsize=16)
def _dot_sprites(radius: float, color: tuple[int, int, int], background: tuple[int, int, int]):
    """cv2.circle's dot at each of the 16×16 sub-pixel offsets on the background, cut to the
    square any of them touches: (256, side) rows of side pixels, and the square's offset
    from the dot's whole-pixel position."""
    r = int(round(radius * _ONE))
    pad = (r >> _SHIFT) + 3  # the anti-aliased edge reaches at most a pixel or two past the radius
    tile = 2 * pad + 2
    tiles = np.empty((_ONE, _ONE, tile, tile, 3), np.uint8)
    for fy in range(_ONE):
        for fx in range(_ONE):
            tiles[fy, fx] = background
            cv2.circle(tiles[fy, fx], (pad * _ONE + fx, pad * _ONE + fy), r, color, -1, cv2.LINE_AA, _SHIFT)
    drawn = (tiles != np.array(background, np.uint8)).any(axis=(0, 1, 4))  # (tile, tile): touched by any offset
    touched = np.flatnonzero(drawn.any(axis=0) | drawn.any(axis=1))
    lo, hi = (int(touched.min()), int(touched.max())) if len(touched) else (pad, pad)
    side = hi - lo + 1
    cut = np.ascontiguousarray(tiles[:, :, lo : hi + 1, lo : hi + 1])
    sprites = cut.reshape(_ONE * _ONE, side, 3 * side).view(np.dtype((np.void, 3 * side)))[..., 0]
    sprites.flags.writeable = False
    return sprites, pad - lo


@lru_cache(maxsize=16)
def _blank_frame(size: int, background: tuple[int, int, int]) -> np.ndarray:
    frame = np.empty((size, size, 3), np.uint8)
    frame[...] = background
    frame.flags.writeable = False
    return frame


# ---------------------------------------------------------------- pictures for people (preview)

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def put_text(
    image: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.45, color: tuple[int, int, int] = (40, 40, 40)
) -> None:
    """Write ``text`` on an RGB image in place; ``org`` is the baseline's left end."""
    cv2.putText(image, text, org, _FONT, scale, color, 1, cv2.LINE_AA)


def text_width(text: str, scale: float = 0.45) -> int:
    return text_size(text, scale)[0]


def text_size(text: str, scale: float = 0.45) -> tuple[int, int, int]:
    """(width, height above the baseline, depth below it) of ``text`` as put_text writes it."""
    (width, height), depth = cv2.getTextSize(text, _FONT, scale, 1)
    return width, height, depth


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
    writer = cv2.VideoWriter(path, cv2.VideoWriter.fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        return False
    try:
        for frame in frames:
            writer.write(np.ascontiguousarray(frame[:, :, ::-1]))
    finally:
        writer.release()
    return True


def blend_trail(video: np.ndarray, background=None) -> np.ndarray:
    """All frames of a (T, H, W, 3) video in one image: each frame's ink laid over the last,
    older frames fainter, so the path reads as a trail ending at the newest position.

    ``background``: the RGB colour behind the dot; None (a scene: gradients, textures, occluders)
    takes each pixel's median over the frames, what stays where it is."""
    bg = np.median(video, axis=0).astype(np.float32) if background is None else np.asarray(background, np.float32)
    out = np.broadcast_to(bg, video.shape[1:]).copy()
    frames = len(video)
    for t, frame in enumerate(video.astype(np.float32)):
        ink = np.abs(frame - bg).max(axis=-1, keepdims=True) / 255.0
        alpha = ink * (0.15 + 0.85 * (t + 1) / frames)
        out += alpha * (frame - out)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
