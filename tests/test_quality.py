"""The quality measures (trajgen.quality) on arrays with known answers."""

import numpy as np
import pytest

from trajgen.content import quality


def lines(n, frames=16, rng=None, step=2.0):
    """Straight constant-speed paths at random places and angles."""
    rng = rng or np.random.default_rng(0)
    start = rng.uniform(10, 50, (n, 1, 2))
    angle = rng.uniform(0, 2 * np.pi, (n, 1))
    t = np.arange(frames)[None, :]
    speed = step * rng.uniform(0.5, 1.5, (n, 1))
    return start + np.stack([np.cos(angle) * speed * t, np.sin(angle) * speed * t], axis=-1)


def arcs(n, frames=16, rng=None):
    """Circular arcs at random places, radii, phases and senses."""
    rng = rng or np.random.default_rng(1)
    centre = rng.uniform(20, 44, (n, 1, 2))
    radius = rng.uniform(8, 16, (n, 1))
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    sense = rng.choice([-1.0, 1.0], (n, 1))
    angle = phase + sense * np.linspace(0, 1.5 * np.pi, frames)[None, :]
    return centre + radius[..., None] * np.stack([np.cos(angle), np.sin(angle)], axis=-1)


def test_near_duplicate_rate_counts_samples_sharing_a_rounded_path_with_any_class():
    base = lines(6)
    points = base.copy()
    points[0] = np.floor(base[0] + 0.5) - 0.2
    points[1] = np.floor(base[0] + 0.5) + 0.2  # 0.4 px from sample 0: the same whole-pixel path
    points[4] = points[3]  # identical, other class
    labels = np.array([0, 0, 0, 1, 0, 1])
    rate = quality.near_duplicate_rate(points, labels, 3)
    assert rate.shape == (3,)
    np.testing.assert_allclose(rate[:2], [3 / 4, 1 / 2])
    assert np.isnan(rate[2])  # no samples of class 2


def test_near_duplicate_rate_coarser_pixels_merge_more():
    points = np.zeros((2, 4, 2))
    points[1] += 1.2
    labels = np.array([0, 0])
    assert quality.near_duplicate_rate(points, labels, 1, pixels=1.0)[0] == 0
    assert quality.near_duplicate_rate(points, labels, 1, pixels=4.0)[0] == 1


def test_step_within_diameter_per_class():
    points = np.zeros((2, 3, 2))
    points[0, :, 0] = [0, 5, 16]  # steps 5 and 11
    points[1, :, 1] = [0, 3, 6]  # steps 3 and 3
    share = quality.step_within_diameter(points, np.array([0, 1]), 2, diameter=10.0)
    np.testing.assert_allclose(share, [0.5, 1.0])
    np.testing.assert_allclose(quality.step_lengths(points), [[5, 11], [3, 3]])


def test_coverage_is_the_larger_bbox_side_over_the_frame():
    points = np.array([[[10, 10], [42, 26]], [[0, 0], [8, 32]]], float)
    np.testing.assert_allclose(quality.coverage(points, 64), [0.5, 0.5])
    np.testing.assert_allclose(quality.coverage(points, (32, 64)), [1.0, 0.5])
    within = quality.coverage_within_tol(points, np.array([0, 1]), 2, 64, target=0.55, tol=0.1)
    np.testing.assert_allclose(within, [1.0, 1.0])
    within = quality.coverage_within_tol(points, np.array([0, 1]), 2, 64, target=0.7, tol=0.1)
    np.testing.assert_allclose(within, [0.0, 0.0])


def test_single_frame_probe_sees_position_shortcuts_and_not_honest_data():
    rng = np.random.default_rng(3)
    n, frames = 4000, 6
    labels = np.arange(n) % 4
    # shortcut: the class decides the quadrant at frame 2, elsewhere the dot is anywhere
    points = rng.uniform(0, 64, (n, frames, 2))
    points[:, 2, 0] = 32 * (labels % 2) + rng.uniform(0, 32, n)
    points[:, 2, 1] = 32 * (labels // 2) + rng.uniform(0, 32, n)
    by_frame = quality.single_frame_probe(points, labels, 4, 64)
    assert by_frame.shape == (frames,)
    assert by_frame[2] == 1.0
    assert np.all(np.delete(by_frame, 2) < 0.32)  # chance is 0.25
    assert quality.single_frame_probe(points, labels, 4, 64, frame=2) == 1.0
    again = quality.single_frame_probe(points, labels, 4, 64, seed=0)
    np.testing.assert_array_equal(by_frame, again)


def test_motion_probe_tells_lines_from_arcs_wherever_they_are():
    n = 2000
    points = np.concatenate([lines(n), arcs(n)])
    labels = np.repeat([0, 1], n)
    assert quality.motion_probe(points, labels, 2) >= 0.98
    # the same paths with shuffled labels: nothing to learn
    shuffled = np.random.default_rng(0).permutation(labels)
    assert quality.motion_probe(points, shuffled, 2) < 0.6


def test_motion_features_ignore_placement_scale_and_turn():
    points = arcs(50)
    angle = 0.7
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = 2.5 * points @ rotation.T + np.array([13.0, -4.0])
    np.testing.assert_allclose(quality.motion_features(moved), quality.motion_features(points), atol=1e-6)


def test_accumulator_gives_the_same_figures_as_the_functions_on_all_arrays():
    points = np.concatenate([lines(300), arcs(300)]).astype(np.float32)
    labels = np.repeat([0, 1], 300)
    order = np.random.default_rng(0).permutation(600)
    points, labels = points[order], labels[order]
    acc = quality.QualityAccumulator(2, size=64, diameter=10.0, target_coverage=0.5)
    for k in range(0, 600, 250):  # three "shards"
        acc.add(points[k : k + 250], labels[k : k + 250])
    result = acc.result()
    assert result["samples"] == 600 and result["class_counts"] == [300, 300]
    np.testing.assert_allclose(result["near_duplicate_rate"], quality.near_duplicate_rate(points, labels, 2))
    np.testing.assert_allclose(result["step_within_diameter"], quality.step_within_diameter(points, labels, 2, 10.0))
    np.testing.assert_allclose(result["coverage_within_tol"], quality.coverage_within_tol(points, labels, 2, 64, 0.5))
    by_frame = quality.single_frame_probe(points, labels, 2, 64)
    assert result["single_frame_probe_by_frame"] == pytest.approx(by_frame.tolist())
    assert result["single_frame_probe_accuracy"] == pytest.approx(by_frame.max())
    assert result["motion_probe_accuracy"] == pytest.approx(quality.motion_probe(points, labels, 2))
    steps = quality.step_lengths(points)
    assert result["max_step"] == pytest.approx([steps[labels == 0].max(), steps[labels == 1].max()])


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match=r"\(n, T, 2\)"):
        quality.coverage(np.zeros((3, 2)), 64)


# ---------------------------------------------------------------- the default distribution

DIVERSITY_SAMPLES = 4000


@pytest.fixture(scope="module")
def default_points():
    """points_2d and labels of the first DIVERSITY_SAMPLES samples of the default dataset."""
    from trajgen import GenerationConfig, make_sample

    config = GenerationConfig(seed=2718)  # a seed nothing was tuned on
    samples = [make_sample(config, i) for i in range(DIVERSITY_SAMPLES)]
    return config, np.stack([s.points_2d for s in samples]), np.array([s.label for s in samples])


def test_default_paths_are_not_near_duplicates(default_points):
    config, points, labels = default_points
    assert quality.near_duplicate_rate(points, labels, 4).max() <= 0.01
    assert quality.near_duplicate_rate(points, labels, 4, pixels=2.0).max() <= 0.01


def test_default_steps_stay_within_the_dot_diameter(default_points):
    config, points, labels = default_points
    within = quality.step_within_diameter(points, labels, 4, 2 * config.radius)
    assert within.min() >= 0.99, within


def test_default_coverage_is_near_the_target_for_every_class(default_points):
    config, points, labels = default_points
    within = quality.coverage_within_tol(points, labels, 4, config.size, config.coverage)
    assert within.min() >= 0.9, within


def test_no_single_frame_tells_the_class_but_the_motion_does(default_points):
    config, points, labels = default_points
    by_frame = quality.single_frame_probe(points, labels, 4, config.size)
    assert by_frame.max() <= 0.45, by_frame.round(2)
    assert quality.motion_probe(points, labels, 4) >= 0.95


def test_framing_uses_roll_scale_and_placement(default_points):
    """Not one framing for all: the coverage spreads over its tolerance, the path's box
    centre moves, and the direction of the whole path turns all the way round."""
    config, points, labels = default_points
    cover = quality.coverage(points, config.size)
    assert cover.min() < config.coverage - 0.08 and cover.max() > config.coverage + 0.08
    centre = 0.5 * (points.max(axis=1) + points.min(axis=1))
    assert np.ptp(centre, axis=0).min() >= 8
    chord = points[:, -1] - points[:, 0]
    heading = np.degrees(np.arctan2(chord[:, 1], chord[:, 0]))[labels == 0]
    assert np.histogram(heading, bins=8, range=(-180, 180))[0].min() > 0.05 * len(heading)
