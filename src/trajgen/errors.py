"""The one error hierarchy: the library raises these; only the CLI turns them into exit codes.
Also the one table of what to do about an OSError, by errno, for every one-line message."""

import errno


class TrajgenError(Exception):
    """A foreseeable failure, with a one-line message that says what to do next."""

    exit_code = 1


class ConfigError(TrajgenError, ValueError):
    """An invalid generation setting; names the field and the allowed range."""

    exit_code = 2


class StorageError(TrajgenError):
    """A file of the run could not be written or read (disk full, I/O error, read-only)."""


class CorruptShardError(StorageError):
    """A shard file is truncated, not a zip, or lacks the expected arrays."""


OS_ADVICE: dict[int | None, str] = {  # looked up by OSError.errno, which may be None
    errno.ENAMETOOLONG: "a name in the path is longer than the filesystem allows (255 bytes); use a shorter one",
    errno.ELOOP: "the path has a symbolic link loop; fix or remove the link",
    errno.ENOTDIR: "a part of the path is a file, not a directory; check the path",
    errno.EISDIR: "it is a directory where a file was expected; check the path",
    errno.EEXIST: "something already exists there; move it aside or choose another path",
    errno.EACCES: "permission denied; check the permissions, or use another path",
    errno.EPERM: "not permitted; check the permissions, or use another path",
    errno.ENOSPC: "the disk is full; free some space",
    errno.EDQUOT: "the disk quota is used up; free some space",
    errno.EROFS: "the filesystem is read-only; use another path",
    errno.EIO: "the disk reported an I/O error; check it",
    errno.EMFILE: "too many open files; raise the limit (ulimit -n) or use fewer --workers",
    errno.ENFILE: "the system has too many open files; close some programs or use fewer --workers",
}


def os_reason(e: OSError) -> str:
    """The OS's words and the errno's name, e.g. "File name too long [ENAMETOOLONG]"."""
    name = errno.errorcode.get(e.errno or 0, "")
    return f"{e.strerror or e} [{name}]" if name else str(e.strerror or e)


def os_advice(e: OSError) -> str:
    """What to do about it, in a few words."""
    return OS_ADVICE.get(e.errno, "check the path and the disk")
