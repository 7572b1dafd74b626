"""The one generation loop: make the missing shards with an executor, commit each as it arrives.

Commit protocol: a shard is written to .tmp/ and renamed into shards/ by whoever makes it; only
then does this process add it to manifest.json (atomically), append to run.log and rewrite
PROGRESS.txt. A shard file not listed in the manifest is not done, and is made again.
"""

from __future__ import annotations

import errno
import functools
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from trajgen.content.config import GenerationConfig
from trajgen.errors import StorageError, TrajgenError, os_reason
from trajgen.making import inflight
from trajgen.making.bucket_commit import BucketCommit
from trajgen.making.shardmaker import ShardWriteError, produce_shard
from trajgen.making.thumbnails import ShardPictures
from trajgen.store import _fs
from trajgen.store.manifest import manifest_bytes
from trajgen.store.reserve import Reserve, is_disk_full
from trajgen.store.rundir import RunPaths, log_line, resume_command
from trajgen.store.versions import byte_versions, differences
from trajgen.watch.mirror import ProgressMirror
from trajgen.watch.progress import warn
from trajgen.watch.reporter import ProgressReporter

PROGRESS_INTERVAL = 30.0


class Interrupted(TrajgenError):
    """Stopped by SIGINT or SIGTERM after leaving the run resumable."""

    def __init__(self, signum: int, message: str = ""):
        super().__init__(message or f"stopped by {signal.Signals(signum).name}")
        self.signum = signum
        self.exit_code = 128 + signum


ADVICE: dict[int | None, str] = {  # looked up by an errno, which may be None
    errno.ENOSPC: "free some disk space",
    errno.EDQUOT: "free some space or raise your disk quota",
    errno.EFBIG: "the filesystem refused a file that large; move the run to another filesystem",
    errno.EROFS: "the filesystem is read-only; remount it read-write",
    errno.EIO: "the disk reported an I/O error; check it",
}


@dataclass(frozen=True)
class RunSummary:
    run_dir: Path | str  # a URL for a run in object storage
    total_samples: int
    made_shards: int
    made_samples: int
    seconds: float
    already_complete: bool = False
    repaired: str = ""  # what resume put right before working (config.json, the manifest's status)

    @property
    def rate(self) -> float:
        return self.made_samples / self.seconds if self.seconds > 0 else 0.0


def work(
    paths: RunPaths,
    config: GenerationConfig,
    manifest: dict,
    executor,
    *,
    progress_interval,
    show_bar,
    run_versions: dict[str, str],
    progress_to: str | None = None,
    bucket: BucketCommit | None = None,
) -> RunSummary:
    """The one generation loop: make the missing shards with an executor, commit each as it arrives.

    With ``bucket``, ``paths`` is the local working copy of a run in object storage: the workers put
    the shards in the bucket, and each commit is first the bucket's manifest (compare-and-swap)."""
    committed = {s["index"] for s in manifest["shards"]}
    shown = paths.root if bucket is None else bucket.url  # what the user calls the run
    todo = [k for k in range(config.num_shards) if k not in committed]
    reserve = Reserve(paths.root)  # room for the last words on a full disk
    try:
        _fs.clear_dir(paths.tmp)
        _fs.make_dirs(paths.shards)
        _remove_unlisted_shards(paths, committed)
        if bucket is not None:
            bucket.prepare(committed)
    except OSError as e:
        where = f" ({e.filename})" if e.filename else ""
        raise StorageError(
            f"could not clear the run's unfinished files{where}: {os_reason(e)}; "
            f"{ADVICE.get(e.errno, 'fix the cause')}, then run: {resume_command(shown)}"
        ) from None
    try:
        reserve.make()
    except OSError as e:
        raise StorageError(
            f"could not keep a little disk space for the run's last words ({reserve.dir}): {os_reason(e)}; "
            f"{ADVICE.get(e.errno, 'fix the cause')}, then run: {resume_command(shown)}"
        ) from None
    done_counts = {name: sum(s["class_counts"].get(name, 0) for s in manifest["shards"]) for name in config.classes}
    reporter = ProgressReporter(
        paths.root,
        shown,
        paths.tmp,
        total_samples=config.n,
        total_shards=config.num_shards,
        checkpoint_every=config.checkpoint_every,
        class_counts=done_counts,
        completed_samples=sum(s["count"] for s in manifest["shards"]),
        completed_shards=len(committed),
        framing_redraws=sum(s.get("framing_redraws", 0) for s in manifest["shards"]),
        occlusion_redraws=sum(s.get("occlusion_redraws", 0) for s in manifest["shards"]),
        interval=progress_interval,
        bar=show_bar,
        mirror=_mirror(paths, config, progress_to, progress_interval, bucket),
        inflight=functools.partial(inflight.read, paths.tmp, skip=committed),  # the shards being made, and how far
        reserve=reserve,
    )
    started = time.monotonic()
    made_samples = 0
    lines: dict[int, str] = {}  # serialized manifest entries, see manifest_bytes
    signals = _SignalGuard()
    # the handlers stay ours until the cleanup after a stop or failure is done, and what arrives
    # during that cleanup is dropped (the command is stopping already): a second Ctrl-C cannot cut it short
    with signals:
        try:
            with writing("write the run's log or progress files"):
                _fs.append_line(
                    paths.log,
                    log_line(
                        f"start pid={os.getpid()} host={socket.gethostname()} executor={executor.describe()} "
                        f"shards_to_make={len(todo)} of {config.num_shards}"
                    ),
                )
                reporter.start()
            # every worker makes its shards with the versions this process runs (the run's, unless a change was allowed)
            make = functools.partial(produce_shard, versions=byte_versions(manifest["codec"]), codec=manifest["codec"])
            if bucket is not None:  # the workers write into the bucket; those on this machine report in-flight counts
                make = functools.partial(make, storage_options=bucket.bucket.options, scratch=str(paths.tmp))
            results = executor.run(make, config, str(shown), todo)
            with closing(results):
                for result in results:  # an executor's own failures pass through as they are
                    with signals.deferred():  # a commit is never cut in half by Ctrl-C
                        with writing(f"commit shard {result.index} ({result.file})"):
                            entry = result.manifest_entry()
                            if result.versions is not None and differences(run_versions, result.versions):
                                entry["versions"] = result.versions  # a mixed run: verify names these shards
                            shards = sorted([*manifest["shards"], entry], key=lambda s: s["index"])
                            whole = len(shards) == config.num_shards
                            updated = {**manifest, "shards": shards, "status": "complete" if whole else "running"}
                            data = manifest_bytes(updated, lines)
                            if bucket is not None:
                                bucket.commit(data)  # the commit point; the local copy follows
                            _fs.atomic_write_bytes(paths.manifest, data, paths.tmp)
                            manifest.update(updated)  # committed: in memory only once it is on disk
                            committed.add(result.index)
                            made_samples += result.count
                        with writing(f"log the commit of shard {result.index} (it is committed)"):
                            _fs.append_line(
                                paths.log,
                                log_line(
                                    f"committed shard {result.index} ({result.count} samples, "
                                    f"sha256 {result.sha256[:16]})"
                                ),
                            )
                            reporter.commit(
                                result.count,
                                result.class_counts,
                                result.redraws["framing_redraws"],
                                shard=paths.shard(result.index),
                                occlusion=result.redraws.get("occlusion_redraws", 0),
                            )
                    _fs.pause_point("committed")
            seconds = time.monotonic() - started
            with writing("write the run's log or progress files"):
                _fs.append_line(paths.log, log_line(f"complete: made {made_samples} samples in {seconds:.1f}s"))
                reporter.finish("COMPLETE")
        except Interrupted as e:
            stopped = str(e)
            with signals.held():
                _fs.pause_point("interrupt-cleanup")
                reporter.stop()  # before .tmp/ is cleared: the heartbeat writes its temp files there
                best_effort(lambda: _fs.clear_dir(paths.tmp))
                best_effort(lambda: _fs.append_line(paths.log, log_line(f"stop: {stopped}")))
                best_effort(lambda: _settle(reporter, manifest))
                best_effort(lambda: reporter.finish(_final_state(manifest, "STOPPED")))
            then = (
                "the run is complete"
                if manifest["status"] == "complete"
                else f"the run is resumable: {resume_command(shown)}"
            )
            raise Interrupted(e.signum, f"{e}; {then}") from None
        except StorageError as e:
            disk_full = is_disk_full(getattr(e, "errno_code", None))
            failure = f"disk full: {e}" if disk_full else str(e)  # the cause, first, on PROGRESS.txt's state line
            with signals.held():
                reporter.stop()
                advice = ADVICE.get(getattr(e, "errno_code", None), "fix the cause")
                message = f"{e}; {advice}, then run: {resume_command(shown)}"
                best_effort(lambda: _fs.clear_dir(paths.tmp))
                if disk_full:
                    best_effort(reserve.release_log)  # room for the line below, whatever fills the disk
                best_effort(lambda: _fs.append_line(paths.log, log_line(f"error: {message}")))
                best_effort(lambda: _finish_failed(reporter, manifest, failure))
            raise StorageError(message) from None
        except BaseException as e:
            with signals.held():
                reporter.stop()
                reason = " ".join(str(e).split()) or type(e).__name__
                best_effort(lambda: _fs.append_line(paths.log, log_line(f"error: {reason}")))
                best_effort(lambda: _finish_failed(reporter, manifest, reason))
            raise
        finally:
            reporter.stop()  # whatever happened, no heartbeat outlives this call (or the lock)
            if manifest["status"] == "complete":
                best_effort(reserve.remove)  # a complete run keeps no reserve
    return RunSummary(shown, config.n, len(todo), made_samples, seconds)


def _mirror(
    paths: RunPaths, config: GenerationConfig, folder: str | None, interval: float, bucket: BucketCommit | None
):
    """--progress-to: PROGRESS.txt and PROGRESS.html copied to a (synced) folder, with the newest shard's
    pictures; for a run in a bucket, the progress files also go to the bucket."""
    if folder is None:
        return bucket
    if bucket is not None:
        bucket.then = ProgressMirror(folder, paths.root, paths.tmp, interval, warn=functools.partial(warn, paths.log))
        return bucket
    return ProgressMirror(
        folder,
        paths.root,
        paths.tmp,
        interval,
        warn=functools.partial(warn, paths.log),
        pictures=ShardPictures(paths, config),
    )


def _final_state(manifest: dict, state: str) -> str:
    """The state PROGRESS.txt is left in: a run whose manifest is complete is COMPLETE, whatever stopped the command."""
    return "COMPLETE" if manifest["status"] == "complete" else state


def _finish_failed(reporter: ProgressReporter, manifest: dict, error: str) -> None:
    state = _final_state(manifest, "FAILED")
    _settle(reporter, manifest)
    reporter.finish(state, error=error if state == "FAILED" else None)


def _settle(reporter: ProgressReporter, manifest: dict) -> None:
    """A run whose manifest is complete says COMPLETE with the manifest's counts, even when the progress
    write of its last commit failed (the commit itself is whole)."""
    if manifest["status"] != "complete":
        return
    shards = manifest["shards"]
    counts: dict[str, int] = {}
    for entry in shards:
        for name, n in entry["class_counts"].items():
            counts[name] = counts.get(name, 0) + n
    reporter.settle(
        sum(e["count"] for e in shards),
        len(shards),
        counts,
        sum(e.get("framing_redraws", 0) for e in shards),
        sum(e.get("occlusion_redraws", 0) for e in shards),
    )


@contextmanager
def writing(what: str) -> Iterator[None]:
    """Turn an OSError from this process's own run files into a ShardWriteError saying what failed."""
    try:
        yield
    except OSError as e:
        raise ShardWriteError(f"could not {what}: {os_reason(e)}", e.errno) from None


def best_effort(action) -> None:
    try:
        action()
    except Exception:
        pass


def _remove_unlisted_shards(paths: RunPaths, committed: set[int]) -> None:
    """A shard file the manifest does not list is not done (a crash between rename and commit)."""
    listed = {paths.shard(k).name for k in committed}
    for p in paths.shards.glob("shard-*.npz"):
        if p.name not in listed:
            _fs.remove_file(p)


class _SignalGuard:
    """SIGINT/SIGTERM raise Interrupted at once, except inside ``deferred()`` (a commit),
    where they are held until the commit is whole."""

    def __init__(self) -> None:
        self._depth = 0
        self._pending: int | None = None
        self._previous: dict = {}

    def _handle(self, signum, frame) -> None:
        if self._depth:
            self._pending = signum
            return
        raise Interrupted(signum)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False

    @contextmanager
    def held(self):
        """For a cleanup: signals that arrive inside are dropped (the command is stopping already)."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if not self._depth:
                self._pending = None

    @contextmanager
    def deferred(self):
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if self._pending is not None and not self._depth:
            signum, self._pending = self._pending, None
            raise Interrupted(signum)
