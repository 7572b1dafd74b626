"""export: a complete run as one .npz in the schema the user's training code loads.

Streamed: each array becomes a zip member whose .npy header states the full shape,
followed by every shard's block in index order, converted a few rows at a time. So
memory is about one decoded shard whatever the run size, and the file is the same
bytes whatever the run's --checkpoint-every. Members are deflated at the run's
--compress-level by default (the shards' own ratio, ~50× at defaults); level 0 stores
them as ``numpy.savez`` does, for loading at disk speed.
"""

from __future__ import annotations

import errno
import os
import shlex
import zipfile
from datetime import datetime
from pathlib import Path

import numpy as np

from trajgen.content.config import GenerationConfig
from trajgen.errors import ConfigError, CorruptShardError, StorageError
from trajgen.store import output
from trajgen.store.capacity import existing_ancestor, free_bytes
from trajgen.store.checksums import sha256_file
from trajgen.store.manifest import read_manifest
from trajgen.store.rundir import RunError, RunPaths, lock_holder, resume_command, shard_file
from trajgen.store.shards import npy_header, read_members, shard_keys, zip_member
from trajgen.use.bucket_copy import serves_urls

LAYOUTS = ("nthwc", "ntchw")
DTYPES = ("uint8", "float32")
_ROWS = 64  # videos converted this many at a time: float32 is 4× the bytes


class ExportError(StorageError):
    """The export file cannot be written (exists, no space, I/O error)."""


def default_export_name(n: int, now: datetime | None = None) -> str:
    """YYYYMMDD_HHMM_dataset_<N>_validated.npz (the user's naming convention, local time)."""
    return f"{(now or datetime.now()):%Y%m%d_%H%M}_dataset_{n}_validated.npz"


@serves_urls(out="out")
def export_run(
    run_dir: os.PathLike | str,
    out: os.PathLike | str | None = None,
    layout: str = "nthwc",
    dtype: str = "uint8",
    force: bool = False,
    compress_level: int | None = None,
) -> Path:
    """Write the complete run as one .npz and return its path.

    ``out`` defaults to RUN_DIR/<default_export_name>; a directory gets that name inside it.
    ``layout`` "ntchw" with ``dtype`` "float32" gives the old (N, T, 3, H, W) floats in [0, 1].
    ``compress_level`` 0-9 (default: the run's --compress-level; 0 stores the arrays uncompressed).
    Every shard's size and sha256 are checked against the manifest before anything is written.
    """
    if layout not in LAYOUTS:
        raise ConfigError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if dtype not in DTYPES:
        raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    paths = RunPaths(Path(run_dir))
    manifest = read_manifest(paths.root)
    config = GenerationConfig.from_dict(manifest["config"])
    level = config.compress_level if compress_level is None else compress_level
    if not (isinstance(level, int) and 0 <= level <= 9):
        raise ConfigError(f"compress level must be an integer in [0, 9], got {level!r}")
    entries = sorted(manifest["shards"], key=lambda s: s["index"])
    if manifest["status"] != "complete" or len(entries) != config.num_shards:
        holder = lock_holder(paths)
        if holder is not None:
            raise RunError(
                f"{paths.root} is being written by {holder} ({len(entries)} of {config.num_shards} shards so "
                f"far); wait for it to finish (trajgen status {shlex.quote(str(paths.root))}), then export"
            )
        raise RunError(
            f"{paths.root} is incomplete: {len(entries)} of {config.num_shards} shards committed; "
            f"finish it with `{resume_command(paths.root)}`, then export"
        )
    out = Path(out) if out is not None else paths.root
    if output.is_dir(out) and output.run_part(out, paths.root) is None:
        out = out / default_export_name(config.n)
    output.check_target(out, paths.root, option="-o", force=force)

    shapes = _check_shards(paths, entries, shard_keys(config))
    members = _members(shapes, config.n, layout, dtype)
    need = sum(
        len(npy_header(dt, shape)) + int(np.prod(shape)) * np.dtype(dt).itemsize + 512 for dt, shape in members.values()
    )
    if level:  # deflated: about the shards' size (×4 for float32 videos), with room to spare
        need = min(need, int(1.5 * sum(e["bytes"] for e in entries) * (4 if dtype == "float32" else 1)) + 65536)
    free = free_bytes(out.parent)
    if need > free:
        raise ExportError(
            f"not enough free space at {existing_ancestor(out.parent)}: the export needs about "
            f"{need / 1e6:,.1f} MB, {free / 1e6:,.1f} MB is free; free some space or choose another -o"
        )
    partial = output.partial_path(out)
    try:
        with open(partial, "xb") as f:
            zf = zipfile.ZipFile(f, "w")
            try:
                for key, (dt, shape) in members.items():
                    _write_member(zf, key, dt, shape, paths, entries, layout, level)
            except BaseException:
                # the partial file is removed: no central directory. A stop inside zipfile can leave a
                # member handle open, and closing the zip would then raise over the stop.
                zf.fp = None
                raise
            zf.close()
            f.flush()
            os.fsync(f.fileno())
        output.publish(partial, out, replace=force)
    except OSError as e:
        advice = "free some space" if e.errno in (errno.ENOSPC, errno.EDQUOT) else output.advice(e)
        raise ExportError(
            f"could not write {out}: {output.reason(e)}; {advice} and export again (the partial file was removed)"
        ) from None
    finally:
        partial.unlink(missing_ok=True)  # also when stopped by a signal
    return out


def _check_shards(
    paths: RunPaths, entries: list[dict], keys: tuple[str, ...]
) -> dict[str, list[tuple[np.dtype, tuple]]]:
    """Size and sha256 of every shard, and the dtype and shape of each member ``keys`` names from
    its .npy header (nothing is decoded). Fails before the export writes anything."""
    shapes: dict[str, list] = {key: [] for key in keys}
    for entry in entries:
        name = shard_file(entry["index"])
        path = paths.root / name
        if not path.is_file():
            raise CorruptShardError(f"{name} is missing; check the run with: trajgen verify {paths.root}")
        try:
            same = path.stat().st_size == entry["bytes"] and sha256_file(path) == entry["sha256"]
        except OSError as e:  # e.g. no permission to read it
            raise ExportError(f"cannot read {name}: {e.strerror or e}; make it readable, then export again") from None
        if not same:
            raise CorruptShardError(
                f"{name} does not match the sha256 and size in the manifest; "
                f"check the run with: trajgen verify {paths.root}"
            )
        try:
            with zipfile.ZipFile(path) as z:
                for key in keys:
                    with z.open(f"{key}.npy") as member:
                        version = np.lib.format.read_magic(member)
                        read = (
                            np.lib.format.read_array_header_1_0
                            if version == (1, 0)
                            else np.lib.format.read_array_header_2_0
                        )
                        shape, _, dt = read(member)
                    shapes[key].append((dt, shape))
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
            raise CorruptShardError(
                f"{name} is unreadable ({e}); check the run with: trajgen verify {paths.root}"
            ) from None
        if any(shapes[key][-1][1][:1] != (entry["count"],) for key in keys):
            raise CorruptShardError(
                f"{name} does not hold {entry['count']} samples; check the run with: trajgen verify {paths.root}"
            )
    return shapes


def _members(shapes: dict, n: int, layout: str, dtype: str) -> dict[str, tuple[np.dtype, tuple]]:
    """dtype and full shape of each exported array."""
    members = {}
    for key, parts in shapes.items():
        dts, tails = {dt for dt, _ in parts}, {shape[1:] for _, shape in parts}
        if len(tails) != 1 or (len(dts) != 1 and not all(dt.kind == "U" for dt in dts)):
            raise CorruptShardError(
                f"shards disagree on the dtype or shape of {key}; check the run with trajgen verify"
            )
        dt, tail = max(dts, key=lambda d: d.itemsize), tails.pop()  # strings: the widest
        if key == "videos":
            t, h, w, c = tail
            tail = (t, c, h, w) if layout == "ntchw" else tail
            dt = np.dtype(dtype)
        members[key] = (dt.newbyteorder("<") if dt.itemsize > 1 else dt, (n, *tail))
    return members


def _write_member(
    zf: zipfile.ZipFile,
    key: str,
    dt: np.dtype,
    shape: tuple,
    paths: RunPaths,
    entries: list[dict],
    layout: str,
    level: int,
) -> None:
    rows = _ROWS if key == "videos" else None
    with zf.open(zip_member(f"{key}.npy", level), "w", force_zip64=True) as member:
        member.write(npy_header(dt, shape))
        for entry in entries:
            block = read_members(paths.root / shard_file(entry["index"]), [key])[key]  # this member only (ISA-L)
            for start in range(0, len(block), rows or len(block)):
                member.write(_convert(block[start : start + rows if rows else None], key, dt, layout))
            del block  # before the next shard is decoded: one shard in memory, not two


def _convert(chunk: np.ndarray, key: str, dt: np.dtype, layout: str) -> memoryview:
    """Rows of one array as the export's bytes (layout, dtype, string width, little-endian)."""
    if key == "videos" and layout == "ntchw":
        chunk = chunk.transpose(0, 1, 4, 2, 3)
    chunk = np.ascontiguousarray(chunk, dtype=dt)
    if key == "videos" and dt == np.float32:
        chunk /= np.float32(255)
    return chunk.reshape(-1).view(np.uint8).data
