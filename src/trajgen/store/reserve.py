"""The run's reserve: a little disk space held back for the last words of a run that fills its disk.

A run that stops on a full disk (ENOSPC, EDQUOT) must still say so where its watcher looks:
PROGRESS.txt and progress.json FAILED with the cause, and one run.log line. Replacing a file needs a
new one, and a disk another program keeps full has no room for it, however much the run frees. So
while it works a run keeps RUN_DIR/.reserve/: one file for each of the two progress files, written
with zeros when the work starts (their blocks are the run's), and a spare for the log. The last
words are written over those blocks and renamed onto the targets; the spare is removed just before
the log line is appended. Resume makes the reserve again; a complete run has none; verify ignores it.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from trajgen.store import _fs

RESERVE_DIR = ".reserve"
FILE_BYTES = 16 * 1024  # far more than PROGRESS.txt or progress.json ever hold
FILES = ("PROGRESS.txt", "progress.json")
LOG_SPARE = "run.log.spare"
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def is_disk_full(code: int | None) -> bool:
    return code in DISK_FULL


class Reserve:
    """RUN_DIR/.reserve/: ``make()`` when the work starts, ``write()`` and ``release_log()`` on a full disk."""

    def __init__(self, run_dir: os.PathLike | str):
        self.dir = Path(run_dir) / RESERVE_DIR

    def make(self) -> None:
        """Write the reserve's files (again: what an earlier failure used up is taken back)."""
        _fs.make_dirs(self.dir)
        for name in (*FILES, LOG_SPARE):
            path = self.dir / name
            if not (path.is_file() and path.stat().st_size == FILE_BYTES):
                _fs.preallocate(path, FILE_BYTES)

    def write(self, path: os.PathLike | str, data: bytes) -> None:
        """Replace ``path`` (PROGRESS.txt or progress.json) with ``data`` in the blocks kept for it;
        the OSError that the disk gave when there is no reserve for it (used, or too small)."""
        spare = self.dir / Path(path).name
        if len(data) > FILE_BYTES or not spare.is_file():
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.fspath(path))
        _fs.replace_from(spare, data, path)

    def release_log(self) -> None:
        """Free the log's spare, for the line appended next."""
        try:
            _fs.remove_file(self.dir / LOG_SPARE)
        except FileNotFoundError:
            pass

    def remove(self) -> None:
        """A complete run needs no reserve."""
        for name in (*FILES, LOG_SPARE):
            try:
                _fs.remove_file(self.dir / name)
            except FileNotFoundError:
                pass
        try:
            os.rmdir(self.dir)
        except OSError:
            pass
