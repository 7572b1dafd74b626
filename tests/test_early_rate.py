"""Early in a run with large shards: the in-flight count follows the shard's time, not only its
encoding (so the first rate is not a handful of samples over many seconds), PROGRESS.txt's
Elapsed moves while the rate is still being estimated, and `status` recomputes rate and elapsed."""

import json
import os
import socket
import time
from datetime import datetime, timedelta, timezone

from trajgen.making import inflight, run_status
from trajgen.store import lock_file
from trajgen.watch.reporter import ProgressReporter


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_in_flight_samples_follow_the_shards_time_making_included(tmp_path):
    clock = Clock()
    progress = inflight.ShardProgress(tmp_path, 3, 10_000, every=0, clock=clock)
    clock.now += 1.5  # 1.5 s making the samples, nothing encoded yet
    progress.encoded(0, 1_000)
    clock.now += 0.5  # then 5% of the bytes in 0.5 s: encoding takes 10 s, the shard 11.5 s
    progress.encoded(50, 1_000)
    made, n = inflight.read(tmp_path)[3]
    assert n == 10_000 and abs(made - 10_000 * 2.0 / 11.5) <= 20  # was 500: the encoded share only


def test_progress_txt_elapsed_moves_while_the_rate_is_estimated(tmp_path, monkeypatch):
    monkeypatch.setattr(ProgressReporter, "WATCH_SECONDS", 0.02)
    monkeypatch.setattr(ProgressReporter, "ESTIMATING_REWRITE_SECONDS", 0.05)
    reporter = ProgressReporter(
        tmp_path,
        tmp_path,
        tmp_path,
        total_samples=40_000,
        total_shards=4,
        checkpoint_every=10_000,
        class_counts={},
        completed_samples=0,
        completed_shards=0,
        framing_redraws=0,
        interval=3600,
        bar=False,
        inflight=lambda: {},
    )
    reporter._meter._start -= 65  # the run started a minute ago
    reporter.start()
    deadline = time.monotonic() + 10
    text = ""
    while time.monotonic() < deadline and "Elapsed: 0:01:0" not in text:
        time.sleep(0.02)
        text = (tmp_path / "PROGRESS.txt").read_text()
    reporter.finish("STOPPED")
    assert "Elapsed: 0:01:0" in text and "Rate: estimating" in text


def test_status_recomputes_rate_elapsed_and_eta_from_what_is_committed_and_in_flight(tmp_path):
    from trajgen import GenerationConfig
    from trajgen.making import generate

    run = tmp_path / "run"
    generate(GenerationConfig(n=40, checkpoint_every=10, seed=2, size=16, frames=4), run, workers=1)
    manifest = json.loads((run / "manifest.json").read_text())
    from trajgen.store.manifest import manifest_bytes

    manifest["shards"], manifest["status"] = manifest["shards"][:3], "running"  # 30 of 40 committed now
    (run / "manifest.json").write_bytes(manifest_bytes(manifest))
    progress = json.loads((run / "progress.json").read_text())
    then = datetime.now(timezone.utc) - timedelta(seconds=10)
    # written 10 s ago, 11 s into the run, when this process had committed 10 (and its first shard's 10
    # were all it had made): 7.6 samples/s then; now 30 committed and 5 in flight over 21 s
    progress.update(
        state="RUNNING",
        completed_samples=10,
        completed_shards=1,
        rate=7.6,
        elapsed_seconds=11.0,
        eta_seconds=100.0,
        session_samples=10,
        updated_at=then.isoformat(),
        pid=os.getpid(),  # written by the process that holds the lock (below)
        host=socket.gethostname(),
    )
    (run / "progress.json").write_text(json.dumps(progress))
    (run / ".tmp").mkdir(exist_ok=True)
    (run / ".tmp" / "inflight-00003").write_text("5 10\n")
    fd = lock_file.try_lock(run / ".lock", f"pid {os.getpid()} on {socket.gethostname()}")
    try:
        status = run_status(run)
    finally:
        os.close(fd)
    data = status.to_json()
    assert data["state"] == "RUNNING" and data["inflight_samples"] == 5
    assert abs(data["elapsed_seconds"] - 21.0) < 1.0
    assert abs(data["rate"] - 35 / 21) < 0.1  # 30 committed + 5 in flight by this process, over 21 s
    assert abs(data["eta_seconds"] - (40 - 30 - 5) / (35 / 21)) < 0.5


def test_status_keeps_to_what_it_knows_when_the_progress_file_is_another_process_s(tmp_path):
    """A resume that holds the lock but has not written progress yet: the file is the last session's
    (another pid, maybe a day old, maybe without a time zone); status says estimating, no traceback."""
    from trajgen import GenerationConfig
    from trajgen.making import generate
    from trajgen.store.manifest import manifest_bytes

    run = tmp_path / "run"
    generate(GenerationConfig(n=40, checkpoint_every=10, seed=2, size=16, frames=4), run, workers=1)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["shards"], manifest["status"] = manifest["shards"][:3], "running"
    (run / "manifest.json").write_bytes(manifest_bytes(manifest))
    progress = json.loads((run / "progress.json").read_text())
    then = (datetime.now() - timedelta(days=1)).isoformat()  # naive: no time zone
    progress.update(
        state="STOPPED",
        completed_samples=30,
        completed_shards=3,
        rate=9.0,
        elapsed_seconds=100.0,
        pid=1,
        host="elsewhere",
        updated_at=then,
    )
    (run / "progress.json").write_text(json.dumps(progress))
    fd = lock_file.try_lock(run / ".lock", f"pid {os.getpid()} on this-host")
    try:
        data = run_status(run).to_json()
    finally:
        os.close(fd)
    assert data["state"] == "RUNNING" and data["rate"] is None and data["eta_seconds"] is None
