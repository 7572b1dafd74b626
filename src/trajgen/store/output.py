"""Where an export or a preview may be written, and how it is put in place.

Outputs never land on inputs: a target inside the run's own files, or any run's (after
resolving symbolic links and ``..``), is refused, and so is anything that exists but is not a regular file
(directory, device, FIFO, socket). A file is written beside its target under a dot-name and
published at the end: without ``replace`` by a hard link, which fails if the name exists, so of
two writers of one name only the first succeeds; with ``replace`` by an atomic rename.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from trajgen.errors import ConfigError, StorageError, os_advice, os_reason
from trajgen.store import _fs

# what a run directory is made of (RUN_DIR/<name>, or anything under it)
RUN_PARTS = ("config.json", "manifest.json", "PROGRESS.txt", "progress.json", "run.log", ".lock", "shards", ".tmp")

_KINDS = {
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
    stat.S_IFIFO: "FIFO",
    stat.S_IFSOCK: "socket",
    stat.S_IFDIR: "directory",
}


class OutputError(StorageError):
    """The output path cannot be used (exists, not a regular file, parent missing, taken meanwhile)."""


reason, advice = os_reason, os_advice


def is_dir(path: Path) -> bool:
    return os.path.isdir(path)  # False on any error; check_target then names it


def run_part(target: Path, run_root: Path) -> str | None:
    """The part of a run (e.g. "manifest.json", "shards") that ``target`` is or lies in, or None:
    of ``run_root``, or of any run directory above the target (one holding a manifest.json or
    config.json), so an output never replaces another run's files either."""
    real = Path(os.path.realpath(target))
    roots = [Path(os.path.realpath(run_root))]
    roots += [d for d in real.parents if os.path.lexists(d / "manifest.json") or os.path.lexists(d / "config.json")]
    for root in roots:
        for name in RUN_PARTS:
            own = root / name
            if real == own or own in real.parents:
                return name
    return None


def check_target(target: Path, run_root: Path, *, option: str, force: bool = False, replace: bool = False) -> None:
    """Raise unless ``target`` may be written: ConfigError (a usage error) for a path inside the
    run's own files; OutputError for an existing non-regular file, an existing file without
    ``force`` (unless ``replace``), a dangling symbolic link without ``force``, or a bad parent."""
    part = run_part(target, run_root)
    if part is not None:
        raise ConfigError(
            f"{option} {target} is inside the run's own files ({part}); an output must never replace "
            f"them: choose a path outside the run's manifest, config, logs, lock, shards/ and .tmp/"
        )
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
        if os.path.islink(target) and not force:
            raise OutputError(
                f"{target} is a symbolic link to a missing file ({os.readlink(target)}); "
                f"pass --force to replace the link, or choose another {option}"
            ) from None
    except OSError as e:
        raise OutputError(f"cannot use {target}: {reason(e)}; {advice(e)}") from None
    if st is not None:
        if not stat.S_ISREG(st.st_mode):
            kind = _KINDS.get(stat.S_IFMT(st.st_mode), "special file")
            if kind == "directory":
                raise OutputError(f"{target} is a directory; give {option} a file name")
            raise OutputError(
                f"{target} is not a regular file (a {kind}); trajgen never replaces one, "
                f"--force or not: choose another {option}"
            )
        if not (force or replace):
            raise OutputError(
                f"{target} already exists; choose another {option}, or pass --force to replace it (nothing was changed)"
            )
    parent = target.parent
    try:
        if not stat.S_ISDIR(os.stat(parent).st_mode):
            raise OutputError(f"{parent} is not a directory; check {option}")
    except FileNotFoundError:
        raise OutputError(f"{parent} does not exist; create it or choose another {option}") from None
    except OSError as e:
        raise OutputError(f"cannot use {parent}: {reason(e)}; {advice(e)}") from None


def partial_path(target: Path) -> Path:
    """The in-progress name beside ``target`` (a dot-file with this process's pid)."""
    return target.parent / f".{target.name[:100]}.{os.getpid()}.partial{target.suffix[:10]}"


def publish(partial: Path, target: Path, *, replace: bool, option: str = "-o") -> None:
    """Put the finished ``partial`` at ``target``: replacing what is there only if ``replace``.
    The partial file is gone afterwards either way."""
    try:
        if replace:
            os.replace(partial, target)
        else:
            try:
                os.link(partial, target)  # fails if the name exists: two writers cannot both succeed
            except FileExistsError:
                raise OutputError(
                    f"{target} appeared while this was being written (another writer?); it was left as it "
                    f"is; choose another {option}, or pass --force to replace it"
                ) from None
            except OSError as e:
                if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                    raise
                # no hard links here: claim the name exclusively, then move the file onto the claim
                try:
                    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
                except FileExistsError:
                    raise OutputError(
                        f"{target} appeared while this was being written (another writer?); it was left "
                        f"as it is; choose another {option}, or pass --force to replace it"
                    ) from None
                os.replace(partial, target)
        _fs.fsync_dir(target.parent)
    finally:
        try:
            os.unlink(partial)
        except FileNotFoundError:
            pass
