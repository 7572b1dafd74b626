"""Reading a run: ``open_run(path)`` → a Run of the samples its manifest lists.

Only committed shards exist for a reader, so a run that is still being written (or
was interrupted) reads as the samples committed when it was opened. Positions
``run[0] … run[len(run) - 1]`` follow global index order over those samples; on a
complete run position i is sample i. Opening reads manifest.json only; a shard is
decoded when first needed, and at most ``cache_shards`` decoded shards are kept.
"""

from __future__ import annotations

import bisect
import os
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from trajgen.content.config import GenerationConfig
from trajgen.content.sample import Sample
from trajgen.errors import ConfigError, CorruptShardError
from trajgen.store.manifest import read_manifest
from trajgen.store.objects import is_url
from trajgen.store.run_copy import RunCopy
from trajgen.store.rundir import RunError, RunPaths, shard_file
from trajgen.store.shards import SCENE_KEYS, read_members, read_shard, shard_keys

DEFAULT_CACHE_SHARDS = 2


def open_run(
    path: os.PathLike | str,
    *,
    cache_shards: int = DEFAULT_CACHE_SHARDS,
    cache_dir: os.PathLike | str | None = None,
    storage_options: dict | None = None,
) -> Run:
    """Open a run directory for reading (complete, in progress or interrupted).

    ``path`` may be a run's URL (``s3://bucket/prefix``): its manifest is read afresh, and each shard
    is fetched when first needed, by the process that needs it (each DataLoader worker and rank its
    own), into ``cache_dir`` (default: ~/.cache/trajgen, or $TRAJGEN_CACHE_DIR), where it stays for
    the next epoch and the next open."""
    if not is_url(path):
        return Run(path, cache_shards=cache_shards)
    copy = RunCopy.of(str(path), "read", storage_options, cache_dir)
    copy.pull_records(("config.json", "manifest.json"))
    if not copy.paths.manifest.exists():
        raise RunError(f"{copy.bucket.url} is not a trajgen run, or none of it is committed yet (no manifest.json)")
    run = Run(copy.root, cache_shards=cache_shards)
    run._fetch = copy
    return run


class Run:
    """The committed samples of a run, as ``trajgen.Sample`` objects or numpy arrays."""

    def __init__(self, path: os.PathLike | str, *, cache_shards: int = DEFAULT_CACHE_SHARDS):
        if cache_shards < 1:
            raise ConfigError(f"cache_shards must be ≥ 1, got {cache_shards}")
        self.root = Path(path)
        self.manifest = read_manifest(self.root)
        self.config = GenerationConfig.from_dict(self.manifest["config"])
        self.shards: list[dict] = sorted(self.manifest["shards"], key=lambda s: s["index"])
        self._offsets = np.cumsum([0] + [s["count"] for s in self.shards]).tolist()
        self._cache_shards = cache_shards
        self._cache: OrderedDict[int, dict] = OrderedDict()
        self._labels: np.ndarray | None = None
        self._fetch: RunCopy | None = None  # a run in a bucket: where its shards come from

    # ------------------------------------------------------------ description
    classes = property(lambda self: tuple(self.manifest["classes"]))
    total_samples = property(
        lambda self: self.manifest["total_samples"], doc="Samples the run will hold when complete."
    )
    total_shards = property(lambda self: self.manifest["num_shards"])
    committed_shards = property(lambda self: len(self.shards))
    complete = property(lambda self: self.manifest["status"] == "complete")
    cached_shards = property(lambda self: len(self._cache))

    def __len__(self) -> int:
        return self._offsets[-1]

    def __repr__(self) -> str:
        state = "complete" if self.complete else "in progress"
        return (
            f"<Run {str(self.root)!r}: {len(self):,} of {self.total_samples:,} samples, "
            f"{self.committed_shards}/{self.total_shards} shards committed ({state})>"
        )

    # ------------------------------------------------------------ samples
    def __getitem__(self, position: int) -> Sample:
        slot, row = self._locate(position)
        return self._sample(self._decoded(slot), row)

    def __iter__(self) -> Iterator[Sample]:
        for arrays in self.iter_shards():
            for row in range(len(arrays["index"])):
                yield self._sample(arrays, row)

    def iter_shards(self) -> Iterator[dict[str, np.ndarray]]:
        """Each committed shard's arrays in index order, one at a time (bypasses the cache)."""
        for entry in self.shards:
            yield self._read(entry)

    # ------------------------------------------------------------ arrays
    @property
    def labels(self) -> np.ndarray:
        """All labels (int64), read from each shard's `labels` member alone: no video is decoded."""
        if self._labels is None:
            parts = []
            for entry in self.shards:
                try:
                    parts.append(read_members(self._path(entry), ["labels"])["labels"])  # only labels is inflated
                except CorruptShardError as e:
                    raise CorruptShardError(
                        f"cannot read labels from {shard_file(entry['index'])} ({e}); "
                        f"check the run with: trajgen verify {self.root}"
                    ) from None
            self._labels = np.concatenate(parts) if parts else np.empty(0, np.int64)
        return self._labels

    @property
    def keys(self) -> tuple[str, ...]:
        """The arrays every shard of this run holds (the scene's too, where its knobs are on)."""
        return shard_keys(self.config)

    def arrays(self, indices: Sequence[int] | None = None, keys: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """A batch as numpy arrays, rows in the order of ``indices`` (positions; None = every sample);
        ``keys`` (default: all of ``self.keys``) names the arrays."""
        keys = self.keys if keys is None else tuple(keys)
        unknown = [k for k in keys if k not in self.keys]
        if unknown:
            raise KeyError(f"unknown array(s) {', '.join(unknown)}; this run's shards hold {', '.join(self.keys)}")
        if indices is None:  # every sample: as much memory as the whole run's arrays
            parts = [{k: a[k] for k in keys} for a in self.iter_shards()]
            return {k: np.concatenate([p[k] for p in parts]) if parts else np.empty(0) for k in keys}
        located = np.array([self._locate(int(i)) for i in indices], np.int64).reshape(-1, 2)
        slots, rows = located[:, 0], located[:, 1]
        by_slot = np.argsort(slots, kind="stable")
        parts = []
        needed = np.unique(slots).tolist() or [0][: len(self.shards)]  # none asked: shard 0 still gives dtypes, shapes
        for slot in needed:  # each needed shard decoded once
            arrays = self._decoded(slot)
            parts.append({k: arrays[k][rows[slots == slot]] for k in keys})
        if not parts:
            return {k: np.empty(0) for k in keys}
        back = np.argsort(by_slot)  # from shard-grouped rows back to the order asked for
        return {k: np.concatenate([p[k] for p in parts])[back] for k in keys}

    # ------------------------------------------------------------ torch
    def torch_dataset(self, frames: int | None = None, dtype: str = "float32"):
        """A map-style ``torch.utils.data.Dataset`` of (video (C, T, H, W), label), random access.

        ``dtype`` "float32" (default) gives values in [0, 1], "uint8" the bytes as stored.
        ``frames`` keeps the first ``frames`` frames of each video (default: all)."""
        from trajgen.use._torch import VideoDataset  # torch is imported here only: it is an optional extra

        return VideoDataset(self, frames, dtype)

    def torch_stream(
        self,
        frames: int | None = None,
        dtype: str = "uint8",
        shuffle: bool = True,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        shuffle_buffer: int = 2048,
        with_index: bool = False,
        batch_size: int | None = None,
    ):
        """A ``torch.utils.data.IterableDataset`` for training: (video (C, T, H, W), label), or
        (video, label, global index) with ``with_index=True``, read shard by shard.

        - ``batch_size=B`` (the fast way): the stream hands out whole batches (video (B, C, T, H, W),
          label (B,)[, index (B,)]) for ``DataLoader(stream, batch_size=None, ...)``; each sample
          is copied once, into its batch, which a worker builds in shared memory it reuses once the
          batch is no longer referred to. The video's memory is laid out (B, T, H, W, C) as stored
          (``torch.channels_last_3d``; ``.to(device)`` keeps that layout). Only a rank's last
          batch may be short; ``len(stream)`` is the number of batches. With
          ``persistent_workers=True`` a worker decodes later epochs into memory it already has.

        - Each DataLoader worker of each DDP rank reads its own part of the epoch. ``rank`` and
          ``world_size`` come from ``torch.distributed`` when it is initialized (make the stream
          after ``init_process_group``), else they are 0 and 1; or pass both.
        - Every rank gets ``len(run) // world_size`` samples per epoch, so DDP ranks step together:
          the epoch's sequence (shards in shuffled order) is cut into equal contiguous parts, split
          within shards where they meet, and the last ``len(run) % world_size`` samples of the
          sequence (fewer than ``world_size``; different ones each epoch when shuffled) sit out the
          epoch. So an epoch holds each sample at most once, exactly once when it divides.
        - ``dtype`` "uint8" (default; the bytes as stored: normalize on the GPU with
          ``video.float().div_(255)``) or "float32" in [0, 1].
        - ``shuffle``: shard order shuffled, and the samples of consecutive shards holding at most
          ``shuffle_buffer`` samples (at least one shard) mixed; a DataLoader worker holds up to about
          two times that many decoded videos (this block, the last one's stragglers), the main process
          without workers three (it also decodes the next block in a thread). Deterministic for
          (seed, epoch); ``set_epoch(e)`` before each epoch.
        - ``state_dict()``/``load_state_dict()``: torchdata's ``StatefulDataLoader`` resumes mid-epoch
          with exactly the rest of the epoch (same run, options and ``num_workers``).
        - Reads the shards committed when the run was opened (a run still being written works).
        """
        from trajgen.use._torch import VideoStream  # torch is imported here only: it is an optional extra

        return VideoStream(
            self,
            frames=frames,
            dtype=dtype,
            shuffle=shuffle,
            seed=seed,
            rank=rank,
            world_size=world_size,
            shuffle_buffer=shuffle_buffer,
            with_index=with_index,
            batch_size=batch_size,
        )

    # ------------------------------------------------------------ internals
    def _locate(self, position: int) -> tuple[int, int]:
        n = len(self)
        if position < 0:
            position += n
        if not 0 <= position < n:
            raise IndexError(f"sample position {position} is out of range: {n:,} samples are committed")
        slot = bisect.bisect_right(self._offsets, position) - 1
        return slot, position - self._offsets[slot]

    def _sample(self, arrays: dict[str, np.ndarray], row: int) -> Sample:
        label = int(arrays["labels"][row])
        return Sample(
            index=int(arrays["index"][row]),
            label=label,
            class_name=self.classes[label],
            # copies, so a kept sample neither pins nor can change a whole decoded shard
            video=arrays["videos"][row].copy(),
            trajectory_3d=arrays["trajectory_3d"][row].copy(),
            points_2d=arrays["points_2d"][row].copy(),
            camera=arrays["camera"][row].copy(),
            equation=str(arrays["equations"][row]),
            description=str(arrays["descriptions"][row]),
            redraws=0,  # the manifest keeps framing redraws per shard only
            **{key: arrays[key][row].copy() for key in SCENE_KEYS if key in arrays},
        )

    def _decoded(self, slot: int) -> dict[str, np.ndarray]:
        if slot in self._cache:
            self._cache.move_to_end(slot)
            return self._cache[slot]
        arrays = self._read(self.shards[slot])
        self._cache[slot] = arrays
        while len(self._cache) > self._cache_shards:
            self._cache.popitem(last=False)
        return arrays

    def _path(self, entry: dict) -> Path:
        if self._fetch is not None:
            return self._fetch.shard(entry)
        return RunPaths(self.root).shard(entry["index"])

    def _read(self, entry: dict) -> dict[str, np.ndarray]:
        path = self._path(entry)
        arrays = read_shard(path, self.keys)
        if len(arrays["index"]) != entry["count"]:
            raise CorruptShardError(
                f"{shard_file(entry['index'])} holds {len(arrays['index'])} samples, the manifest "
                f"says {entry['count']}; check the run with: trajgen verify {self.root}"
            )
        frame = (self.config.frames, self.config.size, self.config.size, 3)
        if arrays["videos"].shape[1:] != frame:  # e.g. a shard of another run copied in
            raise CorruptShardError(
                f"{shard_file(entry['index'])} holds videos of shape {arrays['videos'].shape[1:]}, "
                f"this run's are {frame}; check the run with: trajgen verify {self.root}"
            )
        return arrays

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_cache": OrderedDict()}  # workers decode their own shards
