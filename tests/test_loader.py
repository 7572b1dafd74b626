"""The training stream: Run.torch_stream() over real runs, in real DataLoaders with worker processes."""

import json
import shutil

import numpy as np
import pytest

from trajgen import GenerationConfig, open_run
from trajgen.errors import CorruptShardError
from trajgen.making import generate
from trajgen.store.shards import SHARD_KEYS, read_members, read_shard

torch = pytest.importorskip("torch", reason="torch is not installed (pip install 'trajgen[torch]')")
from torch.utils.data import DataLoader  # noqa: E402

from loader_runs import resumed, run_dir, stored  # noqa: E402,F401 (fixtures)

pytestmark = pytest.mark.filterwarnings("ignore:'set_vital' is deprecated")  # inside torchdata's StatefulDataLoader


def epoch(stream, num_workers=0, batch_size=5):
    """(indices, labels, videos) of one pass of a DataLoader over the stream, in delivery order."""
    batches = list(DataLoader(stream, batch_size=batch_size, num_workers=num_workers))
    videos, labels, *index = (torch.cat(parts) for parts in zip(*batches))
    return (index[0].tolist() if index else None), labels, videos


# ---------------------------------------------------------------- the member reader


def test_read_members_reads_only_the_asked_arrays_equal_to_numpy_load(run_dir):
    path = run_dir / "shards" / "shard-00002.npz"
    got = read_members(path, ["labels", "videos"])
    assert list(got) == ["labels", "videos"]
    with np.load(path, allow_pickle=False) as z:
        for key in got:
            assert got[key].dtype == z[key].dtype
            np.testing.assert_array_equal(got[key], z[key])
    whole = read_shard(path)
    assert set(whole) == set(SHARD_KEYS) and whole["equations"].dtype.kind == "U"


def test_read_members_decodes_into_a_buffer_it_is_given(run_dir):
    path = run_dir / "shards" / "shard-00000.npz"
    pool = np.zeros(1 << 20, np.uint8)
    got = read_members(path, ["videos"], alloc=lambda nbytes: pool[:nbytes])
    assert np.shares_memory(got["videos"], pool)
    np.testing.assert_array_equal(got["videos"], read_shard(path)["videos"])


def test_read_members_names_a_damaged_file(run_dir, tmp_path):
    path = tmp_path / "shard-00001.npz"
    data = bytearray((run_dir / "shards" / "shard-00001.npz").read_bytes())
    data[len(data) // 4] ^= 0x55
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptShardError, match="shard-00001.npz"):
        read_members(path, ["videos"])
    with pytest.raises(CorruptShardError, match="missing arrays nope"):
        read_members(run_dir / "shards" / "shard-00001.npz", ["nope"])


# ---------------------------------------------------------------- one epoch


@pytest.mark.parametrize("num_workers", [0, 1, 2])
def test_every_sample_exactly_once_per_epoch(run_dir, stored, num_workers):
    stream = open_run(run_dir).torch_stream(with_index=True, seed=1)
    assert isinstance(stream, torch.utils.data.IterableDataset) and len(stream) == 50
    index, labels, videos = epoch(stream, num_workers)
    assert sorted(index) == list(range(50))
    assert index != list(range(50))  # shuffled
    assert videos.dtype == torch.uint8 and tuple(videos.shape) == (50, 3, 4, 16, 16)
    np.testing.assert_array_equal(labels.numpy(), stored["labels"][index])
    np.testing.assert_array_equal(videos.numpy(), stored["videos"][index].transpose(0, 4, 1, 2, 3))


def test_samples_kept_by_the_caller_stay_intact(run_dir, stored, monkeypatch):
    # decode buffers are reused only when nothing refers to them: keeping every sample must not change any
    import trajgen.use._torch

    monkeypatch.setattr(trajgen.use._torch._Buffers, "SMALL", 0)  # these shards are small: pool them all the same
    items = list(open_run(run_dir).torch_stream(shuffle_buffer=1, with_index=True))
    for video, _, index in items:
        np.testing.assert_array_equal(video.numpy(), stored["videos"][index].transpose(3, 0, 1, 2))


def test_items_are_video_and_label_unless_asked_for_the_index(run_dir, stored):
    video, label = next(iter(open_run(run_dir).torch_stream(shuffle=False)))
    assert tuple(video.shape) == (3, 4, 16, 16) and label == stored["labels"][0]
    video, label, index = next(iter(open_run(run_dir).torch_stream(shuffle=False, with_index=True)))
    assert index == 0


def test_unshuffled_stream_is_index_order(run_dir):
    index, _, _ = epoch(open_run(run_dir).torch_stream(shuffle=False, with_index=True))
    assert index == list(range(50))


def test_order_is_deterministic_and_new_after_set_epoch(run_dir):
    def order(seed, e=None, num_workers=0):
        stream = open_run(run_dir).torch_stream(seed=seed, with_index=True)
        if e is not None:
            stream.set_epoch(e)
        return epoch(stream, num_workers)[0]

    first = order(0)
    assert order(0) == first == order(0, 0)
    assert order(0, 1) != first and sorted(order(0, 1)) == sorted(first)
    assert order(1) != first
    assert order(0, 1, num_workers=2) == order(0, 1, num_workers=2)


def test_set_epoch_reaches_persistent_workers(run_dir):
    stream = open_run(run_dir).torch_stream(seed=5, with_index=True)
    loader = DataLoader(stream, batch_size=5, num_workers=2, persistent_workers=True)
    first = [i for batch in loader for i in batch[2].tolist()]
    stream.set_epoch(1)
    second = [i for batch in loader for i in batch[2].tolist()]
    fresh = open_run(run_dir).torch_stream(seed=5, with_index=True)
    fresh.set_epoch(1)
    assert second != first and second == epoch(fresh, num_workers=2)[0]


def test_shuffle_mixes_samples_of_several_shards(run_dir):
    stream = open_run(run_dir).torch_stream(seed=0, shuffle_buffer=24, with_index=True)
    index, _, _ = epoch(stream)
    first_shards = {i // 8 for i in index[:8]}
    assert len(first_shards) >= 2  # the first 8 samples do not all come from one shard
    whole_shards = open_run(run_dir).torch_stream(seed=0, shuffle_buffer=1, with_index=True)
    index, _, _ = epoch(whole_shards)
    runs = sum(a // 8 != b // 8 for a, b in zip(index, index[1:]))
    assert runs == 6  # a buffer of one shard: each shard's samples come together, shards in a new order
    assert [i // 8 for i in index[::8]] != sorted({i // 8 for i in index})


def test_dtype_float32_in_unit_range_and_uint8_as_stored(run_dir, stored):
    index, _, floats = epoch(open_run(run_dir).torch_stream(dtype="float32", with_index=True))
    assert floats.dtype == torch.float32 and 0.0 <= float(floats.min()) and float(floats.max()) <= 1.0
    expected = stored["videos"][index].transpose(0, 4, 1, 2, 3).astype(np.float32) / 255.0
    np.testing.assert_allclose(floats.numpy(), expected, rtol=0, atol=1e-7)
    with pytest.raises(ValueError, match="dtype"):
        open_run(run_dir).torch_stream(dtype="float16")


def test_frames_keeps_the_first_frames(run_dir, stored):
    _, _, videos = epoch(open_run(run_dir).torch_stream(frames=2, shuffle=False))
    np.testing.assert_array_equal(videos.numpy(), stored["videos"][:, :2].transpose(0, 4, 1, 2, 3))
    with pytest.raises(ValueError, match="frames"):
        open_run(run_dir).torch_stream(frames=5)


def test_torch_dataset_gains_the_dtype_option(run_dir, stored):
    run = open_run(run_dir)
    video, label = run.torch_dataset(dtype="uint8")[9]
    assert video.dtype == torch.uint8
    np.testing.assert_array_equal(video.numpy(), stored["videos"][9].transpose(3, 0, 1, 2))
    assert run.torch_dataset()[9][0].dtype == torch.float32  # the default stays float32
    with pytest.raises(ValueError, match="dtype"):
        run.torch_dataset(dtype="int8")


# ---------------------------------------------------------------- ranks


@pytest.mark.parametrize("world_size", [2, 3, 4, 7])
def test_ranks_get_equal_disjoint_shares(run_dir, world_size):
    for e in (0, 1):
        shares = []
        for rank in range(world_size):
            stream = open_run(run_dir).torch_stream(rank=rank, world_size=world_size, with_index=True, seed=4)
            stream.set_epoch(e)
            assert len(stream) == 50 // world_size
            shares.append(epoch(stream, num_workers=2 if rank == 0 else 0)[0])
        assert {len(s) for s in shares} == {50 // world_size}  # DDP ranks step together
        seen = [i for s in shares for i in s]
        assert len(set(seen)) == len(seen)  # disjoint
        assert 50 - len(seen) == 50 % world_size  # nothing dropped beyond what evenness needs


def test_two_ranks_cover_the_run_exactly_when_it_divides(run_dir):
    shares = [epoch(open_run(run_dir).torch_stream(rank=r, world_size=2, with_index=True))[0] for r in (0, 1)]
    assert len(shares[0]) == len(shares[1]) == 25
    assert sorted(shares[0] + shares[1]) == list(range(50))


def test_rank_and_world_size_come_from_torch_distributed(run_dir, monkeypatch):
    import torch.distributed as dist

    assert (open_run(run_dir).torch_stream().rank, open_run(run_dir).torch_stream().world_size) == (0, 1)
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_rank", lambda: 1)
    monkeypatch.setattr(dist, "get_world_size", lambda: 3)
    stream = open_run(run_dir).torch_stream()
    assert (stream.rank, stream.world_size, len(stream)) == (1, 3, 16)
    assert open_run(run_dir).torch_stream(rank=0, world_size=2).world_size == 2  # passed: those win


def test_rank_and_world_size_are_checked(run_dir):
    run = open_run(run_dir)
    for kwargs in (
        {"rank": 2, "world_size": 2},
        {"rank": -1, "world_size": 2},
        {"rank": 0, "world_size": 0},
        {"rank": 1},
        {"world_size": 2},
        {"shuffle_buffer": 0},
        {"seed": 1.5},
    ):
        with pytest.raises(ValueError):
            run.torch_stream(**kwargs)


# ---------------------------------------------------------------- mid-epoch resume


@pytest.mark.parametrize("num_workers, k", [(2, 3), (2, 0), (0, 4), (2, 9), (2, 13)])
def test_stateful_dataloader_resumes_with_exactly_the_rest(run_dir, num_workers, k):
    from torchdata.stateful_dataloader import StatefulDataLoader

    def loader():
        stream = open_run(run_dir).torch_stream(seed=2, with_index=True, shuffle_buffer=16)
        stream.set_epoch(3)
        return StatefulDataLoader(stream, batch_size=4, num_workers=num_workers)

    whole, head, rest = resumed(loader, k)
    assert head + rest == whole  # the same batches, none twice, none lost
    assert sorted(i for b in head + rest for i in b) == list(range(50))


def test_a_state_of_another_stream_is_refused(run_dir):
    stream = open_run(run_dir).torch_stream(seed=0)
    it = iter(stream)
    next(it)
    state = stream.state_dict()
    for kwargs in ({"seed": 9}, {"rank": 1, "world_size": 2}, {"shuffle_buffer": 3}, {"shuffle": False}):
        with pytest.raises(ValueError, match="state"):
            open_run(run_dir).torch_stream(**kwargs).load_state_dict(state)


# ---------------------------------------------------------------- runs still being written


def test_in_progress_run_streams_the_committed_shards(run_dir, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(run_dir, partial)
    manifest = json.loads((partial / "manifest.json").read_text())
    manifest["shards"] = [s for s in manifest["shards"] if s["index"] != 2]  # shard 2 not committed yet
    manifest["status"] = "running"
    (partial / "manifest.json").write_text(json.dumps(manifest))
    run = open_run(partial)
    (partial / "shards" / "shard-00002.npz").write_bytes(b"in flight")  # not listed: never read
    index, _, _ = epoch(run.torch_stream(with_index=True), num_workers=2)
    assert sorted(index) == [i for i in range(50) if i // 8 != 2]


# ---------------------------------------------------------------- the training loops of docs/training.md


def readme_script(name, run_dir):
    """The code block that starts with ``# name`` in README.md or a docs/*.md page (exactly one),
    verbatim but for the run's path."""
    from pathlib import Path

    root = Path(__file__).parent.parent
    marker = f"```python\n# {name}\n"
    pages = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    found = [text for text in (page.read_text(encoding="utf-8") for page in pages) if marker in text]
    assert len(found) == 1, f"{name}: {len(found)} code blocks start with '# {name}' in README.md and docs/*.md"
    start = found[0].index(marker) + len("```python\n")
    code = found[0][start : found[0].index("```", start)]
    assert "runs/20261128_1150_n10000" in code
    return code.replace("runs/20261128_1150_n10000", str(run_dir))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny") / "run"
    generate(GenerationConfig(n=160, checkpoint_every=20, seed=1, frames=4, size=16), out, workers=1)
    return out


def test_readme_ddp_loop_runs_with_torchrun_on_two_processes(tiny_run, tmp_path):
    import os
    import subprocess
    import sys

    script = tmp_path / "train_ddp.py"
    script.write_text(readme_script("train_ddp.py", tiny_run))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "epoch 0: loss" in result.stdout and "epoch 2: loss" in result.stdout and "accuracy" in result.stdout


def test_readme_resumable_loop_runs_and_resumes(tiny_run, tmp_path):
    import subprocess
    import sys

    script = tmp_path / "train_resumable.py"
    script.write_text(readme_script("train_resumable.py", tiny_run))
    first = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "epoch 2: 5 steps" in first.stdout and (tmp_path / "checkpoint.pt").exists()  # 160 samples, batches of 32
    again = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr[-3000:]  # resumed from epoch 2, step 0: the rest of that epoch
    assert "resumed at epoch 2, step 1" in again.stdout and "epoch 0" not in again.stdout
    assert "epoch 2: 5 steps" in again.stdout  # the step count goes on from where it was, not from 0


def test_readme_resumable_loop_stops_on_ctrl_c_with_one_line(tiny_run, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "train_resumable.py"
    script.write_text(
        readme_script("train_resumable.py", tiny_run).replace("range(start_epoch, 3)", "range(start_epoch, 10**6)")
    )
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C acts as in a terminal even where these tests run as a shell's background job, which
        # starts with SIGINT ignored (Python keeps it ignored, and the script would never stop)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while not (tmp_path / "checkpoint.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-3000:]
    assert "stopped; run again to go on from checkpoint.pt" in out and "Traceback" not in err, err[-3000:]
