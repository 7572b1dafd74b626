"""The report's figures: matplotlib (Agg, no pyplot) draws each one to an inline base64 PNG.
matplotlib is imported here only."""

from __future__ import annotations

import base64
import io
import math

import numpy as np

from trajgen.content import render
from trajgen.content.render import blend_trail
from trajgen.use.report_targets import COVERAGE_TOL, RUN_TARGETS, ReportError


def _figure(width: float, height: float, **margins):
    """A figure with fixed margins (inches → fractions): automatic layout costs more than the drawing."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ReportError(
            "the report draws its figures with matplotlib, which is not installed; "
            "install it with: pip install matplotlib"
        ) from None

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    left, right, bottom, top = (
        margins.get(k, d) for k, d in (("left", 0.55), ("right", 0.15), ("bottom", 0.45), ("top", 0.3))
    )
    fig.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        bottom=bottom / height,
        top=1 - top / height,
        wspace=margins.get("wspace", 0.2),
        hspace=margins.get("hspace", 0.2),
    )
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


def montage(videos: list[np.ndarray], background) -> str:
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


def coverage_figure(values: np.ndarray, target: float) -> str:
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


def heat_figure(points: np.ndarray, size: int, radius: float) -> str:
    fig = _figure(3.4, 2.9, left=0.5, right=0.2)
    ax = fig.add_subplot()
    bins = min(size, 64)
    edges = np.linspace(-0.5, size - 0.5, bins + 1)
    xy = points.reshape(-1, 2)
    counts, _, _ = np.histogram2d(xy[:, 1], xy[:, 0], bins=[edges, edges])
    shown = ax.imshow(
        counts, cmap="magma", origin="upper", extent=(-0.5, size - 0.5, size - 0.5, -0.5), interpolation="nearest"
    )
    from matplotlib.patches import Rectangle

    ax.add_patch(
        Rectangle((radius, radius), size - 1 - 2 * radius, size - 1 - 2 * radius, fill=False, ec=_GREEN, lw=1, ls="--")
    )
    cbar = fig.colorbar(shown, ax=ax, shrink=0.9, pad=0.03)
    cbar.ax.tick_params(labelsize=7)
    cbar.set_label("dot centres", fontsize=7)
    _style(ax, "where the dot is, all frames", "x (px)", "y (px)")
    return _png(fig)


def steps_figure(steps: np.ndarray, diameter: float) -> str:
    fig = _figure(3.6, 2.5)
    ax = fig.add_subplot()
    hi = max(float(steps.max(initial=0)), diameter) * 1.05 + 1e-9
    _hist(ax, steps, np.linspace(0, hi, 51), _BLUE)
    ax.axvline(diameter, color=_RED, lw=1, ls="--", label=f"dot diameter {diameter:g} px")
    ax.legend(fontsize=7, frameon=False)
    _style(ax, "frame-to-frame step length", "step (px)", "steps")
    return _png(fig)


def params_figure(params: dict[str, np.ndarray]) -> str:
    shown = [(label, v[np.isfinite(v)]) for label, v in params.items() if np.isfinite(v).any()]
    cols = 3
    rows = max(1, math.ceil(len(shown) / cols))
    fig = _figure(2.6 * cols, 1.7 * rows, bottom=0.3, top=0.3, left=0.5, wspace=0.3, hspace=0.45 * 1.7 / 1.2)
    for i, (label, values) in enumerate(shown):
        ax = fig.add_subplot(rows, cols, i + 1)
        lo, hi = float(values.min()), float(values.max())
        if hi - lo <= 1e-4 * max(1.0, abs(lo)):  # one value: say it rather than draw a spike
            ax.text(
                0.5,
                0.5,
                f"every sample: {round(0.5 * (lo + hi), 4) + 0.0:g}",
                ha="center",
                va="center",
                fontsize=8,
                transform=ax.transAxes,
            )
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


def probe_figure(per_frame: list, chance: float) -> str:
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
