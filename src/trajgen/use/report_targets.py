"""What the report measures against: the targets of DESIGN.md "Sample quality", the numbers read
from each sample's description, and what the measuring hands to the page."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from trajgen.errors import StorageError

REPORT_FORMAT = "trajgen-report/1"
HTML_NAME, JSON_NAME = "report.html", "report.json"
MONTAGE_PER_CLASS = 8
PROBE_SAMPLES = 200_000  # the motion probe is fitted on at most this many samples (a seeded random subset)
FIGURES_PER_CLASS = 5  # montage, coverage, heat map, steps, parameters
COVERAGE_TOL = 0.1

# DESIGN.md "Sample quality": per class, then for the whole run; "min"/"max" decide ✓ or ✗
CLASS_TARGETS = {
    "coverage_within_tol": {
        "min": 0.90,
        "tol": COVERAGE_TOL,
        "what": "share of samples whose coverage is within ±0.1 of --coverage",
    },
    "in_frame": {"min": 1.0, "what": "share of samples with every point at least the dot radius inside the frame"},
    "step_within_diameter": {"min": 0.99, "what": "share of frame-to-frame steps no longer than the dot's diameter"},
    "near_duplicate_rate": {
        "max": 0.01,
        "what": "share of samples whose path, rounded to whole pixels, equals another sample's",
    },
}
RUN_TARGETS = {
    "single_frame_probe_accuracy": {
        "max": 0.45,
        "goal": 0.35,
        "what": "worst frame: accuracy of a 16×16-grid classifier that sees the dot's "
        "position in that one frame (80/20 split)",
    },
    "motion_probe_accuracy": {
        "min": 0.95,
        "what": "accuracy of a linear discriminant on speeds, accelerations and turning (80/20 split)",
    },
    "duplicate_videos": {"max": 0, "what": "videos byte-identical to another video of the run"},
    "appearance_probe_accuracy": {
        "max": 0.30,
        "what": "accuracy of a linear discriminant on each sample's colours and background "
        "(channel means and spreads, corner colours, the drawn appearance) (80/20 split)",
    },
    "visible_frames": {
        "min": 0.75,
        "what": "with --occluders: the least share of a sample's frames in which the dot is at least half visible",
    },
}
OCCLUDED_ONLY = ("visible_frames",)  # run targets measured only on runs with occluders

# numbers the motions print in each sample's description: (label, pattern)
_NUM = r"([-+]?\d+(?:\.\d+)?)"
DESCRIBED = (
    ("speed (units/s)", rf"{_NUM} units/s(?!²)"),
    ("radius (units)", rf"radius {_NUM}"),
    ("sweep (°)", rf"sweeping {_NUM}°"),
    ("angular speed (rad/s)", rf"{_NUM} rad/s"),
    ("turns", rf"{_NUM} turns"),
    ("pitch (units)", rf"pitch {_NUM}"),
    ("gravity (units/s²)", rf"gravity {_NUM}"),
    ("rise (units)", rf"rising {_NUM}"),
    ("pace: start speed ÷ mean speed", rf"\({_NUM}× to {_NUM}× its mean speed\)"),
    ("augmentation: turn about z (°)", rf"turned {_NUM}° about z"),
    ("augmentation: noise σ (units)", rf"noise σ={_NUM}"),
)
DESCRIBED_PATTERNS = [(label, re.compile(pattern)) for label, pattern in DESCRIBED]
# numbers derived from the stored arrays: (label, where it comes from)
DERIVED = (
    ("3D path length (units)", "trajectory_3d: sum of frame-to-frame distances, noise included"),
    ("camera distance (units)", "camera: eye to the path's centroid (trajectory_3d)"),
    ("focal length (px)", "camera: focal_px"),
    ("camera roll (°)", "camera: turn about the viewing axis from the upright camera, world z up"),
    ("path centre off image centre (px)", "points_2d: bounding-box centre to image centre"),
    ("scene: dot radius (px)", "appearance: radius_px (--appearance varied)"),
    ("scene: contrast (luma)", "appearance: the dot's luma gap to the nearer of the two background colours"),
    ("scene: background kind", "appearance: background_kind (0 plain, 1 gradient, 2 texture)"),
    ("scene: shaded dot (0/1)", "appearance: shaded"),
    ("scene: own-class distractors", "distractors: class column equal to the label (--distractors)"),
    ("scene: occluder area (px²)", "occluders: width × length, all bars (--occluders)"),
    ("scene: share of frames hidden", "share of frames with visible < 0.5: the dot under half visible (--occluders)"),
)

OK, BAD, NA = "✓", "✗", "–"


@dataclass
class Measured:
    points: np.ndarray  # (n, T, 2) float32
    labels: np.ndarray  # (n,) int64
    hashes: np.ndarray  # (n,) uint64
    params: dict[str, np.ndarray]  # label → (n,) float64, NaN where a sample has no such number
    montage: list[list[np.ndarray]]  # per class, the first videos
    looks: np.ndarray  # (n, k) float64: quality.appearance_features of every sample
    visible_frames: np.ndarray | None  # (n,) share of each sample's frames with visible ≥ 0.5 (--occluders)


class ReportError(StorageError):
    """The report could not be written where it was asked for."""
