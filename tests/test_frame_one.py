"""One path framed alone (make_sample's case) gives exactly its row of a batch (a shard's case):
the same camera, the same pixels, the same verdict, to the last bit."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trajgen import GenerationConfig, make_sample
from trajgen.content.bulk import make_samples
from trajgen.content.camera import UNIFORMS_PER_CAMERA, frame, frame_one


def batch(seed: int, m: int, frames: int):
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(m, frames, 3)) * rng.uniform(0.01, 50, (m, 1, 1)) + rng.normal(size=(m, 1, 3)) * 10
    points[0] = points[0, :1]  # a path that stands still: cannot be framed
    normal = rng.normal(size=(m, 3))
    normal[1] = (0.0, 0.0, 1.0)  # looking straight down
    u = rng.uniform(size=(m, UNIFORMS_PER_CAMERA))
    tilt = rng.choice([0.0, 10.0, 30.0, 60.0], size=m)
    return points, normal, u, tilt


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    frames=st.sampled_from([2, 4, 16, 17]),
    size=st.sampled_from([16, 64, 129]),
    roll=st.sampled_from([0.0, 45.0, 180.0]),
    placement=st.sampled_from([0.0, 1.0]),
)
def test_one_path_framed_alone_is_its_row_of_the_batch(seed, frames, size, roll, placement):
    config = GenerationConfig(frames=frames, size=size, roll=roll, placement=placement)
    points, normal, u, tilt = batch(seed, 24, frames)
    points_2d, camera, framed = frame(points, normal, u, config, tilt)
    for i in range(len(points)):
        one_2d, one_camera, one_framed = frame_one(points[i], normal[i], u[i], config, float(tilt[i]))
        assert one_framed == framed[i], i
        if one_framed:
            np.testing.assert_array_equal(one_2d, points_2d[i])
            np.testing.assert_array_equal(one_camera, camera[i])


@pytest.mark.parametrize("style", ["dot", "trail"])
def test_make_sample_is_still_the_stored_row(style):
    config = GenerationConfig(style=style, seed=5)
    indices = np.random.default_rng(1).choice(10**9, size=40, replace=False)
    rows = make_samples(config, indices)
    for k, i in enumerate(indices.tolist()):
        s = make_sample(config, i)
        np.testing.assert_array_equal(s.video, rows.videos[k])
        np.testing.assert_array_equal(s.points_2d, rows.points_2d[k])
        np.testing.assert_array_equal(s.camera, rows.camera[k])
        np.testing.assert_array_equal(s.trajectory_3d, rows.trajectory_3d[k])
        assert (s.description, s.redraws) == (rows.descriptions[k], rows.redraws[k])


def test_a_path_that_cannot_be_framed_alone_keeps_the_batch_shapes():
    config = GenerationConfig(frames=8)
    points, normal, u, tilt = batch(7, 2, 8)  # row 0 stands still
    points_2d, camera, framed = frame(points[:1], normal[:1], u[:1], config, tilt[:1])
    assert points_2d.shape == (1, 8, 2) and camera.shape == (1, 15) and framed.tolist() == [False]


def test_make_sample_takes_numpy_integers_and_numpy_floats_in_the_config():
    config = GenerationConfig(placement=np.float32(0.3), dot_radius=np.float32(4.3), coverage=np.float64(0.6), seed=4)
    assert all(type(getattr(config, f)) is float for f in ("placement", "dot_radius", "coverage"))
    rows = make_samples(config, [5, 6])
    for k, i in enumerate([np.int64(5), np.int32(6)]):
        s = make_sample(config, i)
        assert s.index == int(i) and type(s.index) is int
        np.testing.assert_array_equal(s.video, rows.videos[k])
        np.testing.assert_array_equal(s.camera, rows.camera[k])
