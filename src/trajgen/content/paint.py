"""Anti-aliased shapes painted with numpy: the renderer of scenes (--appearance varied, --distractors,
--occluders).

Every shape is a signed distance in pixels (negative inside), and a pixel's cover is
clip(0.5 - distance, 0, 1): a one-pixel soft edge. A moving shape is painted into a small
square patch around it in every frame (``Patches``), a static one over the whole frame.
Only elementwise arithmetic and sums within one patch are used, so a sample's pixels do
not depend on which other samples are painted with it (make_sample equals the shard).
Pixel centres are at whole coordinates, as in OpenCV and ``points_2d``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class Patches:
    """One square patch of ``side`` pixels per (frame, shape) to paint: where it lies in its frame
    and each pixel's offset from the shape's centre."""

    frame: np.ndarray  # (F,) int64: row of the flattened (n·T, H, W, 3) videos
    ys: np.ndarray  # (F, side) pixel rows
    xs: np.ndarray  # (F, side) pixel columns
    dx: np.ndarray  # (F, 1, side) pixel centre minus shape centre, x
    dy: np.ndarray  # (F, side, 1)

    def select(self, rows: np.ndarray) -> Patches:
        return Patches(self.frame[rows], self.ys[rows], self.xs[rows], self.dx[rows], self.dy[rows])


def patch_side(reach: float, size: int) -> int:
    """Pixels a patch needs to hold a shape reaching ``reach`` px from its centre, with its soft edge."""
    return min(size, math.ceil(2 * reach) + 3)


def patches(centres: np.ndarray, frame: np.ndarray, reach: float, size: int) -> Patches:
    """Patches around ``centres`` (F, 2) in frames ``frame`` (F,), each holding everything within
    ``reach`` + 0.5 px of its centre, kept inside the frame (a shape inside the frame stays inside
    its patch)."""
    side = patch_side(reach, size)
    offsets = np.arange(side)
    x0 = np.clip(np.floor(centres[:, 0] - reach - 0.5).astype(np.int64), 0, size - side)
    y0 = np.clip(np.floor(centres[:, 1] - reach - 0.5).astype(np.int64), 0, size - side)
    xs, ys = x0[:, None] + offsets, y0[:, None] + offsets
    dx, dy = (xs - centres[:, 0:1]).astype(np.float32), (ys - centres[:, 1:2]).astype(np.float32)
    return Patches(frame, ys, xs, dx[:, None, :], dy[:, :, None])


def disc_cover(p: Patches, radius: np.ndarray) -> np.ndarray:
    """(F, side, side) cover of discs of ``radius`` (F,) at the patches' centres."""
    distance = np.sqrt(p.dx * p.dx + p.dy * p.dy)
    return np.clip(radius.astype(np.float32)[:, None, None] + np.float32(0.5) - distance, 0.0, 1.0)


def polygon_cover(p: Patches, inradius: np.ndarray, angle: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """(F, side, side) cover of regular polygons of ``corners`` (F,) corners (3 or 4), ``inradius``
    (F,) px from centre to each edge, the first edge's outward normal at ``angle`` (F,) radians."""
    distance = None
    step = 2 * math.pi / corners
    for k in range(4):  # a triangle's fourth edge is its first again
        a = angle + k * step
        c, s = np.cos(a).astype(np.float32), np.sin(a).astype(np.float32)
        edge = p.dx * c[:, None, None] + p.dy * s[:, None, None] - inradius.astype(np.float32)[:, None, None]
        distance = edge if distance is None else np.maximum(distance, edge)
    return np.clip(np.float32(0.5) - distance, 0.0, 1.0)


def bar_cover(xs: np.ndarray, ys: np.ndarray, bars: np.ndarray) -> np.ndarray:
    """Cover of rotated rectangles at pixels (xs, ys) of any shape; ``bars`` (..., 5) holds each
    rectangle's centre x, y, width, length and angle (degrees, of its length from the x axis),
    broadcast against the pixels."""
    cx, cy, width, length, angle = (bars[..., k] for k in range(5))
    a = np.radians(angle)
    c, s = np.cos(a), np.sin(a)
    along = (xs - cx) * c + (ys - cy) * s
    across = (ys - cy) * c - (xs - cx) * s
    distance = np.maximum(np.abs(along) - 0.5 * length, np.abs(across) - 0.5 * width)
    return np.clip(0.5 - distance, 0.0, 1.0)


def paint_patches(flat: np.ndarray, p: Patches, cover: np.ndarray, colour: np.ndarray) -> None:
    """Lay ``colour`` ((F, 3), or per pixel (F, side, side, 3)) over the patches of ``flat``
    (n·T, H, W, 3) uint8, C-contiguous, each pixel by its cover."""
    frames, size = flat.shape[0], flat.shape[1]
    side = p.xs.shape[1]
    # each element: one patch-wide row of pixels (3·side bytes) starting at any pixel of a frame
    row = np.dtype((np.void, 3 * side))
    spans = np.ndarray((frames, size, size - side + 1), row, flat.data, 0, (3 * size * size, 3 * size, 3))
    at = (p.frame[:, None], p.ys, p.xs[:, :1])
    under = spans[at].view(np.uint8).reshape(len(p.frame), side, side, 3).astype(np.float32)
    if colour.ndim == 2:
        colour = colour[:, None, None, :]
    painted = np.rint(under + cover[..., None] * (colour - under)).astype(np.uint8)
    spans[at] = painted.reshape(len(p.frame), side, 3 * side).view(row)[..., 0]


def bar_map(bars: np.ndarray, size: int) -> np.ndarray:
    """(n, size, size) float32 cover of one rotated rectangle per image (``bars`` (n, 5), as bar_cover)."""
    pos = np.arange(size, dtype=np.float32)
    return bar_cover(pos[None, None, :], pos[None, :, None], bars.astype(np.float32)[:, None, None, :])


def lay(images: np.ndarray, cover: np.ndarray, colour: np.ndarray) -> None:
    """Lay ``colour`` (n, 3) over ``images`` (n, H, W, 3) uint8 by ``cover`` (n, H, W), in place."""
    sample, y, x = np.nonzero(cover)  # a bar covers a few hundred pixels of each image
    under = images[sample, y, x].astype(np.float32)
    a = cover[sample, y, x][:, None]
    images[sample, y, x] = np.rint(under + a * (colour[sample].astype(np.float32) - under))


def lay_again(flat: np.ndarray, p: Patches, frames: int, covers: list, bars: np.ndarray) -> None:
    """Lay static shapes over the patches just painted into ``flat`` (n·T, H, W, 3), frames of n
    samples of ``frames`` each, where they meet: ``covers`` holds each shape's (n, H, W) cover map,
    ``bars`` (n, K, 8) their rectangle (as bar_cover) and colour (columns 5-7). The shapes lie on
    the background already; painted over by a moving one, they are laid on it again."""
    sample = p.frame // frames
    for j, cover in enumerate(covers):
        bar = bars[sample, j]
        reach = 0.5 * np.hypot(bar[:, 2], bar[:, 3]) + 1.0
        near = np.flatnonzero(
            (p.xs[:, 0] <= bar[:, 0] + reach)
            & (p.xs[:, -1] >= bar[:, 0] - reach)
            & (p.ys[:, 0] <= bar[:, 1] + reach)
            & (p.ys[:, -1] >= bar[:, 1] - reach)
        )
        if len(near):
            rows, cols = p.ys[near, :, None], p.xs[near, None, :]
            a = cover[sample[near, None, None], rows, cols]
            paint_patches(flat, p.select(near), a, bar[near, 5:8].astype(np.float32))


def shade(p: Patches, radius: np.ndarray, colour: np.ndarray, light: np.ndarray, brighter: np.ndarray) -> np.ndarray:
    """Per-pixel colours (F, side, side, 3) of softly shaded balls: the side towards the light
    (``light``, radians in the image plane, (F,)) lit towards white where the ball is ``brighter``
    than its background, the far side darkened towards black where it is darker, so the shading
    only ever adds contrast."""
    f32 = np.float32
    r = radius.astype(f32)[:, None, None]
    nx, ny = p.dx / r, p.dy / r
    nz = np.sqrt(np.clip(f32(1.0) - nx * nx - ny * ny, 0.0, 1.0))
    lx, ly = (-0.6 * np.cos(light)).astype(f32)[:, None, None], (-0.6 * np.sin(light)).astype(f32)[:, None, None]
    lit = np.clip(nx * lx + ny * ly + nz * f32(0.8), 0.0, 1.0)  # Lambert, light (lx, ly, 0.8) of length 1
    lit2 = lit * lit
    c = colour.astype(f32)[:, None, None, :]
    highlight = c + (f32(255.0) - c) * (f32(0.6) * lit2 * lit2)[..., None]
    shadow = c * (f32(0.55) + f32(0.45) * lit)[..., None]
    return np.where(brighter[:, None, None, None], highlight, shadow)
