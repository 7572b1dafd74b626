"""Motion classes: a registry of parametric 3D paths, and the augmentation applied to them.

Each motion draws its own parameters from the sample's generator, so no two paths are
alike. Parameters are points (moved by the augmentation's rotation and shift) and
vectors (only rotated), so the equation printed for a sample describes the path that
was actually filmed (before sensor noise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from trajgen._vec import Vec, combine, norm, orthonormal_pair

# Parameter values are floats or 3-vectors as float tuples (cheap to make and to turn).
Params = dict[str, object]


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

    ``draw(u)`` turns a list of 12 uniforms into parameters; ``path(p, t)`` gives (T, 3) points;
    ``view_normal(p)`` is the direction the camera looks along (so the shape shows best);
    ``points``/``vectors`` name the parameters the augmentation moves or turns.
    """

    name: str
    draw: Callable[[np.ndarray], Params]
    path: Callable[[Params, np.ndarray], np.ndarray]
    view_normal: Callable[[Params], np.ndarray]
    equation: Callable[[Params], str]
    description: Callable[[Params], str]
    points: tuple[str, ...] = ()
    vectors: tuple[str, ...] = ()


# linear: p(t) = p0 + t·v, constant velocity
def _linear_draw(u: list[float]) -> Params:
    direction = _unit(u[3], u[4])
    a, b = orthonormal_pair(direction)
    turn = 2 * math.pi * u[6]
    side = combine((math.cos(turn), a), (math.sin(turn), b))  # any direction across the line
    return {"p0": _point(u), "v": _scaled(0.8 + 0.8 * u[5], direction), "side": side}


LINEAR = Motion(
    name="linear",
    draw=_linear_draw,
    path=lambda p, t: np.outer(t, p["v"]) + p["p0"],
    view_normal=lambda p: p["side"],
    equation=lambda p: f"p(t) = {_v(p['p0'])} + t·{_v(p['v'])}",
    description=lambda p: f"Moves in a straight line at a constant {norm(p['v']):.2f} units/s.",
    points=("p0",),
    vectors=("v", "side"),
)


# circular: p(t) = c + R(cos(ωt+φ)·a + sin(ωt+φ)·b), at least 5/8 of a turn
def _circular_draw(u: list[float]) -> Params:
    normal = _unit(u[3], u[4])
    a, b = orthonormal_pair(normal)
    sweep = math.pi * (1.25 + 0.75 * u[6])
    return {
        "c": _point(u), "R": 0.5 + u[5], "omega": sweep if u[7] < 0.5 else -sweep,
        "phi": 2 * math.pi * u[8], "a": a, "b": b, "normal": normal,
    }


def _circle(p: Params, t: np.ndarray) -> np.ndarray:
    angle = p["omega"] * t + p["phi"]
    ab = np.array([p["a"], p["b"]]) * p["R"]
    return np.stack([np.cos(angle), np.sin(angle)], axis=1) @ ab + p["c"]


def _circle_equation(p: Params, radius: float) -> str:
    return (
        f"p(t) = {_v(p['c'])} + {radius:.2f}·(cos({p['omega']:.2f}t + {p['phi']:.2f})·{_v(p['a'])}"
        f" + sin({p['omega']:.2f}t + {p['phi']:.2f})·{_v(p['b'])})"
    )


CIRCULAR = Motion(
    name="circular",
    draw=_circular_draw,
    path=_circle,
    view_normal=lambda p: p["normal"],
    equation=lambda p: _circle_equation(p, p["R"]),
    description=lambda p: (
        f"Moves {'anticlockwise' if p['omega'] > 0 else 'clockwise'} round a circle of radius {p['R']:.2f}, "
        f"sweeping {abs(math.degrees(p['omega'])):.0f}° at {abs(p['omega']):.2f} rad/s."
    ),
    points=("c",),
    vectors=("a", "b", "normal"),
)


# helical: a circle in the plane normal to axis k, climbing along k; 1.5 to 2.5 turns
def _helical_draw(u: list[float]) -> Params:
    axis = _unit(u[3], u[4])
    a, b = orthonormal_pair(axis)
    turns = 1.5 + u[6]
    radius = 0.3 + 0.2 * u[5]
    height = 2 * radius * (1.5 + u[7])
    return {
        "c": _point(u), "r": radius, "omega": 2 * math.pi * turns * (1 if u[8] < 0.5 else -1),
        "phi": 2 * math.pi * u[9], "h": height, "a": a, "b": b, "k": axis,
    }


def _helix(p: Params, t: np.ndarray) -> np.ndarray:
    return _circle({**p, "R": p["r"]}, t) + np.outer(p["h"] * t, p["k"])


HELICAL = Motion(
    name="helical",
    draw=_helical_draw,
    path=_helix,
    view_normal=lambda p: p["a"],  # side-on: a helix seen along its axis would be a circle
    equation=lambda p: f"{_circle_equation(p, p['r'])} + {p['h']:.2f}t·{_v(p['k'])}",
    description=lambda p: (
        f"Spirals along a helix of radius {p['r']:.2f} and pitch {p['h'] * 2 * math.pi / abs(p['omega']):.2f}, "
        f"making {abs(p['omega']) / (2 * math.pi):.1f} turns."
    ),
    points=("c",),
    vectors=("a", "b", "k"),
)


# parabolic: a throw under gravity along -z; the apex falls in the middle 30% of the clip
def _parabolic_draw(u: list[float]) -> Params:
    heading = 2 * math.pi * u[3]
    cos_h, sin_h = math.cos(heading), math.sin(heading)
    g = 3.0 + 3.0 * u[4]
    apex_time = 0.35 + 0.3 * u[5]
    speed = 0.8 + 0.6 * u[6]
    v0 = (speed * cos_h, speed * sin_h, g * apex_time)
    return {"p0": _point(u), "v0": v0, "g": g, "side": (-sin_h, cos_h, 0.0)}


def _throw(p: Params, t: np.ndarray) -> np.ndarray:
    points = np.outer(t, p["v0"]) + p["p0"]
    points[:, 2] -= 0.5 * p["g"] * t * t
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
