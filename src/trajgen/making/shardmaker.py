"""Making one shard: what a worker runs, whichever executor runs it (this process, a pool
worker or a Dask worker). Below the run loop, which commits what this makes."""

from __future__ import annotations

import errno
import hashlib
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from trajgen.content.bulk import make_samples
from trajgen.content.config import GenerationConfig
from trajgen.errors import StorageError, TrajgenError
from trajgen.making.inflight import ShardProgress
from trajgen.store import _fs
from trajgen.store.objects import Bucket, ObjectStoreError, PreconditionFailed, is_url
from trajgen.store.rundir import RunPaths, resume_command, shard_file
from trajgen.store.shards import SCENE_KEYS, encode_shard, write_shard


class ShardWriteError(StorageError):
    """A shard could not be written; picklable so it can cross from a worker."""

    def __init__(self, message: str, errno_code: int | None = None):
        super().__init__(message)
        self.errno_code = errno_code

    def __reduce__(self):
        return (ShardWriteError, (str(self), self.errno_code))


class WorkerVersionError(TrajgenError):
    """A worker runs other versions than the run needs; it wrote nothing. Picklable (crosses from a worker)."""


@dataclass(frozen=True)
class ShardResult:
    """What a worker reports about a shard it wrote; becomes one manifest entry."""

    index: int
    file: str
    start: int
    count: int
    sha256: str
    bytes: int
    class_counts: dict[str, int]
    redraws: dict[str, int]  # framing_redraws, and occlusion_redraws with --occluders (see build_shard_arrays)
    versions: dict[str, str] | None = None  # of the process that made it (see versions.byte_versions)

    def manifest_entry(self) -> dict:
        entry = {k: v for k, v in asdict(self).items() if k not in ("redraws", "versions")}
        return entry | self.redraws


# A worker process of our own pool keeps its videos buffer from shard to shard: on a VM the
# first touch of fresh memory costs up to 0.3 s per 200 MB shard. Elsewhere (this process,
# Dask workers) nothing is kept, so no memory outlives the run.
_keep_videos_buffer = False


_videos_buffer: np.ndarray | None = None


def videos_buffer(config: GenerationConfig, n: int) -> np.ndarray:
    """An uint8 (n, T, H, W, 3) array for a shard's videos (reused in pool workers)."""
    global _videos_buffer
    frame = (config.frames, config.size, config.size, 3)
    if not _keep_videos_buffer:
        return np.empty((n, *frame), np.uint8)
    if _videos_buffer is None or _videos_buffer.shape[1:] != frame or len(_videos_buffer) < n:
        _videos_buffer = None  # free the old one first
        _videos_buffer = np.ones((max(n, min(config.checkpoint_every, config.n)), *frame), np.uint8)  # touched now
    return _videos_buffer[:n]


@contextmanager
def videos_buffer_kept() -> Iterator[None]:
    """Keep one videos buffer from shard to shard while this process makes shards one after
    another (fresh memory for every shard costs ~0.1 s of page faults); freed at the end."""
    global _keep_videos_buffer, _videos_buffer
    previous, _keep_videos_buffer = _keep_videos_buffer, True
    try:
        yield
    finally:
        _keep_videos_buffer = previous
        if not previous:
            _videos_buffer = None


def build_shard_arrays(
    config: GenerationConfig, k: int
) -> tuple[dict[str, np.ndarray], dict[str, int], dict[str, int]]:
    """Make the samples of shard k in bulk (numpy over the shard), stored in index order; with the
    count of each class, and the draws thrown away: {"framing_redraws": N}, and with --occluders
    "occlusion_redraws" too (as the manifest entry records them)."""
    indices = config.shard_range(k)
    made = make_samples(config, indices, videos_buffer(config, len(indices)))
    arrays = {
        "videos": made.videos,
        "labels": made.labels,
        "index": made.index,
        "trajectory_3d": made.trajectory_3d,
        "points_2d": made.points_2d,
        "camera": made.camera,
        "equations": np.array(made.equations, dtype=str),
        "descriptions": np.array(made.descriptions, dtype=str),
    }
    for key in SCENE_KEYS:  # the knobs' arrays, where they are on
        if getattr(made, key) is not None:
            arrays[key] = getattr(made, key)
    counts = np.bincount(made.labels, minlength=len(config.classes))
    redraws = {"framing_redraws": int(made.redraws.sum())}
    if made.occlusion_redraws is not None:
        redraws["occlusion_redraws"] = int(made.occlusion_redraws.sum())
    return arrays, dict(zip(config.classes, counts.tolist())), redraws


def produce_shard(
    config: GenerationConfig,
    run_dir: str,
    k: int,
    versions: dict[str, str] | None = None,
    codec: dict | None = None,
    storage_options: dict | None = None,
    scratch: str | None = None,
) -> ShardResult:
    """Make shard k and write it atomically into RUN_DIR/shards/ (via .tmp/); runs in any worker.

    With ``versions`` (what the run is made with), a worker running other versions refuses
    before it writes anything. ``codec`` is the one the run's manifest records (default: a new
    run's at config.compress_level). A ``run_dir`` that is a URL gets the shard as one object,
    created only if none is there (``storage_options`` for the client); ``scratch`` is the local
    working directory's .tmp/, for the in-flight counts when this worker runs on that machine."""
    from trajgen.store.versions import byte_versions, differences

    mine = byte_versions()
    changed = differences(versions, mine) if versions is not None else []
    if changed:
        raise WorkerVersionError(
            f"the worker on {socket.gethostname()} (pid {os.getpid()}) runs other versions than the run "
            f"({', '.join(changed)}) and made no shard; install the run's versions on every "
            f"worker, then run: {resume_command(run_dir)}"
        )
    _fs.pause_point("shard-start")
    if is_url(run_dir):
        return _produce_object(config, Bucket(run_dir, storage_options), k, codec, scratch, mine)
    paths = RunPaths(Path(run_dir))
    r = config.shard_range(k)
    made = ShardProgress(paths.tmp, k, len(r))  # how far this shard is, for the run's progress
    try:
        arrays, class_counts, redraws = build_shard_arrays(config, k)
        try:
            info = write_shard(
                paths.shard(k),
                arrays,
                config.compress_level if codec is None else codec,
                paths.tmp,
                progress=made.encoded,
            )
        except OSError as e:
            raise ShardWriteError(f"could not write shard {k} ({shard_file(k)}): {os_reason(e)}", e.errno) from None
    finally:
        made.done()
    return ShardResult(k, shard_file(k), r.start, len(r), info.sha256, info.bytes, class_counts, redraws, mine)


def _produce_object(
    config: GenerationConfig, bucket: Bucket, k: int, codec: dict | None, scratch: str | None, mine: dict[str, str]
) -> ShardResult:
    """Shard k as one object under the run's URL: encoded in memory, then created only if no object has
    its name. One that has (a worker of a killed run, still busy, made it meanwhile) must hold the same
    bytes, since shard k is a pure function of the config; anything else is an error, and is not listed."""
    r = config.shard_range(k)
    # the client (imports, a session) is made while the samples are: a worker's first shard need not wait for it
    warming = threading.Thread(target=_quietly, args=(lambda: bucket.fs,), daemon=True)
    warming.start()
    here = scratch is not None and os.path.isdir(scratch)  # this worker runs beside the committing process
    made = ShardProgress(scratch, k, len(r)) if here else None
    try:
        arrays, class_counts, redraws = build_shard_arrays(config, k)
        data = encode_shard(arrays, config.compress_level if codec is None else codec, made and made.encoded)
        sha256 = hashlib.sha256(data).hexdigest()
        warming.join()
        try:
            bucket.create(shard_file(k), data)
        except PreconditionFailed:
            there = bucket.read(shard_file(k))
            if there is None or hashlib.sha256(there).hexdigest() != sha256:
                raise ShardWriteError(
                    f"{bucket.url_of(shard_file(k))} appeared while shard {k} was made and holds other bytes; "
                    f"another process writes this run: stop it, then run: {resume_command(bucket.url)}"
                ) from None
    except ObjectStoreError as e:
        raise ShardWriteError(f"could not write shard {k}: {e}") from None
    finally:
        if made is not None:
            made.done()
    return ShardResult(k, shard_file(k), r.start, len(r), sha256, len(data), class_counts, redraws, mine)


def _quietly(action) -> None:
    try:
        action()
    except Exception:
        pass  # the write that needs it raises it again, as one line


def os_reason(e: OSError) -> str:
    name = errno.errorcode.get(e.errno or 0, "")
    return f"{e.strerror or e} [{name}]" if name else str(e.strerror or e)
