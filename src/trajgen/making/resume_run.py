"""`trajgen resume`: finish a run, making only the shards its manifest does not list, after putting
right what can be put right (config.json rebuilt from the manifest, a status that disagrees)."""

from __future__ import annotations

import os
import shlex
from contextlib import closing
from pathlib import Path
from typing import cast

from trajgen.content.config import GenerationConfig
from trajgen.errors import StorageError, os_reason
from trajgen.making.bucket_commit import BucketCommit, check_workers_reach, fresh_copy
from trajgen.making.executors import choose_executor
from trajgen.making.lock import leased, locked
from trajgen.making.loop import ADVICE, PROGRESS_INTERVAL, RunSummary, best_effort, work, writing
from trajgen.making.preflight import check_memory, check_progress_interval
from trajgen.making.status import repair_progress
from trajgen.store import _fs, schema
from trajgen.store.deflate import CodecNotInstalledError
from trajgen.store.manifest import (
    RUN_FORMAT,
    checked_config,
    config_file_doc,
    config_or_damage,
    existing_run,
    json_bytes,
    manifest_bytes,
    new_manifest,
    progress_to_entry,
    read_config_file,
    read_manifest,
)
from trajgen.store.objects import Bucket, is_url
from trajgen.store.reserve import Reserve
from trajgen.store.rundir import RunError, RunPaths, check_progress_to, log_line, resume_command
from trajgen.store.shards import UnknownCodecError, check_codec
from trajgen.store.versions import byte_versions, differences, install_advice, recorded_versions
from trajgen.watch.progress import warn


class VersionChangedError(RunError):
    """resume under other versions of what decides the bytes than the run was made with."""


def resume(
    run_dir: os.PathLike | str,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    progress_interval: float = PROGRESS_INTERVAL,
    show_bar: bool = False,
    allow_version_change: bool = False,
    progress_to: os.PathLike | str | None = None,
    storage_options: dict | None = None,
) -> RunSummary:
    """Finish a run: make only the shards its manifest does not list.

    Refuses (VersionChangedError, nothing changed) when the installed versions of what
    decides the bytes differ from those config.json records, unless ``allow_version_change``:
    then the shards made now record their versions in the manifest (a mixed run).
    Keeps mirroring progress to the folder the run remembers; ``progress_to`` changes it.
    ``run_dir`` may be a URL (``s3://bucket/prefix``; ``storage_options`` for the client)."""
    check_progress_interval(progress_interval)
    if is_url(run_dir):
        return _resume_in_bucket(
            Bucket(str(run_dir), storage_options),
            workers=workers,
            scheduler=scheduler,
            progress_interval=progress_interval,
            show_bar=show_bar,
            allow_version_change=allow_version_change,
            progress_to=progress_to,
        )
    paths = existing_run(run_dir)
    progress_to = check_progress_to(paths.root, progress_to)
    # checks that fail before anything is written, even .lock; decided again under the lock below
    manifest = read_manifest(paths.root, config_file=False) if os.path.lexists(paths.manifest) else None
    config, rebuild_config = _resume_config(paths, manifest)
    _check_run_parts(paths, manifest)
    check_memory(config, workers, shards=scheduler is None, resuming=True)
    if rebuild_config:  # the versions it recorded are lost with it: the installed ones are recorded
        config_file = config_file_doc(config, byte_versions(_run_codec(config, manifest)))
    else:
        config_file = read_config_file(paths.root)
    run_versions, changed = _check_versions(paths.root, config_file, manifest, allow_version_change)
    with locked(paths):
        # every decision is taken from what is on disk now that the run is ours: another
        # process may have committed (or finished) it since the look above
        manifest = read_manifest(paths.root, config_file=False) if os.path.lexists(paths.manifest) else None
        config, rebuild_config = _resume_config(paths, manifest)
        if rebuild_config:  # the versions it recorded are lost with it: the installed ones are recorded
            config_file = config_file_doc(config, byte_versions(_run_codec(config, manifest)))
        else:
            config_file = read_config_file(paths.root)
        run_versions, changed = _check_versions(paths.root, config_file, manifest, allow_version_change)
        if manifest is not None:
            if GenerationConfig.from_dict(manifest["config"]) != config:
                raise RunError(f"{paths.manifest} and {paths.config} describe different runs; the run is damaged")
        else:  # crashed between writing config.json and the first manifest: nothing was committed
            manifest = new_manifest(config)
        if manifest["status"] != "complete" and manifest["format"] != RUN_FORMAT:
            raise RunError(
                f"{paths.root} was made by an older trajgen (run format {manifest['format']}), whose "
                f"samples this version makes differently; finish it with the trajgen version named in "
                f"{paths.config}, or start a new run"
            )
        if manifest["status"] != "complete":
            _check_codec(paths, manifest)
        repaired = _repair_run(paths, config, manifest, config_file if rebuild_config else None)
        if manifest["status"] == "complete":
            best_effort(Reserve(paths.root).remove)  # left by a command the disk stopped after the last commit
            try:
                repair_progress(paths, manifest)
                _fs.append_line(paths.log, log_line("resume: already complete, nothing to do"))
            except OSError as e:
                raise StorageError(
                    f"{paths.root} is complete, but its log or progress files could not be written: "
                    f"{os_reason(e)}; {ADVICE.get(e.errno, 'check the disk')}"
                ) from None
            return RunSummary(paths.root, config.n, 0, 0, 0.0, already_complete=True, repaired=repaired)
        if changed:  # work reports a log that cannot be written
            note = log_line(
                f"resume --allow-version-change: versions differ (run → installed): {', '.join(changed)}; "
                f"the shards made now record theirs"
            )
            best_effort(lambda: _fs.append_line(paths.log, note))
        progress_to = _remember_progress_to(paths, progress_to)
        left = config.num_shards - len(manifest["shards"])
        with closing(choose_executor(workers=workers, scheduler=scheduler, shards=left, config=config)) as executor:
            return work(
                paths,
                config,
                manifest,
                executor,
                progress_interval=progress_interval,
                show_bar=show_bar,
                run_versions=run_versions,
                progress_to=progress_to,
            )


def _resume_in_bucket(
    bucket: Bucket, *, workers, scheduler, progress_interval, show_bar, allow_version_change, progress_to
) -> RunSummary:
    """Finish a run in object storage, under its lease: abort its pending uploads, remove its unlisted
    shard objects, and make the rest, committing each shard by compare-and-swap on the manifest."""
    check_workers_reach(bucket, workers, scheduler)
    bucket.check_reachable()
    with leased(bucket) as lease:
        copy = fresh_copy(bucket)
        etag = copy.pull_records()
        paths = copy.paths
        try:
            if not (paths.config.exists() or paths.manifest.exists()):
                raise RunError(
                    f"{bucket.url} is not a trajgen run (no manifest.json or config.json); "
                    f"start one with: trajgen generate --out {bucket.url}"
                )
            manifest = read_manifest(paths.root, config_file=False) if etag is not None else None
            config = checked_config(paths)
            config_file = read_config_file(paths.root)
            if manifest is not None and GenerationConfig.from_dict(manifest["config"]) != config:
                raise RunError(
                    f"{bucket.url}: manifest.json and config.json describe different runs; the run is damaged"
                )
        except RunError as e:
            raise RunError(copy.told(str(e))) from None
        run_versions, changed = _check_versions(bucket.url, config_file, manifest, allow_version_change)
        if manifest is None:  # crashed between config.json and the first manifest: nothing was committed
            manifest = new_manifest(config)
            etag = bucket.create("manifest.json", manifest_bytes(manifest))
            copy.pull_records(("manifest.json",))
        if manifest["status"] != "complete" and manifest["format"] != RUN_FORMAT:
            raise RunError(
                f"{bucket.url} was made by an older trajgen (run format {manifest['format']}); finish it with the "
                f"trajgen version named in its config.json, or start a new run"
            )
        if manifest["status"] != "complete":
            _check_codec(paths, manifest)
        if lease.taken_over:
            warn(paths.log, lease.taken_over)
        check_memory(config, workers, shards=scheduler is None, resuming=True)
        commit = BucketCommit(copy, cast(str, etag), lease)
        if manifest["status"] == "complete":
            best_effort(lambda: repair_progress(paths, manifest))
            best_effort(commit.close)  # the progress files in the bucket say COMPLETE
            return RunSummary(bucket.url, config.n, 0, 0, 0.0, already_complete=True)
        if changed:
            warn(paths.log, f"resume --allow-version-change: versions differ (run → installed): {', '.join(changed)}")
        for line in commit.prepare({s["index"] for s in manifest["shards"]}):
            warn(paths.log, f"resume: {line}", kind="note")
        folder = check_progress_to(copy.root, progress_to) or _remembered_progress_to(config_file)
        left = config.num_shards - len(manifest["shards"])
        with closing(choose_executor(workers=workers, scheduler=scheduler, shards=left, config=config)) as executor:
            return work(
                paths,
                config,
                manifest,
                executor,
                progress_interval=progress_interval,
                show_bar=show_bar,
                run_versions=run_versions,
                progress_to=folder,
                bucket=commit,
            )


def _check_codec(paths: RunPaths, manifest: dict) -> None:
    """RunError unless this trajgen can make shards with the codec the run records (its shards keep it)."""
    try:
        check_codec(manifest.get("codec"))
    except CodecNotInstalledError as e:
        raise RunError(f"{paths.root} cannot be finished here: {e}") from None
    except UnknownCodecError as e:
        raise RunError(
            f"{paths.root} cannot be finished here: {e}; finish it with the trajgen version named in {paths.config}"
        ) from None


def _resume_config(paths: RunPaths, manifest: dict | None) -> tuple[GenerationConfig, bool]:
    """The run's config, and whether config.json must be rebuilt from the (intact) manifest."""
    found = config_or_damage(paths)
    if found[1] is None:
        return found[0], False
    if manifest is None or found[1].endswith("is a directory"):
        checked_config(paths)  # raises, with the advice that fits
    assert manifest is not None  # checked_config raised (unless config.json was put right meanwhile)
    return GenerationConfig.from_dict(manifest["config"]), True


def _committed_text(entries: list[dict]) -> str:
    ks = sorted(e["index"] for e in entries)
    return (
        f"shard {ks[0]}"
        if len(ks) == 1
        else f"shards {ks[0]}–{ks[-1]}"
        if ks == list(range(ks[0], ks[-1] + 1))
        else "shards " + ", ".join(map(str, ks))
    )


def _check_run_parts(paths: RunPaths, manifest: dict | None) -> None:
    """.tmp/, shards/ and .lock are what they must be, before resume changes anything."""
    again = f"then run `{resume_command(paths.root)}`"
    if os.path.lexists(paths.tmp) and not paths.tmp.is_dir():
        raise RunError(f"{paths.tmp} is not a directory (the run keeps only in-flight files there); remove it, {again}")
    if os.path.lexists(paths.lock) and not paths.lock.is_file():
        raise RunError(
            f"{paths.lock} is {'a directory' if paths.lock.is_dir() else 'not a regular file'}, not the run's "
            f"lock file; remove it ({'rmdir' if paths.lock.is_dir() else 'rm'} {shlex.quote(str(paths.lock))}), {again}"
        )
    if paths.shards.is_dir():
        return
    what = "is missing" if not os.path.lexists(paths.shards) else "is not a directory"
    entries = manifest["shards"] if manifest is not None else []
    if entries:
        raise RunError(
            f"{paths.shards}/ {what}: the {len(entries)} committed {_committed_text(entries)} listed in "
            f"manifest.json are gone; restore shards/ from a backup, or move manifest.json aside and run "
            f"`{resume_command(paths.root)}` to make the whole run again"
        )
    if os.path.lexists(paths.shards):
        raise RunError(f"{paths.shards} is not a directory (it holds the run's shards); move it aside, {again}")


def _repair_run(paths: RunPaths, config: GenerationConfig, manifest: dict, rebuilt_config: dict | None) -> str:
    """Under the lock: write config.json rebuilt from the manifest, recreate an empty shards/, and write
    back a manifest status that disagreed with its entries. Returns what was done, for the user."""
    done = []
    with writing("repair the run's files"):
        _fs.make_dirs(paths.tmp)
        if rebuilt_config is not None:
            _fs.atomic_write_bytes(paths.config, json_bytes(rebuilt_config), paths.tmp)
            done.append(
                "rebuilt config.json from manifest.json (recording the installed versions: the ones it held are lost)"
            )
        _fs.make_dirs(paths.shards)
        if os.path.lexists(paths.manifest):
            recorded = cast(dict, schema.load_json(paths.manifest))["status"]  # checked by load_manifest
            if recorded != manifest["status"]:
                _fs.atomic_write_bytes(paths.manifest, manifest_bytes(manifest), paths.tmp)
                listed = len(manifest["shards"])
                done.append(
                    f"manifest.json said status {recorded!r} with {listed} of {config.num_shards} shards "
                    f"committed; it now says {manifest['status']!r}"
                )
        for line in done:
            _fs.append_line(paths.log, log_line(f"resume: {line}"))
    return "; ".join(done)


def _run_codec(config: GenerationConfig, manifest: dict | None) -> dict:
    """The codec the run's shards are made with: its manifest's, or a new run's where none was written yet."""
    return manifest["codec"] if manifest is not None else new_manifest(config)["codec"]


def _check_versions(
    root: Path | str, config_file: dict, manifest: dict | None, allow_change: bool
) -> tuple[dict[str, str], list[str]]:
    """The versions the run records and how the installed ones differ ('numpy 1.26.4 → 2.0.0');
    VersionChangedError if they differ, more shards are due and no change was allowed."""
    recorded, running = recorded_versions(config_file), byte_versions()
    changed = differences(recorded, running)
    if not changed or allow_change or (manifest is not None and manifest.get("status") == "complete"):
        return recorded, changed
    raise VersionChangedError(
        f"{root} was made with other versions of what decides its bytes (run → installed): {', '.join(changed)}; "
        f"install the run's versions ({install_advice(recorded, running)}) and resume, or go on with these, "
        f"marking the run as mixed: {resume_command(root)} --allow-version-change"
    )


def _remembered_progress_to(config_doc: dict) -> str | None:
    """The --progress-to folder a run's config.json remembers, if any."""
    folder = config_doc.get("progress_to")
    return folder if isinstance(folder, str) else None


def _remember_progress_to(paths: RunPaths, progress_to: str | None) -> str | None:
    """The run's --progress-to folder: ``progress_to`` if given (written into config.json
    atomically when it changes), else the one config.json remembers."""
    doc = read_config_file(paths.root)
    remembered = _remembered_progress_to(doc)
    if progress_to is None or progress_to == remembered:
        return remembered
    try:
        _fs.make_dirs(paths.tmp)
        _fs.atomic_write_bytes(paths.config, json_bytes(doc | progress_to_entry(progress_to)), paths.tmp)
    except OSError as e:
        raise StorageError(
            f"could not record --progress-to in {paths.config}: {os_reason(e)}; "
            f"{ADVICE.get(e.errno, 'check the disk')}, then run the same command again"
        ) from None
    return progress_to
