"""Motion classes: a registry of parametric 3D paths, and the augmentation applied to them.

Each motion draws its own parameters from the sample's generator, so no two paths are
alike. Parameters are points (moved by the augmentation's rotation and shift) and
vectors (only rotated), so the equation printed for a sample describes the path that
was actually filmed (before sensor noise).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from trajgen.content._vec import Vec, combine, norm, orthonormal_pair

# Parameter values are floats or 3-vectors as float tuples (cheap to make and to turn); each
# motion knows which of its keys is which, so the values are typed Any.
Params = dict[str, Any]
# The parameters of m samples of one motion, stacked: name → (m,) or (m, 3) float64 array.
Columns = dict[str, np.ndarray]


def stack(params: list[Params]) -> Columns:
    """Stack the parameters of samples of one motion into columns (a missing "warp" is 0)."""
    columns = {key: np.array([p[key] for p in params], np.float64) for key in params[0] if key != "warp"}
    columns["warp"] = np.array([p.get("warp", 0.0) for p in params], np.float64)
    return columns


def _unit(u: float, v: float) -> Vec:
    """A uniformly distributed unit vector from two uniforms."""
    z = 2.0 * u - 1.0
    r = math.sqrt(max(0.0, 1.0 - z * z))
    phi = 2.0 * math.pi * v
    return (r * math.cos(phi), r * math.sin(phi), z)


def _point(u: list[float]) -> Vec:
    """A point in the unit cube centred on the origin."""
    return (u[0] - 0.5, u[1] - 0.5, u[2] - 0.5)


def _scaled(w: float, v: Vec) -> Vec:
    return (w * v[0], w * v[1], w * v[2])


def _v(x: Vec) -> str:
    return f"({x[0]:.2f}, {x[1]:.2f}, {x[2]:.2f})"


@dataclass(frozen=True)
class Motion:
    """One motion class.

    ``draw(u, frames)`` turns a list of 12 uniforms into parameters for a clip of ``frames``
    frames; ``path(columns, t)`` gives the (m, T, 3) points of m samples at once (their
    parameters stacked by ``stack``), on the pace ``warped`` sets if ``varies_speed``;
    ``view_normal(p)`` is the direction the camera looks along (so the shape shows best),
    give or take ``max_tilt`` degrees;
    ``points``/``vectors`` name the parameters the augmentation moves or turns.
    """

    name: str
    draw: Callable[[list[float], int], Params]
    path: Callable[[Columns, np.ndarray], np.ndarray]
    view_normal: Callable[[Params], Vec]
    equation: Callable[[Params], str]
    description: Callable[[Params], str]
    points: tuple[str, ...] = ()
    vectors: tuple[str, ...] = ()
    varies_speed: bool = True  # False: the timing is physics (a throw), never warped
    max_tilt: float = 25.0  # degrees the camera may turn away from view_normal


def warped(c: Columns, t: np.ndarray) -> np.ndarray:
    """The paths' own time s(t) = t + k·sin(πt)/π, (m, T): speed 1 + k at the start, 1 - k at
    the end (k = c["warp"] in [-1, 1]); the same path, but where the dot is at frame t varies."""
    return t[None, :] + (c["warp"] / math.pi)[:, None] * _sin_pi(t)[None, :]


def _sin_pi(t: np.ndarray) -> np.ndarray:
    """sin(πt) of the frame times, kept for the last times asked (the same few for a whole run)."""
    global _SIN_PI
    times, values = _SIN_PI
    if times is not t:
        _SIN_PI = (t, np.sin(math.pi * t))
    return _SIN_PI[1]


_SIN_PI: tuple = (None, None)


def _along(s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(m, T) times · (m, 3) vectors → (m, T, 3)."""
    return s[:, :, None] * v[:, None, :]


def _time(p: Params) -> str:
    k = p.get("warp", 0.0)
    return f", with t ↦ t {'+' if k >= 0 else '-'} {abs(k):.2f}·sin(πt)/π" if abs(k) >= 0.005 else ""


def _pace(p: Params) -> str:
    k = p.get("warp", 0.0)
    if abs(k) < 0.05:
        return ""
    return f" It {'slows down' if k > 0 else 'speeds up'} as it goes ({1 + k:.2f}× to {1 - k:.2f}× its mean speed)."


# linear: p(t) = p0 + t·v, constant velocity
def _linear_draw(u: list[float], frames: int) -> Params:
    direction = _unit(u[3], u[4])
    a, b = orthonormal_pair(direction)
    turn = 2 * math.pi * u[6]
    side = combine((math.cos(turn), a), (math.sin(turn), b))  # any direction across the line
    return {"p0": _point(u), "v": _scaled(0.8 + 0.8 * u[5], direction), "side": side}


LINEAR = Motion(
    name="linear",
    draw=_linear_draw,
    path=lambda c, t: _along(warped(c, t), c["v"]) + c["p0"][:, None, :],
    view_normal=lambda p: p["side"],
    equation=lambda p: f"p(t) = {_v(p['p0'])} + t·{_v(p['v'])}{_time(p)}",
    description=lambda p: (
        f"Moves in a straight line at {'a constant ' if not p.get('warp') else 'a mean '}{norm(p['v']):.2f} units/s."
        + _pace(p)
    ),
    points=("p0",),
    vectors=("v", "side"),
)


def _budget(frames: int) -> float:
    """How much turning a clip of ``frames`` frames can show with every step within the dot's
    diameter, relative to 16 frames (never below 0.6, so a class keeps its look in short clips)."""
    return min(1.0, max(0.6, (frames - 1) / 15))


# circular: p(t) = c + R(cos(ωt+φ)·a + sin(ωt+φ)·b), sweeping 180° to 297° in 16 frames
def _circular_draw(u: list[float], frames: int) -> Params:
    normal = _unit(u[3], u[4])
    a, b = orthonormal_pair(normal)
    sweep = math.pi * (1.0 + 0.65 * u[6]) * _budget(frames)
    return {
        "c": _point(u),
        "R": 0.5 + u[5],
        "omega": sweep if u[7] < 0.5 else -sweep,
        "phi": 2 * math.pi * u[8],
        "a": a,
        "b": b,
        "normal": normal,
    }


def _circle(c: Columns, t: np.ndarray, radius: str = "R") -> np.ndarray:
    angle = c["omega"][:, None] * warped(c, t) + c["phi"][:, None]
    r = c[radius][:, None]
    return _along(np.cos(angle), c["a"] * r) + _along(np.sin(angle), c["b"] * r) + c["c"][:, None, :]


def _circle_equation(p: Params, radius: float) -> str:
    return (
        f"p(t) = {_v(p['c'])} + {radius:.2f}·(cos({p['omega']:.2f}t + {p['phi']:.2f})·{_v(p['a'])}"
        f" + sin({p['omega']:.2f}t + {p['phi']:.2f})·{_v(p['b'])}){_time(p)}"
    )


CIRCULAR = Motion(
    name="circular",
    draw=_circular_draw,
    path=_circle,
    view_normal=lambda p: p["normal"],
    equation=lambda p: _circle_equation(p, p["R"]),
    description=lambda p: (
        f"Moves {'anticlockwise' if p['omega'] > 0 else 'clockwise'} round a circle of radius {p['R']:.2f}, "
        f"sweeping {abs(math.degrees(p['omega'])):.0f}° at {'' if not p.get('warp') else 'a mean of '}"
        f"{abs(p['omega']):.2f} rad/s." + _pace(p)
    ),
    points=("c",),
    vectors=("a", "b", "normal"),
    max_tilt=65.0,  # seen obliquely a circle is an ellipse, so it need not stay on a ring round the centre
)


# helical: a circle in the plane normal to axis k, climbing along k; 1 to 1.5 turns in 16 frames,
# 2 to 3.3 diameters long (more turns or a fatter coil would jump further than the dot is wide)
def _helical_draw(u: list[float], frames: int) -> Params:
    axis = _unit(u[3], u[4])
    a, b = orthonormal_pair(axis)
    turns = (1.0 + 0.5 * u[6]) * _budget(frames)
    radius = 0.3 + 0.2 * u[5]
    height = 2 * radius * (2.0 + 1.3 * u[7])
    return {
        "c": _point(u),
        "r": radius,
        "omega": 2 * math.pi * turns * (1 if u[8] < 0.5 else -1),
        "phi": 2 * math.pi * u[9],
        "h": height,
        "a": a,
        "b": b,
        "k": axis,
    }


def _helix(c: Columns, t: np.ndarray) -> np.ndarray:
    return _circle(c, t, "r") + _along(c["h"][:, None] * warped(c, t), c["k"])


HELICAL = Motion(
    name="helical",
    draw=_helical_draw,
    path=_helix,
    view_normal=lambda p: p["a"],  # side-on: a helix seen along its axis would be a circle
    equation=lambda p: f"{_circle_equation({**p, 'warp': 0.0}, p['r'])} + {p['h']:.2f}t·{_v(p['k'])}{_time(p)}",
    description=lambda p: (
        f"Spirals along a helix of radius {p['r']:.2f} and pitch {p['h'] * 2 * math.pi / abs(p['omega']):.2f}, "
        f"making {abs(p['omega']) / (2 * math.pi):.1f} turns." + _pace(p)
    ),
    points=("c",),
    vectors=("a", "b", "k"),
)


# parabolic: a throw under gravity along -z; the apex falls in the middle 60% of the clip
def _parabolic_draw(u: list[float], frames: int) -> Params:
    heading = 2 * math.pi * u[3]
    cos_h, sin_h = math.cos(heading), math.sin(heading)
    g = 3.0 + 3.0 * u[4]
    apex_time = 0.2 + 0.6 * u[5]
    speed = 0.8 + 0.6 * u[6]
    v0 = (speed * cos_h, speed * sin_h, g * apex_time)
    return {"p0": _point(u), "v0": v0, "g": g, "side": (-sin_h, cos_h, 0.0)}


def _throw(c: Columns, t: np.ndarray) -> np.ndarray:
    points = _along(np.broadcast_to(t, (len(c["g"]), len(t))), c["v0"]) + c["p0"][:, None, :]
    points[:, :, 2] -= 0.5 * c["g"][:, None] * (t * t)[None, :]
    return points


PARABOLIC = Motion(
    name="parabolic",
    draw=_parabolic_draw,
    path=_throw,
    view_normal=lambda p: p["side"],
    equation=lambda p: f"p(t) = {_v(p['p0'])} + t·{_v(p['v0'])} - ½·{p['g']:.2f}·t²·(0, 0, 1)",
    description=lambda p: (
        f"Flies on a parabola under gravity {p['g']:.2f} units/s², rising {p['v0'][2] ** 2 / (2 * p['g']):.2f} "
        f"before falling."
    ),
    points=("p0",),
    vectors=("v0", "side"),
    varies_speed=False,
)

MOTIONS: dict[str, Motion] = {m.name: m for m in (LINEAR, CIRCULAR, HELICAL, PARABOLIC)}
UNIFORMS_PER_DRAW = 12
UNIFORMS_PER_AUGMENTATION = 6


@dataclass(frozen=True)
class Augmentation:
    """Sensor noise, a turn about z and a shift: the user's augmentation."""

    noise_std: float = 0.0
    angle: float = 0.0
    shift: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def applied(self) -> bool:
        return self.noise_std > 0 or self.angle != 0 or any(self.shift)

    def describe(self) -> str:
        if not self.applied:
            return ""
        s = self.shift
        return (
            f" Augmented: turned {math.degrees(self.angle):+.1f}° about z, shifted by "
            f"({s[0]:+.2f}, {s[1]:+.2f}, {s[2]:+.2f}), noise σ={self.noise_std:.4f}."
        )


def draw_augmentation(u: list[float], augment_prob: float, noise_scale: float) -> Augmentation:
    """From 6 uniforms: with probability augment_prob, noise std in [0.01, 0.03]·noise_scale,
    a turn about z within ±15° and a shift within ±0.1 per axis."""
    if u[0] >= augment_prob:
        return Augmentation()
    return Augmentation(
        noise_std=(0.01 + 0.02 * u[1]) * noise_scale,
        angle=math.radians(15.0) * (2 * u[2] - 1),
        shift=(0.2 * u[3] - 0.1, 0.2 * u[4] - 0.1, 0.2 * u[5] - 0.1),
    )


def augment_params(motion: Motion, params: Params, aug: Augmentation) -> Params:
    """Turn the motion's vectors and points about z and shift its points."""
    if aug.angle == 0 and not any(aug.shift):
        return params
    c, s = math.cos(aug.angle), math.sin(aug.angle)
    out = dict(params)
    for key in motion.vectors + motion.points:
        x, y, z = params[key]
        out[key] = (c * x - s * y, s * x + c * y, z)
    for key in motion.points:
        out[key] = tuple(a + b for a, b in zip(out[key], aug.shift))
    return out
