"""`trajgen status`: what PROGRESS.txt says, recomputed from the manifest (the truth) and the lock."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

from trajgen.making import inflight
from trajgen.making.lock import probe_lock
from trajgen.store import _fs, schema
from trajgen.store.lease import live_holder as lease_holder
from trajgen.store.manifest import checked_config, existing_run, read_manifest
from trajgen.store.objects import is_url
from trajgen.store.run_copy import RunCopy
from trajgen.store.rundir import RunError, RunPaths, live_holder, resume_command
from trajgen.watch.progress import (
    ProgressSnapshot,
    format_progress_text,
    rate_of,
    snapshot_from_json,
    snapshot_to_json,
    write_progress,
)


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


def run_status(run_dir: os.PathLike | str, storage_options: dict | None = None) -> RunStatus:
    """What PROGRESS.txt says, recomputed from the manifest (the truth) and the lock.

    Reads only; safe while another process writes the run or after it died. ``run_dir`` may be a URL
    (``s3://bucket/prefix``): the lease object then says who works on the run."""
    if is_url(run_dir):
        return _bucket_status(RunCopy.of(str(run_dir), "status", storage_options))
    paths = existing_run(run_dir)
    locked = probe_lock(paths)  # before reading: a writer that lets go meanwhile has committed its last shard
    manifest = read_manifest(paths.root, config_file=False)
    _fs.pause_point("status-read")
    if locked and not probe_lock(paths):
        locked, manifest = False, read_manifest(paths.root, config_file=False)
    return _status(paths, manifest, locked, paths.root, live_holder(paths) if locked else None)


def _bucket_status(copy: RunCopy) -> RunStatus:
    bucket = copy.bucket
    holder = lease_holder(bucket)  # before reading, as with a lock
    copy.pull_records()
    try:
        existing_run(copy.root)
        manifest = read_manifest(copy.root, config_file=False)
    except RunError as e:
        message = copy.told(str(e))
        if "is not a trajgen run" in message:
            message = f"{bucket.url} is not a trajgen run (no manifest.json or config.json)"
        raise RunError(message) from None
    return _status(copy.paths, manifest, holder is not None, bucket.url, holder)


def _status(paths: RunPaths, manifest: dict, locked: bool, shown, holder: str | None) -> RunStatus:
    notes = []
    try:
        snapshot = snapshot_from_json(schema.check_progress(schema.load_json(paths.progress_json)))
    except FileNotFoundError:
        snapshot = None
    except (OSError, ValueError) as e:  # SchemaError is a ValueError
        snapshot = None
        notes.append(
            f"{paths.progress_json.name} is unreadable ({' '.join(str(e).split())}); ignored: "
            f"manifest.json is the record of what is done"
        )
    try:
        checked_config(paths)
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
        state=state,
        run_dir="",
        total_samples=manifest["total_samples"],
        completed_samples=0,
        total_shards=manifest["num_shards"],
        completed_shards=0,
        checkpoint_every=manifest["checkpoint_every"],
        rate=None,
        elapsed_seconds=0.0,
        eta_seconds=None,
        class_counts={},
        framing_redraws=0,
        error=None,
        host="?",
        pid=0,
        updated_at=datetime.fromtimestamp(paths.manifest.stat().st_mtime, timezone.utc),
    )
    # the manifest is the truth for what is done; progress.json adds rate, host, pid, last update
    snap = replace(
        base,
        state=state,
        run_dir=str(shown),
        completed_samples=done,
        completed_shards=len(shards),
        class_counts=counts,
        framing_redraws=sum(s.get("framing_redraws", 0) for s in shards),
        occlusion_redraws=sum(s.get("occlusion_redraws", 0) for s in shards),
        eta_seconds=base.eta_seconds if state == "RUNNING" else None,
        error=base.error if state == "FAILED" else None,
        # what the working process's makers report now (only while it holds the lock: a dead run's are stale)
        **_inflight_now(paths, {s["index"] for s in shards}, state == "RUNNING"),
    )
    if state == "RUNNING" and snapshot is not None:
        if holder == f"pid {snapshot.pid} on {snapshot.host}":  # written by the process working now
            snap = _recomputed_pace(snap, snapshot)
        else:  # the working process has not written its progress yet: the file is an earlier one's
            snap = replace(snap, rate=None, eta_seconds=None)
    text = format_progress_text(snap)
    if state == "INTERRUPTED":
        text += f"Note: no process holds this run (it was killed or crashed); finish it with: {resume_command(shown)}\n"
    text += "".join(f"Note: {note}\n" for note in notes)
    data = {
        **snapshot_to_json(snap),
        "locked": locked,
        "resume_command": None if state == "COMPLETE" else resume_command(shown),
        **({"holder": holder} if holder is not None else {}),
    }
    return RunStatus(state=state, text=text, data=data)


def _recomputed_pace(now: ProgressSnapshot, written: ProgressSnapshot) -> ProgressSnapshot:
    """Elapsed, rate and ETA as of now, from what the working process had committed when it last wrote
    progress.json, what the manifest lists now and what is in flight: not the figures of that write."""
    updated = written.updated_at if written.updated_at.tzinfo else written.updated_at.replace(tzinfo=timezone.utc)
    elapsed = written.elapsed_seconds + max(0.0, (datetime.now(timezone.utc) - updated).total_seconds())
    at_start = written.completed_samples - written.session_samples  # committed before this process began
    rate = rate_of(now.completed_samples - at_start + now.inflight_samples, elapsed)
    remaining = max(0, now.total_samples - now.completed_samples - now.inflight_samples)
    eta = None if rate is None else remaining / rate
    return replace(now, elapsed_seconds=elapsed, rate=rate, eta_seconds=eta)


def _inflight_now(paths: RunPaths, committed: set[int], running: bool) -> dict:
    samples, shards = inflight.totals(inflight.read(paths.tmp, skip=committed)) if running else (0, 0)
    return {"inflight_samples": samples, "inflight_shards": shards}


def repair_progress(paths: RunPaths, manifest: dict) -> None:
    """Make a complete run's PROGRESS.txt and progress.json say COMPLETE: a failed last write,
    or a stop right after the last commit, can leave FAILED, STOPPED or RUNNING behind."""
    try:
        said = snapshot_from_json(json.loads(paths.progress_json.read_text(encoding="utf-8")))
        if (
            said.state == "COMPLETE"
            and said.completed_shards == manifest["num_shards"]
            and (paths.root / "PROGRESS.txt").read_text(encoding="utf-8").startswith("trajgen COMPLETE")
        ):
            return
    except (OSError, ValueError, KeyError, TypeError):
        pass
    # run_status recomputes the snapshot from the manifest (the truth), keeping the recorded rate
    snapshot = snapshot_from_json(run_status(paths.root).data)
    _fs.make_dirs(paths.tmp)
    write_progress(
        paths.root,
        replace(snapshot, host=socket.gethostname(), pid=os.getpid(), updated_at=datetime.now(timezone.utc)),
        paths.tmp,
    )
