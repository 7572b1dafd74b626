"""How much this machine can hold: free space on the filesystem under a path, and memory."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

FREE_BYTES_ENV = "TRAJGEN_FREE_BYTES"  # pretend this much is free (to test the refusal)


def memory_bytes() -> int | None:
    """What this machine (or its container's memory limit) can hold; None if unknown."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        total = None
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        if limit.isdigit():
            total = min(total, int(limit)) if total else int(limit)
    except OSError:
        pass
    return total if total and total > 0 else None


def existing_ancestor(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists():
        path = path.parent
    return path


def free_bytes(path: Path) -> int:
    override = os.environ.get(FREE_BYTES_ENV)
    if override:
        return int(override)
    return shutil.disk_usage(existing_ancestor(path)).free


def human_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} TB"
