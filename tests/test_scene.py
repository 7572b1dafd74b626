"""Harder data on request: --appearance varied, --distractors K, --occluders K (with --max-hidden).

Each knob is off by default (the default bytes do not move: test_golden_shards.py), drawn per
sample from the sample's own stream independently of its class, stored in arrays and in the
description, and made by make_sample exactly as a shard stores it."""

import json
import math
import re

import numpy as np
import pytest
from click.testing import CliRunner

from trajgen import GenerationConfig, make_sample
from trajgen.cli import main
from trajgen.content.bulk import make_samples
from trajgen.content.scene import APPEARANCE_COLUMNS, DISTRACTOR_COLUMNS, MIN_CONTRAST, OCCLUDER_COLUMNS, luma
from trajgen.errors import ConfigError
from trajgen.making import generate
from trajgen.use.dataset import open_run
from trajgen.use.verify import verify_run

HARD = GenerationConfig(
    n=48, checkpoint_every=16, seed=11, frames=12, size=48, appearance="varied", distractors=2, occluders=1
)
SCENE_KEYS = ("appearance", "distractors", "distractor_points_2d", "occluders", "visible")


def test_default_config_is_unchanged_by_the_new_fields():
    c = GenerationConfig()
    assert (c.appearance, c.distractors, c.occluders, c.max_hidden) == ("plain", 0, 0, 0.25)
    # a default run's config and fingerprint are those trajgen 0.2.0 wrote
    assert not {"appearance", "distractors", "occluders", "max_hidden"} & set(c.to_dict())
    assert c.content_fingerprint() == "7b8b4561db99864983d3aa2b7c5025b0708338f171a548061146b17bc9b3bb05"
    s = make_sample(c, 3)
    assert s.appearance is None and s.distractors is None and s.occluders is None and s.visible is None


def test_knobs_round_trip_and_change_the_fingerprint():
    again = GenerationConfig.from_json(HARD.to_json())
    assert again == HARD
    for change in (
        dict(appearance="varied"),
        dict(distractors=1),
        dict(occluders=2),
        dict(occluders=1, max_hidden=0.1),
    ):
        c = GenerationConfig(**change)
        assert c.content_fingerprint() != GenerationConfig().content_fingerprint(), change


@pytest.mark.parametrize(
    "field, value, rule",
    [
        ("appearance", "fancy", "one of plain, varied"),
        ("distractors", 9, "an integer in [0, 8]"),
        ("distractors", -1, "an integer in [0, 8]"),
        ("occluders", 5, "an integer in [0, 4]"),
        ("max_hidden", 1.5, "a number in [0, 1]"),
    ],
)
def test_knobs_out_of_range_are_refused(field, value, rule):
    with pytest.raises(ConfigError, match=re.escape(rule)):
        GenerationConfig(**{field: value})


def test_cli_generate_with_knobs_and_a_bad_knob(tmp_path):
    run = tmp_path / "hard"
    result = CliRunner().invoke(
        main,
        ["generate", "--n", "8", "--checkpoint-every", "4", "--frames", "6", "--size", "32", "--out", str(run)]
        + ["--appearance", "varied", "--distractors", "2", "--occluders", "1", "--max-hidden", "0.2", "--quiet"],
    )
    assert result.exit_code == 0, result.output
    config = json.loads((run / "config.json").read_text())["config"]
    assert (config["appearance"], config["distractors"], config["occluders"], config["max_hidden"]) == (
        "varied",
        2,
        1,
        0.2,
    )
    bad = CliRunner().invoke(main, ["generate", "--n", "4", "--out", str(tmp_path / "b"), "--distractors", "12"])
    assert bad.exit_code == 2
    assert "distractors (--distractors) must be an integer in [0, 8], got 12" in bad.output
    assert not (tmp_path / "b").exists()
    help_text = CliRunner().invoke(main, ["generate", "--help"]).output
    for option in ("--appearance", "--distractors", "--occluders", "--max-hidden"):
        assert option in help_text


def test_arrays_have_the_documented_shapes_and_ranges():
    made = make_samples(HARD, range(40))
    n, t, size = 40, HARD.frames, HARD.size
    assert made.appearance.shape == (n, len(APPEARANCE_COLUMNS)) and made.appearance.dtype == np.float32
    assert made.distractors.shape == (n, 2, len(DISTRACTOR_COLUMNS))
    assert made.distractor_points_2d.shape == (n, 2, t, 2) and made.distractor_points_2d.dtype == np.float32
    assert made.occluders.shape == (n, 1, len(OCCLUDER_COLUMNS))
    assert made.visible.shape == (n, t) and made.visible.dtype == np.float32
    assert np.all((made.visible >= 0) & (made.visible <= 1))
    col = {name: k for k, name in enumerate(APPEARANCE_COLUMNS)}
    radius = made.appearance[:, col["radius_px"]]
    assert np.all((radius >= 0.7 * HARD.radius - 1e-4) & (radius <= 1.3 * HARD.radius + 1e-4))
    assert len(np.unique(np.round(radius, 3))) > 30  # drawn per sample from a continuous range
    dot = made.appearance[:, [col["dot_r"], col["dot_g"], col["dot_b"]]]
    for first in ("bg0", "bg1"):
        bg = made.appearance[:, [col[f"{first}_r"], col[f"{first}_g"], col[f"{first}_b"]]]
        assert np.all(np.abs(luma(dot) - luma(bg)) >= MIN_CONTRAST - 1e-3)
    kinds = set(made.appearance[:, col["background_kind"]].astype(int).tolist())
    assert kinds == {0, 1, 2}  # plain, gradient, texture
    assert set(made.appearance[:, col["shaded"]].tolist()) == {0.0, 1.0}
    # distractors keep their whole shape inside the frame
    reach = made.distractors[..., list(DISTRACTOR_COLUMNS).index("size_px")][..., None, None]
    pts = made.distractor_points_2d
    assert np.all(pts - reach >= -0.5) and np.all(pts + reach <= size - 0.5)
    assert set(made.distractors[..., 0].astype(int).ravel().tolist()) == {0, 1}  # squares and triangles
    # the dot is hidden (visible < 0.5) in at most max_hidden of its frames
    hidden = (made.visible < 0.5).sum(axis=1)
    assert np.all(hidden <= math.floor(HARD.max_hidden * t))
    assert np.any(made.visible < 1.0)  # occluders do cover the dot sometimes
    for text in made.descriptions:
        assert "Scene:" in text and "distractor" in text and "occluder" in text


def test_scene_draws_do_not_depend_on_the_class():
    """Sample i's scene is drawn from its own stream apart from the motion: relabelling the classes
    changes every sample's class but none of its appearance, distractors or occluders' draws."""
    flipped = HARD.replace(classes=tuple(reversed(HARD.classes)))
    a, b = make_samples(HARD, range(24)), make_samples(flipped, range(24))
    assert not np.array_equal(a.points_2d, b.points_2d)
    np.testing.assert_array_equal(a.appearance, b.appearance)
    np.testing.assert_array_equal(a.distractors, b.distractors)  # the class column is an index: drawn alike too


def test_make_sample_equals_the_stored_sample(tmp_path):
    run = tmp_path / "hard"
    generate(HARD, run, workers=2, check_space=False)
    assert verify_run(run).ok
    assert verify_run(run, deep=True).ok
    r = open_run(run)
    stored = r.arrays(keys=("videos", "points_2d", "descriptions") + SCENE_KEYS)
    rng = np.random.default_rng(0)
    for i in rng.choice(HARD.n, 8, replace=False).tolist():
        s = make_sample(HARD, i)
        np.testing.assert_array_equal(s.video, stored["videos"][i])
        np.testing.assert_array_equal(s.appearance, stored["appearance"][i])
        np.testing.assert_array_equal(s.distractors, stored["distractors"][i])
        np.testing.assert_array_equal(s.distractor_points_2d, stored["distractor_points_2d"][i])
        np.testing.assert_array_equal(s.occluders, stored["occluders"][i])
        np.testing.assert_array_equal(s.visible, stored["visible"][i])
        assert s.description == stored["descriptions"][i]
        got = r[i]
        np.testing.assert_array_equal(got.visible, s.visible)
    # a plain numpy reader sees the new members by name
    with np.load(sorted((run / "shards").glob("*.npz"))[0]) as z:
        assert set(SCENE_KEYS) <= set(z.files)


def test_visible_is_what_the_video_shows():
    """Where the stored visibility is 1 the dot's centre pixel is the scene without occluders; where it
    is 0 the pixel is the occluder's colour."""
    c = HARD.replace(distractors=0, occluders=3, max_hidden=0.5)
    bare = c.replace(occluders=0)
    made, seen = make_samples(c, range(60)), make_samples(bare, range(60))
    col = {name: k for k, name in enumerate(OCCLUDER_COLUMNS)}
    checked_hidden = checked_clear = 0
    for i in range(60):
        for t in range(c.frames):
            x, y = np.rint(made.points_2d[i, t]).astype(int)
            if made.visible[i, t] == 1.0:
                np.testing.assert_array_equal(made.videos[i, t, y, x], seen.videos[i, t, y, x])
                checked_clear += 1
            elif made.visible[i, t] == 0.0:
                colours = made.occluders[i][:, [col["r"], col["g"], col["b"]]]
                assert np.any(np.all(np.abs(colours - made.videos[i, t, y, x]) <= 1, axis=1))
                checked_hidden += 1
    assert checked_clear > 100 and checked_hidden >= 2


def test_occlusion_redraws_are_counted_and_keep_the_limit():
    c = HARD.replace(distractors=0, occluders=4, max_hidden=0.0)
    made = make_samples(c, range(40))
    assert np.all(made.visible >= 0.5)
    assert made.occlusion_redraws.sum() > 0
    assert make_sample(c, 5).occlusion_redraws == made.occlusion_redraws[5]


def test_plain_appearance_with_distractors_keeps_the_default_colours():
    c = GenerationConfig(n=8, frames=6, size=32, distractors=1)
    s = make_sample(c, 2)
    corner = s.video[0, 0, 0]
    np.testing.assert_array_equal(corner, [255, 255, 255])
    assert s.appearance is None and s.distractors.shape == (1, len(DISTRACTOR_COLUMNS))
    x, y = np.rint(s.points_2d[0]).astype(int)
    np.testing.assert_array_equal(s.video[0, y, x], [0, 0, 255])


def test_occlusion_redraws_reach_the_manifest_and_progress(tmp_path):
    c = GenerationConfig(n=24, checkpoint_every=8, seed=3, frames=8, size=32, occluders=4, max_hidden=0.0)
    run = tmp_path / "hidden"
    generate(c, run, workers=1, check_space=False)
    manifest = json.loads((run / "manifest.json").read_text())
    per_shard = [e["occlusion_redraws"] for e in manifest["shards"]]
    made = make_samples(c, range(c.n))
    assert per_shard == [int(made.occlusion_redraws[k * 8 : (k + 1) * 8].sum()) for k in range(3)]
    assert sum(per_shard) > 0
    assert f"occlusion redraws: {sum(per_shard):,}" in (run / "PROGRESS.txt").read_text()
    assert json.loads((run / "progress.json").read_text())["occlusion_redraws"] == sum(per_shard)
    status = CliRunner().invoke(main, ["status", str(run), "--json"])
    assert json.loads(status.output)["occlusion_redraws"] == sum(per_shard)
    plain = tmp_path / "plain"
    generate(c.replace(occluders=0), plain, workers=1, check_space=False)
    assert "occlusion redraws" not in (plain / "manifest.json").read_text() + (plain / "PROGRESS.txt").read_text()
    assert "occlusion_redraws" not in (plain / "manifest.json").read_text()


@pytest.fixture(scope="module")
def hard_run(tmp_path_factory):
    """4,000 samples with every knob on: enough for the probes to mean something."""
    run = tmp_path_factory.mktemp("scene") / "hard"
    config = GenerationConfig(n=4000, checkpoint_every=1000, seed=2718, appearance="varied", distractors=2, occluders=1)
    generate(config, run, workers=2, check_space=False)
    return run


def test_a_run_with_every_knob_passes_verify_and_meets_every_report_target(hard_run, tmp_path):
    from trajgen.use.report import make_report

    assert verify_run(hard_run).ok
    result = make_report(hard_run, tmp_path / "report")
    data = result.data
    assert data["all_passed"], result.summary
    assert data["appearance_probe_accuracy"] <= 0.30
    assert data["single_frame_probe_accuracy"] <= 0.45
    assert data["motion_probe_accuracy"] >= 0.95
    assert data["duplicate_videos"] == 0
    assert data["visible_frames"] >= 0.75
    assert data["passed"]["visible_frames"] is True
    page = (tmp_path / "report" / "report.html").read_text()
    for text in ("Appearance probe", "Dot visible", "scene: dot radius (px)", "scene: occluder area"):
        assert text in page


def test_the_appearance_probe_finds_a_look_that_gives_the_class_away():
    """The probe can fail: colour the background by class and it sees it at once."""
    from trajgen.content import quality

    made = make_samples(HARD.replace(distractors=0, occluders=0), range(400))
    videos = made.videos.copy()
    for label in range(4):
        videos[made.labels == label, :, :2, :2] = (60 * label, 0, 0)  # a class-coloured corner
    leaky = quality.appearance_features(videos)
    assert quality.appearance_probe(leaky, made.labels, 4) >= 0.9
    honest = quality.appearance_features(made.videos, made.appearance)
    assert quality.appearance_probe(honest, made.labels, 4) <= 0.35


def test_plain_runs_report_the_appearance_probe_at_chance_and_no_visibility_target(tmp_path):
    from trajgen.use.report import make_report

    run = tmp_path / "plain"
    generate(GenerationConfig(n=400, checkpoint_every=200, seed=4), run, workers=1, check_space=False)
    data = make_report(run).data
    assert data["appearance_probe_accuracy"] <= 0.30
    assert "visible_frames" not in data["passed"]


def test_distractors_fit_a_small_frame_with_a_large_dot():
    """Distractors fill 25-65% of the frame, but never more than a large dot leaves room for."""
    c = GenerationConfig(n=8, size=16, frames=6, dot_radius=3.9, coverage=0.4, distractors=2)
    made = make_samples(c, range(8))
    reach = made.distractors[..., list(DISTRACTOR_COLUMNS).index("size_px")][..., None, None]
    assert np.all(made.distractor_points_2d - reach >= -0.5) and np.all(made.distractor_points_2d + reach <= 15.5)


def test_a_gradient_runs_from_one_colour_to_the_other_across_the_frame():
    from trajgen.content.scene import backgrounds

    a = np.zeros((8, len(APPEARANCE_COLUMNS)))
    a[:, 6] = 1  # gradient
    a[:, 7:10], a[:, 10:13] = 0, 200
    a[:, 13] = 45.0 * np.arange(8)
    bg = backgrounds(a, 32)[..., 0].astype(int)
    for row, image in enumerate(bg):
        # each direction: the far edges are near the two colours, the centre halfway between them
        assert image.min() <= 10 and image.max() >= 190, (row, image.min(), image.max())
        assert abs(int(image[15:17, 15:17].mean()) - 100) <= 8, row
