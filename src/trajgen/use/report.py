"""report: how good a run's samples are, as one page to look at (report.html) and the same
numbers for programs (report.json).

Per class: a montage of samples, the coverage histogram, a heat map of where the dot is
over all frames, the step-length histogram, histograms of the sample parameters, and the
near-duplicate rate; for the run: the single-frame and motion probes and exact duplicate
videos. Each number is set against its target (DESIGN.md "Sample quality") with ✓ or ✗.
The measures themselves are in trajgen.content.quality.

The committed shards are read one at a time, so the report works on a run in progress
and its memory is one decoded shard plus, per sample, the projected points, a few
parameters and an 8-byte video hash. The page is one file: CSS inline, figures inline as
base64 PNG, nothing fetched, so it opens offline. The figures are drawn in
report_figures.py (matplotlib, Agg, no pyplot), the page in report_page.py.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import trajgen
from trajgen.content import quality
from trajgen.content.scene import luma
from trajgen.errors import CorruptShardError
from trajgen.store import _fs, lock_file
from trajgen.store.checksums import video_hashes
from trajgen.store.rundir import RunError, RunPaths
from trajgen.use.bucket_copy import serves_urls
from trajgen.use.dataset import open_run
from trajgen.use.report_page import page
from trajgen.use.report_targets import (
    CLASS_TARGETS,
    COVERAGE_TOL,
    DESCRIBED_PATTERNS,
    HTML_NAME,
    JSON_NAME,
    MONTAGE_PER_CLASS,
    OCCLUDED_ONLY,
    PROBE_SAMPLES,
    REPORT_FORMAT,
    RUN_TARGETS,
    Measured,
    ReportError,
)


@dataclass(frozen=True)
class ReportResult:
    html_path: Path
    json_path: Path
    samples: int
    complete: bool
    data: dict  # what report.json holds

    @property
    def checks(self) -> dict[str, bool | None]:
        """Every target, by name (per class: 'linear.near_duplicate_rate'), and whether it is met."""
        out = {f"{name}.{key}": ok for name, c in self.data["classes"].items() for key, ok in c["passed"].items()}
        return {**out, **self.data["passed"]}

    @property
    def summary(self) -> str:
        checks = self.checks
        failed = [name for name, ok in checks.items() if ok is False]
        unmeasured = sum(ok is None for ok in checks.values())
        line = f"{sum(ok is True for ok in checks.values())} of {len(checks)} targets met"
        if failed:
            line += (
                " (not met: "
                + ", ".join(failed[:4])
                + (f" and {len(failed) - 4} more" if len(failed) > 4 else "")
                + ")"
            )
        if unmeasured:
            line += f"; {unmeasured} not measured (too few samples)"
        return line


@serves_urls(out="out_dir")
def make_report(run_dir: os.PathLike | str, out_dir: os.PathLike | str | None = None) -> ReportResult:
    """Measure the committed samples of a run and write ``report.html`` and ``report.json`` into
    ``out_dir`` (default: the run directory; created if its parent exists; files replaced)."""
    run = open_run(run_dir)  # RunError when it is not a run
    if len(run) == 0:
        raise RunError(f"{run.root} has no shards committed yet; nothing to report (see: trajgen status {run.root})")
    out = _out_dir(run.root, out_dir)
    measured = _measure(run)
    data = _numbers(run, measured)
    html_page = page(run, data, measured)
    if not out.is_dir():
        try:
            out.mkdir()
        except OSError as e:
            raise ReportError(
                f"could not create {out}: {e.strerror or e}; choose a writable directory with -o"
            ) from None
    paths = out / HTML_NAME, out / JSON_NAME
    for path, content in zip(paths, (html_page, json.dumps(data, indent=2, ensure_ascii=False) + "\n")):
        try:
            _fs.atomic_write_bytes(path, content.encode("utf-8"), out)
        except OSError as e:
            raise ReportError(
                f"could not write {path}: {e.strerror or e}; choose a writable directory with -o"
            ) from None
    return ReportResult(html_path=paths[0], json_path=paths[1], samples=len(run), complete=run.complete, data=data)


def _out_dir(root: Path, out_dir) -> Path:
    """Where the two files go: the run directory itself or anywhere outside it, never among its own files."""
    if out_dir is None:
        return root
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ReportError(f"{out} is not a directory; -o takes the directory to write {HTML_NAME} and {JSON_NAME} into")
    if not out.exists() and not out.parent.is_dir():
        raise ReportError(f"{out.parent} does not exist; create it or choose another -o directory")
    real, run_real = out.resolve(), root.resolve()
    if real != run_real and run_real in real.parents:
        raise ReportError(
            f"{out} is inside the run directory, among the run's own files; write the report into the "
            f"run directory itself (leave out -o) or outside it"
        )
    return out


# ---------------------------------------------------------------- measuring


def _measure(run) -> Measured:
    classes = len(run.classes)
    points, labels, hashes, looks, visible = [], [], [], [], []
    params: dict[str, list[np.ndarray]] = {}
    montage: list[list[np.ndarray]] = [[] for _ in range(classes)]
    size = run.config.size
    try:
        for arrays in run.iter_shards():  # one decoded shard at a time
            points.append(arrays["points_2d"])
            labels.append(arrays["labels"])
            hashes.append(video_hashes(arrays["videos"]))
            looks.append(quality.appearance_features(arrays["videos"], arrays.get("appearance")))
            if "visible" in arrays:
                visible.append((arrays["visible"] >= 0.5).mean(axis=1))
            for label, values in _parameters(arrays, size).items():
                params.setdefault(label, []).append(values)
            for c in range(classes):
                room = MONTAGE_PER_CLASS - len(montage[c])
                if room > 0:
                    montage[c] += [v.copy() for v in arrays["videos"][arrays["labels"] == c][:room]]
            del arrays  # before the next shard is decoded: one shard in memory, not two
    except CorruptShardError as e:
        if "trajgen verify" in str(e):
            raise
        raise CorruptShardError(f"{e}; check the run with: trajgen verify {shlex.quote(str(run.root))}") from None
    return Measured(
        points=np.concatenate(points),
        labels=np.concatenate(labels),
        hashes=np.concatenate(hashes),
        params={label: np.concatenate(v) for label, v in params.items()},
        montage=montage,
        looks=np.concatenate(looks),
        visible_frames=np.concatenate(visible) if visible else None,
    )


def _parameters(arrays: dict, size: int) -> dict[str, np.ndarray]:
    """Per-sample numbers of one shard: parsed from the descriptions, and derived from the arrays."""
    n = len(arrays["labels"])
    out = {label: np.full(n, np.nan) for label, _ in DESCRIBED_PATTERNS}
    for row, text in enumerate(arrays["descriptions"].tolist()):
        for label, pattern in DESCRIBED_PATTERNS:
            found = pattern.search(text)
            if found:
                out[label][row] = float(found.group(1))
    path = arrays["trajectory_3d"].astype(np.float64)
    camera = arrays["camera"].astype(np.float64)
    points = arrays["points_2d"].astype(np.float64)
    out["3D path length (units)"] = np.linalg.norm(np.diff(path, axis=1), axis=2).sum(axis=1)
    out["camera distance (units)"] = np.linalg.norm(camera[:, 3:6] - path.mean(axis=1), axis=1)
    out["focal length (px)"] = camera[:, 0]
    out["camera roll (°)"] = _roll(camera[:, 6:15].reshape(-1, 3, 3))
    centre = 0.5 * (points.min(axis=1) + points.max(axis=1))
    out["path centre off image centre (px)"] = np.linalg.norm(centre - 0.5 * (size - 1), axis=1)
    return out | _scene_parameters(arrays)


def _scene_parameters(arrays: dict) -> dict[str, np.ndarray]:
    """Per-sample numbers of the scene knobs a shard holds (none for a run without them)."""
    out = {}
    if "appearance" in arrays:
        a = arrays["appearance"].astype(np.float64)
        dot = luma(a[:, 0:3])
        out["scene: dot radius (px)"] = a[:, 3]
        out["scene: contrast (luma)"] = np.minimum(np.abs(dot - luma(a[:, 7:10])), np.abs(dot - luma(a[:, 10:13])))
        out["scene: background kind"] = a[:, 6]
        out["scene: shaded dot (0/1)"] = a[:, 4]
    if "distractors" in arrays:
        own = arrays["distractors"][:, :, 1] == arrays["labels"][:, None]
        out["scene: own-class distractors"] = own.sum(axis=1).astype(np.float64)
    if "occluders" in arrays:
        o = arrays["occluders"].astype(np.float64)
        out["scene: occluder area (px²)"] = (o[:, :, 2] * o[:, :, 3]).sum(axis=1)
        out["scene: share of frames hidden"] = (arrays["visible"] < 0.5).mean(axis=1)
    return out


def _roll(rotation: np.ndarray) -> np.ndarray:
    """Degrees the camera is turned about its viewing axis from the upright camera that camera.py
    aims (image right = forward × world z, or × world x when looking straight up or down)."""
    right, forward = rotation[:, 0], rotation[:, 2]
    up = np.where(np.abs(forward[:, 2:3]) < 0.99, [0.0, 0.0, 1.0], [1.0, 0.0, 0.0])
    upright_right = np.cross(forward, up)
    upright_right /= np.linalg.norm(upright_right, axis=1, keepdims=True) + 1e-12
    upright_down = np.cross(forward, upright_right)
    return np.degrees(np.arctan2(np.sum(right * upright_down, axis=1), np.sum(right * upright_right, axis=1)))


def _numbers(run, m: Measured) -> dict:
    """Everything report.json holds: per class, the run-wide probes, the targets and ✓/✗."""
    config, classes = run.config, list(run.classes)
    c = len(classes)
    diameter = 2 * config.radius
    r, size = config.radius, config.size
    in_frame = np.all((m.points >= r) & (m.points <= size - 1 - r), axis=(1, 2))
    per_class = {
        "near_duplicate_rate": quality.near_duplicate_rate(m.points, m.labels, c, 1.0),
        "near_duplicate_rate_2px": quality.near_duplicate_rate(m.points, m.labels, c, 2.0),
        "step_within_diameter": quality.step_within_diameter(m.points, m.labels, c, diameter),
        "coverage_within_tol": quality.coverage_within_tol(m.points, m.labels, c, size, config.coverage, COVERAGE_TOL),
        "in_frame": np.array([in_frame[m.labels == k].mean() if np.any(m.labels == k) else np.nan for k in range(c)]),
    }
    steps = quality.step_lengths(m.points)
    covered = quality.coverage(m.points, size)
    per_frame = quality.single_frame_probe(m.points, m.labels, c, size)
    probe_rows = _probe_rows(len(m.labels))
    motion = quality.motion_probe(m.points[probe_rows], m.labels[probe_rows], c)
    duplicates = int(len(m.hashes) - len(np.unique(m.hashes)))
    looks = quality.appearance_probe(m.looks[probe_rows], m.labels[probe_rows], c)

    out_classes: dict[str, dict[str, Any]] = {}  # class name → its numbers (and "passed": key → ✓/✗)
    for k, name in enumerate(classes):
        mine = m.labels == k
        values = {key: _number(v[k]) for key, v in per_class.items()}
        out_classes[name] = {
            "samples": int(mine.sum()),
            **values,
            "max_step_px": _number(steps[mine].max()) if mine.any() and steps.size else None,
            "coverage_mean": _number(covered[mine].mean()) if mine.any() else None,
            "passed": {key: _passed(values[key], target) for key, target in CLASS_TARGETS.items()},
        }
    run_values = {
        "single_frame_probe_accuracy": _number(np.max(per_frame)) if np.all(np.isfinite(per_frame)) else None,
        "motion_probe_accuracy": _number(motion),
        "duplicate_videos": duplicates,
        "appearance_probe_accuracy": _number(looks),
    }
    run_targets = {k: t for k, t in RUN_TARGETS.items() if k not in OCCLUDED_ONLY or config.occluders}
    if m.visible_frames is not None:
        run_values["visible_frames"] = _number(m.visible_frames.min())
    passed = {key: _passed(run_values[key], target) for key, target in run_targets.items()}
    targets = {
        **{k: {x: y for x, y in t.items()} for k, t in CLASS_TARGETS.items()},
        **{k: {x: y for x, y in t.items()} for k, t in run_targets.items()},
    }
    targets["single_frame_probe_accuracy"]["chance"] = 1 / c
    targets["coverage_within_tol"]["coverage"] = config.coverage
    targets["step_within_diameter"]["diameter_px"] = diameter
    targets["in_frame"]["margin_px"] = r
    try:
        in_progress = not run.complete and lock_file.is_locked(RunPaths(run.root).lock)
    except OSError:  # an unreadable .lock: say incomplete rather than guess
        in_progress = False
    return {
        "format": REPORT_FORMAT,
        "run_dir": str(run.root),
        "made_at": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "trajgen_version": trajgen.__version__,
        "samples": len(run),
        "total_samples": run.total_samples,
        "committed_shards": run.committed_shards,
        "total_shards": run.total_shards,
        "complete": run.complete,
        "in_progress": in_progress,
        "config": run.manifest["config"],
        "classes": out_classes,
        "single_frame_probe_accuracy": run_values["single_frame_probe_accuracy"],
        "single_frame_probe_per_frame": [_number(a) for a in per_frame],
        "motion_probe_accuracy": run_values["motion_probe_accuracy"],
        "motion_probe_samples": int(len(probe_rows)),
        "duplicate_videos": duplicates,
        **{key: run_values[key] for key in ("appearance_probe_accuracy", "visible_frames") if key in run_values},
        "targets": targets,
        "passed": passed,
        "all_passed": all(v is True for v in passed.values())
        and all(v is True for cl in out_classes.values() for v in cl["passed"].values()),
    }


def _probe_rows(n: int) -> np.ndarray:
    if n <= PROBE_SAMPLES:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).choice(n, PROBE_SAMPLES, replace=False))


def _number(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None  # JSON has no NaN


def _passed(value, target: dict) -> bool | None:
    if value is None:
        return None  # too few samples to measure
    if "min" in target:
        return bool(value >= target["min"])
    return bool(value <= target["max"])
