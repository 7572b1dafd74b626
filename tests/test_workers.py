"""--workers N: real worker processes, real signals, output identical to --workers 1."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from runtools import LONG_ARGS as ARGS  # long enough (about 1 s with two workers) that a signal lands mid-run
from runtools import assert_same_run, kill, run_cli, snapshot_tree, start_cli, trajgen_cmd, wait_for_shards
from trajgen.store import _fs, lock_file


@pytest.fixture
def reference(long_reference):
    """ARGS made by one worker (conftest: once for the session)."""
    return long_reference


# ---------------------------------------------------------------- process helpers


def _stat(pid):
    """(state, ppid) of a process from /proc, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1])


def _cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _maps(pid):
    try:
        return Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return ""


def children(pid):
    """pid -> command line of every live child of ``pid``."""
    kids = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            st = _stat(int(entry.name))
            if st is not None and st[1] == pid and st[0] not in "ZX":
                kids[int(entry.name)] = _cmdline(int(entry.name))
    return kids


def worker_pids(pid, count, timeout=30):
    """Wait until ``pid`` has ``count`` spawned pool workers; return all its children and the workers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = children(pid)
        workers = sorted(p for p, cmd in kids.items() if "spawn_main" in cmd)
        if len(workers) >= count:
            return kids, workers
        time.sleep(0.005)
    raise TimeoutError(f"pid {pid} did not start {count} workers: {children(pid)}")


def alive(pid):
    st = _stat(pid)
    return st is not None and st[0] not in "ZX"


def wait_dead(pids, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.01)
    return [p for p in pids if alive(p)]


def start_in_own_group(*args):
    """The CLI as the leader of a new process group, like a shell job that Ctrl-C reaches as a whole."""
    return subprocess.Popen(
        trajgen_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def assert_resumes_identically(out, reference, *extra):
    started = time.monotonic()
    result = run_cli("resume", out, "--workers", 2, "--quiet", *extra)
    assert result.returncode == 0, result.stderr
    assert "in use" not in result.stderr
    assert time.monotonic() - started < 30
    assert_same_run(out, reference)
    assert list((out / ".tmp").iterdir()) == []


def assert_stopped_promptly(proc, sent, kids):
    """Exit 130 within 2 s of the signal, with every worker gone; returns stderr."""
    assert proc.wait(timeout=30) == 130
    assert time.monotonic() - sent < 2.0
    assert wait_dead(list(kids), timeout=2.0) == []
    return proc.stderr.read()


# ---------------------------------------------------------------- tests


def test_two_workers_make_identical_output(reference, tmp_path):
    out = tmp_path / "run"
    result = run_cli("generate", *ARGS, "--workers", 2, "--out", out)
    assert result.returncode == 0, result.stderr
    assert_same_run(out, reference)
    assert "executor=processes x2" in (out / "run.log").read_text()
    assert list((out / ".tmp").iterdir()) == []


def test_resume_with_workers_after_a_serial_start_is_identical(reference, tmp_path):
    out = tmp_path / "run"
    proc = start_cli("generate", *ARGS, "--workers", 1, "--out", out)
    wait_for_shards(out, 3, proc)
    kill(proc, signal.SIGKILL)
    assert_resumes_identically(out, reference)


def test_kill_9_of_the_main_process_leaves_no_worker_and_a_free_lock(reference, tmp_path):
    out = tmp_path / "run"
    proc = start_cli("generate", *ARGS, "--workers", 2, "--out", out)
    kids, workers = worker_pids(proc.pid, 2)
    assert len(workers) == 2
    wait_for_shards(out, 1, proc)
    kill(proc, signal.SIGKILL)
    # no worker inherited the lock: it is free the moment the main process is gone
    assert not lock_file.is_locked(out / ".lock")
    assert wait_dead(list(kids)) == [], {p: _cmdline(p) for p in kids if alive(p)}
    before = snapshot_tree(out)
    time.sleep(0.3)
    assert snapshot_tree(out) == before  # nobody keeps writing into the run
    assert_resumes_identically(out, reference)


def test_kill_9_of_one_worker_remakes_its_shard_or_stops_resumably(reference, tmp_path):
    out = tmp_path / "run"
    proc = start_cli("generate", *ARGS, "--workers", 2, "--out", out)
    _, workers = worker_pids(proc.pid, 2)
    wait_for_shards(out, 1, proc)
    os.kill(workers[0], signal.SIGKILL)
    code = proc.wait(timeout=60)
    stderr = proc.stderr.read()
    assert "Traceback" not in stderr
    if code == 0:
        assert_same_run(out, reference)
        assert list((out / ".tmp").iterdir()) == []  # the dead worker's half-written file is gone too
        assert json.loads((out / "manifest.json").read_text())["status"] == "complete"
    else:
        assert code == 1 and stderr.startswith("Error: ") and f"trajgen resume {out}" in stderr
        assert_resumes_identically(out, reference)


def test_every_worker_dying_again_and_again_stops_resumably(reference, tmp_path):
    """A pool whose workers keep dying is given up after a few restarts, with the run resumable."""
    out = tmp_path / "run"
    # every worker is held at the start of its shard and killed there: deaths with no shard finished
    # in between, whatever the machine's speed (a finished shard resets the restart budget)
    hold = {"TRAJGEN_PAUSE": "shard-start", "TRAJGEN_PAUSE_DIR": str(tmp_path)}
    proc = start_cli("generate", *ARGS, "--workers", 2, "--out", out, env=hold)
    reached = tmp_path / "shard-start.reached"  # holds the pid of the worker that last got there
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            pid = int(reached.read_text())
        except (OSError, ValueError):
            time.sleep(0.002)
            continue
        reached.unlink()
        try:
            os.kill(pid, signal.SIGKILL)  # a worker past its start-up, about to make a shard
        except ProcessLookupError:
            pass
    code = proc.wait(timeout=30)
    stderr = proc.stderr.read()
    assert code == 1, stderr
    assert stderr.count("\n") == 1 and stderr.startswith("Error: ") and "Traceback" not in stderr
    assert "died" in stderr and f"trajgen resume {out}" in stderr
    assert (out / "PROGRESS.txt").read_text().startswith("trajgen FAILED")
    # each replacement is one line in run.log; the last death is told by the error line
    from trajgen.making.executors import MAX_POOL_RESTARTS

    log = (out / "run.log").read_text().splitlines()
    restarts = [line for line in log if "restarting the 2 worker processes" in line]
    assert len(restarts) == MAX_POOL_RESTARTS and all("killed by SIGKILL" in line for line in restarts), restarts
    assert list((out / ".tmp").iterdir()) == []
    assert_resumes_identically(out, reference)


def test_sigint_to_the_main_process_stops_workers_promptly(reference, tmp_path):
    out = tmp_path / "run"
    proc = start_cli("generate", *ARGS, "--workers", 2, "--out", out)
    kids, _ = worker_pids(proc.pid, 2)
    wait_for_shards(out, 1, proc)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    stderr = assert_stopped_promptly(proc, sent, kids)
    assert f"trajgen resume {out}" in stderr and "Traceback" not in stderr
    assert (out / "PROGRESS.txt").read_text().startswith("trajgen STOPPED")
    assert list((out / ".tmp").iterdir()) == []
    assert_resumes_identically(out, reference)


def test_ctrl_c_to_the_whole_process_group_stops_everything_cleanly(reference, tmp_path):
    out = tmp_path / "run"
    proc = start_in_own_group("generate", *ARGS, "--workers", 2, "--out", out)
    kids, _ = worker_pids(proc.pid, 2)
    wait_for_shards(out, 1, proc)
    sent = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    stderr = assert_stopped_promptly(proc, sent, kids)
    assert stderr.count("\n") == 1 and f"trajgen resume {out}" in stderr, stderr
    assert_resumes_identically(out, reference)


def test_ctrl_c_while_workers_are_still_starting_prints_no_traceback(reference, tmp_path):
    out = tmp_path / "run"
    proc = start_in_own_group("generate", *ARGS, "--workers", 2, "--out", out)
    kids, workers = worker_pids(proc.pid, 1)
    deadline = time.monotonic() + 30
    while "numpy" not in _maps(workers[0]) and time.monotonic() < deadline:  # the worker is still importing
        time.sleep(0.001)
    # hold the main process still so the worker meets Ctrl-C on its own, then let the main one see it
    os.kill(proc.pid, signal.SIGSTOP)
    os.killpg(proc.pid, signal.SIGINT)
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGCONT)
    assert proc.wait(timeout=30) == 130
    assert wait_dead(list(children(proc.pid)) + list(kids), timeout=2.0) == []
    stderr = proc.stderr.read()
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    assert stderr.count("\n") == 1 and stderr.startswith("Error: ")
    if (out / "config.json").exists():
        assert_resumes_identically(out, reference)
    else:  # workers start before the run is created: stopped that early, the same command starts it
        result = run_cli("generate", *ARGS, "--workers", 2, "--out", out)
        assert result.returncode == 0, result.stderr
        assert_same_run(out, reference)


def test_default_workers_follow_the_cpus_this_process_may_use(monkeypatch):
    from trajgen.making.executors import ProcessExecutor, SerialExecutor, choose_executor

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    ex = choose_executor(workers=None, scheduler=None, shards=100)
    ex.close()
    assert isinstance(ex, ProcessExecutor) and ex.workers == 3
    assert isinstance(choose_executor(workers=4, scheduler=None, shards=1), SerialExecutor)


def test_discard_temp_files_removes_only_the_dead_writers_files(tmp_path):
    names = [
        "shard-00001.npz.111.a1b2c3.tmp",
        "manifest.json.222.d4e5f6.tmp",
        "PROGRESS.txt.111.0a0b0c.tmp",
        "shard-00111.npz.333.aaaaaa.tmp",
        "notes.111",
    ]
    for name in names:
        (tmp_path / name).write_text("x")
    _fs.discard_temp_files(tmp_path, [111])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["manifest.json.222.d4e5f6.tmp", "shard-00111.npz.333.aaaaaa.tmp", "notes.111"]
    )
    _fs.discard_temp_files(tmp_path / "missing", [1])  # nothing to do, no error
