"""The run directory's layout: its files, the shard file names, the command that finishes a run,
a run.log line, and the check that a directory may hold a new run. Below everything that reads
or writes runs."""

from __future__ import annotations

import os
import shlex
import socket
import stat
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import overload

from trajgen.errors import ConfigError, TrajgenError, os_advice, os_reason
from trajgen.store import _fs, lock_file


class RunError(TrajgenError):
    """The run directory is missing, not a run, damaged, or cannot be created."""


@dataclass(frozen=True)
class RunPaths:
    root: Path

    config = property(lambda self: self.root / "config.json")
    manifest = property(lambda self: self.root / "manifest.json")
    log = property(lambda self: self.root / "run.log")
    progress_json = property(lambda self: self.root / "progress.json")
    shards = property(lambda self: self.root / "shards")
    lock = property(lambda self: self.root / ".lock")
    tmp = property(lambda self: self.root / ".tmp")

    def shard(self, k: int) -> Path:
        return self.root / shard_file(k)


def shard_file(k: int) -> str:
    return f"shards/shard-{k:05d}.npz"


def resume_command(run_dir: os.PathLike | str) -> str:
    return f"trajgen resume {shlex.quote(os.fspath(run_dir))}"


def check_new_run_dir(root: Path) -> None:
    """``root`` may become a new run: absent, or empty but for what a crash before config.json leaves."""
    try:
        st = os.stat(root)
    except FileNotFoundError:
        if os.path.islink(root):
            raise RunError(
                f"{root} is a symbolic link to a missing path; fix or remove the link, or choose another --out"
            ) from None
        return
    except OSError as e:
        raise RunError(f"cannot use {root}: {os_reason(e)}; {os_advice(e)}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise RunError(f"{root} exists and is not a directory; choose another --out")
    if os.path.lexists(root / "config.json") or os.path.lexists(root / "manifest.json"):
        holder = lock_holder(RunPaths(root))
        if holder is not None:
            raise RunError(
                f"{root} already holds a run that {holder} is writing; wait for it to finish "
                f"(trajgen status {shlex.quote(str(root))}) or choose another --out"
            )
        raise RunError(f"{root} already holds a run; finish it with `{resume_command(root)}` or choose another --out")
    # what a crash before config.json was committed leaves behind may be reused
    leftovers = {p.name for p in root.iterdir()} - {".lock", ".tmp", "shards", "run.log"}
    shards = root / "shards"
    if leftovers or (shards.is_dir() and any(shards.iterdir())):
        raise RunError(f"{root} is not empty and not a trajgen run; choose another --out (nothing was changed)")
    for name, kind in ((".tmp", "directory"), ("shards", "directory"), (".lock", "file")):
        path = root / name
        if os.path.lexists(path) and not (path.is_dir() if kind == "directory" else path.is_file()):
            raise RunError(
                f"{path} is not a {kind} (left in a directory that is not a run yet); remove it or choose another --out"
            )


def lock_holder(paths: RunPaths) -> str | None:
    """Who holds the run's lock ("pid 42 on host"), or None when no process does."""
    if not lock_file.is_locked(paths.lock):
        return None
    holder = live_holder(paths)
    if holder == f"pid {os.getpid()} on {socket.gethostname()}":
        return None  # this process's own lock (taken by the run loop), not another writer
    return holder


def live_holder(paths: RunPaths) -> str:
    """Who holds the lock, as its holder wrote into .lock. A holder writes its name just after
    taking the lock, so for a moment the file still names the previous one, maybe long dead:
    such a name is never shown."""
    for _ in range(25):
        text = " ".join(_fs.read_text(paths.lock).split())
        if text and _names_a_live_process(text):
            return text
        time.sleep(0.02)
    return "another process"


def _names_a_live_process(holder: str) -> bool:
    pid, _, host = holder.removeprefix("pid ").partition(" on ")
    if not pid.isdigit() or host != socket.gethostname():
        return True  # another machine's process (or another format): nothing to check it against
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:
        pass  # exists, but is not ours to signal
    return True


def log_line(event: str) -> str:
    return f"{datetime.now(timezone.utc):%Y-%m-%dT%H:%M:%SZ} {event}"


def note(run_dir: os.PathLike | str, event: str) -> None:
    """A line in the run's log, best effort (the commit loop reports a log it cannot write)."""
    try:
        _fs.append_line(os.path.join(run_dir, "run.log"), log_line(event))
    except OSError:
        pass


@overload
def check_progress_to(root: Path, progress_to: os.PathLike | str) -> str: ...
@overload
def check_progress_to(root: Path, progress_to: None) -> None: ...
def check_progress_to(root: Path, progress_to: os.PathLike | str | None) -> str | None:
    """--progress-to as an absolute path (the run remembers it; resume may run elsewhere)."""
    if progress_to is None:
        return None
    folder = Path(os.path.abspath(progress_to))
    if folder.resolve() == root.resolve() or root.resolve() in folder.resolve().parents:
        raise ConfigError(
            f"--progress-to {folder} is inside the run directory {root}; give a folder outside it "
            f"(e.g. a synced one) — the run directory has its own PROGRESS.txt"
        )
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--progress-to {folder} is a file, not a folder; give a folder (it is created if missing)")
    return str(folder)
