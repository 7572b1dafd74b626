"""Reading a run through the public reader: open_run, samples, arrays, labels, torch."""

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest

import trajgen
from trajgen import GenerationConfig, make_sample, open_run
from trajgen.making import generate
from trajgen.store.rundir import RunError
from trajgen.store.shards import SHARD_KEYS, read_shard

SMALL = GenerationConfig(n=42, checkpoint_every=10, seed=5, frames=6, size=16)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "run"
    generate(SMALL, out, workers=1)
    return out


def shard_contents(run_dir):
    """Every shard concatenated in index order, read directly (not through the reader)."""
    parts = [read_shard(p) for p in sorted((run_dir / "shards").glob("shard-*.npz"))]
    return {key: np.concatenate([p[key] for p in parts]) for key in SHARD_KEYS}


def test_open_run_describes_the_run(run_dir):
    run = open_run(run_dir)
    assert len(run) == 42
    assert run.classes == SMALL.classes
    assert run.config == SMALL
    assert run.committed_shards == 5 and run.total_shards == 5 and run.complete
    assert run.total_samples == 42
    assert "42" in repr(run) and "5/5" in repr(run)


def test_samples_round_trip_against_shards(run_dir):
    run, whole = open_run(run_dir), shard_contents(run_dir)
    for i in (0, 9, 10, 27, 41, -1):
        s = run[i]
        row = i % 42
        assert isinstance(s, trajgen.Sample)
        assert s.index == whole["index"][row] == row
        assert s.label == whole["labels"][row] and s.class_name == SMALL.classes[s.label]
        np.testing.assert_array_equal(s.video, whole["videos"][row])
        np.testing.assert_array_equal(s.trajectory_3d, whole["trajectory_3d"][row])
        np.testing.assert_array_equal(s.points_2d, whole["points_2d"][row])
        np.testing.assert_array_equal(s.camera, whole["camera"][row])
        assert s.equation == whole["equations"][row] and s.description == whole["descriptions"][row]


def test_samples_equal_make_sample(run_dir):
    run = open_run(run_dir)
    for i in (3, 40):
        a, b = run[i], make_sample(SMALL, i)
        np.testing.assert_array_equal(a.video, b.video)
        np.testing.assert_array_equal(a.trajectory_3d, b.trajectory_3d)
        assert a.equation == b.equation and a.description == b.description


def test_out_of_range_index_raises_index_error(run_dir):
    run = open_run(run_dir)
    with pytest.raises(IndexError, match="42 samples"):
        run[42]
    with pytest.raises(IndexError):
        run[-43]


def test_iteration_in_index_order(run_dir):
    whole = shard_contents(run_dir)
    samples = list(open_run(run_dir))
    assert [s.index for s in samples] == list(range(42))
    np.testing.assert_array_equal(np.stack([s.video for s in samples]), whole["videos"])


def test_iter_shards_yields_each_shard(run_dir):
    shards = list(open_run(run_dir).iter_shards())
    assert len(shards) == 5
    for k, arrays in enumerate(shards):
        expected = read_shard(run_dir / "shards" / f"shard-{k:05d}.npz")
        for key in SHARD_KEYS:
            np.testing.assert_array_equal(arrays[key], expected[key])


def test_labels_and_arrays(run_dir):
    run, whole = open_run(run_dir), shard_contents(run_dir)
    np.testing.assert_array_equal(run.labels, whole["labels"])
    assert run.labels.dtype == np.int64
    everything = run.arrays()
    for key in SHARD_KEYS:
        np.testing.assert_array_equal(everything[key], whole[key])
    picked = [41, 0, 15, 15, 22]
    batch = run.arrays(picked)
    for key in SHARD_KEYS:
        np.testing.assert_array_equal(batch[key], whole[key][picked])
    only = run.arrays([1, 2], keys=("videos", "labels"))
    assert set(only) == {"videos", "labels"}


def test_labels_load_no_videos(run_dir, monkeypatch):
    import trajgen.use.dataset as dataset

    def no_decoding(*args, **kwargs):
        raise AssertionError("labels decoded a whole shard")

    monkeypatch.setattr(dataset, "read_shard", no_decoding)
    assert open_run(run_dir).labels.shape == (42,)


def test_random_access_keeps_a_small_lru(run_dir):
    run = open_run(run_dir, cache_shards=2)
    for i in (0, 10, 20, 30, 40, 0, 41):
        run[i]
    assert run.cached_shards <= 2


def test_in_progress_run_reads_committed_shards_only(run_dir, tmp_path):
    import shutil

    partial = tmp_path / "partial"
    shutil.copytree(run_dir, partial)
    manifest = json.loads((partial / "manifest.json").read_text())
    manifest["shards"] = [manifest["shards"][0], manifest["shards"][2]]  # shard 1 not committed yet
    manifest["status"] = "running"
    (partial / "manifest.json").write_text(json.dumps(manifest))
    run = open_run(partial)
    assert not run.complete and run.committed_shards == 2 and run.total_shards == 5
    assert len(run) == 20
    assert [s.index for s in run] == list(range(10)) + list(range(20, 30))
    assert run[10].index == 20
    assert "2/5" in repr(run)
    np.testing.assert_array_equal(run.labels, shard_contents(run_dir)["labels"][list(range(10)) + list(range(20, 30))])


def test_open_run_errors(tmp_path):
    with pytest.raises(RunError, match="does not exist"):
        open_run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunError, match="not a trajgen run"):
        open_run(tmp_path / "empty")


def test_open_run_is_picklable(run_dir):
    run = open_run(run_dir)
    run[0]
    clone = pickle.loads(pickle.dumps(run))
    np.testing.assert_array_equal(clone[5].video, run[5].video)


def test_import_trajgen_does_not_import_torch(run_dir):
    code = (
        "import sys, trajgen, trajgen.use.dataset, trajgen.use.verify, trajgen.use.export, trajgen.use.preview, trajgen.cli\n"
        f"run = trajgen.open_run({str(run_dir)!r}); run[0]; run.labels\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.fixture
def torch():
    return pytest.importorskip("torch", reason="torch is not installed (pip install 'trajgen[torch]')")


def test_torch_dataset_items(run_dir, torch):
    ds = open_run(run_dir).torch_dataset()
    assert len(ds) == 42
    video, label = ds[7]
    assert video.dtype == torch.float32 and tuple(video.shape) == (3, 6, 16, 16)
    assert 0.0 <= float(video.min()) and float(video.max()) <= 1.0
    expected = make_sample(SMALL, 7)
    np.testing.assert_allclose(video.numpy(), expected.video.transpose(3, 0, 1, 2) / 255.0, rtol=0, atol=1e-7)
    assert label == expected.label


def test_torch_dataset_frames_takes_the_first_frames(run_dir, torch):
    ds = open_run(run_dir).torch_dataset(frames=5)
    assert tuple(ds[0][0].shape) == (3, 5, 16, 16)
    with pytest.raises(ValueError, match="frames"):
        open_run(run_dir).torch_dataset(frames=7)


def test_torch_dataset_in_a_dataloader_with_two_workers(run_dir, torch):
    from torch.utils.data import DataLoader

    ds = open_run(run_dir).torch_dataset()
    assert isinstance(ds, torch.utils.data.Dataset)
    loader = DataLoader(ds, batch_size=8, shuffle=False, num_workers=2)
    videos, labels = zip(*loader)
    videos, labels = torch.cat(videos), torch.cat(labels)
    whole = shard_contents(run_dir)
    assert tuple(videos.shape) == (42, 3, 6, 16, 16)
    np.testing.assert_array_equal(labels.numpy(), whole["labels"])
    np.testing.assert_array_equal(
        (videos * 255).round().to(torch.uint8).numpy(), whole["videos"].transpose(0, 4, 1, 2, 3)
    )


def test_shard_sampler_shuffles_shard_by_shard(run_dir, torch):
    ds = open_run(run_dir).torch_dataset()
    sampler = ds.shard_sampler(seed=1)
    first, second = list(sampler), list(sampler)
    assert sorted(first) == list(range(42)) and sorted(second) == list(range(42))
    assert first != second  # a new order each epoch
    shard_of = [i // 10 for i in first]
    changes = sum(a != b for a, b in zip(shard_of, shard_of[1:]))
    assert changes == 4  # each shard's samples come together


def test_missing_shard_is_a_clear_error(run_dir, tmp_path):
    import shutil

    from trajgen.errors import CorruptShardError

    broken = tmp_path / "broken"
    shutil.copytree(run_dir, broken)
    (broken / "shards" / "shard-00003.npz").unlink()
    run = open_run(broken)
    with pytest.raises(CorruptShardError, match="shard-00003.npz.*trajgen verify"):
        _ = run.labels
    with pytest.raises(CorruptShardError, match="shard-00003.npz"):
        run[35]
    assert run[5].index == 5


def test_shard_sampler_with_workers_decodes_each_shard_once(run_dir, torch, tmp_path, monkeypatch):
    """Every worker used to decode every shard: batches go to the workers in turn, each batch
    from any shard. Told the loader's workers and batch size, the sampler gives each worker its own shards."""
    from torch.utils.data import DataLoader

    import trajgen.use.dataset

    log = tmp_path / "decodes.txt"

    def logged_read_shard(path, *keys):
        with open(log, "a") as f:  # the workers are forked: they log through a file
            f.write(f"{path}\n")
        return read_shard(path, *keys)

    monkeypatch.setattr(trajgen.use.dataset, "read_shard", logged_read_shard)
    ds = open_run(run_dir).torch_dataset()
    for seed in (0, 1):
        log.write_text("")
        sampler = ds.shard_sampler(seed=seed, num_workers=2, batch_size=4)
        loader = DataLoader(ds, batch_size=4, sampler=sampler, num_workers=2)
        labels = torch.cat([label for _, label in loader])
        assert len(labels) == 42 and sorted(list(sampler)) == list(range(42))
        decodes = log.read_text().splitlines()
        assert len(decodes) <= 5 + 1, decodes  # 5 shards: once each, one more where the workers' shares meet
