"""preview: a labelled contact sheet (PNG) and the same grid as an MP4."""

import json
import shutil

import cv2
import numpy as np
import pytest

from runtools import run_cli
from trajgen import GenerationConfig
from trajgen.making import generate
from trajgen.store.rundir import RunError
from trajgen.use.preview import make_preview
from trajgen.use.verify import verify_run

SMALL = GenerationConfig(n=40, checkpoint_every=10, seed=31, frames=6, size=16)
WHITE = (255, 255, 255)


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    out = tmp_path_factory.mktemp("preview") / "run"
    generate(SMALL, out, workers=1)
    return out


def read_png(path):
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert img is not None, f"{path} is not a readable image"
    return img[:, :, ::-1]  # RGB


def ink(region):
    """Share of pixels that are not the white background."""
    return float(np.any(region != 255, axis=-1).mean())


def test_contact_sheet_grid(good, tmp_path):
    result = make_preview(good, tmp_path / "sheet.png", per_class=3)
    img = read_png(result.png)
    assert result.rows == 4 and result.cols == 3
    assert img.shape == (result.height, result.width, 3)
    assert result.cell >= 64 and result.cell % SMALL.size == 0  # upscaled by a whole factor
    for row in range(result.rows):
        for col in range(result.cols):
            x0, y0, x1, y1 = result.cell_box(row, col)
            assert (x1 - x0, y1 - y0) == (result.cell, result.cell)
            assert 0.005 < ink(img[y0:y1, x0:x1]) < 0.9, (row, col)  # the motion is drawn, on a background
        x0, y0, x1, y1 = result.label_box(row)
        assert ink(img[y0:y1, x0:x1]) > 0.005  # the class name is written
    assert result.samples == [[0, 4, 8], [1, 5, 9], [2, 6, 10], [3, 7, 11]]  # the first K of each class


def test_grid_grows_with_per_class(good, tmp_path):
    a = make_preview(good, tmp_path / "a.png", per_class=2)
    b = make_preview(good, tmp_path / "b.png", per_class=5)
    assert read_png(a.png).shape[0] == read_png(b.png).shape[0]
    assert b.width - a.width == 3 * (b.cell_box(0, 1)[0] - b.cell_box(0, 0)[0])


def test_default_output_is_in_the_run_and_does_not_upset_verify(good, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(good, run)
    result = make_preview(run)
    assert result.png == run / "preview.png" and result.video is None
    assert verify_run(run).ok


def test_mp4_plays_the_grid_frame_by_frame(good, tmp_path):
    result = make_preview(good, tmp_path / "s.png", video=tmp_path / "grid.mp4", per_class=2)
    cap = cv2.VideoCapture(str(result.video))
    try:
        assert cap.isOpened()
        frames = []
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(frame)
    finally:
        cap.release()
    assert len(frames) == SMALL.frames
    assert frames[0].shape[:2] == (result.video_height, result.video_width)
    assert result.video_width >= result.width - 1 and result.video_height >= result.height - 1
    assert not np.array_equal(frames[0], frames[-1])  # it moves
    assert all(ink(f) > 0.01 for f in frames)


def test_preview_of_a_run_in_progress(good, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(good, run)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["shards"] = [manifest["shards"][1]]
    manifest["status"] = "running"
    (run / "manifest.json").write_text(json.dumps(manifest))
    result = make_preview(run, per_class=4)
    assert result.samples == [[12, 16], [13, 17], [10, 14, 18], [11, 15, 19]]
    assert "1/4 shards" in result.title
    assert read_png(result.png).shape == (result.height, result.width, 3)


def test_preview_without_committed_shards(good, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(good, run)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["shards"], manifest["status"] = [], "running"
    (run / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RunError, match="no shards committed yet"):
        make_preview(run)
    assert not (run / "preview.png").exists()


def test_cli_preview(good, tmp_path):
    out, mp4 = tmp_path / "p.png", tmp_path / "p.mp4"
    result = run_cli("preview", good, "-o", out, "--video", mp4, "--per-class", 2)
    assert result.returncode == 0, result.stderr
    assert str(out) in result.stdout and str(mp4) in result.stdout
    assert read_png(out).ndim == 3 and mp4.stat().st_size > 0


def test_cli_preview_bad_input(tmp_path):
    missing = run_cli("preview", tmp_path / "nope")
    assert missing.returncode == 1 and missing.stderr.startswith("Error: ") and "does not exist" in missing.stderr
    bad = run_cli("preview", tmp_path, "--per-class", 0)
    assert bad.returncode == 2 and "per-class" in bad.stderr
    assert list(tmp_path.iterdir()) == []


def test_captions_sit_below_each_sample_never_over_it(good, tmp_path):
    """Every cell shows its sample's whole picture (the blended trail, upscaled), untouched: the
    '#index' and 'N frames' captions are written in a band of their own under it."""
    from trajgen import open_run
    from trajgen.content.render import blend_trail

    result = make_preview(good, tmp_path / "sheet.png", per_class=6)
    img = read_png(result.png)
    run = open_run(good)
    for row in range(result.rows):
        for col, index in enumerate(result.samples[row]):
            x0, y0, x1, y1 = result.cell_box(row, col)
            k = result.cell // SMALL.size
            picture = blend_trail(run[index].video, SMALL.background).repeat(k, axis=0).repeat(k, axis=1)
            np.testing.assert_array_equal(img[y0:y1, x0:x1], picture, err_msg=f"#{index}")
            bx0, by0, bx1, by1 = result.caption_box(row, col)
            assert (bx0, bx1) == (x0, x1) and by0 >= y1 + 1 and ink(img[by0:by1, bx0:bx1]) > 0.02  # the captions
