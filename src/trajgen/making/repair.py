"""repair: make a run's missing or damaged committed shards again.

Every shard is a pure function of the run's config and its number, and the manifest
holds its sha256. So a damaged shard is made again, its bytes are checked against the
manifest, and only a shard that matches is put in place (under the run's lock, through
.tmp/ and an atomic rename, like a commit). A shard that regenerates to other bytes
(other numpy/OpenCV/encoder versions) is reported and left alone.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from trajgen.content.config import GenerationConfig
from trajgen.errors import StorageError, os_reason
from trajgen.making.lock import locked
from trajgen.making.shardmaker import build_shard_arrays
from trajgen.store import _fs
from trajgen.store.checksums import sha256_file
from trajgen.store.deflate import CodecNotInstalledError
from trajgen.store.manifest import existing_run, read_manifest
from trajgen.store.objects import is_url
from trajgen.store.rundir import RunError, RunPaths, log_line, resume_command, shard_file
from trajgen.store.shards import UnknownCodecError, check_codec, encode_shard


@dataclass
class RepairResult:
    run_dir: Path
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
            f"{self.run_dir / 'config.json'} and run trajgen repair again, or restore the shard from a backup"
        )


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


def repair_run(run_dir: os.PathLike | str) -> RepairResult:
    """Remake every committed shard whose file is missing or does not match the manifest."""
    if is_url(run_dir):  # a listed shard object is never overwritten: remaking one in place would break that
        raise RunError(
            f"repair works on a run directory on disk, not on {run_dir}; check the run with `trajgen verify "
            f"{run_dir}`, or copy it to disk (aws s3 sync {run_dir} DIR), repair it there and copy it back"
        )
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
            arrays, _, _ = build_shard_arrays(config, k)
            data = encode_shard(arrays, codec)
            del arrays
            if hashlib.sha256(data).hexdigest() != entry["sha256"] or len(data) != entry["bytes"]:
                result.refused.append(
                    (
                        name,
                        f"{why}; remade, but the new bytes differ from the manifest's sha256 "
                        f"(made with other versions?), so it was not installed",
                    )
                )
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
