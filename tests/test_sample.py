import hashlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import coverage, straightness
from trajgen import GenerationConfig, make_sample
from trajgen.motions import MOTIONS

DEFAULT = GenerationConfig()


def in_frame_with_margin(points, size, radius):
    return bool(np.all(points >= radius) and np.all(points <= size - 1 - radius))


def test_sample_has_the_documented_fields():
    s = make_sample(DEFAULT, 5)
    assert s.video.dtype == np.uint8 and s.video.shape == (16, 64, 64, 3)
    assert s.trajectory_3d.dtype == np.float32 and s.trajectory_3d.shape == (16, 3)
    assert s.points_2d.dtype == np.float32 and s.points_2d.shape == (16, 2)
    assert s.camera.dtype == np.float32 and s.camera.ndim == 1
    assert s.label == 1 and s.class_name == "circular" and s.index == 5
    assert isinstance(s.equation, str) and "=" in s.equation
    assert isinstance(s.description, str) and s.description.endswith(".")


def test_registry_order_is_the_contract():
    assert list(MOTIONS)[:4] == ["linear", "circular", "helical", "parabolic"]


def test_class_of_index_is_fixed_by_index():
    for i in range(12):
        assert make_sample(DEFAULT, i).label == i % 4


def test_deterministic_and_independent_of_call_order():
    forward = [make_sample(DEFAULT, i) for i in range(20)]
    alone = make_sample(DEFAULT, 13)
    backward = {i: make_sample(DEFAULT, i) for i in reversed(range(20))}
    for s in (alone, backward[13]):
        np.testing.assert_array_equal(s.video, forward[13].video)
        np.testing.assert_array_equal(s.trajectory_3d, forward[13].trajectory_3d)
        np.testing.assert_array_equal(s.camera, forward[13].camera)
        assert s.equation == forward[13].equation


def test_changing_only_the_seed_changes_the_sample():
    a = make_sample(DEFAULT, 3)
    b = make_sample(DEFAULT.replace(seed=43), 3)
    assert a.label == b.label
    assert not np.array_equal(a.video, b.video)
    assert not np.array_equal(a.trajectory_3d, b.trajectory_3d)


def test_layout_fields_do_not_change_samples():
    a = make_sample(DEFAULT, 77)
    b = make_sample(DEFAULT.replace(n=100, checkpoint_every=7, compress_level=6), 77)
    np.testing.assert_array_equal(a.video, b.video)


def test_thousand_samples_are_all_unique():
    digests = {hashlib.sha256(make_sample(DEFAULT, i).video.tobytes()).hexdigest() for i in range(1000)}
    assert len(digests) == 1000


def test_unaugmented_samples_are_unique_too():
    config = DEFAULT.replace(augment_prob=0.0)
    digests = {hashlib.sha256(make_sample(config, i).video.tobytes()).hexdigest() for i in range(400)}
    assert len(digests) == 400


def test_class_balance_in_any_contiguous_range():
    labels = np.array([make_sample(DEFAULT, i).label for i in range(1000, 1999)])
    counts = np.bincount(labels, minlength=4)
    assert counts.max() - counts.min() <= 1


@pytest.fixture(scope="module")
def by_class():
    samples = [make_sample(DEFAULT, i) for i in range(800)]
    return {name: [s for s in samples if s.class_name == name] for name in DEFAULT.classes}


def test_framing_coverage_and_visibility_per_class(by_class):
    for name, samples in by_class.items():
        cov = np.array([coverage(s.points_2d, 64) for s in samples])
        within = np.mean(np.abs(cov - 0.7) <= 0.1)
        assert within >= 0.9, (name, within)
        assert all(in_frame_with_margin(s.points_2d, 64, 5.0) for s in samples), name


def test_classes_are_visibly_different(by_class):
    median = {name: np.median([straightness(s.points_2d) for s in samples]) for name, samples in by_class.items()}
    assert median["linear"] <= 1.5, median
    assert median["parabolic"] >= 4.0, median
    assert median["circular"] >= 4.0, median
    assert median["helical"] >= 4.0, median


def test_redraws_are_rare_and_similar_across_classes(by_class):
    rates = {name: np.mean([s.redraws for s in samples]) for name, samples in by_class.items()}
    assert max(rates.values()) <= 0.05, rates


def test_dot_is_drawn_blue_on_white_where_the_point_projects():
    s = make_sample(DEFAULT, 2)
    for t in (0, 15):
        x, y = np.rint(s.points_2d[t]).astype(int)
        assert tuple(s.video[t, y, x]) == (0, 0, 255)
    assert tuple(s.video[0, 0, 0]) == (255, 255, 255)


def test_dot_colour_never_depends_on_class():
    colours = set()
    for i in range(8):
        s = make_sample(DEFAULT, i)
        x, y = np.rint(s.points_2d[0]).astype(int)
        colours.add(tuple(s.video[0, y, x]))
    assert colours == {(0, 0, 255)}


def test_subpixel_rendering_is_anti_aliased():
    s = make_sample(DEFAULT, 1)
    values = np.unique(s.video[..., 0])
    assert len(values) > 10  # edge pixels take intermediate shades


def test_trail_style_draws_fainter_older_positions():
    s = make_sample(DEFAULT.replace(style="trail"), 6)
    dot = make_sample(DEFAULT, 6)
    np.testing.assert_array_equal(s.points_2d, dot.points_2d)
    t = 10
    assert (s.video[t] != 255).any(axis=-1).sum() > (dot.video[t] != 255).any(axis=-1).sum()
    x, y = np.rint(s.points_2d[t - 4]).astype(int)
    old = s.video[t, y, x]
    newest = s.video[t, *np.rint(s.points_2d[t][::-1]).astype(int)]
    if np.hypot(*(s.points_2d[t] - s.points_2d[t - 4])) > 2 * DEFAULT.radius:
        assert old[0] > newest[0]  # older positions are paler (closer to white)


def test_render_scales_dot_radius_with_size():
    s = make_sample(DEFAULT.replace(size=128), 0)
    assert s.video.shape == (16, 128, 128, 3)
    dark = (s.video[0] < 128).any(axis=-1).sum()
    assert 250 < dark < 400  # a filled disc of radius 10 covers about 314 pixels


configs = st.builds(
    GenerationConfig,
    seed=st.integers(0, 2**32),
    frames=st.integers(2, 24),
    size=st.integers(8, 96),
    coverage=st.floats(0.05, 1.0),
    noise_scale=st.floats(0.0, 1.0),
    augment_prob=st.floats(0.0, 1.0),
    style=st.sampled_from(["dot", "trail"]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=configs, index=st.integers(0, 10**9))
def test_any_config_is_in_frame_finite_deterministic_and_covered(config, index):
    s = make_sample(config, index)
    assert s.video.shape == (config.frames, config.size, config.size, 3)
    assert np.isfinite(s.trajectory_3d).all() and np.isfinite(s.points_2d).all() and np.isfinite(s.camera).all()
    assert in_frame_with_margin(s.points_2d, config.size, config.radius)
    target = min(config.coverage, (config.size - 1 - 2 * config.radius) / config.size)
    assert abs(coverage(s.points_2d, config.size) - target) <= 0.1
    again = make_sample(config, index)
    np.testing.assert_array_equal(s.video, again.video)
    np.testing.assert_array_equal(s.points_2d, again.points_2d)


def test_rendering_into_a_given_array_gives_the_same_video():
    buffer = np.zeros((3, 16, 64, 64, 3), np.uint8)
    s = make_sample(DEFAULT, 9, out=buffer[1])
    np.testing.assert_array_equal(buffer[1], make_sample(DEFAULT, 9).video)
    assert s.video is buffer[1] or np.shares_memory(s.video, buffer)
    assert not buffer[0].any() and not buffer[2].any()
