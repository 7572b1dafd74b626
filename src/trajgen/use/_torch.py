"""The torch adapters, imported only by ``Run.torch_dataset``/``Run.torch_stream`` (torch is an optional extra)."""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, Sampler, get_worker_info

from trajgen.errors import ConfigError, CorruptShardError
from trajgen.store.rundir import shard_file
from trajgen.store.shards import read_members
from trajgen.use._torch_shared import _Buffers, _SharedSlots

DTYPES = ("uint8", "float32")
DEFAULT_SHUFFLE_BUFFER = 2048


def _check_frames(run, frames):
    total = run.config.frames
    if frames is None:
        return total
    if isinstance(frames, bool) or not isinstance(frames, int) or not 1 <= frames <= total:
        raise ConfigError(
            f"frames must be an integer in [1, {total}] (the run has {total} frames per video), got {frames!r}"
        )
    return frames


def _check_dtype(dtype):
    if dtype not in DTYPES:
        raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return dtype


def _check_int(name, value, low):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ConfigError(f"{name} must be an integer ≥ {low}, got {value!r}")
    return int(value)


def _as_float(video: torch.Tensor) -> torch.Tensor:
    """uint8 (any strides) → a new contiguous float32 tensor in [0, 1]."""
    return torch.empty(video.shape, dtype=torch.float32).copy_(video).div_(255.0)


class VideoDataset(Dataset):
    """(video, label): video laid out (C, T, H, W), as video tokenizers take it; float32 in [0, 1]
    (default) or uint8 as stored.

    Picklable, so it works in a DataLoader with worker processes; each worker keeps
    its own small cache of decoded shards."""

    def __init__(self, run, frames: int | None = None, dtype: str = "float32"):
        self.run, self.frames, self.dtype = run, _check_frames(run, frames), _check_dtype(dtype)

    def __len__(self) -> int:
        return len(self.run)

    def __getitem__(self, position: int):
        slot, row = self.run._locate(int(position))
        arrays = self.run._decoded(slot)
        video = torch.from_numpy(arrays["videos"][row, : self.frames]).permute(3, 0, 1, 2)
        video = _as_float(video) if self.dtype == "float32" else video.contiguous()
        return video, int(arrays["labels"][row])

    def shard_sampler(self, seed: int = 0, *, num_workers: int = 0, batch_size: int = 1) -> ShardShuffleSampler:
        """A shuffling sampler that keeps each shard's samples together, so random order costs one
        shard decode per shard instead of one per sample.

        With DataLoader worker processes, pass the loader's ``num_workers`` and ``batch_size``:
        each worker then gets its own shards (a DataLoader hands batches to its workers in turn)."""
        return ShardShuffleSampler(self.run._offsets, seed, num_workers=num_workers, batch_size=batch_size)


class ShardShuffleSampler(Sampler):
    """Shards in a random order, samples in a random order within each; a new order every epoch.

    With ``num_workers`` > 1 the order is cut into one contiguous share per worker (whole
    batches, so the DataLoader's turn-taking hands worker w exactly its share) and the shares'
    batches are interleaved: each shard is decoded once per epoch, except the at most
    ``num_workers - 1`` shards that two neighbouring shares split, decoded by both."""

    def __init__(self, offsets: list[int], seed: int = 0, *, num_workers: int = 0, batch_size: int = 1):
        self.offsets, self.seed, self.epoch = list(offsets), seed, 0
        self.num_workers = _check_int("num_workers", num_workers, 0)
        self.batch_size = _check_int("batch_size", batch_size, 1)

    def __len__(self) -> int:
        return self.offsets[-1]

    def __iter__(self):
        rng = np.random.default_rng((self.seed, self.epoch))
        self.epoch += 1
        order = []
        for slot in rng.permutation(len(self.offsets) - 1).tolist():
            start, stop = self.offsets[slot], self.offsets[slot + 1]
            order.extend((start + rng.permutation(stop - start)).tolist())
        if self.num_workers <= 1:
            yield from order
            return
        size, workers = self.batch_size, self.num_workers
        full, rest = divmod(len(order), size)
        extra = full % workers  # workers 0 … extra-1 get one batch more; the partial batch then falls to worker `extra`
        shares: list[list[list[int]]] = [[] for _ in range(workers)]  # batches of sample numbers, per worker
        start = 0
        for w in [
            (extra + 1 + i) % workers for i in range(workers)
        ]:  # worker `extra` last: the partial batch follows its share
            count = full // workers + (w < extra)
            shares[w] = [order[start + b * size : start + (b + 1) * size] for b in range(count)]
            start += count * size
        for turn in range(max(len(share) for share in shares)):
            for share in shares:
                if turn < len(share):
                    yield from share[turn]
        yield from order[start:]  # the last, partial batch


def _distributed_rank(rank, world_size) -> tuple[int, int]:
    if rank is None and world_size is None:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1
    if rank is None or world_size is None:
        raise ConfigError(
            "pass both rank and world_size, or neither (then they come from torch.distributed "
            "when it is initialized, else 0 and 1)"
        )
    world_size = _check_int("world_size", world_size, 1)
    rank = _check_int("rank", rank, 0)
    if rank >= world_size:
        raise ConfigError(f"rank must be in [0, {world_size - 1}] for world_size {world_size}, got {rank}")
    return rank, world_size


def _put(videos, labels, index, i, sample) -> None:
    (shard_videos, shard_labels, shard_index), row = sample
    videos[i] = shard_videos[row]
    labels[i] = shard_labels[row]
    if shard_index is not None:
        index[i] = shard_index[row]


class VideoStream(IterableDataset):
    """(video (C, T, H, W), label[, index]) read shard by shard, or whole batches of them with
    ``batch_size``: see ``Run.torch_stream``."""

    def __init__(
        self,
        run,
        frames=None,
        dtype="uint8",
        shuffle=True,
        seed=0,
        rank=None,
        world_size=None,
        shuffle_buffer=DEFAULT_SHUFFLE_BUFFER,
        with_index=False,
        batch_size=None,
    ):
        self.run, self.frames, self.dtype = run, _check_frames(run, frames), _check_dtype(dtype)
        self.batch_size = None if batch_size is None else _check_int("batch_size", batch_size, 1)
        self.seed = _check_int("seed", seed, 0)
        self.shuffle_buffer = _check_int("shuffle_buffer", shuffle_buffer, 1)
        self.shuffle, self.with_index = bool(shuffle), bool(with_index)
        self.rank, self.world_size = _distributed_rank(rank, world_size)
        # shared memory: set_epoch in the main process reaches workers kept alive (persistent_workers=True)
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        self._iter_epoch = 0  # the epoch this worker's position counts in
        self._position = 0  # samples this worker has handed out in this epoch
        self._resuming = False  # the next iteration starts at _position (set by load_state_dict)

    def __len__(self) -> int:
        """Samples (batches, with ``batch_size``) per rank and epoch: every rank gets the same number."""
        per_rank = len(self.run) // self.world_size
        return per_rank if self.batch_size is None else -(-per_rank // self.batch_size)

    @property
    def epoch(self) -> int:
        """The epoch whose order the next iteration follows."""
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        """Pick the epoch whose order the next iteration follows (call it before each epoch)."""
        self._epoch.fill_(_check_int("epoch", epoch, 0))
        self._iter_epoch, self._position, self._resuming = self.epoch, 0, False

    # ------------------------------------------------------------ resume
    def _identity(self) -> dict:
        info = get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        return {
            "seed": self.seed,
            "shuffle": self.shuffle,
            "shuffle_buffer": self.shuffle_buffer,
            "rank": self.rank,
            "world_size": self.world_size,
            "samples": len(self.run),
            "shards": len(self.run.shards),
            "worker": worker,
            "num_workers": num_workers,
            "batch_size": self.batch_size,
        }

    def state_dict(self) -> dict:
        """Where this worker is in the epoch: the epoch and how many samples it has handed out."""
        return {**self._identity(), "epoch": self._iter_epoch, "position": self._position}

    def load_state_dict(self, state: dict) -> None:
        """Continue from ``state`` (taken by ``state_dict`` of the same worker of an identical stream)."""
        mine = self._identity()
        differ = [f"{k} {state.get(k)!r}, not {v!r}" for k, v in mine.items() if state.get(k) != v]
        if differ:
            raise ConfigError(
                f"this loader state is for another stream ({'; '.join(differ)}); resume with the same "
                f"run, seed, shuffle, shuffle_buffer, batch_size, rank, world size and num_workers"
            )
        self._epoch.fill_(_check_int("epoch", state["epoch"], 0))
        self._iter_epoch = self.epoch
        self._position, self._resuming = _check_int("position", state["position"], 0), True

    # ------------------------------------------------------------ the epoch's order
    def _blocks(self, epoch: int, worker: int, num_workers: int) -> list[list[tuple[int, int, int, int]]]:
        """This worker's share of the epoch as blocks of pieces (slot, first row, end row, sequence start).

        The epoch's sequence is every committed shard in shard order (shuffled by (seed, epoch)),
        rows in order. Rank r takes the r-th of world_size equal contiguous parts (the last
        len(run) mod world_size samples of the sequence sit out this epoch), worker w the w-th of
        num_workers near-equal parts of that, in whole batches with ``batch_size`` (only the rank's
        last batch may be short, so the number of batches does not depend on num_workers).
        Shuffling mixes the samples of each block: consecutive pieces holding at most
        shuffle_buffer samples (at least one piece)."""
        counts = [entry["count"] for entry in self.run.shards]
        order = np.arange(len(counts))
        if self.shuffle:
            order = np.random.default_rng((self.seed, epoch)).permutation(len(counts))
        per_rank = len(self.run) // self.world_size
        unit = self.batch_size or 1
        share, extra = divmod(-(-per_rank // unit), num_workers)  # units per worker
        first = worker * share + min(worker, extra)
        lo = self.rank * per_rank + min(first * unit, per_rank)
        hi = self.rank * per_rank + min((first + share + (worker < extra)) * unit, per_rank)
        blocks: list[list[tuple[int, int, int, int]]] = []  # (slot, first row, end row, first sample) pieces
        block: list[tuple[int, int, int, int]] = []
        held, start = 0, 0
        for slot in order.tolist():
            a, b = max(lo, start), min(hi, start + counts[slot])
            if a < b:
                if block and (held + b - a > self.shuffle_buffer or not self.shuffle):
                    blocks.append(block)
                    block, held = [], 0
                block.append((slot, a - start, b - start, a))
                held += b - a
            start += counts[slot]
        return blocks + [block] if block else blocks

    def __iter__(self):
        info = get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        epoch = self.epoch  # read once: the whole pass follows this epoch's order
        start = self._position if self._resuming and epoch == self._iter_epoch else 0
        self._iter_epoch, self._position, self._resuming = epoch, start, False
        blocks = self._blocks(epoch, worker, num_workers)
        rows = self._rows(epoch, blocks, start)
        if self.batch_size is None:
            return self._items(rows)
        total = sum(b - a for block in blocks for _, a, b, _ in block)
        shared = _SharedSlots() if info is not None and os.name == "posix" else None
        return self._batches(rows, self.batch_size, total - start, shared)

    def _items(self, rows):
        for (videos, labels, index), r in rows:
            video = torch.from_numpy(videos[r]).permute(3, 0, 1, 2)
            video = _as_float(video) if self.dtype == "float32" else video
            self._position += 1  # before the yield: counts the samples handed out
            yield (video, labels[r], index[r]) if self.with_index else (video, labels[r])

    def _batches(self, rows, batch_size: int, remaining: int, shared: _SharedSlots | None):
        """Whole batches, each sample copied once, into its batch: in a DataLoader worker into shared
        memory the main process receives without a copy (``_SharedSlots``), else into buffers
        reused once nothing refers to a batch any more. The batch's memory is laid out
        (B, T, H, W, C) as stored, the tensor handed out is its (B, C, T, H, W) view
        (``torch.channels_last_3d``): no transposing copy on the CPU."""
        dtype = np.dtype(np.uint8 if self.dtype == "uint8" else np.float32)
        size = self.run.config.size
        local, scratch = _Buffers(keep=4), _Buffers(keep=2)
        while remaining > 0:
            shape = (min(batch_size, remaining), self.frames, size, size, 3)
            remaining -= shape[0]
            if shared is not None:
                number, video = shared.get(shape, dtype)
            else:
                video = local.get(int(np.prod(shape)) * dtype.itemsize).view(dtype).reshape(shape)
            stored = video if dtype == np.uint8 else scratch.get(int(np.prod(shape))).reshape(shape)
            labels, index = np.empty(shape[0], np.int64), np.empty(shape[0], np.int64)
            for i in range(shape[0]):  # no reference to a sample's shard outlives its copy: the buffer is free again
                _put(stored, labels, index, i, next(rows))
            if dtype != np.uint8:  # as _as_float does it, so the values are the same as per sample
                torch.from_numpy(video).copy_(torch.from_numpy(stored)).div_(255.0)
            rest = (labels, index) if self.with_index else (labels,)
            del stored
            self._position += shape[0]  # before the yield: counts the samples handed out
            if shared is not None:
                yield shared.batch(number, video, rest, last=remaining <= 0)
            else:
                yield (torch.from_numpy(video).permute(0, 4, 1, 2, 3), *(torch.from_numpy(a) for a in rest))
            del video

    def _decode_buffers(self, keep: int) -> _Buffers:
        """This process's decode buffers, kept from pass to pass: a new epoch decodes into memory
        already mapped (with ``persistent_workers=True``, or without workers)."""
        pool = self.__dict__.get("_pool")
        if pool is None or pool[0] != os.getpid():  # a worker process makes its own
            pool = self._pool = (os.getpid(), _Buffers(keep))
        pool[1].keep = max(pool[1].keep, keep)
        return pool[1]

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_pool"}

    def _rows(self, epoch, blocks, start):
        """(decoded shard, row) of each sample from ``start`` on, in this worker's order."""
        live, position = [], 0  # the blocks from the resume point on: those before it are not even decoded
        for block in blocks:
            size = sum(b - a for _, a, b, _ in block)
            if position + size > start:
                live.append((block, position, size))
            position += size
        # this block's shards, the next one's (decoded ahead) and the last one's (its final samples may wait in a batch)
        buffers = self._decode_buffers(keep=3 * max((len(b) for b in blocks), default=1) + 1)
        # Decoding the next block in a thread pays in the main process: it runs while the caller's training
        # step does. A DataLoader worker shares the cores with the main process and the other workers; a
        # thread there costs CPU and gains nothing (scripts/bench_loader.py), so a worker decodes in turn.
        decoder = ThreadPoolExecutor(1, thread_name_prefix="trajgen-decode") if get_worker_info() is None else None
        with decoder or contextlib.nullcontext():  # ISA-L inflates without the GIL
            ahead = decoder.submit(self._decode_block, live[0][0], buffers) if decoder and live else None
            for i, (block, position, size) in enumerate(live):
                if decoder is None:
                    decoded = self._decode_block(block, buffers)
                else:
                    assert ahead is not None  # submitted before the first block, then for each next one
                    decoded = ahead.result()
                    if i + 1 < len(live):  # decoded while this block's samples are handed out and batched
                        ahead = decoder.submit(self._decode_block, live[i + 1][0], buffers)
                piece = np.repeat(np.arange(len(block)), [b - a for _, a, b, _ in block])
                row = np.concatenate([np.arange(a, b) for _, a, b, _ in block])
                if self.shuffle:
                    mix = np.random.default_rng((self.seed, epoch, block[0][3])).permutation(size)
                    piece, row = piece[mix], row[mix]
                skip = max(0, start - position)
                for p, r in zip(piece[skip:].tolist(), row[skip:].tolist()):
                    yield decoded[p], r
                del decoded

    def _decode_block(self, block, buffers: _Buffers) -> list:
        return [self._decode(slot, buffers) for slot, *_ in block]

    def _decode(self, slot: int, buffers: _Buffers):
        """One shard's videos as a (n, frames, H, W, C) view, its labels (and indices) as lists."""
        entry = self.run.shards[slot]
        keys = ("videos", "labels", "index") if self.with_index else ("videos", "labels")
        arrays = read_members(self.run._path(entry), keys, alloc=buffers.get)
        videos, labels, n = arrays["videos"], arrays["labels"], entry["count"]
        size = self.run.config.size
        if (
            videos.dtype != np.uint8
            or videos.ndim != 5
            or videos.shape[0] != n
            or videos.shape[1] < self.frames
            or videos.shape[2:] != (size, size, 3)
            or labels.shape != (n,)
            or any(arrays[k].dtype != np.int64 for k in keys[1:])
            or (self.with_index and arrays["index"].shape != (n,))
        ):
            raise CorruptShardError(
                f"{shard_file(entry['index'])} does not hold the {n} samples the manifest lists; "
                f"check the run with: trajgen verify {self.run.root}"
            )
        return videos[:, : self.frames], labels.tolist(), arrays["index"].tolist() if self.with_index else None
