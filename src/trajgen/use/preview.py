"""preview: what a run looks like — a contact sheet PNG (one labelled row per class, each
cell all frames blended with a fading trail) and optionally the same grid as an MP4.

Reads the committed shards only, so it works on a run in progress. Drawing and
encoding are in trajgen.content.render (the one module that imports cv2).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trajgen.content import render
from trajgen.content.render import blend_trail
from trajgen.errors import ConfigError, StorageError
from trajgen.store import output
from trajgen.store.rundir import RunError
from trajgen.use.bucket_copy import serves_urls
from trajgen.use.dataset import open_run

DEFAULT_PER_CLASS = 6
MIN_CELL = 96  # px: samples are upscaled by a whole factor to at least this
PAD, LABEL_W, TITLE_H = 8, 110, 28
CAPTION_H = 14  # px under each sample for its '#index' and 'N frames': never over the picture
FPS = 8
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_PICTURE_PX = 32_767  # widest and tallest contact sheet written (JPEG stops at 65,500)
MAX_VIDEO_PX = 8_190  # MPEG-4 part 2, OpenCV's mp4v: frames up to 8,190 px each way
VIDEO_SUFFIXES = (".mp4",)
_BACKDROP = (255, 255, 255)
_EMPTY = (235, 235, 235)
_FRAME = (200, 200, 200)
_CAPTION = (110, 110, 110)


class PreviewError(StorageError):
    """The preview image or video could not be written."""


@dataclass(frozen=True)
class Preview:
    png: Path
    video: Path | None
    rows: int
    cols: int
    cell: int  # px, one upscaled sample
    samples: list  # per row (class), the global indices shown
    title: str

    @property
    def width(self) -> int:
        return LABEL_W + PAD + self.cols * (self.cell + PAD)

    @property
    def height(self) -> int:
        return TITLE_H + PAD + self.rows * (self.cell + CAPTION_H + PAD)

    video_width = property(lambda self: self.width + self.width % 2)  # codecs want even sizes
    video_height = property(lambda self: self.height + self.height % 2)

    def cell_box(self, row: int, col: int) -> tuple[int, int, int, int]:
        x, y = LABEL_W + PAD + col * (self.cell + PAD), TITLE_H + PAD + row * (self.cell + CAPTION_H + PAD)
        return x, y, x + self.cell, y + self.cell

    def caption_box(self, row: int, col: int) -> tuple[int, int, int, int]:
        """The band under a cell that holds its captions (below the cell's 1 px frame)."""
        x0, _, x1, y1 = self.cell_box(row, col)
        return x0, y1 + 1, x1, y1 + CAPTION_H

    def label_box(self, row: int) -> tuple[int, int, int, int]:
        _, y, _, y1 = self.cell_box(row, 0)
        return PAD, y, LABEL_W, y1


@serves_urls(out="out", default_name="preview.png")
def make_preview(
    run_dir: os.PathLike | str,
    out: os.PathLike | str | None = None,
    video: os.PathLike | str | None = None,
    per_class: int = DEFAULT_PER_CLASS,
) -> Preview:
    """Write the contact sheet to ``out`` (default RUN_DIR/preview.png, replaced if present) and,
    if ``video`` is given, the MP4; the first ``per_class`` committed samples of each class."""
    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1:
        raise ConfigError(f"per_class (--per-class) must be an integer ≥ 1, got {per_class!r}")
    run = open_run(run_dir)
    out = Path(out) if out is not None else run.root / "preview.png"
    video = Path(video) if video is not None else None
    _check_targets(run.root, out, video)
    if len(run) == 0:
        raise RunError(f"{run.root} has no shards committed yet; nothing to preview (see: trajgen status {run.root})")
    _check_size(run.config, len(run.classes), per_class, video is not None)

    config = run.config
    labels = run.labels
    picked = [np.flatnonzero(labels == c)[:per_class].tolist() for c in range(len(run.classes))]
    batch = run.arrays([p for row in picked for p in row], keys=("videos", "index"))
    videos, flat_index = iter(batch["videos"]), iter(batch["index"].tolist())
    cells = [[next(videos) for _ in row] for row in picked]
    preview = Preview(
        png=out,
        video=Path(video) if video is not None else None,
        rows=len(run.classes),
        cols=per_class,
        cell=config.size * max(1, math.ceil(MIN_CELL / config.size)),
        samples=[[next(flat_index) for _ in row] for row in picked],
        title=(
            f"{run.root.name}: {len(run):,} of {run.total_samples:,} samples, {run.committed_shards}/{run.total_shards} "
            f"shards{'' if run.complete else ' (in progress)'}"
        ),
    )
    base = _canvas(preview, run.classes)
    sheet = base[: preview.height, : preview.width].copy()
    for r, row in enumerate(cells):
        for c, v in enumerate(row):
            _paste(sheet, preview, r, c, blend_trail(v, None if config.scene else config.background))
            x0, _, x1, y1 = preview.caption_box(r, c)
            text = f"{len(v)} frames"
            render.put_text(sheet, text, (x1 - render.text_width(text, 0.35), y1 - 3), 0.35, _CAPTION)
            render.put_text(sheet, f"#{preview.samples[r][c]}", (x0, y1 - 3), 0.35, _CAPTION)
    _write_file(out, render.encode_image(sheet, out.suffix))
    if video is not None:
        _write_video(preview, video, base, cells)
    return preview


def _check_targets(root: Path, out: Path, video: Path | None) -> None:
    """Outputs never land on the run's own files or special files; the suffix decides the format.
    An existing regular file is replaced (the default RUN_DIR/preview.png is made again each time)."""
    for target, option, suffixes in ((out, "-o", IMAGE_SUFFIXES), (video, "--video", VIDEO_SUFFIXES)):
        if target is None:
            continue
        if output.run_part(target, root) is None and output.is_dir(target):
            raise output.OutputError(f"{target} is a directory; give {option} a file name")
        if output.run_part(target, root) is None and target.suffix.lower() not in suffixes:
            raise ConfigError(
                f"{option} {target}: the name must end in {' or '.join(suffixes)} (the suffix decides the format)"
            )
        output.check_target(target, root, option=option, replace=True)
    if video is not None and os.path.realpath(video) == os.path.realpath(out):
        raise ConfigError(f"-o and --video both name {out}; give them different files")


def _check_size(config, rows: int, per_class: int, video: bool) -> None:
    """ConfigError (a usage error, with the limit) for a sheet or video larger than its format allows,
    or samples shown that would not fit in memory: found before anything is read or drawn."""
    from trajgen.store.capacity import human_size as _size
    from trajgen.store.capacity import memory_bytes

    cell = config.size * max(1, math.ceil(MIN_CELL / config.size))
    width = LABEL_W + PAD + per_class * (cell + PAD)
    height = TITLE_H + PAD + rows * (cell + PAD)
    for limit, what, wanted in ((MAX_VIDEO_PX, "an MP4 (MPEG-4) frame", video), (MAX_PICTURE_PX, "a picture", True)):
        if not wanted:
            continue
        if height + height % 2 > limit:
            raise ConfigError(
                f"{rows} rows of {cell} px samples make the grid {height:,} px tall, more than {what} "
                f"allows ({limit:,} px); this run's frames are too large to preview"
                + (" as a video: leave out --video" if what != "a picture" else "")
            )
        most = (limit - LABEL_W - PAD) // (cell + PAD)
        if width + width % 2 > limit:
            raise ConfigError(
                f"--per-class {per_class:,} makes the grid {width:,} px wide, more than {what} allows "
                f"({limit:,} px): at most {most:,} samples per class fit; use --per-class {most:,} or less"
                + (" with --video" if what != "a picture" else "")
            )
    ram = memory_bytes()
    need = 2 * per_class * rows * config.frames * config.size * config.size * 3  # the samples shown, read and copied
    if ram is not None and need > ram / 2:
        most = max(1, int(ram / 2 / (2 * rows * config.frames * config.size * config.size * 3)))
        raise ConfigError(
            f"--per-class {per_class:,} needs about {_size(need)} of memory for the samples shown, more "
            f"than half this machine's {_size(ram)}: at most {most:,} fit; use --per-class {most:,} or less"
        )


def _write_file(path: Path, data: bytes) -> None:
    """Write beside ``path`` under a dot-name, then rename over it (removed if anything stops it)."""
    partial = output.partial_path(path)
    try:
        with open(partial, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        output.publish(partial, path, replace=True)
    except OSError as e:
        raise PreviewError(f"could not write {path}: {output.reason(e)}; {output.advice(e)}") from None
    finally:
        partial.unlink(missing_ok=True)


def _canvas(p: Preview, classes) -> np.ndarray:
    """The static parts: title, class labels, cell frames, empty cells grey."""
    image = np.empty((p.video_height, p.video_width, 3), np.uint8)
    image[...] = _BACKDROP
    scale = min(0.45, 0.45 * (p.width - 2 * PAD) / render.text_width(p.title, 0.45))  # narrow grids: smaller title
    render.put_text(image, p.title, (PAD, TITLE_H - 9), scale)
    for r, name in enumerate(classes):
        x0, y0, x1, y1 = p.label_box(r)
        render.put_text(image, name, (x0, (y0 + y1) // 2 + 5), 0.5)
        for c in range(p.cols):
            cx0, cy0, cx1, cy1 = p.cell_box(r, c)
            image[cy0 - 1 : cy1 + 1, cx0 - 1 : cx1 + 1] = _FRAME  # a 1 px frame just outside the cell
            image[cy0:cy1, cx0:cx1] = _EMPTY if c >= len(p.samples[r]) else _BACKDROP
    return image


def _paste(image: np.ndarray, p: Preview, row: int, col: int, picture: np.ndarray) -> None:
    k = p.cell // picture.shape[0]
    x0, y0, x1, y1 = p.cell_box(row, col)
    image[y0:y1, x0:x1] = picture.repeat(k, axis=0).repeat(k, axis=1)  # nearest: pixels stay crisp


def _write_video(p: Preview, video: Path, base: np.ndarray, cells: list) -> None:
    """The MP4 at ``video`` (``p.video``)."""
    frames_total = max(len(v) for row in cells for v in row)

    def frames():
        for t in range(frames_total):
            image = base.copy()
            render.put_text(image, f"frame {t + 1}/{frames_total}", (PAD, p.height - PAD - 2), 0.4)
            for r, row in enumerate(cells):
                for c, v in enumerate(row):
                    _paste(image, p, r, c, v[t])
            yield image

    partial = output.partial_path(video)
    try:
        if not render.write_mp4(str(partial), frames(), FPS, p.video_width, p.video_height):
            raise PreviewError(f"OpenCV cannot write MP4 video to {video}; check the path, or leave out --video")
        output.publish(partial, video, replace=True, option="--video")
    except OSError as e:
        raise PreviewError(f"could not write {video}: {output.reason(e)}; {output.advice(e)}") from None
    finally:
        partial.unlink(missing_ok=True)  # also when stopped by a signal
