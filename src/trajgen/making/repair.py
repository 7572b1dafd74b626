"""repair: make a run's missing or damaged committed shards again.

Every shard is a pure function of the run's config and its number, and the manifest
holds its sha256. So a damaged shard is made again, its bytes are checked against the
manifest, and only a shard that matches is put in place (under the run's lock, through
.tmp/ and an atomic rename, like a commit). A shard that regenerates to other bytes
(other numpy/OpenCV/encoder versions) is reported and left alone.

A run in object storage is repaired under its lease: every listed shard object is read afresh, and a
remade shard goes in only by a conditional write, so nothing another process wrote is overwritten: a
missing object by conditional create (``If-None-Match: *``), a damaged one by compare-and-swap on the
ETag it had when it was read (``If-Match``).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from trajgen.content.config import GenerationConfig
from trajgen.errors import StorageError, os_reason
from trajgen.making.bucket_commit import fresh_copy
from trajgen.making.lock import leased, locked
from trajgen.making.shardmaker import build_shard_arrays
from trajgen.store import _fs
from trajgen.store.checksums import sha256_file
from trajgen.store.deflate import CodecNotInstalledError
from trajgen.store.manifest import existing_run, read_manifest
from trajgen.store.objects import Bucket, ObjectStoreError, PreconditionFailed, is_url
from trajgen.store.run_copy import RunCopy
from trajgen.store.rundir import RunError, RunPaths, log_line, note, resume_command, shard_file
from trajgen.store.shards import UnknownCodecError, check_codec, encode_shard
from trajgen.watch.progress import warn


@dataclass
class RepairResult:
    run_dir: Path | str  # a run directory, or the URL of a run in object storage
    checked: int = 0
    repaired: list[tuple[str, str]] = field(default_factory=list)  # (file, what was wrong)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (file, why it was not installed)
    complete: bool = True

    @property
    def ok(self) -> bool:
        return not self.refused

    @property
    def text(self) -> str:
        lines = [f"Checked {self.checked:,} committed shard(s) of {self.run_dir}"]
        if not self.repaired and not self.refused:
            lines.append("OK: every committed shard matches the manifest; nothing to repair")
        if self.repaired:
            lines.append(
                f"Repaired {len(self.repaired)} shard{'s' if len(self.repaired) != 1 else ''} "
                f"(remade and checked against the manifest's sha256):"
            )
            lines += [f"  {name}: was {why}" for name, why in self.repaired]
        if self.refused:
            lines.append(f"Not repaired: {len(self.refused)} shard(s):")
            lines += [f"  {name}: {why}" for name, why in self.refused]
        if not self.complete:
            lines.append(f"The run is not finished; make the rest with: {resume_command(self.run_dir)}")
        return "\n".join(lines)

    @property
    def summary(self) -> str:
        """One line for the CLI's Error: when something could not be repaired."""
        names = ", ".join(name for name, _ in self.refused)
        return (
            f"could not repair {names}: it regenerates to other bytes than the manifest records, so this "
            f"trajgen/numpy/OpenCV/encoder is not the one that made the run; install the versions in "
            f"{self._config_json} and run trajgen repair again, or restore the shard from a backup"
        )

    @property
    def _config_json(self) -> str:
        return str(self.run_dir / "config.json") if isinstance(self.run_dir, Path) else f"{self.run_dir}/config.json"


def _damage(path: Path, entry: dict) -> str | None:
    """What is wrong with a committed shard's file, or None when it matches the manifest."""
    if not path.exists():
        return "missing"
    if not path.is_file():
        return "not a regular file"
    size = path.stat().st_size
    if size != entry["bytes"]:
        return f"{size:,} bytes instead of {entry['bytes']:,}"
    if sha256_file(path) != entry["sha256"]:
        return "changed (sha256 does not match)"
    return None


def _codec(paths: RunPaths, manifest: dict, damaged: list) -> dict:
    """The codec the run records, which remakes its shards; RunError when this trajgen cannot make it."""
    names = ", ".join(shard_file(entry["index"]) for entry, _ in damaged)
    try:
        return check_codec(manifest.get("codec"))
    except CodecNotInstalledError as e:
        raise RunError(f"cannot remake {names} of {paths.root}: {e}") from None
    except UnknownCodecError as e:
        raise RunError(
            f"cannot remake {names} of {paths.root}: {e}; restore them from a backup, or repair "
            f"with the trajgen version named in {paths.config}"
        ) from None


def repair_run(run_dir: os.PathLike | str, *, storage_options: dict | None = None) -> RepairResult:
    """Remake every committed shard whose file is missing or does not match the manifest.

    ``run_dir`` may be a URL (``s3://bucket/prefix``; ``storage_options`` for the client)."""
    if is_url(run_dir):
        return _repair_in_bucket(Bucket(str(run_dir), storage_options))
    paths: RunPaths = existing_run(run_dir)
    with locked(paths):
        manifest = read_manifest(paths.root)  # under the lock: what is committed now
        config = GenerationConfig.from_dict(manifest["config"])
        result = RepairResult(paths.root, complete=manifest["status"] == "complete")
        damaged = []
        for entry in sorted(manifest["shards"], key=lambda e: e["index"]):
            result.checked += 1
            try:
                why = _damage(paths.shard(entry["index"]), entry)
            except OSError as e:
                why = f"unreadable ({os_reason(e)})"
            if why is not None:
                damaged.append((entry, why))
        if damaged:
            codec = _codec(paths, manifest, damaged)
            _fs.clear_dir(paths.tmp)
            paths.shards.mkdir(exist_ok=True)
        for entry, why in damaged:
            k, name = entry["index"], shard_file(entry["index"])
            data = _remade(config, entry, codec)
            if data is None:
                result.refused.append((name, _not_installed(why)))
                continue
            try:
                _fs.atomic_write_bytes(paths.shard(k), data, paths.tmp)
                _fs.append_line(paths.log, log_line(f"repaired shard {k} ({name} was {why})"))
            except OSError as e:
                raise StorageError(
                    f"could not write {name} while repairing {paths.root}: {os_reason(e)}; "
                    f"fix the cause and run trajgen repair again"
                ) from None
            result.repaired.append((name, why))
    return result


def _remade(config: GenerationConfig, entry: dict, codec: dict) -> bytes | None:
    """The committed shard ``entry`` made again, or None when its bytes are not those the manifest records."""
    arrays, _, _ = build_shard_arrays(config, entry["index"])
    data = encode_shard(arrays, codec)
    del arrays
    if hashlib.sha256(data).hexdigest() != entry["sha256"] or len(data) != entry["bytes"]:
        return None
    return data


def _not_installed(why: str) -> str:
    return (
        f"{why}; remade, but the new bytes differ from the manifest's sha256 (made with other versions?), "
        f"so it was not installed"
    )


def _object_damage(data: bytes | None, entry: dict) -> str | None:
    """What is wrong with a committed shard's object (its bytes, None when absent), or None when it matches."""
    if data is None:
        return "missing"
    if len(data) != entry["bytes"]:
        return f"{len(data):,} bytes instead of {entry['bytes']:,}"
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        return "changed (sha256 does not match)"
    return None


def _repair_in_bucket(bucket: Bucket) -> RepairResult:
    """Repair a run in object storage under its lease (RunLockedError, naming the holder, while another
    process holds it). Each listed shard object is read afresh; a remade shard that matches the manifest
    goes in by conditional create when the object is missing, else by compare-and-swap on the ETag read."""
    bucket.check_reachable()
    if not {"config.json", "manifest.json"} & set(bucket.names()):  # nothing to lease: no run is there
        raise RunError(
            f"{bucket.url} is not a trajgen run (no manifest.json or config.json); "
            f"start one with: trajgen generate --out {bucket.url}"
        )
    with leased(bucket) as lease:
        copy = fresh_copy(bucket)
        copy.pull_records(("config.json", "manifest.json", "run.log"))
        paths = copy.paths
        if lease.taken_over:
            warn(paths.log, lease.taken_over)
        try:
            manifest = read_manifest(paths.root)  # under the lease: what is committed now
        except RunError as e:
            raise RunError(copy.told(str(e))) from None
        config = GenerationConfig.from_dict(manifest["config"])
        result = RepairResult(bucket.url, complete=manifest["status"] == "complete")
        damaged = []
        for entry in sorted(manifest["shards"], key=lambda e: e["index"]):
            result.checked += 1
            data, etag = bucket.read_tagged(shard_file(entry["index"]))
            why = _object_damage(data, entry)
            del data
            if why is not None:
                damaged.append((entry, why, etag))
        try:
            if damaged:
                try:
                    codec = _codec(paths, manifest, [(entry, why) for entry, why, _ in damaged])
                except RunError as e:
                    raise RunError(copy.told(str(e))) from None
            for entry, why, etag in damaged:
                k, name = entry["index"], shard_file(entry["index"])
                data = _remade(config, entry, codec)
                if data is None:
                    result.refused.append((name, _not_installed(why)))
                    continue
                _fs.pause_point("repair-install")
                lease.check()  # a process that lost the lease writes nothing more
                _install(bucket, name, data, etag)
                result.repaired.append((name, why))
                note(paths.root, f"repaired shard {k} ({name} was {why})")
        finally:
            if result.repaired or lease.taken_over:
                _publish_log(copy)
    return result


def _install(bucket: Bucket, name: str, data: bytes, etag: str | None) -> None:
    """Put a remade shard in place only if the object is still as it was read: absent (``etag`` None),
    or with that ETag. ObjectStoreError, and nothing written, when another process changed it meanwhile."""
    try:
        if etag is None:
            bucket.create(name, data)
        else:
            bucket.replace(name, data, etag)
    except PreconditionFailed:
        happened = "appeared" if etag is None else "was changed"
        raise ObjectStoreError(
            f"{bucket.url_of(name)} {happened} while repair worked; nothing was overwritten; another process "
            f"writes this run: stop it, then run: trajgen repair {bucket.url}"
        ) from None


def _publish_log(copy: RunCopy) -> None:
    """run.log, with the lines this repair added, into the bucket (best effort: not part of the commit record)."""
    try:
        copy.publish(["run.log"])
    except (OSError, ObjectStoreError):
        pass
