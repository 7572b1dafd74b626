"""The run's records on disk: manifest.json (the commit record) and config.json, written and read.

A reader gets one clear RunError line when a record is missing or damaged, with the advice that
fits: which file to restore, or the resume that rebuilds it.
"""

from __future__ import annotations

import json
import os
import shlex
import stat
from pathlib import Path
from typing import cast

from trajgen.content.config import GenerationConfig
from trajgen.errors import os_advice, os_reason
from trajgen.store import schema
from trajgen.store.rundir import RunError, RunPaths, resume_command
from trajgen.store.shards import shard_codec

# 2: samples drawn from counter-based streams (trajgen.content.streams) in bulk; the manifest's "codec" says what
# deflated the shards (trajgen.store.deflate), and a run keeps it.
# Runs of format 1 (a SeedSequence per sample) are read, verified and exported, but not resumed.
RUN_FORMAT = schema.RUN_FORMAT
READABLE_FORMATS = schema.READABLE_FORMATS


def new_manifest(config: GenerationConfig) -> dict:
    from trajgen import __version__

    return {
        "format": RUN_FORMAT,
        "trajgen_version": __version__,
        "codec": shard_codec(config.compress_level),  # what deflated the shards
        "config": config.to_dict(),
        "classes": list(config.classes),
        "total_samples": config.n,
        "checkpoint_every": config.checkpoint_every,
        "num_shards": config.num_shards,
        "status": "running",
        "shards": [],
    }


def config_file_doc(config: GenerationConfig, versions: dict[str, str]) -> dict:
    """config.json's content: the whole config, its fingerprint and the versions that decide the bytes."""
    from trajgen import __version__

    return {
        "trajgen_version": __version__,
        "content_fingerprint": config.content_fingerprint(),
        "config": config.to_dict(),
        "versions": versions,
    }


def progress_to_entry(progress_to: str | None) -> dict:
    return {} if progress_to is None else {"progress_to": progress_to}


def manifest_bytes(manifest: dict, lines: dict[int, str] | None = None) -> bytes:
    """manifest.json as written: the header indented, then one shard entry per line.

    ``lines`` caches each shard's line between commits, so a commit serializes one new
    entry instead of the whole list (at 10,000 shards a full re-dump costs ~100 ms)."""
    lines = {} if lines is None else lines
    head = json.dumps({k: v for k, v in manifest.items() if k != "shards"}, indent=2, ensure_ascii=False)
    for entry in manifest["shards"]:
        if entry["index"] not in lines:
            lines[entry["index"]] = json.dumps(entry, ensure_ascii=False)
    body = ",\n    ".join(lines[entry["index"]] for entry in manifest["shards"])
    shards = f"[\n    {body}\n  ]" if body else "[]"
    return f'{head[:-2]},\n  "shards": {shards}\n}}\n'.encode()


def json_bytes(data: dict) -> bytes:
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def read_manifest(run_dir: os.PathLike | str, *, check_entries: bool = True, config_file: bool = True) -> dict:
    """The commit record of a run, checked against the schema; RunError with one clear line when
    it is missing or damaged.

    Its "status" is taken from the entries (complete exactly when every shard is listed), so a
    status that disagrees with them never misleads a reader; ``resume`` writes it back.
    ``check_entries=False`` leaves the shard entries and the status as found (verify reports each
    itself). ``config_file`` also requires a readable config.json (status only notes it)."""
    paths = existing_run(run_dir)
    manifest = load_manifest(paths, check_entries)
    if config_file:
        checked_config(paths)
    if check_entries:
        manifest["status"] = "complete" if len(manifest["shards"]) == manifest["num_shards"] else "running"
    return manifest


def load_manifest(paths: RunPaths, check_entries: bool = True) -> dict:
    try:
        manifest = schema.load_json(paths.manifest)
        schema.check_manifest(manifest, check_entries=check_entries)
    except FileNotFoundError:
        raise RunError(
            f"{paths.manifest} is missing; run `{resume_command(paths.root)}` to make the run again "
            f"from config.json (every shard is made again)"
        ) from None
    except OSError as e:
        raise RunError(f"cannot read {paths.manifest}: {os_reason(e)}; {os_advice(e)}") from None
    except schema.SchemaError as e:
        raise RunError(
            f"cannot read {paths.manifest}: {e}; the run's commit record is damaged (restore it from a backup, "
            f"or move it aside and run `{resume_command(paths.root)}` to make every shard again)"
        ) from None
    return cast(dict, manifest)  # check_manifest found an object


def config_or_damage(paths: RunPaths) -> tuple[GenerationConfig, None] | tuple[None, str]:
    """The config in config.json, or what is wrong with the file."""
    try:
        return schema.check_config_file(schema.load_json(paths.config)), None
    except FileNotFoundError:
        return None, f"{paths.config} is missing"
    except IsADirectoryError:
        return None, f"{paths.config} is a directory"
    except OSError as e:
        return None, f"cannot read {paths.config}: {os_reason(e)}"
    except schema.SchemaError as e:
        return None, f"{paths.config} is damaged: {e}"


def checked_config(paths: RunPaths) -> GenerationConfig:
    found = config_or_damage(paths)
    if found[1] is None:
        return found[0]
    damage = found[1]
    try:
        load_manifest(paths)
        intact = True
    except RunError:
        intact = False
    if damage.endswith("is a directory"):
        then = (
            f"run `{resume_command(paths.root)}` to rebuild it from manifest.json"
            if intact
            else "restore it from a backup"
        )
        raise RunError(
            f"{damage}, not the run's config; remove it (rmdir {shlex.quote(str(paths.config))}), then {then}"
        )
    if intact:
        raise RunError(
            f"{damage}; manifest.json is intact and holds the whole config: "
            f"run `{resume_command(paths.root)}` to rebuild config.json from it"
        )
    raise RunError(
        f"{damage}, and so is manifest.json; restore the run from a backup, or make it again with trajgen generate"
    )


def read_config(run_dir: os.PathLike | str) -> GenerationConfig:
    """The run's config from config.json, checked against the schema; RunError naming the field if not."""
    return checked_config(existing_run(run_dir))


def read_config_file(run_dir: os.PathLike | str) -> dict:
    """config.json as recorded (config, versions, ...), checked against the schema; RunError when damaged."""
    paths = existing_run(run_dir)
    checked_config(paths)  # checks it, with the advice that fits
    try:
        return cast(dict, schema.load_json(paths.config))  # checked_config found an object
    except (OSError, ValueError) as e:  # changed since the check
        raise RunError(f"cannot read {paths.config}: {' '.join(str(e).split())}") from None


def existing_run(run_dir: os.PathLike | str) -> RunPaths:
    root = Path(run_dir)
    try:
        st = os.stat(root)
    except FileNotFoundError:
        if os.path.islink(root):
            raise RunError(f"{root} is a symbolic link to a missing path; fix or remove the link") from None
        raise RunError(f"{root} does not exist; check the path (runs are usually under runs/)") from None
    except OSError as e:
        raise RunError(f"cannot use {root}: {os_reason(e)}; {os_advice(e)}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise RunError(f"{root} is not a directory; give the run directory")
    if not (os.path.lexists(root / "config.json") or os.path.lexists(root / "manifest.json")):
        raise RunError(
            f"{root} is not a trajgen run (no manifest.json or config.json); "
            f"start one with: trajgen generate --out {shlex.quote(str(root))}"
        )
    return RunPaths(root)
