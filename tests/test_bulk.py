"""Samples made in bulk: counter-based streams, many dots drawn at once, whole shards as arrays."""

import numpy as np
import pytest

from trajgen import GenerationConfig
from trajgen.content import streams
from trajgen.content.render import render_video, render_videos

# ---------------------------------------------------------------- streams keyed by (seed, index)


def test_a_sample_stream_does_not_depend_on_its_batch():
    indices = np.array([0, 1, 7, 123_456_789, 2**40 + 3])
    keys = streams.sample_keys(42, indices)
    batch = streams.uniforms(keys, 5, 20)
    for row, i in enumerate(indices):
        alone = streams.uniforms(streams.sample_keys(42, [i]), 0, 40)
        np.testing.assert_array_equal(alone[0, 5:25], batch[row])
    np.testing.assert_array_equal(streams.normals(keys, 3, 7)[2], streams.normals(keys[2:3], 3, 7)[0])


def test_streams_differ_by_seed_and_index_and_look_uniform():
    keys = streams.sample_keys(7, np.arange(20_000))
    assert len(set(keys.tolist())) == len(keys)
    assert len(set(streams.sample_keys(8, np.arange(20_000)).tolist()) & set(keys.tolist())) == 0
    u = streams.uniforms(keys, 0, 10)
    assert u.min() >= 0 and u.max() < 1
    counts = np.histogram(u, bins=20, range=(0, 1))[0]
    expected = u.size / 20
    assert ((counts - expected) ** 2 / expected).sum() < 60  # chi-square, 19 dof: p ≈ 1e-6
    assert abs(np.corrcoef(u[:, 0], u[:, 1])[0, 1]) < 0.03
    assert abs(np.corrcoef(u[:-1, 0], u[1:, 0])[0, 1]) < 0.03  # neighbouring samples
    z = streams.normals(keys, 10, 5)
    assert abs(z.mean()) < 0.02 and abs(z.std() - 1) < 0.02
    assert np.isfinite(z).all()


# ---------------------------------------------------------------- drawing many dots at once


@pytest.mark.parametrize(
    "config",
    [
        GenerationConfig(),
        GenerationConfig(size=32, color=(200, 30, 10), background=(0, 0, 0)),
        GenerationConfig(size=48, dot_radius=2.3, frames=5),
        GenerationConfig(size=96, dot_radius=11.7, background=(12, 250, 3)),
        GenerationConfig(style="trail", size=40),
    ],
)
def test_render_videos_draws_the_same_pixels_as_cv2_circle(config):
    rng = np.random.default_rng(config.size)
    margin = config.radius
    points = rng.uniform(margin, config.size - 1 - margin, (40, config.frames, 2))
    points[0, 0] = (margin, margin)
    points[0, 1] = (config.size - 1 - margin, config.size - 1 - margin)
    out = np.ones((40, config.frames, config.size, config.size, 3), np.uint8)
    render_videos(points, config, out)
    for video, p in zip(out, points):
        np.testing.assert_array_equal(video, render_video(p, config))


def test_render_videos_near_the_edge_falls_back_to_cv2():
    config = GenerationConfig(size=32)
    points = np.full((2, config.frames, 2), 16.0)
    points[1, 3] = (-3.0, 30.9)
    out = np.empty((2, config.frames, 32, 32, 3), np.uint8)
    render_videos(points, config, out)
    for video, p in zip(out, points):
        np.testing.assert_array_equal(video, render_video(p, config))


# ---------------------------------------------------------------- whole shards as arrays

from trajgen import make_sample  # noqa: E402
from trajgen.content.bulk import make_samples  # noqa: E402

SMALL = GenerationConfig(n=90, checkpoint_every=25, seed=11)


def _row(arrays, row):
    return (
        arrays.videos[row],
        arrays.trajectory_3d[row],
        arrays.points_2d[row],
        arrays.camera[row],
        arrays.equations[row],
        arrays.descriptions[row],
        int(arrays.labels[row]),
    )


def _same(a, b):
    for x, y in zip(a, b):
        if isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y)
            assert x.dtype == y.dtype
        else:
            assert x == y


def test_a_sample_does_not_depend_on_its_batch():
    everything = make_samples(SMALL, range(40))
    rng = np.random.default_rng(0)
    subset = rng.permutation(40)[:13]
    some = make_samples(SMALL, subset)
    for row, i in enumerate(subset.tolist()):
        _same(_row(some, row), _row(everything, i))


def test_make_sample_is_the_sample_stored_in_the_shard(tmp_path):
    from trajgen.making import generate

    generate(SMALL, tmp_path / "run", workers=1)
    rng = np.random.default_rng(5)
    for i in rng.choice(SMALL.n, 12, replace=False).tolist():
        with np.load(tmp_path / "run" / "shards" / f"shard-{i // 25:05d}.npz") as z:
            row = i - (i // 25) * 25
            stored = (
                z["videos"][row],
                z["trajectory_3d"][row],
                z["points_2d"][row],
                z["camera"][row],
                str(z["equations"][row]),
                str(z["descriptions"][row]),
                int(z["labels"][row]),
            )
            assert int(z["index"][row]) == i
        s = make_sample(SMALL, i)
        _same((s.video, s.trajectory_3d, s.points_2d, s.camera, s.equation, s.description, s.label), stored)


def test_a_shard_is_made_without_a_generator_per_sample(monkeypatch):
    from trajgen.making.shardmaker import build_shard_arrays

    def refuse(*args, **kwargs):
        raise AssertionError("a SeedSequence or Generator per sample")

    monkeypatch.setattr(np.random, "SeedSequence", refuse)
    monkeypatch.setattr(np.random, "Generator", refuse)
    arrays, counts, redraws = build_shard_arrays(SMALL, 1)
    assert arrays["videos"].shape == (25, SMALL.frames, SMALL.size, SMALL.size, 3)
    assert sum(counts.values()) == 25 and max(counts.values()) - min(counts.values()) <= 1


def test_make_samples_in_any_order_and_with_repeats():
    a = make_samples(SMALL, [7, 3, 7])
    _same(_row(a, 0), _row(a, 2))
    _same(_row(a, 1), _row(make_samples(SMALL, [3]), 0))
    assert a.index.tolist() == [7, 3, 7] and a.labels.tolist() == [3, 3, 3]


def test_make_samples_of_nothing_and_bad_index():
    from trajgen.errors import TrajgenError

    assert len(make_samples(SMALL, []).index) == 0
    with pytest.raises(TrajgenError, match="≥ 0"):
        make_samples(SMALL, [3, -1])


def test_runs_of_the_old_format_are_read_but_not_resumed(tmp_path):
    """Format 1 runs drew samples from a SeedSequence per index: this version cannot continue them."""
    import json

    import trajgen
    from trajgen.making import generate, resume
    from trajgen.store.manifest import read_manifest
    from trajgen.store.rundir import RunError

    run = tmp_path / "run"
    generate(SMALL, run, workers=1)
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["format"] == "trajgen-run/2"
    manifest["format"] = "trajgen-run/1"
    manifest["status"] = "running"
    manifest["shards"] = manifest["shards"][:2]
    (run / "manifest.json").write_text(json.dumps(manifest))
    (run / "shards" / "shard-00002.npz").unlink()
    (run / "shards" / "shard-00003.npz").unlink()
    before = {p.name: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}
    assert read_manifest(run)["format"] == "trajgen-run/1"
    assert len(trajgen.open_run(run)) == 50
    with pytest.raises(RunError, match="trajgen-run/1.*start a new run"):
        resume(run, workers=1)
    after = {p.name: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}
    assert after.keys() == before.keys() and all(after[k] == before[k] for k in before if k != "run.log")


def test_one_sample_key_in_python_integers_is_the_numpy_one():
    rng = np.random.default_rng(0)
    for seed in [0, 1, 42, 2**32 - 1, 2**63 + 5, 2**64 - 1]:
        indices = [0, 1, 2**31, 2**40 + 3, *rng.integers(0, 2**62, 20).tolist()]
        assert [int(streams.sample_key(seed, i)[0]) for i in indices] == streams.sample_keys(seed, indices).tolist()
