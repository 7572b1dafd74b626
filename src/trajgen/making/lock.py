"""The run's lock: one process at a time works on a run (an OFD lock on .lock, held while it works; a
lease object for a run in object storage)."""

from __future__ import annotations

import os
import shlex
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from trajgen.store import _fs, lock_file
from trajgen.store.lease import Lease, LeaseHeldError
from trajgen.store.objects import Bucket
from trajgen.store.rundir import RunError, RunPaths, live_holder


class RunLockedError(RunError):
    """Another process is working on the run."""


def probe_lock(paths: RunPaths) -> bool:
    try:
        return lock_file.is_locked(paths.lock)
    except OSError as e:
        raise RunError(
            f"cannot tell whether a process works on {paths.root}: cannot open {paths.lock}: "
            f"{e.strerror or e}; make it readable for this user"
        ) from None


@contextmanager
def locked(paths: RunPaths) -> Iterator[None]:
    holder = f"pid {os.getpid()} on {socket.gethostname()}"
    _fs.pause_point("lock")
    try:
        fd = lock_file.try_lock(paths.lock, holder)
    except OSError as e:
        raise RunError(f"cannot lock {paths.lock}: {e.strerror or e}; the run directory must be writable") from None
    if fd is None:
        who = live_holder(paths)
        raise RunLockedError(
            f"{paths.root} is in use by {who}; wait for it to finish (trajgen status "
            f"{shlex.quote(str(paths.root))}) or stop that process first"
        )
    try:
        yield
    finally:
        os.close(fd)


@contextmanager
def leased(bucket: Bucket) -> Iterator[Lease]:
    """Hold the lease of a run in object storage while working on it (RunLockedError when another
    process holds it); a stale lease taken over is said in one line on stderr and in run.log."""
    lease = Lease(bucket, f"pid {os.getpid()} on {socket.gethostname()}")
    _fs.pause_point("lock")
    try:
        lease.taken_over = lease.acquire()
    except LeaseHeldError as e:
        raise RunLockedError(str(e)) from None
    try:
        yield lease
    finally:
        lease.release()
