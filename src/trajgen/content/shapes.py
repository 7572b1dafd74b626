"""The polygons a scene is drawn with (scene.py's layers for render.fill_polygons): a layer is
(polygons (n, T, V, 2) px, colours (n, 3), drawn (n,) bool or None), bottom to top."""

from __future__ import annotations

import math

import numpy as np

CORNERS = 12  # a dot is a regular polygon of 12 corners, as OpenCV draws discs this small (render.render_video)


def _regular(centres: np.ndarray, radius: np.ndarray, angle: np.ndarray, corners: int) -> np.ndarray:
    """Corners (..., corners, 2) of regular polygons around ``centres`` (..., 2), ``radius`` px from
    centre to corner, the first corner at ``angle`` radians (both broadcast against centres[..., 0])."""
    turn = angle[..., None] + 2 * math.pi * np.arange(corners) / corners
    r = np.asarray(radius)[..., None]
    return np.stack([centres[..., 0:1] + r * np.cos(turn), centres[..., 1:2] + r * np.sin(turn)], axis=-1)


def dot_layers(a: np.ndarray, points_2d: np.ndarray, brighter: np.ndarray) -> list:
    """The dot's layers from appearance rows ``a`` (scene.APPEARANCE_COLUMNS): the dot, then on
    shaded dots two smaller discs towards the light. A dot ``brighter`` (n,) than its background
    is lit towards white; a darker one is drawn in shadow (darker still) and lit back to its
    colour: the shading only ever adds contrast."""
    colour, radius, shaded = a[:, 0:3], a[:, 3], a[:, 4] == 1
    towards = np.radians(a[:, 5]) + math.pi  # the lit side faces the light
    no_turn = np.zeros(points_2d.shape[:2])
    layers = []
    for share, shift, lit_white, lit_shadow in ((1.0, 0.0, 0.0, 0.55), (0.62, 0.28, 0.3, 0.78), (0.3, 0.42, 0.6, 1.0)):
        first = share == 1.0
        if not first and not shaded.any():  # the lit discs are drawn on shaded dots only
            break
        offset = (shift * radius)[:, None, None] * np.stack([np.cos(towards), np.sin(towards)], axis=-1)[:, None, :]
        polygons = _regular(points_2d + offset, (share * radius)[:, None], no_turn, CORNERS)
        light = np.where(brighter[:, None], colour + lit_white * (255.0 - colour), lit_shadow * colour)
        layers.append(
            (polygons, np.where(shaded[:, None], light, colour) if first else light, None if first else shaded)
        )
    return layers


def distractor_layers(rows: np.ndarray, paths: np.ndarray) -> list:
    """Each distractor's layer (render.fill_polygons): a square or a triangle along its path
    (n, K, T, 2), reaching size_px from its centre, its first edge facing angle_deg."""
    layers = []
    for j in range(rows.shape[1]):
        d, frames = rows[:, j], paths.shape[2]
        corners = np.where(d[:, 0] == 1, 3, 4)
        first = np.broadcast_to(np.radians(d[:, 3:4]) + math.pi / corners[:, None], (len(d), frames))
        square = _regular(paths[:, j], d[:, 2:3], first, 4)
        triangle = _regular(paths[:, j], d[:, 2:3], first, 3)
        triangle = np.concatenate([triangle, triangle[:, :, 2:3]], axis=2)  # a fourth corner on the third
        layers.append((np.where((corners == 3)[:, None, None, None], triangle, square), d[:, 4:7], None))
    return layers


def bar_layers(occluders: np.ndarray, frames: int) -> list:
    """Each occluder's layer (render.fill_polygons): its rectangle, the same in every frame."""
    layers = []
    for j in range(occluders.shape[1]):
        cx, cy, width, length, angle = (occluders[:, j, c] for c in range(5))
        c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
        along = np.stack([c, s], -1) * (0.5 * length)[:, None]
        across = np.stack([-s, c], -1) * (0.5 * width)[:, None]
        centre = np.stack([cx, cy], -1)
        corners = [centre - along - across, centre + along - across, centre + along + across, centre - along + across]
        bar = np.stack(corners, axis=1)
        layers.append((np.broadcast_to(bar[:, None], (len(bar), frames, 4, 2)), occluders[:, j, 5:8], None))
    return layers
