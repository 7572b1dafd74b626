"""Using a run that lives in object storage: verify, export, preview and report work on a local copy of
its records and listed shards (store.run_copy), fetched afresh for verify (the bucket's bytes are the
ones checked), and speak of the run by its URL. Their output goes where ``-o`` says, by default into the
current directory (never into the cache)."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from trajgen.errors import TrajgenError
from trajgen.store.objects import is_url
from trajgen.store.run_copy import RunCopy
from trajgen.store.rundir import RunError

F = TypeVar("F", bound=Callable)


def local_copy(url: str, *, fresh: bool = False, storage_options: dict | None = None) -> RunCopy:
    """The run at ``url`` copied into the read cache: its records afresh, its listed shards (``fresh``: all
    fetched again; otherwise those already there are kept, being never overwritten in the bucket)."""
    copy = RunCopy.of(url, "read", storage_options)
    copy.pull_records(("config.json", "manifest.json"))
    if not (copy.paths.config.exists() or copy.paths.manifest.exists()):
        raise RunError(f"{copy.bucket.url} is not a trajgen run (no manifest.json or config.json)")
    try:
        entries = json.loads(copy.paths.manifest.read_bytes())["shards"]
        listed = [e for e in entries if isinstance(e.get("file"), str) and isinstance(e.get("bytes"), int)]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        listed = []  # a damaged manifest: the command reports it
    for entry in listed:
        copy.shard(entry, fresh=fresh)
    return copy


def serves_urls(
    *, fresh: bool = False, out: str | None = None, default_name: str = "", then: Callable | None = None
) -> Callable[[F], F]:
    """Let a command on a run directory take a run's URL: it runs on the local copy, its errors and its
    report name the URL, and its output (the argument ``out``) defaults to the current directory (with
    ``default_name`` in it). ``then(result, copy)``, if given, follows the command on a URL: what only
    the bucket can tell."""

    def wrap(command: F) -> F:
        @functools.wraps(command)
        def serve(run_dir, *args, storage_options: dict | None = None, **kwargs):
            if not is_url(run_dir):
                return command(run_dir, *args, **kwargs)
            copy = local_copy(str(run_dir), fresh=fresh, storage_options=storage_options)
            call = inspect.signature(command).bind(copy.root, *args, **kwargs)
            if out is not None and call.arguments.get(out) is None:
                call.arguments[out] = Path.cwd() / default_name  # not into the cache
            try:
                result = command(*call.args, **call.kwargs)
                if then is not None:
                    then(result, copy)
            except TrajgenError as e:
                raise type(e)(copy.told(str(e))) from None
            if dataclasses.is_dataclass(result) and hasattr(result, "run_dir"):
                result.run_dir = copy.bucket.url  # its report names the run as the user did
            return result

        return serve  # type: ignore[return-value]

    return wrap
