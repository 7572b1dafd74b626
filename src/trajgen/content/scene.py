"""Harder scenes on request: the dot's appearance, distractors and occluders (GenerationConfig's
``appearance``, ``distractors``, ``occluders`` and ``max_hidden``).

Everything here is drawn from the sample's own stream (streams.py), from stream numbers far
past those of its motion, and never from its class: relabelling the classes moves no colour,
no distractor and no occluder's draw. Each knob has its own stretch of the stream, so turning
one on leaves the others' draws as they were.

- appearance "varied": a background (plain, a linear gradient, or low-frequency texture
  between two colours close to each other), a dot colour whose luma differs from both by at
  least MIN_CONTRAST, a radius within ±30% of the config's, and for half the samples a soft
  shading that only adds contrast.
- distractors: squares and triangles (never a disc: the labelled dot is always the dot), each
  moving along a path of a class drawn uniformly, framed inside the frame as the dot's path is.
- occluders: static bars over everything. The dot's visible share in each frame is the share
  of 64 points spread evenly over its disc that no bar covers; occluders that hide it
  (visible < 0.5) in more than ``max_hidden`` of the frames are drawn again, and those
  redraws are counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from trajgen.content import render, shapes, streams
from trajgen.content.camera import UNIFORMS_PER_CAMERA, frame
from trajgen.content.config import VARIED_RADIUS, GenerationConfig, max_coverage
from trajgen.content.motions import MOTIONS, UNIFORMS_PER_DRAW, stack
from trajgen.errors import TrajgenError

MIN_CONTRAST = 64.0  # least luma difference (0-255) between the dot and any point of its background
MAX_REDRAWS = 100
BACKGROUND_KINDS = ("plain", "gradient", "texture")
SHAPES = ("square", "triangle")
APPEARANCE_COLUMNS = (
    *("dot_r", "dot_g", "dot_b", "radius_px", "shaded", "light_deg", "background_kind"),
    *("bg0_r", "bg0_g", "bg0_b", "bg1_r", "bg1_g", "bg1_b", "direction_deg"),
    *(f"texture{k}_{p}" for k in range(3) for p in ("weight", "cycles", "phase_deg")),
)
_TEXTURE_TERMS = 3
SCENE_ARRAYS = ("appearance", "distractors", "distractor_points_2d", "occluders", "visible")  # Scene's, per sample
DISTRACTOR_COLUMNS = ("shape", "class", "size_px", "angle_deg", "r", "g", "b")
OCCLUDER_COLUMNS = ("cx", "cy", "width", "length", "angle_deg", "r", "g", "b")

_BASE = 1 << 40  # the scene's stream numbers start here, past any motion draw's
_TRIES = 8  # colours tried for enough contrast before black or white is taken
_COLOUR_U = 3 * _TRIES
_APPEARANCE_U = 20 + _COLOUR_U
_DISTRACTOR_U = 4 + _COLOUR_U + UNIFORMS_PER_DRAW + UNIFORMS_PER_CAMERA
_OCCLUDER_U = 5 + _COLOUR_U
_DISTRACTORS_AT = _BASE + (1 << 24)
_OCCLUDERS_AT = _BASE + (1 << 34)
_CHUNK_PIXELS = 1 << 23  # pixels of the videos drawn at a time (make_scene): a few MB of arrays per step
_GOLDEN_TURN = math.pi * (3 - math.sqrt(5))
_DISC_POINTS = np.sqrt((np.arange(64) + 0.5) / 64)[:, None] * np.stack(  # a sunflower: 64 points spread evenly
    [np.cos(np.arange(64) * _GOLDEN_TURN), np.sin(np.arange(64) * _GOLDEN_TURN)], axis=-1
)  # over the unit disc, where the dot's visible share is measured


def luma(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of RGB colours (..., 3), 0-255."""
    rgb = np.asarray(rgb, np.float64)
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


@dataclass
class Scene:
    """The scene arrays of n samples; a knob that is off leaves its arrays None."""

    appearance: np.ndarray | None  # float32 (n, len(APPEARANCE_COLUMNS))
    distractors: np.ndarray | None  # float32 (n, K, len(DISTRACTOR_COLUMNS))
    distractor_points_2d: np.ndarray | None  # float32 (n, K, T, 2)
    occluders: np.ndarray | None  # float32 (n, K, len(OCCLUDER_COLUMNS))
    visible: np.ndarray | None  # float32 (n, T): the dot's visible share per frame
    occlusion_redraws: np.ndarray  # int64 (n,)
    descriptions: list[str]


def _colour(u: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """(m, 3) whole-number colours whose luma is at least MIN_CONTRAST below ``lo`` or above ``hi``
    (m,): the first of _TRIES drawn from ``u`` (m, 3·_TRIES) that is, else black or white,
    whichever is further (the background's lumas span less than 255 - 2·MIN_CONTRAST)."""
    tries = np.floor(256.0 * u.reshape(len(u), _TRIES, 3))
    y = luma(tries)
    ok = (y <= lo[:, None] - MIN_CONTRAST) | (y >= hi[:, None] + MIN_CONTRAST)
    first = np.argmax(ok, axis=1)
    chosen = tries[np.arange(len(u)), first]
    darker = np.reshape(lo >= 255.0 - hi, (-1, 1))  # the background is light: black stands out more
    fallback = np.where(darker, 0.0, 255.0) * np.ones(3)
    return np.where(np.reshape(ok.any(axis=1), (-1, 1)), chosen, fallback)


def _appearance(config: GenerationConfig, keys: np.ndarray) -> np.ndarray:
    """(n, len(APPEARANCE_COLUMNS)) float64: the drawn look of each sample."""
    n = len(keys)
    if config.appearance == "plain":
        plain = [*config.color, config.radius, 0, 0, 0, *config.background, *config.background, 0]
        return np.array([plain + [0.0] * 3 * _TEXTURE_TERMS] * n, np.float64).reshape(n, len(APPEARANCE_COLUMNS))
    u = streams.uniforms(keys, _BASE, _APPEARANCE_U)
    bg0 = np.floor(256.0 * u[:, 0:3])
    bg1 = np.clip(bg0 + np.floor(121.0 * u[:, 3:6]) - 60.0, 0.0, 255.0)  # close to bg0: a gentle gradient
    kind = np.floor(3.0 * u[:, 6])
    lo, hi = np.minimum(luma(bg0), luma(bg1)), np.maximum(luma(bg0), luma(bg1))
    dot = _colour(u[:, 20:], lo, hi)
    radius = config.radius * (1.0 + VARIED_RADIUS * (2.0 * u[:, 7] - 1.0))
    shaded = (u[:, 8] < 0.5).astype(np.float64)
    light = 360.0 * u[:, 9]
    direction = 45.0 * np.floor(8.0 * u[:, 10])
    texture = u[:, 11:20].reshape(n, _TEXTURE_TERMS, 3) * np.array([0.8, 2.0, 360.0]) + np.array([0.2, 0.5, 0.0])
    columns = [dot, radius[:, None], shaded[:, None], light[:, None], kind[:, None], bg0, bg1, direction[:, None]]
    return np.concatenate(columns + [texture.reshape(n, 3 * _TEXTURE_TERMS)], axis=1)


def backgrounds(a: np.ndarray, size: int) -> np.ndarray:
    """(n, H, W, 3) uint8 backgrounds from appearance rows ``a`` (n, len(APPEARANCE_COLUMNS)).

    A gradient or texture varies along one of eight directions (multiples of 45°) only: a
    texture is 1D low-frequency noise (three cosines) swept across the frame. So each row is
    the one above moved by a whole pixel or not at all, which deflate finds: a 2D texture
    costs 3-5 times as much to compress at the default level. The colour is computed once
    per step along the direction (a profile), and the frame gathered from it."""
    n = len(a)
    step = np.radians(a[:, 13])
    dx, dy = np.rint(np.cos(step)).astype(np.int64), np.rint(np.sin(step)).astype(np.int64)
    along = np.arange(-2 * (size - 1), 2 * (size - 1) + 1)  # dx·x + dy·y over the frame
    reach = np.maximum(1, np.abs(dx) + np.abs(dy))[:, None] * size
    weight = np.zeros((n, len(along)))
    kind = a[:, 6]
    g = kind == 1
    centre = 0.5 * (dx + dy)[:, None] * (size - 1)  # along the direction, the frame's centre
    weight[g] = 0.5 + (along - centre[g]) / reach[g]  # 0 at one edge (a corner), 1 at the opposite one
    t = np.flatnonzero(kind == 2)
    if len(t):
        terms = a[t, 14:].reshape(len(t), _TEXTURE_TERMS, 3)
        share = 0.5 * terms[:, :, 0] / terms[:, :, 0].sum(axis=1)[:, None]
        weight[t] = 0.5
        for k in range(_TEXTURE_TERMS):
            cycles, phase = terms[:, k, 1:2], np.radians(terms[:, k, 2:3])
            weight[t] += share[:, k : k + 1] * np.cos(2 * np.pi * cycles * along / reach[t] + phase)
    bg0, bg1 = a[:, None, 7:10], a[:, None, 10:13]
    profile = np.rint(bg0 + np.clip(weight, 0.0, 1.0)[..., None] * (bg1 - bg0)).astype(np.uint8)  # (n, L, 3)
    out = np.empty((n, size, size, 3), np.uint8)
    for x_step, y_step in set(zip(dx.tolist(), dy.tolist())):
        mine = np.flatnonzero((dx == x_step) & (dy == y_step))
        centre = np.ascontiguousarray(profile[mine])[:, 2 * (size - 1) :]  # along = 0 at pixel (0, 0)
        # pixel (y, x) is the profile at x_step·x + y_step·y: a view with those strides
        strides = (3 * len(along), 3 * y_step, 3 * x_step, 1)
        out[mine] = np.lib.stride_tricks.as_strided(centre, (len(mine), size, size, 3), strides, writeable=False)
    return out


def _distractors(config: GenerationConfig, keys: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, K, len(DISTRACTOR_COLUMNS)) and their paths (n, K, T, 2): shapes moving along framed paths."""
    n, k, frames = len(keys), config.distractors, config.frames
    rows = np.zeros((n, k, len(DISTRACTOR_COLUMNS)))
    paths = np.zeros((n, k, frames, 2))
    # each distractor fills 25-65% of the frame (less where a large dot leaves less room), its shape
    # within the dot's radius of the edge
    coverage = min(0.45, 0.9 * max_coverage(config.size, config.radius))
    framing = config.replace(
        coverage=coverage, coverage_jitter=min(0.2, 0.45 * coverage), appearance="plain", distractors=0, occluders=0
    )
    t = np.linspace(0.0, 1.0, frames)
    lo, hi = np.minimum(luma(a[:, 7:10]), luma(a[:, 10:13])), np.maximum(luma(a[:, 7:10]), luma(a[:, 10:13]))
    for j in range(k):
        pending = np.arange(n)
        for draw in range(MAX_REDRAWS):
            u = streams.uniforms(
                keys[pending], _DISTRACTORS_AT + (j * MAX_REDRAWS + draw) * _DISTRACTOR_U, _DISTRACTOR_U
            )
            label = np.floor(len(config.classes) * u[:, 0]).astype(np.int64)
            framed = np.zeros(len(pending), bool)
            for c in np.unique(label).tolist():
                mine = np.flatnonzero(label == c)
                motion = MOTIONS[config.classes[c]]
                draw_u = u[mine, 4 + _COLOUR_U : 4 + _COLOUR_U + UNIFORMS_PER_DRAW].tolist()
                params = [motion.draw(row, frames) for row in draw_u]
                normal = np.array([motion.view_normal(p) for p in params], np.float64).reshape(-1, 3)
                points = motion.path(stack(params), t)
                camera_u = u[mine, -UNIFORMS_PER_CAMERA:]
                points_2d, _, ok = frame(points, normal, camera_u, framing, np.full(len(mine), motion.max_tilt))
                framed[mine] = ok
                paths[pending[mine[ok]], j] = points_2d[ok]
            shape = np.floor(2.0 * u[:, 1])
            size_px = config.radius * (0.7 + 0.3 * u[:, 2])
            angle = 360.0 * u[:, 3]
            colour = _colour(u[:, 4 : 4 + _COLOUR_U], lo[pending], hi[pending])
            if config.appearance == "plain":
                colour = np.broadcast_to(np.array(config.color, np.float64), colour.shape)
            drawn = np.concatenate([np.stack([shape, label, size_px, angle], axis=1), colour], axis=1)
            rows[pending[framed], j] = drawn[framed]
            pending = pending[~framed]
            if not len(pending):
                break
        else:  # pragma: no cover - only reachable with a broken motion definition
            raise TrajgenError(f"a distractor of sample {len(pending)} could not be framed in {MAX_REDRAWS} draws")
    return rows, paths


def _occluder_draws(config: GenerationConfig, keys: np.ndarray, draw: int, a: np.ndarray) -> np.ndarray:
    """Draw number ``draw`` of every sample's occluders: (m, K, len(OCCLUDER_COLUMNS))."""
    m, k, size = len(keys), config.occluders, config.size
    u = streams.uniforms(keys, _OCCLUDERS_AT + draw * 4 * _OCCLUDER_U, k * _OCCLUDER_U).reshape(m, k, _OCCLUDER_U)
    lo, hi = np.minimum(luma(a[:, 7:10]), luma(a[:, 10:13])), np.maximum(luma(a[:, 7:10]), luma(a[:, 10:13]))
    colour = _colour(u[:, :, 5:].reshape(m * k, _COLOUR_U), np.repeat(lo, k), np.repeat(hi, k)).reshape(m, k, 3)
    geometry = np.stack(
        [
            (size - 1) * u[..., 0],
            (size - 1) * u[..., 1],
            size * (0.08 + 0.10 * u[..., 2]),  # width
            size * (0.25 + 0.35 * u[..., 3]),  # length
            180.0 * u[..., 4],
        ],
        axis=-1,
    )
    return np.concatenate([geometry, colour], axis=-1)


def _visible(centres: np.ndarray, radius: np.ndarray, bars: np.ndarray) -> np.ndarray:
    """(F,) share of each frame's dot, a disc of ``radius`` (F,) at ``centres`` (F, 2), that no bar of
    ``bars`` (F, K, 5: centre x, y, width, length, angle in degrees) covers: the share of _DISC_POINTS
    spread evenly over the disc that lie outside every bar. Only frames with a bar near the dot are
    measured."""
    gap = np.hypot(centres[:, 0:1] - bars[..., 0], centres[:, 1:2] - bars[..., 1])
    near = np.flatnonzero((gap <= 0.5 * np.hypot(bars[..., 2], bars[..., 3]) + radius[:, None]).any(axis=1))
    seen = np.ones(len(centres))
    if len(near):
        points = centres[near, None, :] + radius[near, None, None] * _DISC_POINTS  # (m, P, 2)
        hidden = np.zeros(points.shape[:2], bool)
        for k in range(bars.shape[1]):
            cx, cy, width, length, angle = (bars[near, k, c][:, None] for c in range(5))
            c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
            x, y = points[..., 0] - cx, points[..., 1] - cy
            hidden |= (np.abs(x * c + y * s) <= 0.5 * length) & (np.abs(y * c - x * s) <= 0.5 * width)
        seen[near] = 1.0 - hidden.mean(axis=1)
    return seen


def make_scene(config: GenerationConfig, keys: np.ndarray, points_2d: np.ndarray, videos: np.ndarray) -> Scene:
    """Draw the scenes of the samples with stream ``keys`` (n,) whose dot follows ``points_2d``
    (n, T, 2) into ``videos`` (n, T, H, W, 3).

    A few samples at a time: each sample's scene is its own, and the drawing's own arrays (the
    polygons, the points where visibility is measured) stay a few MB however large the shard."""
    step = max(1, _CHUNK_PIXELS // (config.frames * config.size * config.size))
    if len(keys) <= step:
        return _scene(config, keys, points_2d, videos)
    parts = [
        _scene(config, keys[i : i + step], points_2d[i : i + step], videos[i : i + step])
        for i in range(0, len(keys), step)
    ]

    def joined(key: str):
        arrays = [getattr(p, key) for p in parts]
        return None if arrays[0] is None else np.concatenate(arrays)

    return Scene(
        **{key: joined(key) for key in SCENE_ARRAYS},
        occlusion_redraws=joined("occlusion_redraws"),
        descriptions=[text for p in parts for text in p.descriptions],
    )


def _occluders(config: GenerationConfig, keys: np.ndarray, a: np.ndarray, centres: np.ndarray):
    """Each sample's occluders (n, K, columns), the dot's visible share per frame (n, T) and the
    occluder draws thrown away (n,): draws that hide the dot (visible < 0.5) in more than
    --max-hidden of its frames are drawn again. ``centres`` (n·T, 2): the dot in each frame."""
    n, frames = len(keys), config.frames
    occluders = np.zeros((n, config.occluders, len(OCCLUDER_COLUMNS)))
    visible = np.ones((n, frames))
    redraws = np.zeros(n, np.int64)
    pending = np.arange(n)
    allowed = math.floor(config.max_hidden * frames + 1e-9)
    radius = np.repeat(a[:, 3], frames)
    for draw in range(MAX_REDRAWS):
        drawn = _occluder_draws(config, keys[pending], draw, a[pending])
        at = (pending[:, None] * frames + np.arange(frames)).reshape(-1)
        seen = _visible(centres[at], radius[at], np.repeat(drawn[:, :, :5], frames, axis=0))
        seen = seen.reshape(len(pending), frames)
        ok = (seen < 0.5).sum(axis=1) <= allowed
        occluders[pending[ok]], visible[pending[ok]] = drawn[ok], seen[ok]
        redraws[pending[ok]] = draw
        pending = pending[~ok]
        if not len(pending):
            return occluders, visible, redraws
    raise TrajgenError(
        f"the occluders of {len(pending)} sample(s) hid the dot in more than --max-hidden "
        f"{config.max_hidden:g} of the frames in {MAX_REDRAWS} draws; allow more with a larger "
        f"--max-hidden or use fewer --occluders"
    )


def _scene(config: GenerationConfig, keys: np.ndarray, points_2d: np.ndarray, videos: np.ndarray) -> Scene:
    n, frames, size = len(keys), config.frames, config.size
    a = _appearance(config, keys)
    rows = paths = occluders = visible = None
    redraws = np.zeros(n, np.int64)
    if config.distractors:
        rows, paths = _distractors(config, keys, a)
    if config.occluders:
        occluders, visible, redraws = _occluders(config, keys, a, points_2d.reshape(-1, 2))
    videos[...] = backgrounds(a, size)[:, None]
    layers = []  # bottom to top: distractors, the dot, occluders
    if rows is not None and paths is not None:
        layers += shapes.distractor_layers(rows, paths)
    layers += shapes.dot_layers(a, points_2d, brighter=luma(a[:, 0:3]) >= luma(a[:, 7:10]))
    if occluders is not None:
        layers += shapes.bar_layers(occluders, frames)
    render.fill_polygons(videos, layers)
    varied = config.appearance == "varied"
    return Scene(
        appearance=a.astype(np.float32) if varied else None,
        distractors=None if rows is None else rows.astype(np.float32),
        distractor_points_2d=None if paths is None else paths.astype(np.float32),
        occluders=None if occluders is None else occluders.astype(np.float32),
        visible=None if visible is None else visible.astype(np.float32),
        occlusion_redraws=redraws,
        descriptions=[describe(config, a[i], rows, occluders, i) for i in range(n)],
    )


def _rgb(c) -> str:
    return f"({int(c[0])}, {int(c[1])}, {int(c[2])})"


def describe(config: GenerationConfig, a: np.ndarray, distractors, occluders, i: int) -> str:
    """The scene of sample ``i`` in words, appended to its description."""
    words = []
    if config.appearance == "varied":
        look = f"a {'shaded ' if a[4] else ''}{2 * a[3]:.1f}-px-wide dot of colour {_rgb(a[0:3])} on "
        kind = BACKGROUND_KINDS[int(a[6])]
        if kind == "plain":
            look += f"plain {_rgb(a[7:10])}"
        elif kind == "gradient":
            look += f"a gradient from {_rgb(a[7:10])} to {_rgb(a[10:13])} towards {a[13]:.0f}°"
        else:
            look += f"a texture between {_rgb(a[7:10])} and {_rgb(a[10:13])} along {a[13]:.0f}°"
        words.append(look)
    if distractors is not None:
        each = [f"a {SHAPES[int(d[0])]} on a {config.classes[int(d[1])]} path" for d in distractors[i]]
        words.append(f"{len(each)} distractor{'s' if len(each) != 1 else ''} ({', '.join(each)})")
    if occluders is not None:
        each = [
            f"a {o[2]:.0f}×{o[3]:.0f} px bar at ({o[0]:.1f}, {o[1]:.1f}), {o[4]:.0f}° from level" for o in occluders[i]
        ]
        words.append(f"{len(each)} occluder{'s' if len(each) != 1 else ''} ({', '.join(each)})")
    return " Scene: " + "; ".join(words) + "."
