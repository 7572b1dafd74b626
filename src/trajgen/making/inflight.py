"""Samples of shards still being made ("in flight"), so progress moves before a shard is committed.

Whoever makes shard k (this process, a pool worker or a Dask worker: all of them see the
run directory) keeps RUN_DIR/.tmp/inflight-KKKKK holding "j n": j of the shard's n samples
are made (encoded into the shard file being written). It is rewritten at most every
REPORT_SECONDS (replaced by a rename, so a reader never sees half of it) and removed before
the maker returns the shard. The process that holds the run's lock reads these files for its
progress (the bar, PROGRESS.txt, progress.json) and ``status`` reads them while the run is
locked; committed counts never include them.

They are not part of the commit protocol: never fsynced, and written with plain system calls,
not through _fs (which counts and records the run's durable I/O), since how many there are
depends on timing. .tmp/ is cleared at every start, so none outlives a crash into a resume.
"""

from __future__ import annotations

import os
import time

from trajgen.store import _fs

REPORT_SECONDS = 0.5  # a maker rewrites its file at most this often (a few µs of a shard's seconds)
_PREFIX = "inflight-"


def progress_file(tmp_dir, k: int) -> str:
    return os.path.join(os.fspath(tmp_dir), f"{_PREFIX}{k:05d}")


class ShardProgress:
    """What the maker of shard k (``n`` samples) reports; ``encoded`` is the shard encoder's
    progress callback. ``every``: seconds between reports (default REPORT_SECONDS, or the
    environment's TRAJGEN_INFLIGHT_SECONDS, which tests set to 0 to see every step).

    The count reported is the shard's share of its time, in samples: the time since the maker
    started (making the samples included) over that time plus what encoding still needs at its
    pace so far. Counting only the encoded share would make the first rate of a run with large
    shards far too low (the making before it counted for nothing)."""

    def __init__(self, tmp_dir, k: int, n: int, every: float | None = None, clock=time.monotonic):
        self._tmp_dir, self._k, self._n = tmp_dir, k, n
        self._path = progress_file(tmp_dir, k)
        if every is None:
            every = float(os.environ.get("TRAJGEN_INFLIGHT_SECONDS", REPORT_SECONDS))
        self._every, self._clock = every, clock
        self._start = self._last = clock()
        self._encoding: tuple[float, float] | None = None  # (time, share encoded) when encoding was first heard of
        self._written = False

    def encoded(self, done_bytes: int, total_bytes: int) -> None:
        """The encoder has deflated ``done_bytes`` of the shard's ``total_bytes``."""
        now, share = self._clock(), done_bytes / max(1, total_bytes)
        if self._encoding is None:
            self._encoding = (now, share)
        if now - self._last < self._every:
            return
        began, share_then = self._encoding
        if share <= share_then or now <= began:
            return  # no pace yet
        left = (1.0 - share) * (now - began) / (share - share_then)  # seconds of encoding still to come
        spent = now - self._start
        self._last = now
        self._write(min(self._n, int(self._n * spent / (spent + left))))

    def _write(self, made: int) -> None:
        temp = f"{self._path}.{os.getpid()}.{os.urandom(6).hex()}.tmp"  # a dead writer's are discarded by pid
        try:
            with open(temp, "w") as f:
                f.write(f"{made} {self._n}\n")
            os.replace(temp, self._path)
            self._written = True
        except OSError:  # progress is best effort: it never fails a shard
            try:
                os.unlink(temp)
            except OSError:
                pass
            return
        _fs.pause_point("shard-progress")

    def done(self) -> None:
        """The shard is in place (or failed): it is no longer in flight."""
        if self._written:
            discard(self._tmp_dir, [self._k])


def read(tmp_dir, skip=()) -> dict[int, tuple[int, int]]:
    """{shard: (samples made, samples)} of the shards in flight in ``tmp_dir`` (not those in ``skip``)."""
    found: dict[int, tuple[int, int]] = {}
    try:
        entries = list(os.scandir(tmp_dir))
    except OSError:
        return found
    for entry in entries:
        number = entry.name[len(_PREFIX) :]
        if not entry.name.startswith(_PREFIX) or not number.isdigit() or int(number) in skip:
            continue
        try:
            with open(entry.path) as f:
                made, n = (int(v) for v in f.read().split())
        except (OSError, ValueError):  # gone meanwhile, or not one of ours
            continue
        if 0 <= made <= n:
            found[int(number)] = (made, n)
    return found


def totals(found: dict[int, tuple[int, int]]) -> tuple[int, int]:
    """(samples in flight, shards in flight)."""
    return sum(made for made, _ in found.values()), len(found)


def discard(tmp_dir, shards) -> None:
    """Forget the progress of ``shards`` (made again from the start, e.g. after their worker died)."""
    for k in shards:
        try:
            os.unlink(progress_file(tmp_dir, k))
        except OSError:
            pass
