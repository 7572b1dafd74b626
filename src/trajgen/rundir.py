"""The run directory's layout: its files, the shard file names, the command that finishes a run,
a run.log line, and the check that a directory may hold a new run. Below everything that reads
or writes runs."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from trajgen.errors import ConfigError, TrajgenError


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
    if (root / "config.json").exists() or (root / "manifest.json").exists():
        raise RunError(f"{root} already holds a run; finish it with `{resume_command(root)}` or choose another --out")
    if root.exists() and not root.is_dir():
        raise RunError(f"{root} exists and is not a directory; choose another --out")
    if root.is_dir():
        # what a crash before config.json was committed leaves behind may be reused
        leftovers = {p.name for p in root.iterdir()} - {".lock", ".tmp", "shards", "run.log"}
        shards = root / "shards"
        if leftovers or (shards.is_dir() and any(shards.iterdir())):
            raise RunError(f"{root} is not empty and not a trajgen run; choose another --out (nothing was changed)")


def log_line(event: str) -> str:
    return f"{datetime.now(timezone.utc):%Y-%m-%dT%H:%M:%SZ} {event}"


def check_progress_to(root: Path, progress_to: os.PathLike | str | None) -> str | None:
    """--progress-to as an absolute path (the run remembers it; resume may run elsewhere)."""
    if progress_to is None:
        return None
    folder = Path(os.path.abspath(progress_to))
    if folder.resolve() == root.resolve() or root.resolve() in folder.resolve().parents:
        raise ConfigError(f"--progress-to {folder} is inside the run directory {root}; give a folder outside it "
                          f"(e.g. a synced one) — the run directory has its own PROGRESS.txt")
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--progress-to {folder} is a file, not a folder; give a folder (it is created if missing)")
    return str(folder)
