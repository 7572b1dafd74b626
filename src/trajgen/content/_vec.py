"""3-vector helpers on plain float tuples: numpy's per-call overhead (~1 µs, ~10 µs for
cross and norm) dominated per-sample set-up when applied to 3 elements."""

from __future__ import annotations

import math

Vec = tuple[float, float, float]


def cross(a: Vec, b: Vec) -> Vec:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def norm(a: Vec) -> float:
    return math.sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2])


def unit(a: Vec) -> Vec:
    n = norm(a)
    return (a[0] / n, a[1] / n, a[2] / n)


def combine(*terms: tuple[float, Vec]) -> Vec:
    """The linear combination Σ wᵢ·vᵢ of (weight, vector) pairs."""
    return (
        sum(w * v[0] for w, v in terms),
        sum(w * v[1] for w, v in terms),
        sum(w * v[2] for w, v in terms),
    )


def orthonormal_pair(normal: Vec) -> tuple[Vec, Vec]:
    """Two unit vectors that with the unit ``normal`` form a right-handed basis."""
    helper = (1.0, 0.0, 0.0) if abs(normal[0]) < 0.9 else (0.0, 1.0, 0.0)
    a = unit(cross(normal, helper))
    return a, cross(normal, a)
