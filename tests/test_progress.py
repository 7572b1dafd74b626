"""PROGRESS.txt / progress.json, rate and ETA, the terminal bar."""

import json
import threading
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from trajgen.watch import progress, reporter
from trajgen.watch.progress import ProgressSnapshot
from trajgen.watch.reporter import RateMeter

RUN = "runs/20261128_1150_n10000"

GOLDEN = """\
trajgen RUNNING 40.0%  runs/20261128_1150_n10000
Completed: 4,000 / 10,000 (40.0%)
Shards: 4 / 10 (checkpoint every 1,000)
Rate: 2,350 samples/s   Elapsed: 0:00:02
ETA: 0:00:03 (about 11:50:45 UTC)
Classes: linear 1,000 · circular 1,000 · helical 1,000 · parabolic 1,000
Framing redraws: 31
Last update: 2026-11-28 11:50:42 UTC (host gpu-box, pid 4242)
Resume: trajgen resume runs/20261128_1150_n10000
"""


def snapshot(**changes):
    base = ProgressSnapshot(
        state="RUNNING",
        run_dir=RUN,
        total_samples=10_000,
        completed_samples=4_000,
        total_shards=10,
        completed_shards=4,
        checkpoint_every=1_000,
        rate=2350.0,
        elapsed_seconds=2.4,
        eta_seconds=2.6,
        class_counts={"linear": 1000, "circular": 1000, "helical": 1000, "parabolic": 1000},
        framing_redraws=31,
        error=None,
        host="gpu-box",
        pid=4242,
        updated_at=datetime(2026, 11, 28, 11, 50, 42, tzinfo=timezone.utc),
    )
    return replace(base, **changes)


def test_golden_matches_design_example():
    assert progress.format_progress_text(snapshot()) == GOLDEN


def test_percent_is_floored_never_100_before_done():
    text = progress.format_progress_text(snapshot(completed_samples=9_999, completed_shards=9))
    first, second = text.splitlines()[:2]
    assert first.startswith("trajgen RUNNING 99.9%  ")
    assert second == "Completed: 9,999 / 10,000 (99.9%)"
    assert "100.0%" not in text
    tiny = progress.format_progress_text(snapshot(completed_samples=1, total_samples=3_000_000))
    assert tiny.startswith("trajgen RUNNING 0.0%  ")


def test_complete_state():
    text = progress.format_progress_text(
        snapshot(state="COMPLETE", completed_samples=10_000, completed_shards=10, eta_seconds=0.0)
    )
    lines = text.splitlines()
    assert lines[0] == f"trajgen COMPLETE 100.0%  {RUN}"
    assert "ETA: done" in lines
    assert not any(line.startswith("Resume:") for line in lines)


def test_estimating_rate_and_eta():
    lines = progress.format_progress_text(snapshot(rate=None, eta_seconds=None)).splitlines()
    assert lines[3] == "Rate: estimating   Elapsed: 0:00:02"
    assert lines[4] == "ETA: estimating"


def test_failed_first_line_has_the_error_on_one_line():
    text = progress.format_progress_text(
        snapshot(state="FAILED", error="disk full while writing shard 4\n(ENOSPC)", rate=None, eta_seconds=None)
    )
    lines = text.splitlines()
    assert lines[0] == f"trajgen FAILED 40.0%  {RUN}: disk full while writing shard 4 (ENOSPC)"
    assert lines[-1] == f"Resume: trajgen resume {RUN}"


def test_stopped_keeps_resume_hint():
    lines = progress.format_progress_text(snapshot(state="STOPPED")).splitlines()
    assert lines[0].startswith("trajgen STOPPED 40.0%")
    assert lines[-1] == f"Resume: trajgen resume {RUN}"
    assert lines[4].startswith("ETA: ")


def test_long_durations_and_eta_on_another_day():
    text = progress.format_progress_text(snapshot(elapsed_seconds=27 * 3600 + 13 * 60 + 5.9, eta_seconds=86_400 + 60))
    lines = text.splitlines()
    assert lines[3].endswith("Elapsed: 27:13:05")
    assert lines[4] == "ETA: 24:01:00 (about 2026-11-29 11:51:42 UTC)"


def test_small_rates_keep_a_decimal():
    assert "Rate: 3.4 samples/s" in progress.format_progress_text(snapshot(rate=3.43))


def test_run_dir_with_spaces_is_quoted_in_resume_hint():
    text = progress.format_progress_text(snapshot(run_dir="my runs/a"))
    assert text.splitlines()[-1] == "Resume: trajgen resume 'my runs/a'"


def test_bad_state_is_rejected():
    with pytest.raises(ValueError, match="state"):
        snapshot(state="DONE")


def test_json_round_trip():
    snap = snapshot(error="boom", rate=None)
    data = progress.snapshot_to_json(snap)
    assert json.loads(json.dumps(data)) == data
    assert progress.snapshot_from_json(json.loads(json.dumps(data))) == snap
    assert data["percent"] == 40.0
    assert list(data["class_counts"]) == ["linear", "circular", "helical", "parabolic"]
    assert data["updated_at"].startswith("2026-11-28T11:50:42")


def test_write_progress_writes_both_files_atomically(tmp_path):
    tmp = tmp_path / ".tmp"
    tmp.mkdir()
    snap = snapshot()
    progress.write_progress(tmp_path, snap, tmp)
    assert (tmp_path / "PROGRESS.txt").read_text(encoding="utf-8") == GOLDEN
    data = json.loads((tmp_path / "progress.json").read_text(encoding="utf-8"))
    assert progress.snapshot_from_json(data) == snap
    assert list(tmp.iterdir()) == []


def test_concurrent_reader_never_sees_a_torn_file(tmp_path):
    tmp = tmp_path / ".tmp"
    tmp.mkdir()
    progress.write_progress(tmp_path, snapshot(completed_samples=0), tmp)
    done = threading.Event()
    failures = []

    def writer():
        try:
            for i in range(400):
                progress.write_progress(tmp_path, snapshot(completed_samples=i * 25, framing_redraws=i), tmp)
        except Exception as exc:  # surfaced by the assertion below
            failures.append(repr(exc))
        finally:
            done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    reads = 0
    while not done.is_set() or reads < 2_000:
        text = (tmp_path / "PROGRESS.txt").read_text(encoding="utf-8")
        lines = text.splitlines()
        if not (
            text.startswith("trajgen RUNNING ")
            and text.endswith("\n")
            and len(lines) == 9
            and lines[-1].startswith("Resume: ")
        ):
            failures.append(text)
            break
        reads += 1
    thread.join()
    assert failures == []
    assert reads >= 2_000


class FakeClock:
    def __init__(self, t=1000.0):
        self.t = t

    def __call__(self):
        return self.t


def test_rate_meter_estimates_then_reports():
    clock = FakeClock()
    meter = RateMeter(clock=clock)
    assert meter.rate() is None and meter.eta(1000) is None
    clock.t += 1.0
    meter.add(500)
    assert meter.rate() is None  # under two seconds
    clock.t += 1.5
    assert meter.elapsed() == pytest.approx(2.5)
    assert meter.rate() == pytest.approx(200.0)
    assert meter.eta(1000) == pytest.approx(5.0)
    assert meter.eta(0) == 0.0


def test_rate_meter_needs_a_commit():
    clock = FakeClock()
    meter = RateMeter(clock=clock)
    clock.t += 60
    assert meter.rate() is None
    assert meter.eta(10) is None


def test_resumed_run_counts_only_this_process():
    clock = FakeClock()
    # 4,000 samples were done by an earlier process: the meter never hears of them
    meter = RateMeter(clock=clock)
    clock.t += 4.0
    meter.add(1000)
    assert meter.samples == 1000
    assert meter.rate() == pytest.approx(250.0)
    assert meter.eta(10_000 - 5_000) == pytest.approx(20.0)


def test_progress_bar_disabled_writes_nothing(capsys):
    bar = reporter.ProgressBar(total=10_000, initial=4_000, enabled=False)
    bar.update(1000)
    bar.close()
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_progress_bar_starts_at_completed_samples(capsys):
    with reporter.ProgressBar(total=10_000, initial=4_000, enabled=True) as bar:
        bar.update(1_000)
    err = capsys.readouterr().err
    assert "4000/10000" in err or "4,000/10,000" in err or "4.00k/10.0k" in err
    assert "5000/10000" in err or "5.00k/10.0k" in err


def test_running_says_when_the_next_update_is_due():
    lines = progress.format_progress_text(snapshot(interval_seconds=30.0)).splitlines()
    assert lines[0].startswith("trajgen RUNNING 40.0%  ")  # the first-line contract stays
    assert lines[7] == "Last update: 2026-11-28 11:50:42 UTC (host gpu-box, pid 4242)"
    assert lines[8] == "Next update: by 11:51:12 UTC"
    assert lines[9] == f"Resume: trajgen resume {RUN}"
    late = progress.format_progress_text(snapshot(interval_seconds=0.25)).splitlines()
    assert late[8] == "Next update: by 11:50:43 UTC"  # rounded up, never earlier than due
    for state in ("COMPLETE", "STOPPED", "FAILED"):
        text = progress.format_progress_text(snapshot(state=state, interval_seconds=30.0))
        assert "Next update" not in text


def test_interval_round_trips_through_progress_json():
    snap = snapshot(interval_seconds=1.5)
    assert progress.snapshot_from_json(json.loads(json.dumps(progress.snapshot_to_json(snap)))) == snap
    older = progress.snapshot_to_json(snapshot())
    del older["interval_seconds"]  # progress.json written before the field existed
    assert progress.snapshot_from_json(older).interval_seconds is None
