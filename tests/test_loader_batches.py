"""Run.torch_stream(batch_size=B): the stream hands out whole batches, for DataLoader(batch_size=None)."""

import numpy as np
import pytest

from trajgen import open_run

torch = pytest.importorskip("torch", reason="torch is not installed (pip install 'trajgen[torch]')")
from torch.utils.data import DataLoader  # noqa: E402

from loader_runs import resumed, run_dir, stored  # noqa: E402,F401 (fixtures)

pytestmark = pytest.mark.filterwarnings("ignore:'set_vital' is deprecated")  # inside torchdata's StatefulDataLoader


def batches(stream, num_workers=0, **loader_options):
    """Every batch of one pass, all kept until the end (so none may be overwritten while held)."""
    return list(DataLoader(stream, batch_size=None, num_workers=num_workers, **loader_options))


def check(got, stored, dtype=torch.uint8):
    """The batches hold the stored samples their indices name; return the indices in delivery order."""
    index = [i for batch in got for i in batch[2].tolist()]
    for video, label, idx in got:
        assert video.dtype == dtype and tuple(video.shape) == (len(idx), 3, 4, 16, 16)
        expected = stored["videos"][idx.numpy()].transpose(0, 4, 1, 2, 3)
        if dtype == torch.float32:
            np.testing.assert_allclose(video.numpy(), expected.astype(np.float32) / 255.0, rtol=0, atol=1e-7)
        else:
            np.testing.assert_array_equal(video.numpy(), expected)
        np.testing.assert_array_equal(label.numpy(), stored["labels"][idx.numpy()])
    return index


@pytest.mark.parametrize("num_workers", [0, 1, 2])
def test_every_sample_exactly_once_per_epoch_in_whole_batches(run_dir, stored, num_workers):
    stream = open_run(run_dir).torch_stream(with_index=True, seed=1, batch_size=8)
    assert len(stream) == 7  # batches per epoch: 50 = 6 x 8 + 2, whatever the number of workers
    got = batches(stream, num_workers)
    assert len(got) == 7 and sorted(len(b[2]) for b in got) == [2] + [8] * 6
    index = check(got, stored)
    assert sorted(index) == list(range(50)) and index != list(range(50))


def test_batches_kept_by_the_caller_stay_intact_even_beyond_the_reused_memory(run_dir, stored, monkeypatch):
    import trajgen.use._torch

    monkeypatch.setattr(trajgen.use._torch._Buffers, "SMALL", 0)  # these batches are small: pool them all the same
    for num_workers in (0, 1):
        # 25 batches, all kept: more than a worker reuses, so some travel the plain way
        got = batches(open_run(run_dir).torch_stream(with_index=True, batch_size=2, shuffle_buffer=1), num_workers)
        assert sorted(check(got, stored)) == list(range(50))
        del got
        views = []  # only a view of each batch is kept: it keeps the batch's memory from being reused
        stream = open_run(run_dir).torch_stream(with_index=True, batch_size=2, seed=7)
        for video, _, index in DataLoader(stream, batch_size=None, num_workers=num_workers):
            views.append((video[:, 1], index.numpy()))
        for view, index in views:
            np.testing.assert_array_equal(view.numpy(), stored["videos"][index][..., 1])


def test_a_worker_reuses_the_memory_of_batches_the_caller_dropped(run_dir, monkeypatch):
    import trajgen.use._torch

    monkeypatch.setattr(trajgen.use._torch._SharedSlots, "MAX", 5)  # with fork, the worker sees this too
    stream = open_run(run_dir).torch_stream(with_index=True, batch_size=4)
    seen = 0
    for video, _, index in DataLoader(stream, batch_size=None, num_workers=1):
        # a batch in reused shared memory arrives as a view of it; a batch sent the plain way is a
        # storage of its own that torch shared for this one batch
        assert not video.untyped_storage().is_shared()
        seen += len(index)
    assert seen == 50  # 13 batches through 5 slots: each was given back and used again


def test_float32_batches_equal_the_samples_as_floats(run_dir, stored):
    got = batches(open_run(run_dir).torch_stream(with_index=True, batch_size=8, dtype="float32"), 1)
    assert sorted(check(got, stored, torch.float32)) == list(range(50))


def test_batch_is_in_the_memory_layout_as_stored(run_dir):
    video, label = next(iter(open_run(run_dir).torch_stream(batch_size=8)))
    # (B, C, T, H, W) over memory laid out (B, T, H, W, C): no transposing copy on the CPU; .to(device) keeps it
    assert tuple(video.shape) == (8, 3, 4, 16, 16) and video.is_contiguous(memory_format=torch.channels_last_3d)
    assert label.dtype == torch.int64 and tuple(label.shape) == (8,)


def test_order_is_the_sample_order_cut_into_batches_and_new_after_set_epoch(run_dir):
    def order(e, batch_size=None, num_workers=0, **options):
        stream = open_run(run_dir).torch_stream(seed=4, with_index=True, batch_size=batch_size)
        stream.set_epoch(e)
        if batch_size is None:
            return [int(i) for _, _, i in stream]
        return [i for b in batches(stream, num_workers, **options) for i in b[2].tolist()]

    assert order(0, 8) == order(0)  # one worker: the samples' order, 8 at a time
    assert order(1, 8) == order(1) != order(0)
    assert order(1, 8, 2) == order(1, 8, 2) and sorted(order(1, 8, 2)) == list(range(50))
    stream = open_run(run_dir).torch_stream(seed=4, with_index=True, batch_size=8)
    loader = DataLoader(stream, batch_size=None, num_workers=2, persistent_workers=True)
    first = [i for b in loader for i in b[2].tolist()]
    stream.set_epoch(1)
    second = [i for b in loader for i in b[2].tolist()]
    assert first == order(0, 8, 2) and second == order(1, 8, 2)


@pytest.mark.parametrize("world_size", [2, 3])
def test_ranks_get_equal_disjoint_shares_in_equal_numbers_of_batches(run_dir, world_size):
    shares, counts = [], []
    for rank in range(world_size):
        stream = open_run(run_dir).torch_stream(rank=rank, world_size=world_size, with_index=True, batch_size=4)
        got = batches(stream, num_workers=2)
        assert len(stream) == len(got) == -(-(50 // world_size) // 4)
        shares.append([i for b in got for i in b[2].tolist()])
        counts.append(len(got))
    assert {len(s) for s in shares} == {50 // world_size} and len(set(counts)) == 1  # DDP ranks step together
    seen = [i for s in shares for i in s]
    assert len(set(seen)) == len(seen) and 50 - len(seen) == 50 % world_size


@pytest.mark.parametrize("num_workers, k", [(2, 3), (2, 0), (0, 2), (2, 6), (1, 5)])
def test_stateful_dataloader_resumes_batches_with_exactly_the_rest(run_dir, num_workers, k):
    from torchdata.stateful_dataloader import StatefulDataLoader

    def loader():
        stream = open_run(run_dir).torch_stream(seed=2, with_index=True, shuffle_buffer=16, batch_size=4)
        stream.set_epoch(3)
        return StatefulDataLoader(stream, batch_size=None, num_workers=num_workers)

    whole, head, rest = resumed(loader, k)
    assert len(whole) == 13
    assert head + rest == whole  # the same batches, none twice, none lost
    assert sorted(i for b in head + rest for i in b) == list(range(50))


def test_batch_size_is_checked_and_part_of_a_state(run_dir):
    run = open_run(run_dir)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="batch_size"):
            run.torch_stream(batch_size=bad)
    stream = run.torch_stream(batch_size=4)
    next(iter(stream))
    with pytest.raises(ValueError, match="state"):
        run.torch_stream().load_state_dict(stream.state_dict())


def test_a_stream_decodes_into_the_same_memory_from_pass_to_pass_without_touching_what_is_kept(
    run_dir, stored, monkeypatch
):
    import trajgen.use._torch

    monkeypatch.setattr(trajgen.use._torch._Buffers, "SMALL", 1000)  # small shards: pool their videos all the same
    stream = open_run(run_dir).torch_stream(with_index=True, shuffle_buffer=8)
    kept = list(stream)  # every sample of the first pass, each a view of its decoded shard
    stream.set_epoch(1)
    again = [(video.clone(), label, index) for video, label, index in stream]  # nothing of this pass kept
    for video, _, index in kept + again:
        np.testing.assert_array_equal(video.numpy(), stored["videos"][index].transpose(3, 0, 1, 2))
    pool = [id(buffer) for buffer in stream._pool[1].pool]  # (a reference would keep them from being reused)
    stream.set_epoch(2)
    assert sorted(int(i) for _, _, i in stream) == list(range(50))
    assert [id(buffer) for buffer in stream._pool[1].pool] == pool  # the third pass decoded into them


@pytest.mark.parametrize("start", ["fork", "spawn"])  # spawn: macOS and Windows; forkserver is Linux's from Python 3.14
def test_persistent_workers_hand_out_the_right_samples_every_epoch(run_dir, stored, start):
    stream = open_run(run_dir).torch_stream(with_index=True, batch_size=8, seed=3)
    loader = DataLoader(stream, batch_size=None, num_workers=2, persistent_workers=True, multiprocessing_context=start)
    orders = []
    for e in range(3):
        stream.set_epoch(e)
        orders.append(check(list(loader), stored))
        assert sorted(orders[-1]) == list(range(50))
    assert len({tuple(order) for order in orders}) == 3  # set_epoch reached the workers
    again = open_run(run_dir).torch_stream(with_index=True, batch_size=8, seed=3)
    again.set_epoch(2)
    assert check(batches(again, 2), stored) == orders[2]  # the same order however the workers start


def record_threads(log: str) -> None:
    """From now on, every thread this process (or a child forked from it) starts first writes
    "pid name" to ``log``."""
    import os
    import threading

    start = threading.Thread.start

    def recording(thread):
        with open(log, "a") as f:
            f.write(f"{os.getpid()} {thread.name}\n")
        start(thread)

    threading.Thread.start = recording


def test_only_the_main_process_decodes_ahead_in_a_thread(run_dir, stored, tmp_path, monkeypatch):
    import os
    import threading

    # in the main process the next shards decode while the caller's training step runs; a DataLoader
    # worker shares the cores with the main process and its fellow workers, where a decode thread
    # only costs CPU (scripts/bench_loader.py)
    log = tmp_path / "threads.log"
    monkeypatch.setattr(threading.Thread, "start", threading.Thread.start)  # restored after the test
    record_threads(str(log))
    for num_workers in (0, 1, 2):
        stream = open_run(run_dir).torch_stream(with_index=True, batch_size=8)
        assert sorted(check(batches(stream, num_workers), stored)) == list(range(50))
    started = [line.split(" ", 1) for line in log.read_text().splitlines()]
    decoders = [int(pid) for pid, name in started if name.startswith("trajgen-decode")]
    assert decoders == [os.getpid()]  # one pass without workers; none in the 3 worker processes
    assert len({pid for pid, _ in started} - {str(os.getpid())}) == 3  # (their threads were seen)
