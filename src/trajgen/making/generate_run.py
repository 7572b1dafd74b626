"""`trajgen generate`: check everything that can be checked before a run exists, create it, make it."""

from __future__ import annotations

import os
from contextlib import closing
from datetime import datetime
from pathlib import Path

from trajgen.content.config import GenerationConfig
from trajgen.errors import StorageError, os_reason
from trajgen.making.bucket_commit import BucketCommit, check_new_bucket_run, check_workers_reach, fresh_copy
from trajgen.making.executors import choose_executor
from trajgen.making.lock import leased, locked
from trajgen.making.loop import ADVICE, PROGRESS_INTERVAL, RunSummary, best_effort, work
from trajgen.making.preflight import check_memory, check_progress_interval, require_free_space, warn_if_shards_are_slow
from trajgen.store import _fs
from trajgen.store.deflate import fallback_note
from trajgen.store.manifest import config_file_doc, json_bytes, manifest_bytes, new_manifest, progress_to_entry
from trajgen.store.objects import Bucket, is_url
from trajgen.store.rundir import RunError, RunPaths, check_new_run_dir, check_progress_to, resume_command
from trajgen.store.versions import byte_versions
from trajgen.watch.progress import warn


def default_out(config: GenerationConfig, base: Path = Path("runs")) -> Path:
    """runs/YYYYMMDD_HHMM_n<N> in local time; -2, -3 ... if that minute is taken."""
    name = f"{datetime.now():%Y%m%d_%H%M}_n{config.n}"
    out, k = base / name, 1
    while out.exists():
        k += 1
        out = base / f"{name}-{k}"
    return out


def generate(
    config: GenerationConfig,
    out: os.PathLike | str | None = None,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    progress_interval: float = PROGRESS_INTERVAL,
    show_bar: bool = False,
    check_space: bool = True,
    progress_to: os.PathLike | str | None = None,
    storage_options: dict | None = None,
) -> RunSummary:
    """Start a new run in ``out`` (default runs/YYYYMMDD_HHMM_n<N>) and make all of it.

    ``out`` may be a URL (``s3://bucket/prefix``): the run lives in object storage, made with the
    same guarantees (``storage_options`` for the client; credentials and endpoint are otherwise read
    from the environment). ``progress_to``: a folder (e.g. a synced one) that gets copies of
    PROGRESS.txt and a PROGRESS.html page; the run remembers it for ``resume``."""
    check_progress_interval(progress_interval)
    if is_url(out):
        return _generate_in_bucket(
            config,
            Bucket(str(out), storage_options),
            workers=workers,
            scheduler=scheduler,
            progress_interval=progress_interval,
            show_bar=show_bar,
            progress_to=progress_to,
        )
    root = Path(out) if out is not None else default_out(config)
    check_new_run_dir(root)
    progress_to = check_progress_to(root, progress_to)
    check_memory(config, workers, shards=scheduler is None)  # before any buffer is allocated
    # before the directory exists: a wrong --scheduler must leave nothing that blocks the same command;
    # local workers start now, so their imports overlap the space check below
    with closing(
        choose_executor(workers=workers, scheduler=scheduler, shards=config.num_shards, config=config)
    ) as executor:
        check_target = getattr(executor, "check_target", None)  # a cluster's workers, before anything exists
        if check_target is not None:
            check_target(root)
        if check_space:
            warn_if_shards_are_slow(config, require_free_space(config, root))
        return _start(
            root, config, executor, progress_interval=progress_interval, show_bar=show_bar, progress_to=progress_to
        )


def _generate_in_bucket(
    config: GenerationConfig, bucket: Bucket, *, workers, scheduler, progress_interval, show_bar, progress_to
) -> RunSummary:
    """A new run in object storage: config.json and the first manifest by conditional create under the
    run's lease, then the loop, whose workers put their shards straight into the bucket."""
    check_workers_reach(bucket, workers, scheduler)
    check_memory(config, workers, shards=scheduler is None)
    with closing(
        choose_executor(workers=workers, scheduler=scheduler, shards=config.num_shards, config=config)
    ) as executor:  # local workers start now: their imports overlap the client's below
        bucket.check_reachable()
        check_new_bucket_run(bucket)
        check_target = getattr(executor, "check_target", None)  # the workers and their versions, first
        if check_target is not None:
            check_target(bucket.url)
        with leased(bucket) as lease:
            check_new_bucket_run(bucket)  # again, now that no one else can be creating it
            copy = fresh_copy(bucket)
            folder = check_progress_to(copy.root, progress_to)
            manifest = new_manifest(config)
            versions = byte_versions(manifest["codec"])
            config_doc = json_bytes(config_file_doc(config, versions) | progress_to_entry(folder))
            bucket.create("config.json", config_doc)
            etag = bucket.create("manifest.json", manifest_bytes(manifest))
            copy.pull_records(("config.json", "manifest.json"))
            if lease.taken_over:
                warn(copy.paths.log, lease.taken_over)
            return work(
                copy.paths,
                config,
                manifest,
                executor,
                progress_interval=progress_interval,
                show_bar=show_bar,
                run_versions=versions,
                progress_to=folder,
                bucket=BucketCommit(copy, etag, lease),
            )


def _start(
    root: Path, config: GenerationConfig, executor, *, progress_interval, show_bar, progress_to: str | None = None
) -> RunSummary:
    try:
        _fs.make_dirs(root)
    except OSError as e:
        raise RunError(f"cannot create {root}: {e.strerror or e}; choose another --out") from None
    paths = RunPaths(root)
    with locked(paths):
        check_new_run_dir(root)  # again, now that no one else can be creating it
        manifest = new_manifest(config)
        versions = byte_versions(manifest["codec"])
        try:
            _fs.clear_dir(paths.tmp)
            _fs.make_dirs(paths.shards)
            _fs.atomic_write_bytes(
                paths.config, json_bytes(config_file_doc(config, versions) | progress_to_entry(progress_to)), paths.tmp
            )
            _fs.atomic_write_bytes(paths.manifest, manifest_bytes(manifest), paths.tmp)
        except OSError as e:
            best_effort(lambda: _fs.clear_dir(paths.tmp))
            then = resume_command(root) if paths.config.exists() else "the same trajgen generate command again"
            raise StorageError(
                f"could not create the run in {root}: {os_reason(e)}; "
                f"{ADVICE.get(e.errno, 'check the disk')}, then run: {then}"
            ) from None
        note = fallback_note(manifest["codec"])
        if note is not None:  # zlib-ng missing: the run is made with zlib, and the person starting it hears why
            warn(paths.log, note)
        return work(
            paths,
            config,
            manifest,
            executor,
            progress_interval=progress_interval,
            show_bar=show_bar,
            run_versions=versions,
            progress_to=progress_to,
        )
