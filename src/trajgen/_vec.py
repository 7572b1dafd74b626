"""Small 3-vector helpers: numpy's cross and norm cost ~10 µs per call on 3 elements,
which dominated per-sample set-up; these take ~1 µs."""

from __future__ import annotations

import math

import numpy as np


def cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a0, a1, a2 = a.tolist()
    b0, b1, b2 = b.tolist()
    return np.array([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0])


def unit(a: np.ndarray) -> np.ndarray:
    x, y, z = a.tolist()
    return a / math.sqrt(x * x + y * y + z * z)


def norm(a: np.ndarray) -> float:
    x, y, z = a.tolist()
    return math.sqrt(x * x + y * y + z * z)


def orthonormal_pair(normal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors that with the unit ``normal`` form a right-handed basis."""
    helper = np.array([1.0, 0.0, 0.0]) if abs(normal[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    a = unit(cross(normal, helper))
    return a, cross(normal, a)
