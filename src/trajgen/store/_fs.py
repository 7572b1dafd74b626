"""The one I/O layer: every file a run writes goes through here.

Atomic writes follow the commit protocol: temp file in the run's .tmp/ -> write ->
fsync -> os.replace -> fsync the directory. A reader sees the old file or the new
one, never a torn one.

Tests inject crashes and I/O errors with the environment variable TRAJGEN_FAULT,
read at import (and again by ``_reset_faults()``). Each primitive operation
(open, write, fsync, rename, fsyncdir, append) bumps one per-process counter:

    exit@K            os._exit(77) just before the K-th operation (a kill -9 there)
    ENOSPC@K          the K-th operation raises OSError(ENOSPC) instead of running
    EIO@write:K       the K-th write raises OSError(EIO); also open/fsync/rename/fsyncdir/append
    EIO@1,ENOSPC@7    several faults, comma separated

Errors: ENOSPC, EIO, EDQUOT, EFBIG, EROFS. With TRAJGEN_FAULT_LOG=path every
operation is also logged to that file as "K kind path" (not itself counted).

``recording(callback)`` reports every change this module makes to the disk, right after
the system call returned, as one dict: {"op": create|write|overwrite|fsync|rename|fsyncdir|
append|mkdir|unlink|rmtree|done, "path": absolute path, ...} with "data" (bytes) for write,
overwrite (the file now holds exactly that) and append, and "to" for rename; "done" marks the return of a durable write (atomic_write_bytes,
append_line): from then on the caller may tell the user. That is enough to replay a run's
I/O and rebuild what a power cut may leave on disk (tests/test_power_loss.py).

Tests force an interleaving of two processes (or threads) with TRAJGEN_PAUSE=name,...
and TRAJGEN_PAUSE_DIR=dir: see ``pause_point``.
"""

import errno
import os
import shutil
import threading
import time
from contextlib import contextmanager

KINDS = ("open", "write", "fsync", "rename", "fsyncdir", "append")
ERRORS = ("ENOSPC", "EIO", "EDQUOT", "EFBIG", "EROFS")
EXIT_CODE = 77

_lock = threading.Lock()
_faults: list[tuple[str, str | None, int]] = []  # (action, kind or None, k)
_counts: dict[str | None, int] = {}  # operations by kind; None: all of them
_log_path: str | None = None
_recorder = None  # callback of recording(); None costs one check per operation


def _parse_faults(spec):
    faults = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        action, _, where = item.partition("@")
        kind, _, k = where.rpartition(":")
        if action != "exit" and action not in ERRORS:
            raise ValueError(f"TRAJGEN_FAULT: unknown action {action!r} in {item!r}")
        if kind and kind not in KINDS:
            raise ValueError(f"TRAJGEN_FAULT: unknown operation {kind!r} in {item!r}; use one of {', '.join(KINDS)}")
        if not k.isdigit() or int(k) < 1:
            raise ValueError(f"TRAJGEN_FAULT: {item!r} needs a 1-based count, e.g. ENOSPC@3 or EIO@write:2")
        faults.append((action, kind or None, int(k)))
    return faults


fault_error = None  # a TRAJGEN_FAULT that does not parse: the CLI reports it, any operation raises it


def _reset_faults():
    """Re-read TRAJGEN_FAULT / TRAJGEN_FAULT_LOG and restart the counters at zero
    (ValueError, also kept in ``fault_error``, when TRAJGEN_FAULT does not parse)."""
    global _faults, _counts, _log_path, fault_error
    with _lock:
        _counts = {None: 0, **{kind: 0 for kind in KINDS}}
        _log_path = os.environ.get("TRAJGEN_FAULT_LOG") or None
        _faults, fault_error = [], None
        try:
            _faults = _parse_faults(os.environ.get("TRAJGEN_FAULT", ""))
        except ValueError as e:
            fault_error = e
            raise


def operation_count():
    """How many primitive operations this process has performed (since import or reset)."""
    return _counts[None]


def _op(kind, path):
    if fault_error is not None:
        raise fault_error
    with _lock:
        _counts[None] += 1
        _counts[kind] += 1
        total, of_kind = _counts[None], _counts[kind]
        if _log_path:
            _log(_log_path, f"{total} {kind} {os.fspath(path)}\n")
        for action, fault_kind, k in _faults:
            if (fault_kind is None and k == total) or (fault_kind == kind and k == of_kind):
                if action == "exit":
                    os._exit(EXIT_CODE)
                code = getattr(errno, action)
                raise OSError(code, os.strerror(code))


@contextmanager
def recording(callback):
    """Call ``callback(op)`` for every disk change made through this module while inside."""
    global _recorder
    previous, _recorder = _recorder, callback
    try:
        yield
    finally:
        _recorder = previous


def _record(op, path, **details):
    if _recorder is not None:
        if "data" in details:
            details["data"] = bytes(details["data"])
        _recorder({"op": op, "path": os.path.abspath(os.fspath(path)), **details})


def _log(log_path: str, text: str) -> None:
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _write_all(fd, data):
    view = memoryview(data).cast("B")
    while view:
        view = view[os.write(fd, view) :]


def _open_unique(path, tmp_dir, prefix=""):
    base = os.path.basename(os.fspath(path))
    while True:
        tmp = os.path.join(os.fspath(tmp_dir), f"{prefix}{base}.{os.getpid()}.{os.urandom(6).hex()}.tmp")
        try:
            # 0o666 so the umask decides, like any normally created file
            return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:
            continue


def _write_durably(fd, path, written, data, overwrite=False):
    """Write ``data`` to ``fd`` (the file ``written``, on its way to ``path``) and fsync it; ``overwrite``:
    from the start of a longer file, which is then cut to ``data``."""
    _op("write", path)
    _write_all(fd, data)
    if overwrite:
        os.ftruncate(fd, len(data))
    _record("overwrite" if overwrite else "write", written, data=data)
    _op("fsync", path)
    os.fsync(fd)
    _record("fsync", written)


def atomic_write_bytes(path, data, tmp_dir, *, temp_prefix=""):
    """Replace ``path`` with ``data`` (bytes-like) so readers never see a partial file.

    ``tmp_dir`` must exist and be on the same filesystem as ``path``; ``temp_prefix``
    starts the temp file's name (".": hidden from sync clients). On failure the
    temp file is removed and the OSError propagates; ``path`` is then the old file
    (or, if only the final directory fsync failed, the complete new one).
    """
    _op("open", path)
    tmp, fd = _open_unique(path, tmp_dir, temp_prefix)
    _record("create", tmp)
    try:
        try:
            _write_durably(fd, path, tmp, data)
        finally:
            os.close(fd)
        _op("rename", path)
        os.replace(tmp, path)
        _record("rename", tmp, to=os.path.abspath(os.fspath(path)))
    except BaseException:
        try:
            os.unlink(tmp)
            _record("unlink", tmp)
        except OSError:
            pass
        raise
    fsync_dir(os.path.dirname(os.path.abspath(path)))
    _record("done", path)


def preallocate(path, size):
    """Create ``path`` as ``size`` zero bytes written to disk (real blocks, not a sparse file), fsynced:
    space the caller owns for later, whatever else fills the disk meanwhile."""
    _op("open", path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o666)
    _record("create", path)
    try:
        _write_durably(fd, path, path, bytes(size))
    finally:
        os.close(fd)
    fsync_dir(os.path.dirname(os.path.abspath(path)))
    _record("done", path)


def replace_from(spare, data, path):
    """Replace ``path`` with ``data`` written over the blocks of ``spare`` (a preallocated file at least
    as long): no new block is needed, so this works on a full disk. Then ``spare`` is gone."""
    _op("open", path)
    fd = os.open(spare, os.O_WRONLY | getattr(os, "O_BINARY", 0))  # no O_TRUNC: its blocks are the point
    try:
        _write_durably(fd, path, spare, data, overwrite=True)
    finally:
        os.close(fd)
    _op("rename", path)
    os.replace(spare, path)
    _record("rename", spare, to=os.path.abspath(os.fspath(path)))
    fsync_dir(os.path.dirname(os.path.abspath(path)))
    _record("done", path)


def fsync_dir(path):
    """Make a rename or file creation inside directory ``path`` durable."""
    _op("fsyncdir", path)
    if not hasattr(os, "O_DIRECTORY"):  # Windows cannot open directories; NTFS journals renames
        return
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
        _record("fsyncdir", path)
    finally:
        os.close(fd)


def append_line(path, line):
    """Append one line (newline added if missing) to a log file and fsync it (and, when
    this creates the file, its directory: a power cut must not take back a logged line)."""
    if not line.endswith("\n"):
        line += "\n"
    _op("append", path)
    flags = os.O_WRONLY | os.O_APPEND | getattr(os, "O_BINARY", 0)
    try:
        fd, created = os.open(path, flags), False
    except FileNotFoundError:
        fd, created = os.open(path, flags | os.O_CREAT, 0o666), True
        _record("create", path)
    try:
        _write_all(fd, line.encode("utf-8"))
        _record("append", path, data=line.encode("utf-8"))
        os.fsync(fd)
        _record("fsync", path)
    finally:
        os.close(fd)
    if created:
        fsync_dir(os.path.dirname(os.path.abspath(path)))
    _record("done", path)


def clear_dir(path):
    """Empty directory ``path`` (the run's .tmp/), creating it if missing."""
    make_dirs(path)
    for entry in os.scandir(path):
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
                _record("rmtree", entry.path)
            else:
                remove_file(entry.path)
        except FileNotFoundError:
            pass  # gone already: what matters is that it is gone


def make_dirs(path):
    """Create directory ``path`` and any missing parents, each made durable in its parent
    (a power cut must not take back a run directory that already holds committed shards)."""
    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(path):
        return
    parent = os.path.dirname(path)
    if parent != path:
        make_dirs(parent)
    try:
        os.mkdir(path)
    except FileExistsError:
        if os.path.isdir(path):  # made meanwhile by another process
            return
        raise
    _record("mkdir", path)
    fsync_dir(parent)


def remove_file(path):
    """Unlink ``path``; not made durable (a file that comes back is one the run ignores or remakes)."""
    os.unlink(path)
    _record("unlink", path)


def discard_temp_files(tmp_dir, pids):
    """Remove the temp files that processes ``pids`` (now dead) left in ``tmp_dir``;
    temp names carry the writer's pid (see _open_unique), so live writers are untouched."""
    pids = {str(pid) for pid in pids}
    try:
        entries = list(os.scandir(tmp_dir))
    except FileNotFoundError:
        return
    for entry in entries:
        parts = entry.name.rsplit(".", 3)  # base, pid, random, "tmp"
        if len(parts) == 4 and parts[3] == "tmp" and parts[1] in pids:
            try:
                remove_file(entry.path)
            except FileNotFoundError:
                pass


_paused: set[str] = set()


def pause_point(name):
    """A named point where a test can hold this process: when TRAJGEN_PAUSE lists ``name``,
    the first arrival creates TRAJGEN_PAUSE_DIR/<name>.reached and waits (signals still
    arrive) until TRAJGEN_PAUSE_DIR/<name>.go exists. Does nothing otherwise."""
    names, where = os.environ.get("TRAJGEN_PAUSE"), os.environ.get("TRAJGEN_PAUSE_DIR")
    if not names or not where or name not in names.split(","):
        return
    with _lock:
        if name in _paused:
            return
        _paused.add(name)
    reached = os.path.join(where, f"{name}.reached")
    part = f"{reached}.{os.getpid()}.part"  # several processes may arrive at once
    with open(part, "w") as f:
        f.write(str(os.getpid()))
    os.replace(part, reached)
    go = os.path.join(where, f"{name}.go")
    while not os.path.exists(go):
        time.sleep(0.002)


def read_text(path, default=""):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return default


try:
    _reset_faults()
except ValueError:  # kept in fault_error: the CLI reports it as a usage error, any operation raises it
    pass
