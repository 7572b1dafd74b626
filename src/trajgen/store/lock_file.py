"""The run lock on RUN_DIR/.lock: taken without waiting by the one process that works on a run,
and probed without being taken by those that only look (status, verify, export)."""

from __future__ import annotations

import errno
import os
import platform
import struct
import sys

from trajgen.store._fs import pause_point


# On Linux the run lock it is an open-file-description (OFD) record lock on the whole
# file: like flock it belongs to the open file, not to the process (closing some other
# descriptor of .lock in the same process keeps it; a spawned worker never inherits it),
# and unlike flock it can be *tested without being taken* (F_OFD_GETLK). So `status` and
# `verify` only look, and a generate/resume starting at that moment is never refused
# because a reader was looking. A shared flock as the probe would be such a lock, and
# making writers retry would only shrink the window. Elsewhere: flock, probed by taking a
# shared lock for an instant.
def _has_ofd_locks():
    try:
        import fcntl
    except ImportError:  # Windows
        return False
    # struct flock as packed below is the layout of these 64-bit Linux ABIs
    return (
        sys.platform.startswith("linux")
        and hasattr(fcntl, "F_OFD_SETLK")
        and platform.machine() in ("x86_64", "aarch64", "ppc64le", "riscv64", "s390x")
    )


_OFD = _has_ofd_locks()


def _flock_struct(kind):
    # struct flock on 64-bit Linux: l_type, l_whence, l_start, l_len, l_pid (+ padding); l_len 0 = to EOF
    return struct.pack("hhqqi4x", kind, os.SEEK_SET, 0, 0, 0)


def _take(fd):
    """Take the run lock on ``fd`` without waiting; False when another open file holds it."""
    import fcntl

    try:
        if _OFD:
            fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _flock_struct(fcntl.F_WRLCK))
        else:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return False
        raise
    return True


def try_lock(path, holder):
    """Take the run lock on ``path`` without waiting; return the open fd, or None if
    another process holds it. ``holder`` (e.g. "pid 42 on host") is written into the
    file for the error a second writer gets. The fd is close-on-exec, so a spawned
    worker cannot keep the lock alive after the holder dies."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        if not _take(fd):
            os.close(fd)
            return None
    except BaseException:
        os.close(fd)
        raise
    pause_point("lock-taken")
    os.ftruncate(fd, 0)
    os.pwrite(fd, holder.encode("utf-8"), 0)
    return fd


def is_locked(path):
    """Whether some process holds the run lock on ``path``. Takes no lock on Linux (see
    above); OSError when ``path`` exists but cannot be opened."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        if _OFD:
            found = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, _flock_struct(fcntl.F_WRLCK))
            locked = struct.unpack("hhqqi4x", found)[0] != fcntl.F_UNLCK
        else:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                locked = False
            except BlockingIOError:
                locked = True
        pause_point("lock-probe")
        return locked
    finally:
        os.close(fd)  # (with flock, this drops the probe's own lock)
