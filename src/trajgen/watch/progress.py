"""PROGRESS.txt and progress.json: the snapshot of a run's progress, its text and JSON, and writing them."""

import json
import os
import shlex
import sys
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta, timezone

from trajgen.store import _fs
from trajgen.store.reserve import is_disk_full

# INTERRUPTED is what `status` reports for a RUNNING run that no process holds any more.
STATES = ("RUNNING", "COMPLETE", "STOPPED", "FAILED", "INTERRUPTED")
PROGRESS_FORMAT = "trajgen-progress/1"


@dataclass(frozen=True)
class ProgressSnapshot:
    state: str
    run_dir: str
    total_samples: int
    completed_samples: int
    total_shards: int
    completed_shards: int
    checkpoint_every: int
    rate: float | None
    elapsed_seconds: float
    eta_seconds: float | None
    class_counts: dict
    framing_redraws: int
    error: str | None
    host: str
    pid: int
    updated_at: datetime
    interval_seconds: float | None = None  # the heartbeat: the next update is due this long after updated_at
    # samples made in shards not yet committed (see inflight.py), and those shards; never in completed_*
    inflight_samples: int = 0
    inflight_shards: int = 0
    # samples the working process committed itself (not those of earlier processes): with elapsed_seconds,
    # what `status` recomputes the rate from later
    session_samples: int = 0
    occlusion_redraws: int = 0  # with --occluders: occluders drawn again because they hid the dot too long

    def __post_init__(self):
        if self.state not in STATES:
            raise ValueError(f"progress state must be one of {', '.join(STATES)} (got {self.state!r})")


def _tenths(done, total):
    """Percent in tenths, floored so 100.0 appears only when every sample is done."""
    if total <= 0:
        return 1000
    return min(1000, done * 1000 // total)


def percent_text(snapshot):
    t = _tenths(snapshot.completed_samples, snapshot.total_samples)
    return f"{t // 10}.{t % 10}"


def _utc(dt):
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def format_duration(seconds):
    """H:MM:SS."""
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


MIN_RATE_SECONDS = 2.0  # a rate from a shorter window says more about start-up than about speed


def rate_of(samples, seconds):
    """Samples/s, or None while it would mean little: under MIN_RATE_SECONDS, or nothing made yet."""
    return samples / seconds if samples > 0 and seconds >= MIN_RATE_SECONDS else None


def rate_text(rate):
    if rate is None:
        return "estimating"
    return f"{rate:,.0f} samples/s" if rate >= 10 else f"{rate:.1f} samples/s"


def eta_text(snapshot):
    if snapshot.state == "COMPLETE":
        return "done"
    if snapshot.state != "RUNNING":
        return "not running"
    if snapshot.eta_seconds is None:
        return "estimating"
    eta = max(0, round(snapshot.eta_seconds))
    now = _utc(snapshot.updated_at)
    at = now + timedelta(seconds=eta)
    when = f"{at:%H:%M:%S}" if at.date() == now.date() else f"{at:%Y-%m-%d %H:%M:%S}"
    return f"{format_duration(eta)} (about {when} UTC)"


def _next_update_text(snapshot):
    """When the next rewrite is due (rounded up to the second), so a reader knows when to worry."""
    due = _utc(snapshot.updated_at) + timedelta(seconds=snapshot.interval_seconds)
    if due.microsecond:
        due = due.replace(microsecond=0) + timedelta(seconds=1)
    return f"Next update: by {due:%H:%M:%S} UTC"


def format_progress_text(snapshot):
    """The PROGRESS.txt text: the state and percentage on line 1, one fact per line."""
    s = snapshot
    pct = percent_text(s)
    first = f"trajgen {s.state} {pct}%  {s.run_dir}"
    if s.state == "FAILED":
        first += ": " + " ".join(str(s.error or "unknown error").split())
    classes = " · ".join(f"{name} {count:,}" for name, count in s.class_counts.items()) or "-"
    lines = [
        first,
        f"Completed: {s.completed_samples:,} / {s.total_samples:,} ({pct}%)",
        *_inflight_lines(s),
        f"Shards: {s.completed_shards:,} / {s.total_shards:,} (checkpoint every {s.checkpoint_every:,})",
        f"Rate: {rate_text(s.rate)}   Elapsed: {format_duration(s.elapsed_seconds)}",
        f"ETA: {eta_text(s)}",
        f"Classes: {classes}",
        f"Framing redraws: {s.framing_redraws:,}"
        + (f" · occlusion redraws: {s.occlusion_redraws:,}" if s.occlusion_redraws else ""),
        f"Last update: {_utc(s.updated_at):%Y-%m-%d %H:%M:%S} UTC (host {s.host}, pid {s.pid})",
    ]
    if s.state == "RUNNING" and s.interval_seconds is not None:
        lines.append(_next_update_text(s))
    if s.state != "COMPLETE":
        lines.append(f"Resume: trajgen resume {shlex.quote(s.run_dir)}")
    return "\n".join(lines) + "\n"


def showing_inflight(snapshot):
    return snapshot.state == "RUNNING" and snapshot.inflight_samples > 0


def _inflight_lines(snapshot):
    if not showing_inflight(snapshot):
        return []
    shards = "shard" if snapshot.inflight_shards == 1 else "shards"
    return [
        f"In flight: {snapshot.inflight_samples:,} samples in {snapshot.inflight_shards:,} {shards} (not yet committed)"
    ]


def snapshot_to_json(snapshot):
    """progress.json content: every snapshot field plus format and percent."""
    data = {"format": PROGRESS_FORMAT, **asdict(snapshot)}
    data["class_counts"] = dict(snapshot.class_counts)
    data["updated_at"] = _utc(snapshot.updated_at).isoformat()
    data["percent"] = _tenths(snapshot.completed_samples, snapshot.total_samples) / 10
    return data


def snapshot_from_json(data):
    names = {f.name for f in fields(ProgressSnapshot)}
    values = {k: v for k, v in data.items() if k in names}
    values["updated_at"] = datetime.fromisoformat(values["updated_at"])
    values["class_counts"] = dict(values["class_counts"])
    return ProgressSnapshot(**values)


def write_progress(run_dir, snapshot, tmp_dir, reserve=None):
    """Atomically replace RUN_DIR/PROGRESS.txt and RUN_DIR/progress.json. ``reserve`` (a store.reserve.Reserve):
    on a full disk, write them into the space the run kept for them instead (for the last words only)."""
    text = format_progress_text(snapshot).encode("utf-8")
    body = (json.dumps(snapshot_to_json(snapshot), indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    for name, data in (("PROGRESS.txt", text), ("progress.json", body)):
        path = os.path.join(run_dir, name)
        try:
            _fs.atomic_write_bytes(path, data, tmp_dir)
        except OSError as e:
            if reserve is None or not is_disk_full(e.errno):
                raise
            reserve.write(path, data)


def warn(log_path, message, kind="warning"):
    """Report what does not stop the run: ``warning: ...`` (or ``note: ...``) in run.log (if given), and
    ``Warning: ...`` on stderr (above the progress bar, if one is drawn). Never raises."""
    from tqdm import tqdm

    try:
        if log_path is not None:
            _fs.append_line(log_path, f"{datetime.now(timezone.utc):%Y-%m-%dT%H:%M:%SZ} {kind}: {message}")
    except OSError:
        pass
    try:
        tqdm.write(f"{kind.capitalize()}: {message}", file=sys.stderr)
    except (OSError, ValueError):  # stderr closed
        pass
