"""report: how good a run's samples are, as one page to look at (report.html) and the same
numbers for programs (report.json).

Per class: a montage of samples, the coverage histogram, a heat map of where the dot is
over all frames, the step-length histogram, histograms of the sample parameters, and the
near-duplicate rate; for the run: the single-frame and motion probes and exact duplicate
videos. Each number is set against its target (DESIGN.md "Sample quality") with ✓ or ✗.
The measures themselves are in quality.py.

The committed shards are read one at a time, so the report works on a run in progress
and its memory is one decoded shard plus, per sample, the projected points, a few
parameters and an 8-byte video hash. The page is one file: CSS inline, figures inline as
base64 PNG, nothing fetched, so it opens offline. matplotlib (Agg, no pyplot) is
imported here only.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import math
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import trajgen
from trajgen.store import _fs
from trajgen.content import quality, render
from trajgen.content.camera import max_coverage
from trajgen.use.dataset import open_run
from trajgen.errors import CorruptShardError, StorageError
from trajgen.use.preview import blend_trail
from trajgen.making.run import RunError, RunPaths, resume_command
from trajgen.use.verify import video_hashes

REPORT_FORMAT = "trajgen-report/1"
HTML_NAME, JSON_NAME = "report.html", "report.json"
MONTAGE_PER_CLASS = 8
PROBE_SAMPLES = 200_000  # the motion probe is fitted on at most this many samples (a seeded random subset)
FIGURES_PER_CLASS = 5  # montage, coverage, heat map, steps, parameters
COVERAGE_TOL = 0.1

# DESIGN.md "Sample quality": per class, then for the whole run; "min"/"max" decide ✓ or ✗
CLASS_TARGETS = {
    "coverage_within_tol": {"min": 0.90, "tol": COVERAGE_TOL,
                            "what": "share of samples whose coverage is within ±0.1 of --coverage"},
    "in_frame": {"min": 1.0, "what": "share of samples with every point at least the dot radius inside the frame"},
    "step_within_diameter": {"min": 0.99, "what": "share of frame-to-frame steps no longer than the dot's diameter"},
    "near_duplicate_rate": {"max": 0.01, "what": "share of samples whose path, rounded to whole pixels, "
                                                 "equals another sample's"},
}
RUN_TARGETS = {
    "single_frame_probe_accuracy": {"max": 0.45, "goal": 0.35,
                                    "what": "worst frame: accuracy of a 16×16-grid classifier that sees the dot's "
                                            "position in that one frame (80/20 split)"},
    "motion_probe_accuracy": {"min": 0.95, "what": "accuracy of a linear discriminant on speeds, accelerations and "
                                                   "turning (80/20 split)"},
    "duplicate_videos": {"max": 0, "what": "videos byte-identical to another video of the run"},
}

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
_DESCRIBED = [(label, re.compile(pattern)) for label, pattern in DESCRIBED]
# numbers derived from the stored arrays: (label, where it comes from)
DERIVED = (
    ("3D path length (units)", "trajectory_3d: sum of frame-to-frame distances, noise included"),
    ("camera distance (units)", "camera: eye to the path's centroid (trajectory_3d)"),
    ("focal length (px)", "camera: focal_px"),
    ("camera roll (°)", "camera: turn about the viewing axis from the upright camera, world z up"),
    ("path centre off image centre (px)", "points_2d: bounding-box centre to image centre"),
)

_OK, _BAD, _NA = "✓", "✗", "–"


class ReportError(StorageError):
    """The report could not be written where it was asked for."""


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
            line += " (not met: " + ", ".join(failed[:4]) + (f" and {len(failed) - 4} more" if len(failed) > 4 else "") + ")"
        if unmeasured:
            line += f"; {unmeasured} not measured (too few samples)"
        return line


def make_report(run_dir: os.PathLike | str, out_dir: os.PathLike | str | None = None) -> ReportResult:
    """Measure the committed samples of a run and write ``report.html`` and ``report.json`` into
    ``out_dir`` (default: the run directory; created if its parent exists; files replaced)."""
    run = open_run(run_dir)  # RunError when it is not a run
    if len(run) == 0:
        raise RunError(f"{run.root} has no shards committed yet; nothing to report (see: trajgen status {run.root})")
    out = _out_dir(run.root, out_dir)
    measured = _measure(run)
    data = _numbers(run, measured)
    page = _page(run, data, measured)
    if not out.is_dir():
        try:
            out.mkdir()
        except OSError as e:
            raise ReportError(f"could not create {out}: {e.strerror or e}; choose a writable directory with -o") from None
    paths = out / HTML_NAME, out / JSON_NAME
    for path, content in zip(paths, (page, json.dumps(data, indent=2, ensure_ascii=False) + "\n")):
        try:
            _fs.atomic_write_bytes(path, content.encode("utf-8"), out)
        except OSError as e:
            raise ReportError(f"could not write {path}: {e.strerror or e}; choose a writable directory with -o") from None
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
        raise ReportError(f"{out} is inside the run directory, among the run's own files; write the report into the "
                          f"run directory itself (leave out -o) or outside it")
    return out


# ---------------------------------------------------------------- measuring


@dataclass
class _Measured:
    points: np.ndarray  # (n, T, 2) float32
    labels: np.ndarray  # (n,) int64
    hashes: np.ndarray  # (n,) uint64
    params: dict[str, np.ndarray]  # label → (n,) float64, NaN where a sample has no such number
    montage: list[list[np.ndarray]]  # per class, the first videos


def _measure(run) -> _Measured:
    classes = len(run.classes)
    points, labels, hashes = [], [], []
    params: dict[str, list[np.ndarray]] = {}
    montage: list[list[np.ndarray]] = [[] for _ in range(classes)]
    size = run.config.size
    try:
        for arrays in run.iter_shards():  # one decoded shard at a time
            points.append(arrays["points_2d"])
            labels.append(arrays["labels"])
            hashes.append(video_hashes(arrays["videos"]))
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
    return _Measured(points=np.concatenate(points), labels=np.concatenate(labels), hashes=np.concatenate(hashes),
                     params={label: np.concatenate(v) for label, v in params.items()}, montage=montage)


def _parameters(arrays: dict, size: int) -> dict[str, np.ndarray]:
    """Per-sample numbers of one shard: parsed from the descriptions, and derived from the arrays."""
    n = len(arrays["labels"])
    out = {label: np.full(n, np.nan) for label, _ in _DESCRIBED}
    for row, text in enumerate(arrays["descriptions"].tolist()):
        for label, pattern in _DESCRIBED:
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
    return out


def _roll(rotation: np.ndarray) -> np.ndarray:
    """Degrees the camera is turned about its viewing axis from the upright camera that camera.py
    aims (image right = forward × world z, or × world x when looking straight up or down)."""
    right, down, forward = rotation[:, 0], rotation[:, 1], rotation[:, 2]
    up = np.where(np.abs(forward[:, 2:3]) < 0.99, [0.0, 0.0, 1.0], [1.0, 0.0, 0.0])
    upright_right = np.cross(forward, up)
    upright_right /= np.linalg.norm(upright_right, axis=1, keepdims=True) + 1e-12
    upright_down = np.cross(forward, upright_right)
    return np.degrees(np.arctan2(np.sum(right * upright_down, axis=1), np.sum(right * upright_right, axis=1)))


def _numbers(run, m: _Measured) -> dict:
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

    out_classes = {}
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
    }
    passed = {key: _passed(run_values[key], target) for key, target in RUN_TARGETS.items()}
    targets = {**{k: {x: y for x, y in t.items()} for k, t in CLASS_TARGETS.items()},
               **{k: {x: y for x, y in t.items()} for k, t in RUN_TARGETS.items()}}
    targets["single_frame_probe_accuracy"]["chance"] = 1 / c
    targets["coverage_within_tol"]["coverage"] = config.coverage
    targets["step_within_diameter"]["diameter_px"] = diameter
    targets["in_frame"]["margin_px"] = r
    try:
        in_progress = not run.complete and _fs.is_locked(RunPaths(run.root).lock)
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


# ---------------------------------------------------------------- figures


def _figure(width: float, height: float, **margins):
    """A figure with fixed margins (inches → fractions): automatic layout costs more than the drawing."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ReportError("the report draws its figures with matplotlib, which is not installed; "
                          "install it with: pip install matplotlib") from None

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    left, right, bottom, top = (margins.get(k, d) for k, d in (("left", 0.55), ("right", 0.15), ("bottom", 0.45),
                                                                  ("top", 0.3)))
    fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height,
                        wspace=margins.get("wspace", 0.2), hspace=margins.get("hspace", 0.2))
    return fig


def _hist(ax, values: np.ndarray, bins, color: str) -> None:
    """A filled histogram drawn as one outline (fast, unlike one bar per bin)."""
    counts, edges = np.histogram(values, bins=bins)
    ax.stairs(counts, edges, fill=True, color=color, alpha=0.85)
    ax.set_ylim(0, max(1, counts.max(initial=0)) * 1.08)


def _style(ax, title: str, xlabel: str, ylabel: str = "samples") -> None:
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.locator_params(nbins=5)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return base64.b64encode(buf.getvalue()).decode("ascii")


_BLUE, _GREEN, _RED, _ORANGE, _GREY = "#3b6fb6", "#2e9e5b", "#cf222e", "#d9822b", "#888888"


def _montage(videos: list[np.ndarray], background) -> str:
    """The class's first samples, each all frames blended into one trail (preview's cells), upscaled."""
    cols = 4
    rows = max(1, math.ceil(len(videos) / cols))
    size = videos[0].shape[1] if videos else 64
    k = max(1, math.ceil(64 / size))  # whole-pixel upscaling to at least 64 px; the page scales it crisply
    cell, pad = size * k, 4
    sheet = np.full((rows * (cell + pad) + pad, cols * (cell + pad) + pad, 3), 225, np.uint8)  # grey gaps
    for i, video in enumerate(videos):
        r, c = divmod(i, cols)
        y, x = pad + r * (cell + pad), pad + c * (cell + pad)
        sheet[y : y + cell, x : x + cell] = blend_trail(video, background).repeat(k, axis=0).repeat(k, axis=1)
    return base64.b64encode(render.encode_png(sheet)).decode("ascii")


def _coverage_figure(values: np.ndarray, target: float) -> str:
    fig = _figure(3.6, 2.5)
    ax = fig.add_subplot()
    lo = max(0.0, min(target - 2 * COVERAGE_TOL, float(values.min(initial=target))))
    hi = max(target + 2 * COVERAGE_TOL, float(values.max(initial=target)))
    ax.axvspan(target - COVERAGE_TOL, target + COVERAGE_TOL, color=_GREEN, alpha=0.15, lw=0, label="target ±0.1")
    _hist(ax, values, np.linspace(lo, hi, 51), _BLUE)
    ax.axvline(target, color=_GREEN, lw=1)
    ax.legend(fontsize=7, frameon=False, loc="upper left")
    _style(ax, "coverage per sample", "max(bbox width, bbox height) / frame size")
    return _png(fig)


def _heat_figure(points: np.ndarray, size: int, radius: float) -> str:
    fig = _figure(3.4, 2.9, left=0.5, right=0.2)
    ax = fig.add_subplot()
    bins = min(size, 64)
    edges = np.linspace(-0.5, size - 0.5, bins + 1)
    xy = points.reshape(-1, 2)
    counts, _, _ = np.histogram2d(xy[:, 1], xy[:, 0], bins=[edges, edges])
    shown = ax.imshow(counts, cmap="magma", origin="upper", extent=(-0.5, size - 0.5, size - 0.5, -0.5),
                      interpolation="nearest")
    from matplotlib.patches import Rectangle

    ax.add_patch(Rectangle((radius, radius), size - 1 - 2 * radius, size - 1 - 2 * radius, fill=False,
                           ec=_GREEN, lw=1, ls="--"))
    cbar = fig.colorbar(shown, ax=ax, shrink=0.9, pad=0.03)
    cbar.ax.tick_params(labelsize=7)
    cbar.set_label("dot centres", fontsize=7)
    _style(ax, "where the dot is, all frames", "x (px)", "y (px)")
    return _png(fig)


def _steps_figure(steps: np.ndarray, diameter: float) -> str:
    fig = _figure(3.6, 2.5)
    ax = fig.add_subplot()
    hi = max(float(steps.max(initial=0)), diameter) * 1.05 + 1e-9
    _hist(ax, steps, np.linspace(0, hi, 51), _BLUE)
    ax.axvline(diameter, color=_RED, lw=1, ls="--", label=f"dot diameter {diameter:g} px")
    ax.legend(fontsize=7, frameon=False)
    _style(ax, "frame-to-frame step length", "step (px)", "steps")
    return _png(fig)


def _params_figure(params: dict[str, np.ndarray]) -> str:
    shown = [(label, v[np.isfinite(v)]) for label, v in params.items() if np.isfinite(v).any()]
    cols = 3
    rows = max(1, math.ceil(len(shown) / cols))
    fig = _figure(2.6 * cols, 1.7 * rows, bottom=0.3, top=0.3, left=0.5, wspace=0.3, hspace=0.45 * 1.7 / 1.2)
    for i, (label, values) in enumerate(shown):
        ax = fig.add_subplot(rows, cols, i + 1)
        lo, hi = float(values.min()), float(values.max())
        if hi - lo <= 1e-4 * max(1.0, abs(lo)):  # one value: say it rather than draw a spike
            ax.text(0.5, 0.5, f"every sample: {round(0.5 * (lo + hi), 4) + 0.0:g}", ha="center", va="center", fontsize=8,
                    transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
        else:
            _hist(ax, values, _bins(values, lo, hi), _BLUE)
        _style(ax, label, "", "samples" if i % cols == 0 else "")
    return _png(fig)


def _bins(values: np.ndarray, lo: float, hi: float, count: int = 30) -> np.ndarray:
    """About ``count`` bins; for numbers printed to a few decimals (a grid of values), bins that are
    whole multiples of that grid, centred on it, so no bin is empty merely because of rounding."""
    width = (hi - lo) / count
    step = float(np.diff(np.unique(values)).min())
    if step > (hi - lo) / 300:  # quantized
        width = step * max(1, round(width / step))
        return np.arange(lo - step / 2, hi + width, width)
    return np.linspace(lo, hi, count + 1)


def _probe_figure(per_frame: list, chance: float) -> str:
    fig = _figure(6.0, 2.6)
    ax = fig.add_subplot()
    frames = np.arange(len(per_frame))
    values = np.array([np.nan if v is None else v for v in per_frame], float)
    ax.plot(frames, values, marker="o", ms=3, color=_BLUE, label="accuracy at frame t")
    target = RUN_TARGETS["single_frame_probe_accuracy"]
    ax.axhline(target["max"], color=_RED, ls="--", lw=1, label=f"target ≤ {target['max']:.0%}")
    ax.axhline(target["goal"], color=_ORANGE, ls=":", lw=1, label=f"goal {target['goal']:.0%}")
    ax.axhline(chance, color=_GREY, lw=1, label=f"chance {chance:.0%}")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, frameon=False, ncol=2, loc="upper right")
    _style(ax, "single-frame grid probe, per frame", "frame t", "accuracy")
    return _png(fig)


# ---------------------------------------------------------------- the page


def _pct(x, digits: int = 1) -> str:
    return "n/a" if x is None else f"{100 * x:.{digits}f}%"


def _mark(ok) -> str:
    if ok is None:
        return f'<span class="na" title="too few samples to measure">{_NA}</span>'
    return f'<span class="ok">{_OK}</span>' if ok else f'<span class="bad">{_BAD}</span>'


def _target_text(key: str, data: dict) -> str:
    t = data["targets"][key]
    if key == "coverage_within_tol":
        return f"≥ {t['min']:.0%} within ±{t['tol']:g} of {t['coverage']:g}"
    if key == "in_frame":
        return f"{t['min']:.0%} keep {t['margin_px']:g} px from the edge"
    if key == "step_within_diameter":
        return f"≥ {t['min']:.0%} of steps ≤ {t['diameter_px']:g} px"
    if key == "single_frame_probe_accuracy":
        return f"≤ {t['max']:.0%} (goal {t['goal']:.0%}, chance {t['chance']:.0%})"
    if key == "duplicate_videos":
        return "none"
    return f"≥ {t['min']:.0%}" if "min" in t else f"≤ {t['max']:.0%}"


_LABELS = {
    "coverage_within_tol": "coverage within tolerance",
    "in_frame": "dot inside the frame",
    "step_within_diameter": "steps within the dot's diameter",
    "near_duplicate_rate": "near-duplicate paths (1 px)",
    "single_frame_probe_accuracy": "single-frame probe (worst frame)",
    "motion_probe_accuracy": "motion probe",
    "duplicate_videos": "identical videos",
}


def _value_text(key: str, value) -> str:
    if key == "duplicate_videos":
        return f"{value:,}"
    return _pct(value, 2 if key == "near_duplicate_rate" else 1)


def _page(run, data: dict, m: _Measured) -> str:
    config, classes = run.config, list(run.classes)
    e = html.escape
    checks = [ok for c in data["classes"].values() for ok in c["passed"].values()] + list(data["passed"].values())
    met = sum(ok is True for ok in checks)
    title = f"{run.root.name}: {met} of {len(checks)} quality targets met"

    head = [f"<h1>Sample quality: {e(run.root.name)}</h1>",
            f'<p class="meta">{data["samples"]:,} samples in {data["committed_shards"]:,} of {data["total_shards"]:,} '
            f"shards · {len(classes)} classes · {config.frames} frames of {config.size}×{config.size} px · "
            f"--coverage {config.coverage:g} · seed {config.seed} · trajgen {e(data['trajgen_version'])} · "
            f"made {e(data['made_at'])}</p>"]
    if not data["complete"]:
        state = ("This run is in progress" if data["in_progress"]
                 else f"This run is incomplete (finish it with: <code>{e(resume_command(run.root))}</code>)")
        head.append(f'<p class="note">{state}: {data["committed_shards"]} of {data["total_shards"]} shards were '
                    f"committed when this report was made. Every number and figure covers those "
                    f"{data['samples']:,} committed samples only; make the report again when the run is complete.</p>")
    if config.coverage > max_coverage(config.size, config.radius):
        head.append(f'<p class="note">--coverage {config.coverage:g} is more than the {max_coverage(config.size, config.radius):.2f} '
                    f"that leaves the dot radius of margin, so paths are framed at most at that coverage.</p>")
    missed = [f"{_LABELS[key]} ({name})" for name, c in data["classes"].items() for key, ok in c["passed"].items()
              if ok is False] + [_LABELS[key] for key, ok in data["passed"].items() if ok is False]
    unmeasured = sum(ok is None for ok in checks)
    head.append(f'<p class="verdict {"poor" if missed or unmeasured else "good"}">{_mark(not missed)} {met} of '
                f"{len(checks)} targets met{'' if not missed else ' — not met: ' + e(', '.join(missed))}"
                f"{f'; {unmeasured} not measured (too few samples)' if unmeasured else ''}</p>")

    # summary table: per-class rows, then run-wide rows spanning the class columns
    rows = ["<tr><th>measure</th><th>target</th>" + "".join(f'<th><a href="#class-{e(n)}">{e(n)}</a></th>' for n in classes)
            + "</tr>"]
    for key in CLASS_TARGETS:
        cells = "".join(f"<td>{_value_text(key, data['classes'][n][key])} {_mark(data['classes'][n]['passed'][key])}</td>"
                        for n in classes)
        rows.append(f"<tr><th>{_LABELS[key]}</th><td class='target'>{e(_target_text(key, data))}</td>{cells}</tr>")
    for key in RUN_TARGETS:
        rows.append(f"<tr><th>{_LABELS[key]}</th><td class='target'>{e(_target_text(key, data))}</td>"
                    f"<td colspan='{len(classes)}' class='run'>{_value_text(key, data[key])} {_mark(data['passed'][key])}"
                    f" <span class='scope'>whole run</span></td></tr>")
    summary = f'<h2 id="summary">Summary</h2><table class="summary">{"".join(rows)}</table>'

    def card(heading: str, image: str | None, key: str | None, value, passed, what: str, wide: str = "",
             pixelated: bool = False) -> str:
        img = (f'<img class="{"pixelated" if pixelated else ""}" alt="{e(heading)}" src="data:image/png;base64,{image}">'
               if image else "")
        if key is None:
            target = '<p class="target">no target: for looking</p>'
        else:
            target = (f'<p class="target">target {e(_target_text(key, data))} · measured '
                      f"<b>{_value_text(key, value)}</b> {_mark(passed)}</p>")
        return (f'<figure class="card {wide}"><figcaption><h3>{e(heading)}</h3></figcaption>'
                f'{img}{target}<p class="what">{what}</p></figure>')

    chance = data["targets"]["single_frame_probe_accuracy"]["chance"]
    probes = [
        card("Single-frame probe", _probe_figure(data["single_frame_probe_per_frame"], chance),
             "single_frame_probe_accuracy", data["single_frame_probe_accuracy"], data["passed"]["single_frame_probe_accuracy"],
             "For each frame t alone: which 16×16 cell the dot is in, per-class cell counts on 80% of the samples, "
             "the most common class of the cell predicted for the other 20%. The worst frame counts: no single "
             "frame should tell the class.", wide="span2"),
        card("Motion probe", None, "motion_probe_accuracy", data["motion_probe_accuracy"],
             data["passed"]["motion_probe_accuracy"],
             "A linear discriminant on how the dot moves (speeds, tangential and normal accelerations, turning), "
             f"trained on 80% of {data['motion_probe_samples']:,} samples and scored on the rest: the motion should "
             "tell the class."),
        card("Identical videos", None, "duplicate_videos", data["duplicate_videos"], data["passed"]["duplicate_videos"],
             "Videos whose bytes equal another video's anywhere in the run (8-byte hash of each video; "
             "<code>trajgen verify</code> names them)."),
    ]
    sections = [f'<section class="run-wide"><h2 id="run-wide">The whole run: probes and duplicates</h2>'
                f'<div class="grid">{"".join(probes)}</div></section>']

    steps = quality.step_lengths(m.points)
    covered = quality.coverage(m.points, config.size)
    diameter = 2 * config.radius
    for k, name in enumerate(classes):
        mine = m.labels == k
        c = data["classes"][name]
        ok = sum(v is True for v in c["passed"].values())
        if not mine.any():  # a run in progress whose first shards are smaller than the class count
            sections.append(f'<section data-class="{e(name)}" id="class-{e(name)}"><h2>{e(name)} <span class="count">'
                            f'no committed samples yet {_mark(None)}</span></h2></section>')
            continue
        params = {label: values[mine] for label, values in m.params.items()}
        described = ", ".join(label for label, _ in DESCRIBED if np.isfinite(m.params[label][mine]).any()) or "none"
        cards = [
            card("Samples", _montage(m.montage[k], config.background), None, None, None,
                 f"The first {len(m.montage[k])} committed samples of the class, each with all its frames blended "
                 "into one picture, "
                 "older frames fainter (as in <code>trajgen preview</code>).", pixelated=True),
            card("Coverage", _coverage_figure(covered[mine], config.coverage), "coverage_within_tol",
                 c["coverage_within_tol"], c["passed"]["coverage_within_tol"],
                 f"How much of the frame each path fills (mean {c['coverage_mean']:.3f}); the band is the target "
                 f"±{COVERAGE_TOL:g} around --coverage {config.coverage:g}."),
            card("Heat map", _heat_figure(m.points[mine], config.size, config.radius), "in_frame", c["in_frame"],
                 c["passed"]["in_frame"],
                 f"Dot centres (points_2d) of every frame of every sample, per pixel. The dashed box is the "
                 f"{config.radius:g} px margin every point must keep from the edge. A bright spot means "
                 f"the class puts the dot there often, which a single frame could give away."),
            card("Step length", _steps_figure(steps[mine].ravel(), diameter), "step_within_diameter",
                 c["step_within_diameter"], c["passed"]["step_within_diameter"],
                 f"Distance the dot moves between consecutive frames (longest {c['max_step_px'] or 0:.1f} px); "
                 f"longer than its diameter ({diameter:g} px) and the dot jumps instead of moving."),
            card("Near-duplicate paths", None, "near_duplicate_rate", c["near_duplicate_rate"],
                 c["passed"]["near_duplicate_rate"],
                 f"Samples whose whole path, rounded to whole pixels, equals another sample's (rounded to 2 px: "
                 f"{_pct(c['near_duplicate_rate_2px'], 2)})."),
            card("Parameters", _params_figure(params), None, None, None,
                 f"From the descriptions: {e(described)}. From the arrays: "
                 + "; ".join(f"{e(label)} ({e(source)})" for label, source in DERIVED) + ".", wide="span3"),
        ]
        sections.append(
            f'<section data-class="{e(name)}" id="class-{e(name)}"><h2>{e(name)} <span class="count">'
            f'{c["samples"]:,} samples · {ok} of {len(c["passed"])} targets met '
            f'{_mark(ok == len(c["passed"]))}</span></h2><div class="grid">{"".join(cards)}</div></section>')

    foot = (f"<footer>Made by <code>trajgen report</code> from the committed shards of {e(str(run.root))}. "
            f"The same numbers are in <code>{JSON_NAME}</code> next to this page. Targets: DESIGN.md “Sample quality”. "
            f"The measures are <code>trajgen.quality</code>.</footer>")
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head>'
            f'<body><header>{"".join(head)}</header>{summary}{"".join(sections)}{foot}</body></html>\n')


_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: #1f2328;
       background: #f6f8fa; margin: 0 auto; max-width: 1320px; padding: 20px 28px 40px; }
h1 { font-size: 24px; margin: 4px 0 6px; }
h2 { font-size: 19px; margin: 28px 0 10px; padding-bottom: 4px; border-bottom: 1px solid #d0d7de; }
h2 .count { font-size: 13px; font-weight: normal; color: #57606a; margin-left: 10px; }
h3 { font-size: 14px; margin: 0 0 6px; }
.meta { color: #57606a; margin: 0 0 8px; }
.note { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 6px; padding: 8px 12px; }
.verdict { font-size: 16px; font-weight: 600; margin: 8px 0; }
.verdict.good { color: #1a7f37; } .verdict.poor { color: #cf222e; }
table.summary { border-collapse: collapse; background: #fff; border: 1px solid #d0d7de; }
table.summary th, table.summary td { padding: 5px 12px; border-bottom: 1px solid #eaeef2; text-align: left; }
table.summary tr:first-child th { background: #f0f3f6; }
table.summary td.target { color: #57606a; }
table.summary td.run { text-align: center; }
.scope { color: #8c959f; font-size: 12px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 14px; }
.card { background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: 10px 12px; margin: 0; }
.card.span2, .card.span3 { grid-column: 1 / -1; }
@media (min-width: 1200px) {
  .grid { grid-template-columns: repeat(4, 1fr); }
  .card.span2 { grid-column: span 2; } .card.span3 { grid-column: span 3; }
}
.card img { display: block; max-width: 100%; height: auto; margin: 0 auto 6px; }
.card img.pixelated { image-rendering: pixelated; width: 100%; }
.card .target { margin: 4px 0; }
.card .what { color: #57606a; font-size: 12.5px; margin: 4px 0 0; }
.ok { color: #1a7f37; font-weight: 700; } .bad { color: #cf222e; font-weight: 700; } .na { color: #8c959f; }
code { background: #eff1f3; padding: 0 4px; border-radius: 4px; font-size: 12.5px; }
a { color: #0969da; text-decoration: none; }
footer { margin-top: 30px; color: #57606a; font-size: 12.5px; }
"""
