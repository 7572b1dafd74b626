"""Sample quality measures: pure numpy on the arrays a run stores (points_2d, labels).

Each measure answers one question about a dataset's diversity:
- near_duplicate_rate: does a sample's path, rounded to whole pixels, repeat another's?
- step_within_diameter: does the dot move at most its own diameter from frame to frame?
- coverage / coverage_within_tol: does the path fill the share of the frame asked for?
- single_frame_probe: can the dot's position in ONE frame tell the class? (it should not)
- motion_probe: can the motion (speeds, accelerations, turning) tell the class? (it should)
- appearance_probe: can the colours and the background tell the class? (they should not)

``QualityAccumulator`` gathers shards one at a time and computes all of them at the end.
"""

from __future__ import annotations

import numpy as np

TRAIN_SHARE = 0.8
GRID = 16


def _as_points(points_2d) -> np.ndarray:
    p = np.asarray(points_2d, dtype=np.float64)
    if p.ndim != 3 or p.shape[2] != 2:
        raise ValueError(f"points_2d must have shape (n, T, 2), got {p.shape}")
    return p


def _per_class(values: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Mean of boolean ``values`` (n,) or (n, k) per class; NaN for a class with no samples."""
    labels = np.asarray(labels, dtype=np.int64)
    flat = values.reshape(len(values), -1).astype(np.float64)
    hits = np.bincount(labels, weights=flat.sum(axis=1), minlength=num_classes)[:num_classes]
    total = np.bincount(labels, minlength=num_classes)[:num_classes] * flat.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, hits / np.maximum(total, 1), np.nan)


def _split(n: int, train_share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    cut = int(round(train_share * n))
    return order[:cut], order[cut:]


# ---------------------------------------------------------------- diversity


def near_duplicate_rate(points_2d, labels, num_classes: int, pixels: float = 1.0) -> np.ndarray:
    """Per class, the share of samples whose whole path, rounded to ``pixels`` px, equals
    another sample's (of any class)."""
    p = _as_points(points_2d)
    n = len(p)
    if n == 0:
        return np.full(num_classes, np.nan)
    cells = np.floor(p / pixels + 0.5).astype(np.int64).reshape(n, -1)
    rows = np.ascontiguousarray(cells).view(np.dtype((np.void, cells.shape[1] * cells.itemsize))).ravel()
    _, inverse, counts = np.unique(rows, return_inverse=True, return_counts=True)
    shared = counts[inverse.ravel()] > 1
    return _per_class(shared, labels, num_classes)


def step_lengths(points_2d) -> np.ndarray:
    """(n, T-1) frame-to-frame distances in pixels."""
    p = _as_points(points_2d)
    return np.hypot(*np.moveaxis(np.diff(p, axis=1), -1, 0))


def step_within_diameter(points_2d, labels, num_classes: int, diameter: float) -> np.ndarray:
    """Per class, the share of frame-to-frame steps no longer than ``diameter`` px."""
    return _per_class(step_lengths(points_2d) <= diameter, labels, num_classes)


def coverage(points_2d, size) -> np.ndarray:
    """(n,) max(bbox width / W, bbox height / H); ``size`` is W = H or a (W, H) pair."""
    p = _as_points(points_2d)
    w, h = (size, size) if np.ndim(size) == 0 else size
    span = p.max(axis=1) - p.min(axis=1)
    return np.maximum(span[:, 0] / w, span[:, 1] / h)


def coverage_within_tol(points_2d, labels, num_classes: int, size, target: float, tol: float = 0.1) -> np.ndarray:
    """Per class, the share of samples whose coverage is within ``tol`` of ``target``."""
    return _per_class(np.abs(coverage(points_2d, size) - target) <= tol + 1e-9, labels, num_classes)


# ---------------------------------------------------------------- probes


def single_frame_probe(
    points_2d,
    labels,
    num_classes: int,
    size,
    frame: int | None = None,
    grid: int = GRID,
    train_share: float = TRAIN_SHARE,
    seed: int = 0,
):
    """Accuracy of a classifier that sees only which ``grid``×``grid`` cell the dot is in at
    frame ``frame``: per-class cell histograms on a random ``train_share`` of the samples,
    each held-out sample given the class with the most training samples in its cell.

    ``frame`` None: the accuracy at every frame, shape (T,); the worst (largest) is the
    figure that counts. Chance is 1/num_classes on a balanced set."""
    p = _as_points(points_2d)
    labels = np.asarray(labels, dtype=np.int64)
    n, frames = p.shape[:2]
    w, h = (size, size) if np.ndim(size) == 0 else size
    col = np.clip(np.floor(p[..., 0] / w * grid), 0, grid - 1).astype(np.int64)
    row = np.clip(np.floor(p[..., 1] / h * grid), 0, grid - 1).astype(np.int64)
    cell = row * grid + col  # (n, T)
    train, test = _split(n, train_share, seed)
    cells = grid * grid
    # counts[t, c, k]: training samples of class c with the dot in cell k at frame t
    key = (np.arange(frames)[None, :] * num_classes + labels[train, None]) * cells + cell[train]
    counts = np.bincount(key.ravel(), minlength=frames * num_classes * cells).reshape(frames, num_classes, cells)
    best = counts.argmax(axis=1)  # (T, cells): the predicted class per frame and cell
    predicted = best[np.arange(frames)[None, :], cell[test]]  # (n_test, T)
    accuracy = (predicted == labels[test, None]).mean(axis=0) if len(test) else np.full(frames, np.nan)
    return accuracy if frame is None else float(accuracy[frame])


def motion_features(points_2d) -> np.ndarray:
    """(n, k) features of how the dot moves, independent of where the path is, how large it is
    and how it is turned: speeds, tangential and normal accelerations (in the velocity's own
    frame, normal sign-folded so clockwise and anticlockwise look alike) and turning angles,
    all scaled by the sample's mean speed; plus the path length over its chord."""
    p = _as_points(points_2d)
    v = np.diff(p, axis=1)  # (n, T-1, 2)
    speed = np.hypot(v[..., 0], v[..., 1])
    scale = speed.mean(axis=1, keepdims=True) + 1e-9
    a = np.diff(v, axis=1)  # (n, T-2, 2)
    heading = v[:, :-1] / (speed[:, :-1, None] + 1e-9)
    tangential = (a * heading).sum(-1)
    normal = heading[..., 0] * a[..., 1] - heading[..., 1] * a[..., 0]
    turn = np.arctan2(v[:, :-1, 0] * v[:, 1:, 1] - v[:, :-1, 1] * v[:, 1:, 0], (v[:, :-1] * v[:, 1:]).sum(-1))
    sense = np.where(turn.sum(axis=1, keepdims=True) < 0, -1.0, 1.0)  # fold mirror images together
    chord = np.hypot(*(p[:, -1] - p[:, 0]).T)[:, None]
    length = speed.sum(axis=1, keepdims=True)
    return np.concatenate(
        [
            speed / scale,
            tangential / scale,
            normal * sense / scale,
            turn * sense,
            np.abs(turn),
            np.abs(turn).sum(axis=1, keepdims=True),
            np.abs(turn.sum(axis=1, keepdims=True)),
            chord / (length + 1e-9),
        ],
        axis=1,
    )


def motion_probe(points_2d, labels, num_classes: int, seed: int = 0, train_share: float = TRAIN_SHARE) -> float:
    """Accuracy of ``linear_probe`` on ``motion_features``."""
    return linear_probe(motion_features(points_2d), labels, num_classes, seed, train_share)


def appearance_features(videos, appearance=None) -> np.ndarray:
    """(n, k) colour and background statistics of videos (n, T, H, W, 3), blind to where anything
    moves: the mean and spread of each channel over a few frames, the colours of the first
    frame's four corners, and (when given) the drawn appearance rows themselves."""
    v = np.asarray(videos)
    frames = v.shape[1]
    some = v[:, :: max(1, frames // 4), ::2, ::2].reshape(len(v), -1, 3).astype(np.float32)
    corners = v[:, 0][:, [0, 0, -1, -1], [0, -1, 0, -1]].reshape(len(v), 12).astype(np.float64)
    parts = [some.mean(axis=1, dtype=np.float64), some.std(axis=1, dtype=np.float64), corners]
    if appearance is not None:
        parts.append(np.asarray(appearance, np.float64))
    return np.concatenate(parts, axis=1)


def appearance_probe(features, labels, num_classes: int, seed: int = 0, train_share: float = TRAIN_SHARE) -> float:
    """Accuracy of ``linear_probe`` on ``appearance_features``: near chance when the look of a
    sample is drawn apart from its class."""
    return linear_probe(features, labels, num_classes, seed, train_share)


def linear_probe(x, labels, num_classes: int, seed: int = 0, train_share: float = TRAIN_SHARE) -> float:
    """Accuracy of a linear discriminant on features ``x`` (n, k) (standardized on the training
    share; class means and their pooled covariance, closed form), trained on a random
    ``train_share`` and scored on the rest. Deterministic for a given seed."""
    labels = np.asarray(labels, dtype=np.int64)
    x = np.asarray(x, np.float64)
    train, test = _split(len(x), train_share, seed)
    if len(test) == 0 or len(train) == 0:
        return float("nan")
    mean, std = x[train].mean(axis=0), x[train].std(axis=0) + 1e-9
    x = np.clip((x - mean) / std, -10, 10)
    xt, yt = x[train], labels[train]
    counts = np.bincount(yt, minlength=num_classes)[:num_classes]
    means = np.zeros((num_classes, x.shape[1]))
    np.add.at(means, yt, xt)
    means /= np.maximum(counts, 1)[:, None]
    centred = xt - means[yt]
    covariance = centred.T @ centred / len(xt) + 1e-3 * np.eye(x.shape[1])
    weights = np.linalg.solve(covariance, means.T)  # (k, classes)
    bias = -0.5 * (means * weights.T).sum(axis=1) + np.log(np.maximum(counts, 1) / len(xt))
    scores = x[test] @ weights + bias
    scores[:, counts == 0] = -np.inf  # a class never seen in training is never predicted
    return float(np.mean(scores.argmax(axis=1) == labels[test]))


# ---------------------------------------------------------------- streaming


class QualityAccumulator:
    """Gathers (points_2d, labels) shard by shard and computes every measure at the end.

    Keeps only the projected points (float32, 8·T bytes per sample: 12.8 MB for 100,000
    16-frame samples) and the labels."""

    def __init__(self, num_classes: int, size, diameter: float, target_coverage: float, tol: float = 0.1):
        self.num_classes = num_classes
        self.size = size
        self.diameter = diameter
        self.target_coverage = target_coverage
        self.tol = tol
        self._points: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []

    def add(self, points_2d, labels) -> None:
        self._points.append(np.asarray(points_2d, dtype=np.float32))
        self._labels.append(np.asarray(labels, dtype=np.int64))

    @property
    def count(self) -> int:
        return sum(len(x) for x in self._labels)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if not self._points:
            return np.zeros((0, 0, 2), np.float32), np.zeros(0, np.int64)
        return np.concatenate(self._points), np.concatenate(self._labels)

    def result(self, seed: int = 0) -> dict:
        """Every measure: per-class lists (index = class id) and the two probe accuracies."""
        points, labels = self.arrays()
        c = self.num_classes
        by_frame = single_frame_probe(points, labels, c, self.size, seed=seed)
        steps = step_lengths(points)
        max_step = np.full(c, np.nan)
        if steps.size:
            np.fmax.at(max_step, labels, steps.max(axis=1))
        return {
            "samples": int(len(labels)),
            "class_counts": np.bincount(labels, minlength=c)[:c].tolist(),
            "near_duplicate_rate": near_duplicate_rate(points, labels, c, 1.0).tolist(),
            "near_duplicate_rate_2px": near_duplicate_rate(points, labels, c, 2.0).tolist(),
            "step_within_diameter": step_within_diameter(points, labels, c, self.diameter).tolist(),
            "max_step": max_step.tolist(),
            "coverage_within_tol": coverage_within_tol(
                points, labels, c, self.size, self.target_coverage, self.tol
            ).tolist(),
            "single_frame_probe_by_frame": by_frame.tolist(),
            "single_frame_probe_accuracy": float(np.max(by_frame)) if len(by_frame) else float("nan"),
            "motion_probe_accuracy": motion_probe(points, labels, c, seed=seed),
        }
