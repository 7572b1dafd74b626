"""A run directory: lock, manifest, the plan of missing shards, and the one
generate/resume loop (the executor that makes shards is the only part that varies).

Commit protocol: a shard is written to .tmp/ and renamed into shards/ by whoever
makes it; only then does this process add it to manifest.json (atomically), append
to run.log and rewrite PROGRESS.txt. A shard file not listed in the manifest is not
done, and is made again.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import shlex
import signal
import socket
import stat
import time
from contextlib import closing, contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from trajgen.store import _fs, schema
from trajgen.making import inflight
from trajgen.content.config import GenerationConfig
from trajgen.errors import ConfigError, StorageError, TrajgenError, os_advice
from trajgen.watch.progress import (
    ProgressReporter, ProgressSnapshot, format_progress_text, snapshot_from_json, snapshot_to_json, write_progress,
)
from trajgen.store.shards import UnknownCodecError, check_codec, shard_codec
from trajgen.store.rundir import (
    RunError, RunPaths, check_new_run_dir, check_progress_to, live_holder, lock_holder, log_line, resume_command,
    shard_file,
)
from trajgen.making.shardmaker import (  # noqa: F401 - some only re-exported: others import them from trajgen.run
    ShardResult, ShardWriteError, WorkerVersionError, build_shard_arrays, os_reason, produce_shard, videos_buffer,
    videos_buffer_kept,
)

_check_new_run_dir, _check_progress_to, _log_line, _live_holder = check_new_run_dir, check_progress_to, log_line, live_holder
_os_reason = os_reason  # the names they had before they moved

# 2: samples drawn from counter-based streams (trajgen.streams) in bulk; the manifest's "codec" says what
# deflated the shards (trajgen.deflate), and a run keeps it.
# Runs of format 1 (a SeedSequence per sample) are read, verified and exported, but not resumed.
RUN_FORMAT = schema.RUN_FORMAT
READABLE_FORMATS = schema.READABLE_FORMATS
PROGRESS_INTERVAL = 30.0


class RunLockedError(RunError):
    """Another process is working on the run."""


class Interrupted(TrajgenError):
    """Stopped by SIGINT or SIGTERM after leaving the run resumable."""

    def __init__(self, signum: int, message: str = ""):
        super().__init__(message or f"stopped by {signal.Signals(signum).name}")
        self.signum = signum
        self.exit_code = 128 + signum


class VersionChangedError(RunError):
    """resume under other versions of what decides the bytes than the run was made with."""


_ADVICE = {
    errno.ENOSPC: "free some disk space",
    errno.EDQUOT: "free some space or raise your disk quota",
    errno.EFBIG: "the filesystem refused a file that large; move the run to another filesystem",
    errno.EROFS: "the filesystem is read-only; remount it read-write",
    errno.EIO: "the disk reported an I/O error; check it",
}


# ---------------------------------------------------------------- manifest

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
    return f'{head[:-2]},\n  "shards": {shards}\n}}\n'.encode("utf-8")


def _json_bytes(data: dict) -> bytes:
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def read_manifest(run_dir: os.PathLike | str, *, check_entries: bool = True, config_file: bool = True) -> dict:
    """The commit record of a run, checked against the schema; RunError with one clear line when
    it is missing or damaged.

    Its "status" is taken from the entries (complete exactly when every shard is listed), so a
    status that disagrees with them never misleads a reader; ``resume`` writes it back.
    ``check_entries=False`` leaves the shard entries and the status as found (verify reports each
    itself). ``config_file`` also requires a readable config.json (status only notes it)."""
    paths = _existing_run(run_dir)
    manifest = _load_manifest(paths, check_entries)
    if config_file:
        _read_config_file(paths)
    if check_entries:
        manifest["status"] = "complete" if len(manifest["shards"]) == manifest["num_shards"] else "running"
    return manifest


def _load_manifest(paths: RunPaths, check_entries: bool = True) -> dict:
    try:
        manifest = schema.load_json(paths.manifest)
        schema.check_manifest(manifest, check_entries=check_entries)
    except FileNotFoundError:
        raise RunError(f"{paths.manifest} is missing; run `{resume_command(paths.root)}` to make the run again "
                       f"from config.json (every shard is made again)") from None
    except OSError as e:
        raise RunError(f"cannot read {paths.manifest}: {_os_reason(e)}; {_path_advice(e)}") from None
    except schema.SchemaError as e:
        raise RunError(f"cannot read {paths.manifest}: {e}; the run's commit record is damaged (restore it from a backup, "
                       f"or move it aside and run `{resume_command(paths.root)}` to make every shard again)") from None
    return manifest


def _config_or_damage(paths: RunPaths) -> tuple[GenerationConfig | None, str | None]:
    """The config in config.json, or what is wrong with the file."""
    try:
        return schema.check_config_file(schema.load_json(paths.config)), None
    except FileNotFoundError:
        return None, f"{paths.config} is missing"
    except IsADirectoryError:
        return None, f"{paths.config} is a directory"
    except OSError as e:
        return None, f"cannot read {paths.config}: {_os_reason(e)}"
    except schema.SchemaError as e:
        return None, f"{paths.config} is damaged: {e}"


def _read_config_file(paths: RunPaths) -> GenerationConfig:
    config, damage = _config_or_damage(paths)
    if damage is None:
        return config
    try:
        _load_manifest(paths)
        intact = True
    except RunError:
        intact = False
    if damage.endswith("is a directory"):
        then = f"run `{resume_command(paths.root)}` to rebuild it from manifest.json" if intact else "restore it from a backup"
        raise RunError(f"{damage}, not the run's config; remove it (rmdir {shlex.quote(str(paths.config))}), then {then}")
    if intact:
        raise RunError(f"{damage}; manifest.json is intact and holds the whole config: "
                       f"run `{resume_command(paths.root)}` to rebuild config.json from it")
    raise RunError(f"{damage}, and so is manifest.json; restore the run from a backup, or make it again with trajgen generate")


def read_config(run_dir: os.PathLike | str) -> GenerationConfig:
    """The run's config from config.json, checked against the schema; RunError naming the field if not."""
    return _read_config_file(_existing_run(run_dir))


def read_config_file(run_dir: os.PathLike | str) -> dict:
    """config.json as recorded (config, versions, ...), checked against the schema; RunError when damaged."""
    paths = _existing_run(run_dir)
    _read_config_file(paths)  # checks it, with the advice that fits
    try:
        return schema.load_json(paths.config)
    except (OSError, ValueError) as e:  # changed since the check
        raise RunError(f"cannot read {paths.config}: {' '.join(str(e).split())}") from None


def _existing_run(run_dir: os.PathLike | str) -> RunPaths:
    root = Path(run_dir)
    try:
        st = os.stat(root)
    except FileNotFoundError:
        if os.path.islink(root):
            raise RunError(f"{root} is a symbolic link to a missing path; fix or remove the link") from None
        raise RunError(f"{root} does not exist; check the path (runs are usually under runs/)") from None
    except OSError as e:
        raise RunError(f"cannot use {root}: {_os_reason(e)}; {_path_advice(e)}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise RunError(f"{root} is not a directory; give the run directory")
    if not (os.path.lexists(root / "config.json") or os.path.lexists(root / "manifest.json")):
        raise RunError(f"{root} is not a trajgen run (no manifest.json or config.json); "
                       f"start one with: trajgen generate --out {shlex.quote(str(root))}")
    return RunPaths(root)


def _path_advice(e: OSError) -> str:
    return os_advice(e)


# ---------------------------------------------------------------- status

@dataclass(frozen=True)
class RunStatus:
    state: str  # RUNNING, COMPLETE, STOPPED, FAILED or INTERRUPTED
    text: str
    data: dict = field(default_factory=dict)

    @property
    def completed_samples(self) -> int:
        return self.data["completed_samples"]

    def to_json(self) -> dict:
        return self.data


def run_status(run_dir: os.PathLike | str) -> RunStatus:
    """What PROGRESS.txt says, recomputed from the manifest (the truth) and the lock.

    Reads only; safe while another process writes the run or after it died."""
    paths = _existing_run(run_dir)
    locked = _probe_lock(paths)  # before reading: a writer that lets go meanwhile has committed its last shard
    manifest = read_manifest(paths.root, config_file=False)
    _fs.pause_point("status-read")
    if locked and not _probe_lock(paths):
        locked, manifest = False, read_manifest(paths.root, config_file=False)
    notes = []
    try:
        snapshot = snapshot_from_json(schema.check_progress(schema.load_json(paths.progress_json)))
    except FileNotFoundError:
        snapshot = None
    except (OSError, ValueError) as e:  # SchemaError is a ValueError
        snapshot = None
        notes.append(f"{paths.progress_json.name} is unreadable ({' '.join(str(e).split())}); ignored: "
                     f"manifest.json is the record of what is done")
    try:
        _read_config_file(paths)
    except RunError as e:
        notes.append(str(e))
    shards = manifest["shards"]
    done = sum(s["count"] for s in shards)
    counts = {name: sum(s["class_counts"].get(name, 0) for s in shards) for name in manifest["classes"]}
    if manifest["status"] == "complete":
        state = "COMPLETE"
    elif locked:
        state = "RUNNING"
    elif snapshot is not None and snapshot.state in ("STOPPED", "FAILED"):
        state = snapshot.state
    else:
        state = "INTERRUPTED"  # said RUNNING, but nobody holds the lock: killed or crashed
    base = snapshot or ProgressSnapshot(
        state=state, run_dir="", total_samples=manifest["total_samples"], completed_samples=0,
        total_shards=manifest["num_shards"], completed_shards=0, checkpoint_every=manifest["checkpoint_every"],
        rate=None, elapsed_seconds=0.0, eta_seconds=None, class_counts={}, framing_redraws=0, error=None,
        host="?", pid=0, updated_at=datetime.fromtimestamp(paths.manifest.stat().st_mtime, timezone.utc),
    )
    # the manifest is the truth for what is done; progress.json adds rate, host, pid, last update
    snap = replace(
        base, state=state, run_dir=str(paths.root), completed_samples=done, completed_shards=len(shards),
        class_counts=counts, framing_redraws=sum(s.get("framing_redraws", 0) for s in shards),
        eta_seconds=base.eta_seconds if state == "RUNNING" else None,
        error=base.error if state == "FAILED" else None,
        # what the working process's makers report now (only while it holds the lock: a dead run's are stale)
        **_inflight_now(paths, {s["index"] for s in shards}, state == "RUNNING"),
    )
    text = format_progress_text(snap)
    if state == "INTERRUPTED":
        text += f"Note: no process holds this run (it was killed or crashed); finish it with: {resume_command(paths.root)}\n"
    text += "".join(f"Note: {note}\n" for note in notes)
    data = {**snapshot_to_json(snap), "locked": locked, "resume_command": None if state == "COMPLETE" else resume_command(paths.root)}
    return RunStatus(state=state, text=text, data=data)


def _inflight_now(paths: RunPaths, committed: set[int], running: bool) -> dict:
    samples, shards = inflight.totals(inflight.read(paths.tmp, skip=committed)) if running else (0, 0)
    return {"inflight_samples": samples, "inflight_shards": shards}


def _probe_lock(paths: RunPaths) -> bool:
    try:
        return _fs.is_locked(paths.lock)
    except OSError as e:
        raise RunError(f"cannot tell whether a process works on {paths.root}: cannot open {paths.lock}: "
                       f"{e.strerror or e}; make it readable for this user") from None


# ---------------------------------------------------------------- generate / resume

@dataclass(frozen=True)
class RunSummary:
    run_dir: Path
    total_samples: int
    made_shards: int
    made_samples: int
    seconds: float
    already_complete: bool = False
    repaired: str = ""  # what resume put right before working (config.json, the manifest's status)

    @property
    def rate(self) -> float:
        return self.made_samples / self.seconds if self.seconds > 0 else 0.0


def default_out(config: GenerationConfig, base: Path = Path("runs")) -> Path:
    """runs/YYYYMMDD_HHMM_n<N> in local time; -2, -3 ... if that minute is taken."""
    name = f"{datetime.now():%Y%m%d_%H%M}_n{config.n}"
    out, k = base / name, 1
    while out.exists():
        k += 1
        out = base / f"{name}-{k}"
    return out


def generate(config: GenerationConfig, out: os.PathLike | str | None = None, *, workers: int | None = None,
             scheduler: str | None = None, progress_interval: float = PROGRESS_INTERVAL, show_bar: bool = False,
             check_space: bool = True, progress_to: os.PathLike | str | None = None) -> RunSummary:
    """Start a new run in ``out`` (default runs/YYYYMMDD_HHMM_n<N>) and make all of it.

    ``progress_to``: a folder (e.g. a synced one) that gets copies of PROGRESS.txt and a
    PROGRESS.html page; the run remembers it for ``resume``."""
    from trajgen.making.preflight import check_memory, check_progress_interval

    check_progress_interval(progress_interval)
    root = Path(out) if out is not None else default_out(config)
    _check_new_run_dir(root)
    progress_to = _check_progress_to(root, progress_to)
    check_memory(config, workers, shards=scheduler is None)  # before any buffer is allocated
    from trajgen.making.executors import choose_executor

    # before the directory exists: a wrong --scheduler must leave nothing that blocks the same command;
    # local workers start now, so their imports overlap the space check below
    with closing(choose_executor(workers=workers, scheduler=scheduler, shards=config.num_shards, config=config)) as executor:
        check_target = getattr(executor, "check_target", None)  # a cluster's workers, before anything exists
        if check_target is not None:
            check_target(root)
        if check_space:
            from trajgen.making.preflight import require_free_space, warn_if_shards_are_slow

            warn_if_shards_are_slow(config, require_free_space(config, root))
        return _start(root, config, executor, progress_interval=progress_interval, show_bar=show_bar,
                      progress_to=progress_to)


def _start(root: Path, config: GenerationConfig, executor, *, progress_interval, show_bar,
           progress_to: str | None = None) -> RunSummary:
    try:
        _fs.make_dirs(root)
    except OSError as e:
        raise RunError(f"cannot create {root}: {e.strerror or e}; choose another --out") from None
    paths = RunPaths(root)
    with _locked(paths):
        _check_new_run_dir(root)  # again, now that no one else can be creating it
        from trajgen.store.versions import byte_versions

        versions = byte_versions()
        try:
            _fs.clear_dir(paths.tmp)
            _fs.make_dirs(paths.shards)
            _fs.atomic_write_bytes(paths.config, _json_bytes(_config_file(config, versions) | _progress_to_entry(progress_to)),
                                   paths.tmp)
            _fs.atomic_write_bytes(paths.manifest, manifest_bytes(new_manifest(config)), paths.tmp)
        except OSError as e:
            _best_effort(lambda: _fs.clear_dir(paths.tmp))
            then = resume_command(root) if paths.config.exists() else "the same trajgen generate command again"
            raise StorageError(f"could not create the run in {root}: {os_reason(e)}; "
                               f"{_ADVICE.get(e.errno, 'check the disk')}, then run: {then}") from None
        return _work(paths, config, new_manifest(config), executor, progress_interval=progress_interval,
                     show_bar=show_bar, run_versions=versions, progress_to=progress_to)


def resume(run_dir: os.PathLike | str, *, workers: int | None = None, scheduler: str | None = None,
           progress_interval: float = PROGRESS_INTERVAL, show_bar: bool = False,
           allow_version_change: bool = False, progress_to: os.PathLike | str | None = None) -> RunSummary:
    """Finish a run: make only the shards its manifest does not list.

    Refuses (VersionChangedError, nothing changed) when the installed versions of what
    decides the bytes differ from those config.json records, unless ``allow_version_change``:
    then the shards made now record their versions in the manifest (a mixed run).
    Keeps mirroring progress to the folder the run remembers; ``progress_to`` changes it."""
    from trajgen.making.preflight import check_memory, check_progress_interval

    check_progress_interval(progress_interval)
    paths = _existing_run(run_dir)
    progress_to = _check_progress_to(paths.root, progress_to)
    # checks that fail before anything is written, even .lock; decided again under the lock below
    manifest = read_manifest(paths.root, config_file=False) if os.path.lexists(paths.manifest) else None
    config, rebuild_config = _resume_config(paths, manifest)
    _check_run_parts(paths, manifest)
    check_memory(config, workers, shards=scheduler is None, resuming=True)
    if rebuild_config:  # the versions it recorded are lost with it: the installed ones are recorded
        from trajgen.store.versions import byte_versions

        config_file = _config_file(config, byte_versions())
    else:
        config_file = read_config_file(paths.root)
    run_versions, changed = _check_versions(paths.root, config_file, manifest, allow_version_change)
    with _locked(paths):
        # every decision is taken from what is on disk now that the run is ours: another
        # process may have committed (or finished) it since the look above
        manifest = read_manifest(paths.root, config_file=False) if os.path.lexists(paths.manifest) else None
        config, rebuild_config = _resume_config(paths, manifest)
        if rebuild_config:  # the versions it recorded are lost with it: the installed ones are recorded
            from trajgen.store.versions import byte_versions

            config_file = _config_file(config, byte_versions())
        else:
            config_file = read_config_file(paths.root)
        run_versions, changed = _check_versions(paths.root, config_file, manifest, allow_version_change)
        if manifest is not None:
            if GenerationConfig.from_dict(manifest["config"]) != config:
                raise RunError(f"{paths.manifest} and {paths.config} describe different runs; the run is damaged")
        else:  # crashed between writing config.json and the first manifest: nothing was committed
            manifest = new_manifest(config)
        if manifest["status"] != "complete" and manifest["format"] != RUN_FORMAT:
            raise RunError(f"{paths.root} was made by an older trajgen (run format {manifest['format']}), whose "
                           f"samples this version makes differently; finish it with the trajgen version named in "
                           f"{paths.config}, or start a new run")
        if manifest["status"] != "complete":
            _check_codec(paths, manifest)
        repaired = _repair_run(paths, config, manifest, config_file if rebuild_config else None)
        if manifest["status"] == "complete":
            try:
                _repair_progress(paths, manifest)
                _fs.append_line(paths.log, _log_line("resume: already complete, nothing to do"))
            except OSError as e:
                raise StorageError(f"{paths.root} is complete, but its log or progress files could not be written: "
                                   f"{_os_reason(e)}; {_ADVICE.get(e.errno, 'check the disk')}") from None
            return RunSummary(paths.root, config.n, 0, 0, 0.0, already_complete=True, repaired=repaired)
        from trajgen.making.executors import choose_executor

        if changed:  # _work reports a log that cannot be written
            note = log_line(f"resume --allow-version-change: versions differ (run → installed): {', '.join(changed)}; "
                             f"the shards made now record theirs")
            _best_effort(lambda: _fs.append_line(paths.log, note))
        progress_to = _remember_progress_to(paths, progress_to)
        left = config.num_shards - len(manifest["shards"])
        with closing(choose_executor(workers=workers, scheduler=scheduler, shards=left, config=config)) as executor:
            return _work(paths, config, manifest, executor, progress_interval=progress_interval, show_bar=show_bar,
                         run_versions=run_versions, progress_to=progress_to)


def _check_codec(paths: RunPaths, manifest: dict) -> None:
    """RunError unless this trajgen can make shards with the codec the run records (its shards keep it)."""
    try:
        check_codec(manifest.get("codec"))
    except UnknownCodecError as e:
        raise RunError(f"{paths.root} cannot be finished here: {e}; finish it with the trajgen version named in "
                       f"{paths.config}") from None


def _repair_progress(paths: RunPaths, manifest: dict) -> None:
    """Make a complete run's PROGRESS.txt and progress.json say COMPLETE: a failed last write,
    or a stop right after the last commit, can leave FAILED, STOPPED or RUNNING behind."""
    try:
        said = snapshot_from_json(json.loads(paths.progress_json.read_text(encoding="utf-8")))
        if said.state == "COMPLETE" and said.completed_shards == manifest["num_shards"] and \
                (paths.root / "PROGRESS.txt").read_text(encoding="utf-8").startswith("trajgen COMPLETE"):
            return
    except (OSError, ValueError, KeyError, TypeError):
        pass
    # run_status recomputes the snapshot from the manifest (the truth), keeping the recorded rate
    snapshot = snapshot_from_json(run_status(paths.root).data)
    _fs.make_dirs(paths.tmp)
    write_progress(paths.root, replace(snapshot, host=socket.gethostname(), pid=os.getpid(),
                                       updated_at=datetime.now(timezone.utc)), paths.tmp)


def _resume_config(paths: RunPaths, manifest: dict | None) -> tuple[GenerationConfig, bool]:
    """The run's config, and whether config.json must be rebuilt from the (intact) manifest."""
    config, damage = _config_or_damage(paths)
    if damage is None:
        return config, False
    if manifest is None or damage.endswith("is a directory"):
        _read_config_file(paths)  # raises, with the advice that fits
    return GenerationConfig.from_dict(manifest["config"]), True


def _committed_text(entries: list[dict]) -> str:
    ks = sorted(e["index"] for e in entries)
    return f"shard {ks[0]}" if len(ks) == 1 else f"shards {ks[0]}–{ks[-1]}" if ks == list(range(ks[0], ks[-1] + 1)) \
        else "shards " + ", ".join(map(str, ks))


def _check_run_parts(paths: RunPaths, manifest: dict | None) -> None:
    """.tmp/, shards/ and .lock are what they must be, before resume changes anything."""
    again = f"then run `{resume_command(paths.root)}`"
    if os.path.lexists(paths.tmp) and not paths.tmp.is_dir():
        raise RunError(f"{paths.tmp} is not a directory (the run keeps only in-flight files there); remove it, {again}")
    if os.path.lexists(paths.lock) and not paths.lock.is_file():
        raise RunError(f"{paths.lock} is {'a directory' if paths.lock.is_dir() else 'not a regular file'}, not the run's "
                       f"lock file; remove it ({'rmdir' if paths.lock.is_dir() else 'rm'} {shlex.quote(str(paths.lock))}), {again}")
    if paths.shards.is_dir():
        return
    what = "is missing" if not os.path.lexists(paths.shards) else "is not a directory"
    entries = manifest["shards"] if manifest is not None else []
    if entries:
        raise RunError(f"{paths.shards}/ {what}: the {len(entries)} committed {_committed_text(entries)} listed in "
                       f"manifest.json are gone; restore shards/ from a backup, or move manifest.json aside and run "
                       f"`{resume_command(paths.root)}` to make the whole run again")
    if os.path.lexists(paths.shards):
        raise RunError(f"{paths.shards} is not a directory (it holds the run's shards); move it aside, {again}")


def _repair_run(paths: RunPaths, config: GenerationConfig, manifest: dict, rebuilt_config: dict | None) -> str:
    """Under the lock: write config.json rebuilt from the manifest, recreate an empty shards/, and write
    back a manifest status that disagreed with its entries. Returns what was done, for the user."""
    done = []
    with _writing("repair the run's files"):
        _fs.make_dirs(paths.tmp)
        if rebuilt_config is not None:
            _fs.atomic_write_bytes(paths.config, _json_bytes(rebuilt_config), paths.tmp)
            done.append("rebuilt config.json from manifest.json (recording the installed versions: the ones "
                        "it held are lost)")
        _fs.make_dirs(paths.shards)
        if os.path.lexists(paths.manifest):
            recorded = schema.load_json(paths.manifest)["status"]
            if recorded != manifest["status"]:
                _fs.atomic_write_bytes(paths.manifest, manifest_bytes(manifest), paths.tmp)
                listed = len(manifest["shards"])
                done.append(f"manifest.json said status {recorded!r} with {listed} of {config.num_shards} shards "
                            f"committed; it now says {manifest['status']!r}")
        for line in done:
            _fs.append_line(paths.log, _log_line(f"resume: {line}"))
    return "; ".join(done)


def _config_file(config: GenerationConfig, versions: dict[str, str]) -> dict:
    from trajgen import __version__

    return {"trajgen_version": __version__, "content_fingerprint": config.content_fingerprint(), "config": config.to_dict(),
            "versions": versions}


def _check_versions(root: Path, config_file: dict, manifest: dict | None,
                    allow_change: bool) -> tuple[dict[str, str], list[str]]:
    """The versions the run records and how the installed ones differ ('numpy 1.26.4 → 2.0.0');
    VersionChangedError if they differ, more shards are due and no change was allowed."""
    from trajgen.store.versions import byte_versions, differences, install_advice, recorded_versions

    recorded, running = recorded_versions(config_file), byte_versions()
    changed = differences(recorded, running)
    if not changed or allow_change or (manifest is not None and manifest.get("status") == "complete"):
        return recorded, changed
    raise VersionChangedError(
        f"{root} was made with other versions of what decides its bytes (run → installed): {', '.join(changed)}; "
        f"install the run's versions ({install_advice(recorded, running)}) and resume, or go on with these, "
        f"marking the run as mixed: {resume_command(root)} --allow-version-change")


def _progress_to_entry(progress_to: str | None) -> dict:
    return {} if progress_to is None else {"progress_to": progress_to}


def _remember_progress_to(paths: RunPaths, progress_to: str | None) -> str | None:
    """The run's --progress-to folder: ``progress_to`` if given (written into config.json
    atomically when it changes), else the one config.json remembers."""
    doc = read_config_file(paths.root)
    remembered = doc.get("progress_to") if isinstance(doc.get("progress_to"), str) else None
    if progress_to is None or progress_to == remembered:
        return remembered
    try:
        _fs.make_dirs(paths.tmp)
        _fs.atomic_write_bytes(paths.config, _json_bytes(doc | _progress_to_entry(progress_to)), paths.tmp)
    except OSError as e:
        raise StorageError(f"could not record --progress-to in {paths.config}: {_os_reason(e)}; "
                           f"{_ADVICE.get(e.errno, 'check the disk')}, then run the same command again") from None
    return progress_to


@contextmanager
def _locked(paths: RunPaths) -> Iterator[None]:
    holder = f"pid {os.getpid()} on {socket.gethostname()}"
    _fs.pause_point("lock")
    try:
        fd = _fs.try_lock(paths.lock, holder)
    except OSError as e:
        raise RunError(f"cannot lock {paths.lock}: {e.strerror or e}; the run directory must be writable") from None
    if fd is None:
        who = _live_holder(paths)
        raise RunLockedError(f"{paths.root} is in use by {who}; wait for it to finish (trajgen status "
                             f"{shlex.quote(str(paths.root))}) or stop that process first")
    try:
        yield
    finally:
        os.close(fd)


def _work(paths: RunPaths, config: GenerationConfig, manifest: dict, executor, *, progress_interval,
          show_bar, run_versions: dict[str, str], progress_to: str | None = None) -> RunSummary:
    """The one generation loop: make the missing shards with an executor, commit each as it arrives."""
    committed = {s["index"] for s in manifest["shards"]}
    todo = [k for k in range(config.num_shards) if k not in committed]
    try:
        _fs.clear_dir(paths.tmp)
        _fs.make_dirs(paths.shards)
        _remove_unlisted_shards(paths, committed)
    except OSError as e:
        where = f" ({e.filename})" if e.filename else ""
        raise StorageError(f"could not clear the run's unfinished files{where}: {_os_reason(e)}; "
                           f"{_ADVICE.get(e.errno, 'fix the cause')}, then run: {resume_command(paths.root)}") from None
    done_counts = {name: sum(s["class_counts"].get(name, 0) for s in manifest["shards"]) for name in config.classes}
    reporter = ProgressReporter(
        paths.root, paths.root, paths.tmp, total_samples=config.n, total_shards=config.num_shards,
        checkpoint_every=config.checkpoint_every, class_counts=done_counts,
        completed_samples=sum(s["count"] for s in manifest["shards"]), completed_shards=len(committed),
        framing_redraws=sum(s.get("framing_redraws", 0) for s in manifest["shards"]),
        interval=progress_interval, bar=show_bar, mirror_to=progress_to,
        inflight=functools.partial(inflight.read, paths.tmp, skip=committed),  # the shards being made, and how far
    )
    started = time.monotonic()
    made_samples = 0
    lines: dict[int, str] = {}  # serialized manifest entries, see manifest_bytes
    signals = _SignalGuard()
    # the handlers stay ours until the cleanup after a stop or failure is done, and what arrives
    # during that cleanup is dropped (the command is stopping already): a second Ctrl-C cannot cut it short
    with signals:
        try:
            with _writing("write the run's log or progress files"):
                _fs.append_line(paths.log, log_line(
                    f"start pid={os.getpid()} host={socket.gethostname()} executor={executor.describe()} "
                    f"shards_to_make={len(todo)} of {config.num_shards}"))
                reporter.start()
            from trajgen.store.versions import byte_versions, differences

            # every worker makes its shards with the versions this process runs (the run's, unless a change was allowed)
            results = executor.run(functools.partial(produce_shard, versions=byte_versions(), codec=manifest["codec"]), config,
                                   str(paths.root), todo)
            with closing(results):
                for result in results:  # an executor's own failures pass through as they are
                    with signals.deferred(), _writing(f"commit shard {result.index} ({result.file})"):
                        entry = result.manifest_entry()
                        if result.versions is not None and differences(run_versions, result.versions):
                            entry["versions"] = result.versions  # a mixed run: verify names these shards
                        manifest["shards"].append(entry)  # a commit is never cut in half by Ctrl-C
                        committed.add(result.index)
                        manifest["shards"].sort(key=lambda s: s["index"])
                        if len(manifest["shards"]) == config.num_shards:
                            manifest["status"] = "complete"
                        _fs.atomic_write_bytes(paths.manifest, manifest_bytes(manifest, lines), paths.tmp)
                        _fs.append_line(paths.log, log_line(
                            f"committed shard {result.index} ({result.count} samples, sha256 {result.sha256[:16]})"))
                        made_samples += result.count
                        reporter.commit(result.count, result.class_counts, result.redraws, shard=paths.shard(result.index))
                    _fs.pause_point("committed")
            seconds = time.monotonic() - started
            with _writing("write the run's log or progress files"):
                _fs.append_line(paths.log, log_line(f"complete: made {made_samples} samples in {seconds:.1f}s"))
                reporter.finish("COMPLETE")
        except Interrupted as e:
            with signals.held():
                _fs.pause_point("interrupt-cleanup")
                reporter.stop()  # before .tmp/ is cleared: the heartbeat writes its temp files there
                _best_effort(lambda: _fs.clear_dir(paths.tmp))
                _best_effort(lambda: _fs.append_line(paths.log, _log_line(f"stop: {e}")))
                _best_effort(lambda: reporter.finish(_final_state(manifest, "STOPPED")))
            then = "the run is complete" if manifest["status"] == "complete" else \
                f"the run is resumable: {resume_command(paths.root)}"
            raise Interrupted(e.signum, f"{e}; {then}") from None
        except StorageError as e:
            with signals.held():
                reporter.stop()
                advice = _ADVICE.get(getattr(e, "errno_code", None), "fix the cause")
                message = f"{e}; {advice}, then run: {resume_command(paths.root)}"
                _best_effort(lambda: _fs.clear_dir(paths.tmp))
                _best_effort(lambda: _fs.append_line(paths.log, _log_line(f"error: {message}")))
                _best_effort(lambda: _finish_failed(reporter, manifest, str(e)))
            raise StorageError(message) from None
        except BaseException as e:
            with signals.held():
                reporter.stop()
                reason = " ".join(str(e).split()) or type(e).__name__
                _best_effort(lambda: _fs.append_line(paths.log, _log_line(f"error: {reason}")))
                _best_effort(lambda: _finish_failed(reporter, manifest, reason))
            raise
        finally:
            reporter.stop()  # whatever happened, no heartbeat outlives this call (or the lock)
    return RunSummary(paths.root, config.n, len(todo), made_samples, seconds)


def _final_state(manifest: dict, state: str) -> str:
    """The state PROGRESS.txt is left in: a run whose manifest is complete is COMPLETE, whatever stopped the command."""
    return "COMPLETE" if manifest["status"] == "complete" else state


def _finish_failed(reporter: ProgressReporter, manifest: dict, error: str) -> None:
    state = _final_state(manifest, "FAILED")
    reporter.finish(state, error=error if state == "FAILED" else None)


@contextmanager
def _writing(what: str) -> Iterator[None]:
    """Turn an OSError from this process's own run files into a ShardWriteError saying what failed."""
    try:
        yield
    except OSError as e:
        raise ShardWriteError(f"could not {what}: {os_reason(e)}", e.errno) from None


def _best_effort(action) -> None:
    try:
        action()
    except Exception:
        pass


def _remove_unlisted_shards(paths: RunPaths, committed: set[int]) -> None:
    """A shard file the manifest does not list is not done (a crash between rename and commit)."""
    listed = {paths.shard(k).name for k in committed}
    for p in paths.shards.glob("shard-*.npz"):
        if p.name not in listed:
            _fs.remove_file(p)


class _SignalGuard:
    """SIGINT/SIGTERM raise Interrupted at once, except inside ``deferred()`` (a commit),
    where they are held until the commit is whole."""

    def __init__(self) -> None:
        self._depth = 0
        self._pending: int | None = None
        self._previous: dict = {}

    def _handle(self, signum, frame) -> None:
        if self._depth:
            self._pending = signum
            return
        raise Interrupted(signum)

    def __enter__(self):
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False

    @contextmanager
    def held(self):
        """For a cleanup: signals that arrive inside are dropped (the command is stopping already)."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if not self._depth:
                self._pending = None

    @contextmanager
    def deferred(self):
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if self._pending is not None and not self._depth:
            signum, self._pending = self._pending, None
            raise Interrupted(signum)
