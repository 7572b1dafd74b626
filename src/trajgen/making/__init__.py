"""Making a run: the lock, committing shards, status, resume and repair, the work loop, the executors
(local processes, Dask), the checks before a launch and the in-flight counts.

The names below are imported on first use: a worker process that imports only the shard maker
does not load the loop, the executors or the progress reporter.
"""

from importlib import import_module

_EXPORTS = {
    "generate": "trajgen.making.generate_run",
    "default_out": "trajgen.making.generate_run",
    "resume": "trajgen.making.resume_run",
    "VersionChangedError": "trajgen.making.resume_run",
    "run_status": "trajgen.making.status",
    "RunStatus": "trajgen.making.status",
    "RunSummary": "trajgen.making.loop",
    "Interrupted": "trajgen.making.loop",
    "PROGRESS_INTERVAL": "trajgen.making.loop",
    "RunLockedError": "trajgen.making.lock",
    "repair_run": "trajgen.making.repair",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'trajgen.making' has no attribute {name!r}")
    value = getattr(import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
