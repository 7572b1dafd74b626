"""Committing a run that lives in object storage, from the process that holds its lease.

The manifest in the bucket is the commit point: each commit replaces it by compare-and-swap on the
ETag this process last wrote, so a second writer's commit fails and overwrites nothing; the lease is
checked first, so a process that lost it commits nothing more. Progress files and run.log are
published to the bucket for watchers (``aws s3 cp s3://…/PROGRESS.txt -``); they are not part of the
commit record. Before work starts, the run's own debris is cleared: pending multipart uploads of its
shards and shard objects the manifest does not list. Nothing else in the bucket is touched.
"""

from __future__ import annotations

import math
import re
import shutil
import time
import uuid
from typing import Any

from trajgen.errors import ConfigError
from trajgen.store._fs import pause_point
from trajgen.store.lease import LEASE_NAME, Lease
from trajgen.store.objects import Bucket, ObjectStoreError, PreconditionFailed
from trajgen.store.run_copy import RunCopy, copy_dir
from trajgen.store.rundir import RunError, resume_command, shard_file

_SHARD_NAME = re.compile(r"shards/shard-\d{5,}\.npz")
LOG_SECONDS = 30.0  # run.log goes up at most this often while the run works (and at the end)
PROGRESS_SECONDS = 2.0  # PROGRESS.txt and progress.json at most this often, but the final state always


class BucketCommit:
    def __init__(self, copy: RunCopy, manifest_etag: str, lease: Lease):
        self.copy, self.bucket, self.lease = copy, copy.bucket, lease
        self.url = self.bucket.url
        self._etag = manifest_etag
        self._log_at = self._progress_at = -math.inf
        self.then: Any = None  # a ProgressMirror (--progress-to) that hears of each write after the bucket

    def prepare(self, committed: set[int]) -> list[str]:
        """Abort the run's pending shard uploads, remove its shard objects the manifest does not list;
        what was done, one line each."""
        done = []
        for name, upload in self.bucket.pending_uploads("shards/"):
            self.bucket.abort_upload(name, upload)
            done.append(f"aborted a pending upload of {name}")
        listed = {shard_file(k) for k in committed}
        for name in self.bucket.names("shards/"):
            if _SHARD_NAME.fullmatch(name) and name not in listed:
                self.bucket.remove(name)
                done.append(f"removed {name}, which the manifest does not list")
        return done

    def commit(self, manifest: bytes) -> None:
        """Replace the bucket's manifest, only if it is still the one this process last wrote."""
        self.lease.check()
        pause_point("bucket-commit")
        try:
            self._etag = self.bucket.replace("manifest.json", manifest, self._etag)
        except PreconditionFailed:
            raise ObjectStoreError(
                f"{self.bucket.url_of('manifest.json')} was changed by another process while this one worked; "
                f"nothing was overwritten; make sure only one process works on the run, then run: "
                f"{resume_command(self.url)}"
            ) from None

    # the reporter's mirror: it hears of every progress write
    def publish(self, snapshot, shard=None) -> None:
        now, final = time.monotonic(), snapshot.state != "RUNNING"
        if final or now - self._progress_at >= PROGRESS_SECONDS:  # not at every commit: requests cost CPU
            names = ["PROGRESS.txt", "progress.json"]
            if final or now - self._log_at >= LOG_SECONDS:
                names.append("run.log")
                self._log_at = now
            self._progress_at = now
            try:
                self.copy.publish(names)
            except (OSError, ObjectStoreError):
                pass  # watchers see the next write; the commit record does not depend on these
        if self.then is not None:
            self.then.publish(snapshot, shard)

    def flush(self, timeout=None) -> bool:
        return self.then is None or self.then.flush(timeout)

    def close(self, *args) -> None:
        try:
            self.copy.publish(["PROGRESS.txt", "progress.json", "run.log"])
        except (OSError, ObjectStoreError):
            pass
        if self.then is not None:
            self.then.close(*args)


def check_new_bucket_run(bucket: Bucket) -> None:
    """The URL may become a new run: nothing under it but a lease given back or expired."""
    names = set(bucket.names())
    if names & {"config.json", "manifest.json"}:
        raise RunError(
            f"{bucket.url} already holds a run; finish it with `{resume_command(bucket.url)}` or choose another --out"
        )
    if names - {LEASE_NAME}:
        raise RunError(
            f"{bucket.url} holds {len(names)} objects and is not a trajgen run; choose another --out (nothing was changed)"
        )


def check_workers_reach(bucket: Bucket, workers: int | None, scheduler: str | None) -> None:
    """memory:// lives in this process only: its shards must be made here (tests and notebooks)."""
    if bucket.scheme == "memory" and (scheduler is not None or workers != 1):
        raise ConfigError(f"{bucket.url} lives in this process only; make it with workers=1 and no scheduler")


def fresh_copy(bucket: Bucket) -> RunCopy:
    """The making process's local working copy of the run, emptied (the bucket is the truth)."""
    root = copy_dir(bucket.url, "work")
    shutil.rmtree(root, ignore_errors=True)
    return RunCopy(bucket, root)


def bucket_checks(url: str) -> list[tuple[bool, str]]:
    """A run's URL: the bucket answers, nothing is there yet, and the store honours the conditional writes
    the commit protocol stands on (checked with a probe object under the URL, removed afterwards)."""
    bucket = Bucket(url)
    bucket.check_reachable()
    check_new_bucket_run(bucket)
    probe = f".dry-run-probe-{uuid.uuid4().hex[:12]}"
    try:
        etag = bucket.create(probe, b"1")
        honoured = []
        for write in (lambda: bucket.create(probe, b"2"), lambda: bucket.replace(probe, b"3", '"0"')):
            try:
                write()
                honoured.append(False)
            except PreconditionFailed:
                honoured.append(True)
        bucket.replace(probe, b"4", etag)
    finally:
        bucket.remove(probe)
    ok = all(honoured)
    return [
        (True, f"{url} is free to use"),
        (
            ok,
            "the store honours conditional writes (If-None-Match, If-Match): a second writer is refused"
            if ok
            else "the store ignores conditional writes (If-None-Match, If-Match), which the commit protocol needs; "
            "use AWS S3 or a store that supports them",
        ),
    ]
