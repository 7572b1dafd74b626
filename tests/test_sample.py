import hashlib
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import coverage, straightness
from trajgen import GenerationConfig, make_sample
from trajgen.content.camera import max_coverage
from trajgen.content.motions import MOTIONS

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
    newest = s.video[(t, *np.rint(s.points_2d[t][::-1]).astype(int))]
    if np.hypot(*(s.points_2d[t] - s.points_2d[t - 4])) > 2 * DEFAULT.radius:
        assert old[0] > newest[0]  # older positions are paler (closer to white)


def test_render_scales_dot_radius_with_size():
    s = make_sample(DEFAULT.replace(size=128), 0)
    assert s.video.shape == (16, 128, 128, 3)
    dark = (s.video[0] < 128).any(axis=-1).sum()
    assert 250 < dark < 400  # a filled disc of radius 10 covers about 314 pixels


def _fitting(**fields) -> GenerationConfig:
    """A config whose coverage is within what its frame allows (more is refused)."""
    cap = max_coverage(fields["size"], 5.0 * fields["size"] / 64)
    return GenerationConfig(**{**fields, "coverage": min(fields["coverage"], cap)})


configs = st.builds(
    _fitting,
    seed=st.integers(0, 2**32),
    frames=st.integers(2, 24),
    size=st.integers(8, 96),
    coverage=st.floats(0.05, 1.0),
    noise_scale=st.floats(0.0, 1.0),
    augment_prob=st.floats(0.0, 1.0),
    style=st.sampled_from(["dot", "trail"]),
    roll=st.floats(0.0, 180.0),
    coverage_jitter=st.floats(0.0, 0.5),
    placement=st.floats(0.0, 1.0),
    speed_variation=st.floats(0.0, 1.0),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=configs, index=st.integers(0, 10**9))
def test_any_config_is_in_frame_finite_deterministic_and_covered(config, index):
    s = make_sample(config, index)
    assert s.video.shape == (config.frames, config.size, config.size, 3)
    assert np.isfinite(s.trajectory_3d).all() and np.isfinite(s.points_2d).all() and np.isfinite(s.camera).all()
    assert in_frame_with_margin(s.points_2d, config.size, config.radius)
    target = min(config.coverage, max_coverage(config.size, config.radius))
    assert abs(coverage(s.points_2d, config.size) - target) <= config.coverage_jitter + 1e-5
    again = make_sample(config, index)
    np.testing.assert_array_equal(s.video, again.video)
    np.testing.assert_array_equal(s.points_2d, again.points_2d)


def test_rendering_into_a_given_array_gives_the_same_video():
    buffer = np.zeros((3, 16, 64, 64, 3), np.uint8)
    s = make_sample(DEFAULT, 9, out=buffer[1])
    np.testing.assert_array_equal(buffer[1], make_sample(DEFAULT, 9).video)
    assert s.video is buffer[1] or np.shares_memory(s.video, buffer)
    assert not buffer[0].any() and not buffer[2].any()


# ---------------------------------------------------------------- framing and pacing knobs

KNOBS_OFF = DEFAULT.replace(roll=0.0, coverage_jitter=0.0, placement=0.0, speed_variation=0.0)


@pytest.mark.parametrize(
    "field, value, rule",
    [
        ("roll", -1.0, "a number of degrees in [0, 180]"),
        ("roll", 181, "a number of degrees in [0, 180]"),
        ("coverage_jitter", 0.6, "a number in [0, 0.5]"),
        ("placement", 1.5, "a number in [0, 1]"),
        ("speed_variation", float("nan"), "a number in [0, 1]"),
        ("speed_variation", "fast", "a number in [0, 1]"),
    ],
)
def test_knobs_out_of_range_are_refused_with_the_option_name(field, value, rule):
    from trajgen import ConfigError

    with pytest.raises(ConfigError) as e:
        DEFAULT.replace(**{field: value})
    assert str(e.value).startswith(f"{field} (--{field.replace('_', '-')}) must be {rule}, got ")


def test_generate_refuses_an_out_of_range_knob_as_a_usage_error(tmp_path):
    from click.testing import CliRunner

    from trajgen.cli import main

    result = CliRunner().invoke(main, ["generate", "--n", "4", "--out", str(tmp_path / "r"), "--placement", "2"])
    assert result.exit_code == 2
    assert "placement (--placement) must be a number in [0, 1], got 2.0" in result.output
    assert not (tmp_path / "r").exists()


def test_knobs_are_content_fields_in_the_fingerprint():
    for field, value in (("roll", 90.0), ("coverage_jitter", 0.05), ("placement", 0.5), ("speed_variation", 0.5)):
        changed = DEFAULT.replace(**{field: value})
        assert changed.content_fingerprint() != DEFAULT.content_fingerprint(), field
        assert GenerationConfig.from_json(changed.to_json()) == changed


def test_knobs_off_frame_every_path_centred_upright_at_exactly_the_coverage():
    for i in range(40):
        s = make_sample(KNOBS_OFF, i)
        assert coverage(s.points_2d, 64) == pytest.approx(0.7, abs=1e-5)
        centre = 0.5 * (s.points_2d.max(axis=0) + s.points_2d.min(axis=0))
        np.testing.assert_allclose(centre, [31.5, 31.5], atol=1e-4)
        down = s.camera[9:12]
        assert down[2] <= 1e-6  # world z points up on screen (image y grows downwards)


def test_default_framing_moves_and_rolls_within_the_margin():
    centres, downs, covers = [], [], []
    for i in range(200):
        s = make_sample(DEFAULT, i)
        assert in_frame_with_margin(s.points_2d, 64, DEFAULT.radius)
        centres.append(0.5 * (s.points_2d.max(axis=0) + s.points_2d.min(axis=0)))
        downs.append(s.camera[11])
        covers.append(coverage(s.points_2d, 64))
    assert np.ptp(np.array(centres), axis=0).min() > 8
    assert min(downs) < -0.9 and max(downs) > 0.9  # upright and upside down both occur
    assert min(covers) < 0.62 and max(covers) > 0.78
    assert all(abs(c - 0.7) <= 0.1 for c in covers)


def _linear_steps(config, i):
    s = make_sample(config, i)
    assert s.class_name == "linear"
    return np.linalg.norm(np.diff(s.trajectory_3d.astype(np.float64), axis=0), axis=1)


def test_speed_variation_zero_keeps_a_linear_path_at_constant_speed():
    config = KNOBS_OFF.replace(augment_prob=0.0)
    for i in range(0, 40, 4):
        steps = _linear_steps(config, i)
        np.testing.assert_allclose(steps, steps.mean(), rtol=1e-4)


def test_default_pace_varies_along_a_linear_path_and_says_so():
    config = DEFAULT.replace(augment_prob=0.0)
    ratios = []
    for i in range(0, 400, 4):
        steps = _linear_steps(config, i)
        ratios.append(steps.max() / steps.min())
        s = make_sample(config, i)
        assert ("sin(πt)/π" in s.equation) == (ratios[-1] > 1.01), s.equation
    assert np.median(ratios) > 2


def test_equation_gives_the_filmed_path():
    """The printed parameters, pace included, reproduce the (unaugmented, noise-free) 3D path."""
    import math

    config = DEFAULT.replace(augment_prob=0.0)
    t = np.linspace(0, 1, config.frames)
    for i in range(0, 200, 4):
        s = make_sample(config, i)
        nums = [float(x) for x in re.findall(r"-?\d+\.\d+", s.equation)]
        k = 0.0
        if "sin(πt)/π" in s.equation:
            k = nums[-1] * (1 if "t + " in s.equation.split("with t ↦")[1] else -1)
        tt = t + k / math.pi * np.sin(math.pi * t)
        p0, v = np.array(nums[0:3]), np.array(nums[3:6])
        np.testing.assert_allclose(s.trajectory_3d, p0 + np.outer(tt, v), atol=0.02)
