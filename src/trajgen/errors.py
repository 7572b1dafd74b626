"""The one error hierarchy: the library raises these; only the CLI turns them into exit codes."""


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
