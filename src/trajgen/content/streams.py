"""Per-sample random streams, keyed by (seed, index) and computed for many samples at once.

Number j of sample i's stream is a pure function of (seed, i, j): SplitMix64's output
function applied to a counter. The sample's key is SplitMix64 of (seed, i), and its
stream is the SplitMix64 sequence started from that key. Nothing is stateful, so a
shard's samples are drawn as one numpy array, and sample i gets the same numbers
whichever batch, shard, worker or process asks for it.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

_GAMMA = np.uint64(0x9E3779B97F4A7C15)  # SplitMix64's increment (the golden ratio in 64 bits)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_SEED_SALT = np.uint64(0x5452414A47454E31)  # "TRAJGEN1": streams of seed s and index s differ
_UNIT = 2.0**-53
_MASK = (1 << 64) - 1


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's output function: a bijection of uint64 that scrambles every bit."""
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def sample_keys(seed: int, indices) -> np.ndarray:
    """One uint64 key per sample index: distinct indices of one seed never share a key."""
    return _mix(_seed_base(seed) + np.asarray(indices, np.uint64) * _GAMMA)


def sample_key(seed: int, index: int) -> np.ndarray:
    """``sample_keys(seed, [index])``, in Python's integers (the same arithmetic modulo 2**64)."""
    x = (int(_seed_base(seed)[0]) + index * int(_GAMMA)) & _MASK
    x = ((x ^ (x >> 30)) * int(_M1)) & _MASK
    x = ((x ^ (x >> 27)) * int(_M2)) & _MASK
    return np.array([x ^ (x >> 31)], np.uint64)


@lru_cache(maxsize=64)
def _seed_base(seed: int) -> np.ndarray:
    base = _mix(np.array([seed], np.uint64) ^ _SEED_SALT)
    base.flags.writeable = False
    return base


@lru_cache(maxsize=256)
def _counters(start: int, count: int) -> np.ndarray:
    counters = (np.arange(start, start + count, dtype=np.uint64) + np.uint64(1)) * _GAMMA
    counters.flags.writeable = False
    return counters


def uniforms(keys: np.ndarray, start: int, count: int) -> np.ndarray:
    """Numbers start … start+count-1 of each key's stream, as float64 in [0, 1): (len(keys), count)."""
    bits = _mix(keys[:, None] + _counters(start, count)[None, :])
    return (bits >> np.uint64(11)).astype(np.float64) * _UNIT


def normals(keys: np.ndarray, start: int, count: int) -> np.ndarray:
    """Standard normal numbers from stream numbers start … start+2·count-1 (Box–Muller): (len(keys), count)."""
    return normals_of(uniforms(keys, start, 2 * count))


def normals_of(u: np.ndarray) -> np.ndarray:
    """Box–Muller: standard normals from uniforms (n, 2·count), the first half for the radius: (n, count)."""
    count = u.shape[1] // 2
    radius = np.sqrt(-2.0 * np.log(1.0 - u[:, :count]))  # 1 - u is in (0, 1]: log is finite
    return radius * np.cos(2.0 * np.pi * u[:, count:])
