"""Samples of shards still being made ("in flight"): shown before they are committed, marked
as such, with every executor; gone after a crash or a resume. And a replaced worker is logged."""

import json
import os
import re
import signal
import time
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from runtools import assert_same_run, cli_run_dir, kill, run_cli, start_cli
from trajgen.watch import progress, reporter
from trajgen.watch.progress import ProgressSnapshot
from trajgen.watch.reporter import ProgressReporter, RateMeter

# two shards of 200 default-size samples: each shard's videos are deflated in 3 chunks, so a
# worker reports part of a shard before it is done
ARGS = ("--n", 400, "--checkpoint-every", 200, "--seed", 3, "--quiet", "--progress-interval", 0.05)
# PROGRESS.txt is due only at commits and hourly here: the first estimate is written as soon as there is one
HOURLY = tuple(a if a != 0.05 else 3600 for a in ARGS)
IN_FLIGHT = re.compile(r"^In flight: ([\d,]+) samples in (\d+) shards? \(not yet committed\)$", re.M)


def held(tmp_path, **extra):
    """Workers report every step and stop after their first report until released."""
    return {
        "TRAJGEN_PAUSE": "shard-progress",
        "TRAJGEN_PAUSE_DIR": str(tmp_path),
        "TRAJGEN_INFLIGHT_SECONDS": "0",
        **extra,
    }


def wait_until(what, proc=None, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = what()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the run ended ({proc.returncode}): {proc.stderr.read()}")
        time.sleep(0.01)
    raise TimeoutError(what)


def status_json(out):
    result = run_cli("status", out, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def progress_text(out):
    try:
        return (out / "PROGRESS.txt").read_text()
    except OSError:
        return ""


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return cli_run_dir(tmp_path_factory, "inflight", *ARGS, "--workers", 1)


# ---------------------------------------------------------------- the text, the numbers


def snapshot(**changes):
    base = ProgressSnapshot(
        state="RUNNING",
        run_dir="runs/r",
        total_samples=40_000,
        completed_samples=10_000,
        total_shards=4,
        completed_shards=1,
        checkpoint_every=10_000,
        rate=None,
        elapsed_seconds=3.0,
        eta_seconds=None,
        class_counts={"linear": 5000, "circular": 5000},
        framing_redraws=0,
        error=None,
        host="box",
        pid=7,
        updated_at=datetime(2026, 11, 28, 11, 50, 42, tzinfo=timezone.utc),
        interval_seconds=30.0,
    )
    return replace(base, **changes)


def test_progress_text_and_json_add_the_samples_in_flight_marked_as_not_committed():
    s = snapshot(inflight_samples=3_412, inflight_shards=2)
    lines = progress.format_progress_text(s).splitlines()
    assert lines[0] == "trajgen RUNNING 25.0%  runs/r"  # the percentage stays the committed one
    assert lines[1] == "Completed: 10,000 / 40,000 (25.0%)"
    assert lines[2] == "In flight: 3,412 samples in 2 shards (not yet committed)"
    data = progress.snapshot_to_json(s)
    assert data["completed_samples"] == 10_000 and data["percent"] == 25.0
    assert data["inflight_samples"] == 3_412 and data["inflight_shards"] == 2
    assert progress.snapshot_from_json(json.loads(json.dumps(data))) == s
    assert "+ 3,412 in flight" in reporter.progress_line(s)
    from trajgen.store.schema import SchemaError, check_progress

    with pytest.raises(SchemaError, match="inflight_samples"):
        check_progress({**data, "inflight_samples": -1})
    # nothing in flight, or not running: the text is what it was
    for quiet in (snapshot(), snapshot(state="STOPPED", inflight_samples=5, inflight_shards=1)):
        assert "In flight" not in progress.format_progress_text(quiet)
        assert "in flight" not in reporter.progress_line(quiet)


def test_the_rate_counts_samples_in_flight_so_it_is_known_before_the_first_commit():
    now = [100.0]
    meter = RateMeter(clock=lambda: now[0])
    now[0] += 4.0
    assert meter.rate() is None  # nothing made, nothing to go by
    assert meter.rate(inflight=1_000) == pytest.approx(250.0)
    assert meter.eta(9_000, inflight=1_000) == pytest.approx(32.0)  # 8,000 still to make
    meter.add(2_000)
    assert meter.rate(inflight=1_000) == pytest.approx(750.0)


def test_a_page_shows_the_samples_in_flight_apart_from_the_committed_ones():
    from trajgen.watch.page import render_page

    page = render_page(snapshot(inflight_samples=3_412, inflight_shards=2, rate=800.0, eta_seconds=30.0), [])
    assert "10,000 of 40,000 samples" in page
    assert "+ 3,412 in flight (not yet committed)" in page
    assert 'class="inflight"' in page


def test_a_page_draws_no_committed_part_before_the_first_commit():
    import re

    from trajgen.watch.page import render_page

    def bar(**changes):
        page = render_page(
            snapshot(inflight_samples=17_820, inflight_shards=2, rate=800.0, eta_seconds=30.0, **changes), []
        )
        return re.search(r'<div class="bar">(.*?)</div></div>', page).group(1)

    # nothing committed: only the pale in-flight part (the committed part's smallest width would show a sliver)
    assert bar(completed_samples=0, completed_shards=0).startswith('<div class="inflight"')
    assert bar().startswith('<div style="width:25.00%">')


def test_the_bar_shows_committed_and_in_flight_samples(tmp_path, capsys):
    found = {3: (400, 1_000)}
    reporter = ProgressReporter(
        tmp_path,
        tmp_path,
        tmp_path,
        total_samples=4_000,
        total_shards=4,
        checkpoint_every=1_000,
        class_counts={},
        completed_samples=1_000,
        completed_shards=1,
        framing_redraws=0,
        interval=3600,
        bar=True,
        inflight=lambda: found,
    )
    reporter.refresh_bar()
    reporter.finish("STOPPED")
    err = capsys.readouterr().err
    assert "1,400/4,000" in err or "1400/4000" in err
    assert "1,000 committed + 400 in flight" in err


def test_shard_progress_files_are_written_read_and_removed(tmp_path):
    from trajgen.making import inflight

    clock = [100.0]
    report = inflight.ShardProgress(tmp_path, 7, 1_000, every=0, clock=lambda: clock[0])
    report.encoded(0, 1_200)  # encoding starts at once (no time spent making)
    clock[0] += 1.0
    report.encoded(300, 1_200)  # a quarter of the bytes in 1 s: 3 s to go, a quarter of the shard's time
    assert inflight.read(tmp_path) == {7: (250, 1_000)}
    assert inflight.read(tmp_path, skip={7}) == {}  # a committed shard is never in flight
    (tmp_path / "inflight-00009").write_text("garbage")
    assert inflight.read(tmp_path) == {7: (250, 1_000)}
    report.done()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inflight-00009"]
    quiet = inflight.ShardProgress(tmp_path, 8, 1_000, every=3600)
    quiet.encoded(600, 1_200)  # reports are rate-limited: nothing written yet
    quiet.done()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inflight-00009"]


# ---------------------------------------------------------------- real runs, every executor


def assert_shown_in_flight(out, proc):
    """While a worker is held in the middle of a shard: status, PROGRESS.txt and progress.json
    show its samples as in flight, apart from the committed ones, and a rate."""
    st = status_json(out)
    assert st["state"] == "RUNNING"
    assert 0 < st["inflight_samples"] < 400 and st["inflight_shards"] >= 1
    assert st["completed_samples"] == sum(s["count"] for s in json.loads((out / "manifest.json").read_text())["shards"])
    text = run_cli("status", out).stdout
    assert IN_FLIGHT.search(text), text
    shown = wait_until(
        lambda: (
            IN_FLIGHT.search(progress_text(out)) and "Rate: estimating" not in progress_text(out) and progress_text(out)
        ),
        proc,
    )
    assert "ETA: estimating" not in shown
    # progress.json is written right after PROGRESS.txt
    data = wait_until(lambda: (d := json.loads((out / "progress.json").read_text()))["rate"] and d, proc)
    assert data["inflight_samples"] > 0 and data["eta_seconds"] is not None


def assert_nothing_in_flight(out):
    assert not IN_FLIGHT.search(progress_text(out))
    assert json.loads((out / "progress.json").read_text())["inflight_samples"] == 0
    assert status_json(out)["inflight_samples"] == 0
    assert list((out / ".tmp").iterdir()) == []


def test_serial_run_shows_its_shard_in_flight_and_a_kill_leaves_nothing_stale(reference, tmp_path):
    out = tmp_path / "run"
    proc = start_cli("generate", *HOURLY, "--workers", 1, "--out", out, env=held(tmp_path))
    wait_until(lambda: (tmp_path / "shard-progress.reached").exists(), proc)
    assert_shown_in_flight(out, proc)
    kill(proc, signal.SIGKILL)
    st = status_json(out)
    assert st["state"] == "INTERRUPTED" and st["inflight_samples"] == 0
    assert not IN_FLIGHT.search(run_cli("status", out).stdout)
    result = run_cli("resume", out, "--quiet")
    assert result.returncode == 0, result.stderr
    assert_nothing_in_flight(out)
    assert_same_run(out, reference)


def test_process_pool_shows_shards_in_flight_and_logs_a_replaced_worker(reference, tmp_path):
    out = tmp_path / "run"
    proc = start_cli("generate", *ARGS, "--workers", 2, "--out", out, env=held(tmp_path))
    reached = tmp_path / "shard-progress.reached"
    pid = int(wait_until(lambda: reached.exists() and reached.read_text(), proc))
    assert_shown_in_flight(out, proc)
    reached.unlink()
    os.kill(pid, signal.SIGKILL)  # a real worker, in the middle of its shard
    log = out / "run.log"
    line = wait_until(lambda: [x for x in log.read_text().splitlines() if "worker process" in x], proc)
    assert f"pid {pid}" in line[0] and "SIGKILL" in line[0] and "restart" in line[0], line
    (tmp_path / "shard-progress.go").touch()
    assert proc.wait(timeout=60) == 0, proc.stderr.read()
    assert len([x for x in log.read_text().splitlines() if "worker process" in x]) == 1
    assert_nothing_in_flight(out)
    assert_same_run(out, reference)


def test_dask_workers_report_shards_in_flight(reference, tmp_path):
    distributed = pytest.importorskip("distributed")
    env = held(tmp_path)
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0", host="127.0.0.1", env=env
    ) as cluster:
        out = tmp_path / "run"
        proc = start_cli("generate", *ARGS, "--scheduler", cluster.scheduler_address, "--out", out)
        wait_until(lambda: (tmp_path / "shard-progress.reached").exists(), proc)
        assert_shown_in_flight(out, proc)
        (tmp_path / "shard-progress.go").touch()
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
    assert_nothing_in_flight(out)
    assert_same_run(out, reference)


@pytest.mark.parametrize("level", [0, 1, 6])  # stored, ISA-L, zlib
def test_the_encoders_progress_leaves_the_shard_bytes_as_they_are(level):
    from trajgen.content.config import GenerationConfig
    from trajgen.making.shardmaker import build_shard_arrays
    from trajgen.store.shards import encode_shard

    arrays, _, _ = build_shard_arrays(GenerationConfig(n=200, checkpoint_every=200, frames=16, size=64), 0)
    heard = []
    assert encode_shard(arrays, level, lambda done, total: heard.append((done, total))) == encode_shard(arrays, level)
    total = sum(a.nbytes for a in arrays.values())
    assert heard[-1] == (total, total) and len(heard) > 3  # the videos in steps, then the rest
    assert [done for done, _ in heard] == sorted(done for done, _ in heard)
