"""A local copy of a run that lives in object storage, in a cache directory: its records (config.json,
manifest.json, the progress files, run.log) and the shards a reader asked for.

The bucket stays the truth; the copy lets the code that makes, watches and reads runs on disk serve a
run in a bucket unchanged. Records are fetched afresh by every command; a shard, once listed never
overwritten but by ``repair`` (with the bytes its manifest entry records), is fetched once and kept
while its size matches its manifest entry (``fresh`` fetches it again, for verify: the bucket's bytes
are checked, not the cache's).
"""

from __future__ import annotations

import hashlib
import os
import shlex
from pathlib import Path

from trajgen.store import _fs
from trajgen.store.objects import Bucket
from trajgen.store.rundir import RunPaths

RECORDS = ("config.json", "manifest.json", "progress.json", "PROGRESS.txt", "run.log")
CACHE_ENV = "TRAJGEN_CACHE_DIR"


def cache_root() -> Path:
    """Where copies of runs in buckets live: $TRAJGEN_CACHE_DIR, else ~/.cache/trajgen (XDG_CACHE_HOME)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "trajgen"


def copy_dir(url: str, purpose: str) -> Path:
    """The cache directory for one run URL and one purpose ("work": the making process's; "read": readers')."""
    return cache_root() / purpose / hashlib.sha256(url.encode()).hexdigest()[:16]


class RunCopy:
    """A run at ``bucket`` copied into the local directory ``root`` (created as needed)."""

    def __init__(self, bucket: Bucket, root: os.PathLike | str):
        self.bucket, self.root = bucket, Path(root)
        self.paths = RunPaths(self.root)

    @classmethod
    def of(cls, url: str, purpose: str, storage_options: dict | None = None, root=None) -> RunCopy:
        """The copy of the run at ``url`` for ``purpose`` (in ``root``, default its cache directory), once
        the bucket answered (ObjectStoreError in one line if it does not); nothing is fetched yet."""
        bucket = Bucket(url, storage_options)
        bucket.check_reachable()
        return cls(bucket, root if root is not None else copy_dir(bucket.url, purpose))

    def told(self, text: str) -> str:
        """``text`` (an error, a report) about the copy, told about the run's URL: the user never named the copy."""
        return text.replace(shlex.quote(str(self.root)), self.bucket.url).replace(str(self.root), self.bucket.url)

    def pull_records(self, names=RECORDS) -> str | None:
        """Copy the run's records here afresh (a record the bucket lacks is removed here too); returns
        the manifest's ETag (None when there is no manifest), the base of the next compare-and-swap."""
        _fs.make_dirs(self.paths.tmp)
        _fs.make_dirs(self.paths.shards)
        manifest_etag = None
        for name in names:
            data, etag = self.bucket.read_tagged(name)
            local = self.root / name
            if data is None:
                try:
                    _fs.remove_file(local)
                except FileNotFoundError:
                    pass
                continue
            if name == "manifest.json":
                manifest_etag = etag
            _fs.atomic_write_bytes(local, data, self.paths.tmp)
        return manifest_etag

    def shard(self, entry: dict, fresh: bool = False) -> Path:
        """The local copy of a listed shard (``entry`` from the manifest), fetched when missing, of
        another size, or ``fresh``. A shard missing from the bucket leaves no local file (readers say so)."""
        local = self.root / entry["file"]
        try:
            if not fresh and local.stat().st_size == entry["bytes"]:
                return local
        except FileNotFoundError:
            pass
        _fs.make_dirs(local.parent)
        _fs.make_dirs(self.paths.tmp)
        partial = self.paths.tmp / f"{local.name}.{os.getpid()}.{os.urandom(4).hex()}.part"
        try:
            if self.bucket.read_into(entry["file"], str(partial)):
                os.replace(partial, local)
            else:  # not in the bucket: no stale copy either
                local.unlink(missing_ok=True)
        finally:
            try:
                os.unlink(partial)
            except FileNotFoundError:
                pass
        return local

    def publish(self, names) -> None:
        """Upload records written here (progress files, run.log) to the bucket, plain overwrites: they are
        not part of the commit record."""
        for name in names:
            try:
                data = (self.root / name).read_bytes()
            except FileNotFoundError:
                continue
            self.bucket.put(name, data)
