"""Watching a run from afar: the --progress-to mirror, PROGRESS.html in a real browser,
staleness, and the 5-minute rule."""

import functools
import json
import os
import re
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from runtools import kill, run_cli, start_cli, wait_for_shards
from trajgen import GenerationConfig
from trajgen.making import generate, resume
from trajgen.making.thumbnails import ShardPictures
from trajgen.store.rundir import RunPaths
from trajgen.use.verify import verify_run
from trajgen.watch.mirror import ProgressMirror
from trajgen.watch.progress import ProgressSnapshot, format_progress_text, warn
from trajgen.watch.reporter import ProgressReporter

MIRROR_NAMES = {"PROGRESS.txt", "PROGRESS.html"}
SMALL = GenerationConfig(n=48, checkpoint_every=8, seed=5, frames=6, size=16)


def mirror_names_ok(names):
    return all(name in MIRROR_NAMES or name.startswith(".") for name in names)


# ---------------------------------------------------------------- the mirror


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory):
    base = tmp_path_factory.mktemp("mirrored")
    generate(SMALL, base / "run", workers=1, progress_to=base / "synced" / "watch", progress_interval=0.1)
    return base / "run", base / "synced" / "watch"


def test_progress_to_mirrors_the_text_and_a_page(mirrored):
    run_dir, folder = mirrored
    assert sorted(p.name for p in folder.iterdir()) == ["PROGRESS.html", "PROGRESS.txt"]  # created, nothing else
    text = (run_dir / "PROGRESS.txt").read_text(encoding="utf-8")
    assert (folder / "PROGRESS.txt").read_text(encoding="utf-8") == text
    assert text.startswith("trajgen COMPLETE 100.0%")
    page = (folder / "PROGRESS.html").read_text(encoding="utf-8")
    assert f"<title>{text.splitlines()[0]}</title>" in page.replace("&#x27;", "'")
    assert json.loads((run_dir / "config.json").read_text())["progress_to"] == str(folder.resolve())


def test_the_chart_history_is_kept_in_the_run_and_verify_accepts_it(mirrored):
    run_dir, _ = mirrored
    history = json.loads((run_dir / "progress_history.json").read_text())
    points = history["points"]
    assert points[-1][1] == SMALL.n and points[0][1] <= points[-1][1]
    assert [t for t, _ in points] == sorted(t for t, _ in points)
    report = verify_run(run_dir)
    assert report.ok, report.text


def test_history_stays_bounded_and_keeps_both_ends():
    from trajgen.watch.mirror import MAX_HISTORY_POINTS, ProgressHistory

    history = ProgressHistory()
    for i in range(10 * MAX_HISTORY_POINTS):
        history.add(1000.0 + i, i * 3)
    points = history.points
    assert len(points) <= MAX_HISTORY_POINTS
    assert points[0] == (1000.0, 0) and points[-1] == (
        1000.0 + 10 * MAX_HISTORY_POINTS - 1,
        (10 * MAX_HISTORY_POINTS - 1) * 3,
    )
    fixed = points[:-1]  # the newest point floats
    gaps = [b[0] - a[0] for a, b in zip(fixed, fixed[1:])]
    assert max(gaps) <= 4 * min(gaps)  # thinned evenly, not just truncated
    again = ProgressHistory.from_bytes(history.to_bytes())
    assert again.points == points


def test_folder_polled_while_the_run_writes_it(tmp_path):
    """The folder only ever holds the two files and dot-prefixed temps; no read is torn."""
    out, folder = tmp_path / "run", tmp_path / "watch"
    proc = start_cli(
        "generate",
        "--n",
        1600,
        "--checkpoint-every",
        40,
        "--frames",
        8,
        "--size",
        32,
        "--workers",
        1,
        "--progress-interval",
        0.1,
        "--progress-to",
        folder,
        "--out",
        out,
        "--quiet",
    )
    seen, bad, reads = set(), [], {"txt": 0, "html": 0}

    def poll():
        while proc.poll() is None:
            try:
                names = os.listdir(folder)
            except FileNotFoundError:
                continue
            seen.update(names)
            if not mirror_names_ok(names):
                bad.append(f"stray: {names}")
            for name, key in (("PROGRESS.txt", "txt"), ("PROGRESS.html", "html")):
                try:
                    text = (folder / name).read_text(encoding="utf-8")
                except FileNotFoundError:
                    continue
                reads[key] += 1
                lines = text.splitlines()
                whole = (
                    text.startswith("trajgen ")
                    and text.endswith("\n")
                    and any(l.startswith("Last update:") for l in lines)
                    if key == "txt"
                    else text.startswith("<!DOCTYPE html>") and text.endswith("</html>\n")
                )
                if not whole:
                    bad.append(f"torn {name}: {text[:60]!r}...{text[-60:]!r}")
            time.sleep(0.001)

    poller = threading.Thread(target=poll)
    poller.start()
    _, err = proc.communicate(timeout=120)
    poller.join()
    assert proc.returncode == 0, err
    assert bad == []
    assert reads["txt"] > 20 and reads["html"] > 20
    assert mirror_names_ok(seen)
    assert sorted(os.listdir(folder)) == ["PROGRESS.html", "PROGRESS.txt"]
    text = (folder / "PROGRESS.txt").read_text(encoding="utf-8")
    assert text == (out / "PROGRESS.txt").read_text(encoding="utf-8")
    assert text.startswith("trajgen COMPLETE 100.0%")
    assert "<title>trajgen COMPLETE 100.0%" in (folder / "PROGRESS.html").read_text(encoding="utf-8")


def test_kill_9_then_resume_without_the_option_keeps_mirroring(tmp_path):
    out, folder = tmp_path / "run", tmp_path / "watch"
    proc = start_cli(
        "generate",
        "--n",
        900,
        "--checkpoint-every",
        30,
        "--frames",
        8,
        "--size",
        32,
        "--workers",
        1,
        "--progress-interval",
        0.1,
        "--progress-to",
        folder,
        "--out",
        out,
        "--quiet",
    )
    assert wait_for_shards(out, 3, proc)
    deadline = time.monotonic() + 30
    while not (folder / "PROGRESS.html").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert kill(proc) == -9
    assert (folder / "PROGRESS.txt").read_text(encoding="utf-8").startswith("trajgen RUNNING")
    status = run_cli("status", out).stdout
    assert status.startswith("trajgen INTERRUPTED") and "Next update" not in status
    result = run_cli("resume", out, "--workers", 1, "--quiet")
    assert result.returncode == 0, result.stderr
    text = (folder / "PROGRESS.txt").read_text(encoding="utf-8")
    assert text.startswith("trajgen COMPLETE 100.0%") and text == (out / "PROGRESS.txt").read_text(encoding="utf-8")
    assert sorted(os.listdir(folder)) == ["PROGRESS.html", "PROGRESS.txt"]


def test_resume_progress_to_another_folder_changes_it(tmp_path):
    out, first, second = tmp_path / "run", tmp_path / "first", tmp_path / "second"
    config = SMALL.replace(n=24)
    generate(config, out, workers=1, progress_to=first, progress_interval=0.1)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["shards"] = manifest["shards"][:1]
    manifest["status"] = "running"
    (out / "manifest.json").write_text(json.dumps(manifest))
    resume(out, workers=1, progress_to=second, progress_interval=0.1)
    assert json.loads((out / "config.json").read_text())["progress_to"] == str(second.resolve())
    assert (second / "PROGRESS.txt").read_text() == (out / "PROGRESS.txt").read_text()
    assert (second / "PROGRESS.txt").read_text().startswith("trajgen COMPLETE")
    assert (first / "PROGRESS.txt").read_text().startswith("trajgen COMPLETE")  # left as it was


def test_progress_to_the_run_directory_itself_is_refused(tmp_path):
    result = run_cli(
        "generate", "--n", 8, "--checkpoint-every", 8, "--out", tmp_path / "run", "--progress-to", tmp_path / "run"
    )
    assert result.returncode == 2
    assert "--progress-to" in result.stderr and "run directory" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def reporter(run_dir, folder, interval=0.05, pictures=None):
    tmp = run_dir / ".tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    return ProgressReporter(
        run_dir,
        run_dir,
        tmp,
        total_samples=100,
        total_shards=10,
        checkpoint_every=10,
        class_counts={"linear": 0, "circular": 0},
        completed_samples=0,
        completed_shards=0,
        framing_redraws=0,
        interval=interval,
        bar=False,
        mirror=ProgressMirror(
            folder, run_dir, tmp, interval, warn=functools.partial(warn, run_dir / "run.log"), pictures=pictures
        ),
    )


def warnings_in_log(run_dir, kind="warning"):
    return [line for line in (run_dir / "run.log").read_text().splitlines() if f" {kind}: " in line]


def test_a_mirror_that_cannot_be_written_warns_once_and_the_run_goes_on(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (tmp_path / "file").write_text("not a folder")
    rep = reporter(run_dir, tmp_path / "file" / "watch")
    rep.start()
    for _ in range(5):
        rep.commit(10, {"linear": 5, "circular": 5}, 0)
        time.sleep(0.06)
    rep.finish("STOPPED")
    assert (run_dir / "PROGRESS.txt").read_text().startswith("trajgen STOPPED")
    warned = warnings_in_log(run_dir)
    assert len(warned) == 1, warned
    assert "file/watch" in warned[0] and "the run goes on" in warned[0]
    assert capsys.readouterr().err.count("Warning:") == 1


def test_a_folder_that_vanishes_mid_run_is_one_warning_and_comes_back(tmp_path, capsys):
    run_dir, folder = tmp_path / "run", tmp_path / "watch"
    run_dir.mkdir()
    rep = reporter(run_dir, folder)
    rep.start()
    rep.commit(10, {"linear": 5, "circular": 5}, 0)
    rep.flush_mirror()
    assert (folder / "PROGRESS.txt").exists()
    for p in folder.iterdir():
        p.unlink()
    folder.rmdir()
    for _ in range(4):
        rep.commit(10, {"linear": 5, "circular": 5}, 0)
        rep.flush_mirror()
    folder.mkdir()  # the sync client brought it back
    rep.commit(10, {"linear": 5, "circular": 5}, 0)
    rep.finish("STOPPED")
    warned, notes = warnings_in_log(run_dir), warnings_in_log(run_dir, "note")
    assert len(warned) == 1, warned  # once, not at every write
    assert len(notes) == 1 and "works again" in notes[0]
    assert (folder / "PROGRESS.txt").read_text() == (run_dir / "PROGRESS.txt").read_text()
    capsys.readouterr()


def test_a_hung_mirror_never_blocks_a_commit(tmp_path, monkeypatch):
    from trajgen.watch import mirror as progress_page

    release = threading.Event()
    real = progress_page.ProgressMirror._write

    def stuck(self, *args):
        release.wait(60)  # a sync folder on a dead network mount
        return real(self, *args)

    monkeypatch.setattr(progress_page.ProgressMirror, "_write", stuck)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    rep = reporter(run_dir, tmp_path / "watch", interval=30)
    rep.start()
    committer = threading.Thread(target=lambda: [rep.commit(10, {"linear": 5, "circular": 5}, 0) for _ in range(10)])
    committer.start()
    committer.join(20)
    stuck_commits = committer.is_alive()
    release.set()
    rep.finish("COMPLETE")
    assert not stuck_commits
    assert (run_dir / "PROGRESS.txt").read_text().startswith("trajgen COMPLETE")


# ---------------------------------------------------------------- the page


def page_snapshot(**changes):
    base = dict(
        state="RUNNING",
        run_dir="runs/20261128_1150_n10000",
        total_samples=10_000,
        completed_samples=4_000,
        total_shards=10,
        completed_shards=4,
        checkpoint_every=1_000,
        rate=2350.0,
        elapsed_seconds=170.0,
        eta_seconds=255.0,
        class_counts={"linear": 1000, "circular": 1000, "helical": 1000, "parabolic": 1000},
        framing_redraws=3,
        error=None,
        host="gpu-box",
        pid=4242,
        interval_seconds=30.0,
        updated_at=datetime.now(timezone.utc).replace(microsecond=0),
    )
    return ProgressSnapshot(**(base | changes))


def history_points(done, end):
    return [((end - timedelta(seconds=170 - 17 * i)).timestamp(), done * i // 10) for i in range(11)]


@pytest.fixture(scope="module")
def thumbnails(mirrored):
    from trajgen.making.thumbnails import shard_thumbnails

    run_dir, _ = mirrored
    return shard_thumbnails(run_dir / "shards" / "shard-00005.npz", list(SMALL.classes), SMALL.background)


def write_page(path, snapshot, thumbs):
    from trajgen.watch.page import render_page

    page = render_page(
        snapshot, history_points(snapshot.completed_samples, snapshot.updated_at), thumbs, "shard 5 (samples 40–47)"
    )
    path.write_text(page, encoding="utf-8")
    return path


def title_of(dom):
    return re.search(r"<title>(.*?)</title>", dom, re.S).group(1)


def test_page_is_self_contained_and_titled_by_the_state_line(tmp_path, thumbnails):
    snap = page_snapshot(run_dir="runs/<odd> & 'name'")
    page = write_page(tmp_path / "p.html", snap, thumbnails).read_text(encoding="utf-8")
    first = format_progress_text(snap).splitlines()[0]
    assert "<title>trajgen RUNNING 40.0%  runs/&lt;odd&gt; &amp; " in page and first.startswith("trajgen RUNNING 40.0%")
    assert not re.search(r"(src|href)=\"(?!data:|#)", page)  # nothing fetched
    assert "<link" not in page and "@import" not in page and "url(" not in page.replace("url(data:", "")
    assert re.search(r'<meta http-equiv="refresh" content="30">', page)
    assert page.count("data:image/png;base64,") == len(thumbnails) == 4
    assert len(page.encode()) < 100_000


def test_running_page_in_chromium(tmp_path, thumbnails):
    from browser import dump_dom

    dom = dump_dom(write_page(tmp_path / "running.html", page_snapshot(), thumbnails))
    assert title_of(dom) == "trajgen RUNNING 40.0%  runs/20261128_1150_n10000"
    assert re.search(r'id="state"[^>]*>RUNNING<', dom)
    assert re.search(r'id="percent"[^>]*>40\.0%<', dom)
    classes = re.search(r'<section[^>]*id="classes".*?</section>', dom, re.S).group(0)
    for name in ("linear", "circular", "helical", "parabolic"):
        assert re.search(rf">{name}<.*?>1,000<", classes, re.S)
    chart = re.search(r'<svg[^>]*id="chart".*?</svg>', dom, re.S).group(0)
    assert "<polyline" in chart or "<path" in chart
    assert re.search(r'id="stale"[^>]*hidden', dom)  # fresh: no warning shown


def test_running_page_goes_stale_when_the_viewer_clock_is_hours_later(tmp_path, thumbnails):
    from browser import dump_dom

    snap = page_snapshot()
    dom = dump_dom(write_page(tmp_path / "running.html", snap, thumbnails), faketime="+3h")
    assert title_of(dom).startswith("STALE")
    assert title_of(dom).endswith("trajgen RUNNING 40.0%  runs/20261128_1150_n10000")
    warning = re.search(r'<div[^>]*id="stale"[^>]*>(.*?)</div>', dom, re.S)
    assert warning and "hidden" not in warning.group(0).split(">")[0]
    text = re.sub(r"<[^>]+>", "", warning.group(1))
    assert f"{snap.updated_at:%Y-%m-%d %H:%M:%S} UTC" in text
    assert "trajgen status runs/20261128_1150_n10000" in text and "gpu-box" in text


def test_complete_page_in_chromium_is_never_stale(tmp_path, thumbnails):
    from browser import dump_dom

    snap = page_snapshot(
        state="COMPLETE",
        completed_samples=10_000,
        completed_shards=10,
        eta_seconds=0.0,
        class_counts={"linear": 2500, "circular": 2500, "helical": 2500, "parabolic": 2500},
    )
    dom = dump_dom(write_page(tmp_path / "complete.html", snap, thumbnails), faketime="+3h")
    assert title_of(dom) == "trajgen COMPLETE 100.0%  runs/20261128_1150_n10000"
    assert re.search(r'id="state"[^>]*>COMPLETE<', dom)
    assert re.search(r'id="percent"[^>]*>100\.0%<', dom)
    classes = re.search(r'<section[^>]*id="classes".*?</section>', dom, re.S).group(0)
    assert re.search(r">parabolic<.*?>2,500<", classes, re.S)
    assert re.search(r'<svg[^>]*id="chart"', dom)


# ---------------------------------------------------------------- the 5-minute rule


def test_dry_run_passes_when_a_shard_takes_under_five_minutes(tmp_path, monkeypatch):
    from trajgen.making.preflight import RATE_ENV, dry_run

    monkeypatch.setenv(RATE_ENV, "10")  # samples/s per worker
    ok, lines = dry_run(SMALL.replace(n=10_000, checkpoint_every=3_000), tmp_path / "run", workers=2)
    line = next(l for l in lines if "crash" in l)
    assert ok and line.strip().startswith("✓"), lines
    assert "0:05:00" in line  # 3,000 samples at 10/s per worker


def test_dry_run_fails_when_a_shard_takes_longer_and_names_the_checkpoint_that_fits(tmp_path):
    result = run_cli(
        "generate",
        "--n",
        10_000,
        "--checkpoint-every",
        5_000,
        "--workers",
        2,
        "--dry-run",
        "--out",
        tmp_path / "run",
        env={"TRAJGEN_SAMPLES_PER_SECOND": "10"},
    )
    assert result.returncode == 1, result.stdout + result.stderr
    line = next(l for l in result.stdout.splitlines() if "crash" in l)
    assert line.strip().startswith("✗")
    assert "0:08:20" in line and "--checkpoint-every 3000 " in line
    assert not (tmp_path / "run").exists()


def test_generate_warns_but_runs_when_a_shard_takes_longer(tmp_path):
    result = run_cli(
        "generate",
        "--n",
        16,
        "--checkpoint-every",
        16,
        "--frames",
        4,
        "--size",
        16,
        "--workers",
        1,
        "--out",
        tmp_path / "run",
        env={"TRAJGEN_SAMPLES_PER_SECOND": "0.01"},
    )
    assert result.returncode == 0, result.stderr
    assert "Warning:" in result.stderr and "5 minutes" in result.stderr and "--checkpoint-every" in result.stderr
    assert (tmp_path / "run" / "PROGRESS.txt").read_text().startswith("trajgen COMPLETE")


def test_temps_a_killed_writer_left_in_the_folder_are_cleared(tmp_path):
    run_dir, folder = tmp_path / "run", tmp_path / "watch"
    run_dir.mkdir()
    folder.mkdir()
    dead = folder / ".PROGRESS.html.999999999.0123456789ab.tmp"  # no such pid
    live = folder / f".PROGRESS.txt.{os.getpid()}.0123456789ab.tmp"  # a writer still at work
    other = folder / "notes.md"  # the user's own file: never touched
    for p in (dead, live, other):
        p.write_text("x")
    rep = reporter(run_dir, folder)
    rep.start()
    rep.finish("STOPPED")
    assert sorted(p.name for p in folder.iterdir()) == sorted([live.name, other.name, "PROGRESS.html", "PROGRESS.txt"])


def test_failed_and_stopped_pages_say_what_to_run(tmp_path):
    from trajgen.watch.page import render_page

    failed = render_page(page_snapshot(state="FAILED", error="could not write shard 4: No space left on device"), [])
    assert "<title>trajgen FAILED 40.0%  runs/20261128_1150_n10000: could not write shard 4" in failed
    assert "No space left on device" in failed and "trajgen resume runs/20261128_1150_n10000" in failed
    stopped = render_page(page_snapshot(state="STOPPED"), [])
    assert "resumable" in stopped and "trajgen resume runs/20261128_1150_n10000" in stopped
    assert "Next update" not in stopped


def test_a_bucket_runs_page_says_where_its_pictures_are_instead_of_promising_them():
    """A run in object storage has no sample pictures on its page (its shards are not on the
    machine that makes it): the page says so and how to see them, at any state."""
    from trajgen.watch.page import render_page

    for state in ("RUNNING", "COMPLETE"):
        page = render_page(page_snapshot(state=state, run_dir="s3://lab-bucket/runs/hard"), [])
        assert "Appears after the first shard" not in page
        assert "No sample pictures here for a run in object storage" in page
        assert "trajgen preview s3://lab-bucket/runs/hard" in page
    on_disk = render_page(page_snapshot(), [])
    assert "Appears after the first shard this process commits." in on_disk


def test_dry_run_checks_the_progress_folder_and_writes_nothing_there(tmp_path):
    from trajgen.making.preflight import dry_run

    (tmp_path / "file").write_text("x")
    before = sorted(p.name for p in tmp_path.iterdir())
    _, lines = dry_run(SMALL, tmp_path / "run", workers=1, progress_to=tmp_path / "synced" / "watch")
    line = next(l for l in lines if "progress" in l.lower() and "watch" in l)
    assert line.strip().startswith("✓") and "created" in line
    ok, lines = dry_run(SMALL, tmp_path / "run", workers=1, progress_to=tmp_path / "file" / "watch")
    line = next(l for l in lines if "watch" in l and "progress" in l.lower())
    assert not ok and line.strip().startswith("✗")
    ok, lines = dry_run(SMALL, tmp_path / "run", workers=1, progress_to=tmp_path / "run" / "watch")
    assert not ok and any(l.strip().startswith("✗") and "inside the run directory" in l for l in lines)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_status_of_a_live_run_says_when_the_next_update_is_due(mirrored, tmp_path):
    import shutil

    from trajgen.making import run_status
    from trajgen.store import lock_file

    run_dir = tmp_path / "run"
    shutil.copytree(mirrored[0], run_dir)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest["shards"], manifest["status"] = manifest["shards"][:2], "running"
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    progress = json.loads((run_dir / "progress.json").read_text())
    progress["state"] = "RUNNING"
    (run_dir / "progress.json").write_text(json.dumps(progress))
    fd = lock_file.try_lock(run_dir / ".lock", "pid 4242 on gpu-box")  # a live writer holds the run
    try:
        lines = run_status(run_dir).text.splitlines()
    finally:
        os.close(fd)
    assert lines[0].startswith("trajgen RUNNING 33.3%")
    due = datetime.fromisoformat(progress["updated_at"]) + timedelta(seconds=progress["interval_seconds"])
    assert (
        lines[lines.index(next(l for l in lines if l.startswith("Last update:"))) + 1]
        == f"Next update: by {due.replace(microsecond=0) + timedelta(seconds=1 if due.microsecond else 0):%H:%M:%S} UTC"
    )


def test_a_resumed_run_shows_samples_before_its_first_commit(mirrored, tmp_path):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(mirrored[0], run_dir)
    rep = reporter(run_dir, tmp_path / "watch", pictures=ShardPictures(RunPaths(run_dir), SMALL))
    rep.start()
    rep.finish("STOPPED")
    page = (tmp_path / "watch" / "PROGRESS.html").read_text()
    assert page.count("data:image/png;base64,") == 4 and "shard-00005.npz" in page


def test_the_folder_gets_the_newest_state_at_most_once_a_second(tmp_path, monkeypatch):
    from trajgen.watch import mirror as progress_page

    writes = []
    real = progress_page.ProgressMirror._write
    monkeypatch.setattr(
        progress_page.ProgressMirror,
        "_write",
        lambda self, snapshot, *rest: (writes.append(snapshot.completed_samples), real(self, snapshot, *rest)),
    )
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    rep = reporter(run_dir, tmp_path / "watch", interval=30)
    rep.start()
    for _ in range(10):  # ten commits in well under a second
        rep.commit(10, {"linear": 5, "circular": 5}, 0)
    rep.finish("COMPLETE")
    assert writes[0] == 0 and writes[-1] == 100 and len(writes) <= 3  # the first, perhaps one more, the last
    assert (tmp_path / "watch" / "PROGRESS.txt").read_text() == (run_dir / "PROGRESS.txt").read_text()


def test_the_page_shows_the_newest_committed_shard_when_a_run_ends(tmp_path):
    """Shards committed faster than the progress interval: the page may show an older shard's samples
    while running (drawing them costs), but never once the run has ended."""
    drawn = []

    def pictures(shard):
        drawn.append(shard)
        return shard, [("linear", 0, b"\x89PNG")]

    run_dir = tmp_path / "run"
    (run_dir / ".tmp").mkdir(parents=True)
    mirror = ProgressMirror(
        tmp_path / "watch", run_dir, run_dir / ".tmp", 30.0, warn=lambda *a: None, pictures=pictures
    )
    mirror.publish(page_snapshot(), "shards/shard-00003.npz")
    mirror.flush()
    mirror.publish(
        page_snapshot(completed_shards=10, completed_samples=10_000, state="COMPLETE"), "shards/shard-00009.npz"
    )
    mirror.close()
    page = (tmp_path / "watch" / "PROGRESS.html").read_text()
    assert "shard-00009.npz" in page and "shard-00003.npz" not in page
    assert drawn == ["shards/shard-00003.npz", "shards/shard-00009.npz"]


def test_the_page_redraws_a_newer_shard_within_seconds_not_one_interval(tmp_path, monkeypatch):
    from trajgen.watch import mirror as mirror_module

    clock = [1000.0]
    monkeypatch.setattr(mirror_module.time, "monotonic", lambda: clock[0])
    shown = []
    run_dir = tmp_path / "run"
    (run_dir / ".tmp").mkdir(parents=True)
    mirror = ProgressMirror(
        tmp_path / "watch",
        run_dir,
        run_dir / ".tmp",
        30.0,
        warn=lambda *a: None,
        pictures=lambda shard: (shown.append(shard) or shard, [("linear", 0, b"\x89PNG")]),
    )
    for k, seconds in enumerate([0, 2, mirror_module.THUMBNAIL_SPACING + 0.1]):
        clock[0] = 1000.0 + seconds
        mirror._thumbnails(f"shards/shard-{k:05d}.npz", final=False)
    assert shown == ["shards/shard-00000.npz", "shards/shard-00002.npz"]  # not 30 s: a few seconds at most
