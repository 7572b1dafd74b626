"""Races and stale states. Every interleaving is forced, never hoped for: a process is held
at a named point (TRAJGEN_PAUSE, see _fs.pause_point) while another one acts, or an error
is injected (TRAJGEN_FAULT). Real processes, real signals, real kill -9."""

import errno
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from runtools import assert_same_run, cli_run_dir, run_cli, start_cli, trajgen_cmd
from test_workers import children, wait_dead
from trajgen import GenerationConfig
from trajgen.making import Interrupted, generate
from trajgen.making.executors import ProcessExecutor
from trajgen.store import _fs

ARGS = ("--n", 40, "--checkpoint-every", 10, "--seed", 5)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return cli_run_dir(tmp_path_factory, "races", *ARGS, "--workers", 1, "--quiet")


class Pauses:
    """The test's side of _fs.pause_point: which points to hold, wait until held, let go."""

    def __init__(self, where: Path):
        self.dir = where
        where.mkdir(parents=True, exist_ok=True)

    def env(self, *names):
        return {"TRAJGEN_PAUSE": ",".join(names), "TRAJGEN_PAUSE_DIR": str(self.dir)}

    def wait(self, name, proc=None, timeout=60):
        """Wait until a process is held at ``name``; its pid."""
        reached = self.dir / f"{name}.reached"
        deadline = time.monotonic() + timeout
        while not reached.exists():
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"exit {proc.returncode} before reaching {name}: {proc.stderr.read()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing reached {name} in {timeout}s")
            time.sleep(0.002)
        return int(reached.read_text())

    def release(self, name):
        (self.dir / f"{name}.go").touch()


def interrupted_run(tmp_path):
    """A run killed with kill -9 after its first commit: (run_dir, pid of the dead process)."""
    run = tmp_path / "run"
    pauses = Pauses(tmp_path / "kill")
    proc = start_cli("generate", *ARGS, "--workers", 1, "--quiet", "--out", run, env=pauses.env("committed"))
    pauses.wait("committed", proc)
    proc.kill()
    proc.wait(timeout=30)
    assert f"pid {proc.pid} " in (run / ".lock").read_text()  # the dead process's name stays in .lock
    return run, proc.pid


def one_line_error(stderr):
    return stderr.startswith("Error: ") and stderr.count("\n") == 1 and "Traceback" not in stderr


def progress_state(run):
    return json.loads((run / "progress.json").read_text())["state"]


def without_file_access_override():
    """preexec_fn: this child obeys file modes even as root (drops CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH from its bounding set, so the exec'd interpreter lacks them)."""
    if os.geteuid() != 0:
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP; where not permitted, the test is skipped below


def run_unprivileged(*args, denied):
    """The CLI in a process that obeys file modes; ``denied`` is Python code that must fail there."""
    probe = subprocess.run([sys.executable, "-c", denied], capture_output=True, preexec_fn=without_file_access_override)
    if probe.returncode == 0:
        pytest.skip("cannot deny a child process access to a file here")
    return subprocess.run(
        trajgen_cmd(*args), capture_output=True, text=True, timeout=120, preexec_fn=without_file_access_override
    )


# ---------------------------------------------------------------- decisions under the lock


def test_lock_decisions_resume_rereads_the_run_after_locking(reference, tmp_path):
    run = tmp_path / "run"
    log = tmp_path / "ops.log"  # which operation writes the first manifest
    counted = run_cli(
        "generate", *ARGS, "--workers", 1, "--out", tmp_path / "counted", env={"TRAJGEN_FAULT_LOG": str(log)}
    )
    assert counted.returncode == 0, counted.stderr
    first = min(int(line.split()[0]) for line in log.read_text().splitlines() if line.endswith("manifest.json"))
    crash = run_cli("generate", *ARGS, "--workers", 1, "--out", run, env={"TRAJGEN_FAULT": f"exit@{first}"})
    assert crash.returncode == _fs.EXIT_CODE  # killed right after config.json, before the first manifest
    assert (run / "config.json").exists() and not (run / "manifest.json").exists()
    pauses = Pauses(tmp_path / "pauses")
    first = start_cli("resume", run, "--workers", 1, env=pauses.env("lock"))
    pauses.wait("lock", first)  # it has looked at the run but not locked it yet
    second = run_cli("resume", run, "--workers", 1, "--quiet")
    assert second.returncode == 0, second.stderr
    committed = {p.name: p.stat().st_ino for p in (run / "shards").iterdir()}
    pauses.release("lock")
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert "already complete" in out
    assert {p.name: p.stat().st_ino for p in (run / "shards").iterdir()} == committed  # none deleted or remade
    assert_same_run(run, reference)


def test_lock_decisions_status_of_a_run_finishing_meanwhile_is_complete(reference, tmp_path):
    run, _ = interrupted_run(tmp_path)
    pauses = Pauses(tmp_path / "pauses")
    writer = start_cli("resume", run, "--workers", 1, "--quiet", env=pauses.env("committed"))
    pauses.wait("committed", writer)  # the writer holds the run, half done
    status = start_cli("status", run, "--json", env=pauses.env("status-read"))
    pauses.wait("status-read", status)  # status has read the manifest
    pauses.release("committed")
    assert writer.wait(timeout=60) == 0
    pauses.release("status-read")
    out, err = status.communicate(timeout=60)
    assert status.returncode == 0, err
    assert json.loads(out)["state"] == "COMPLETE"


# ---------------------------------------------------------------- the lock probe


def test_lock_probe_a_reader_never_refuses_a_writer(reference, tmp_path):
    run, _ = interrupted_run(tmp_path)
    pauses = Pauses(tmp_path / "pauses")
    reader = start_cli("status", run, env=pauses.env("lock-probe"))
    pauses.wait("lock-probe", reader)  # status is probing the lock at this moment
    writer = run_cli("resume", run, "--workers", 1, "--quiet")
    pauses.release("lock-probe")
    reader.communicate(timeout=60)
    assert writer.returncode == 0, writer.stderr
    assert_same_run(run, reference)


def test_lock_probe_a_refusal_names_a_live_holder_only(reference, tmp_path):
    run, dead = interrupted_run(tmp_path)  # .lock still names the killed process
    pauses = Pauses(tmp_path / "pauses")
    holder = start_cli("resume", run, "--workers", 1, "--quiet", env=pauses.env("lock-taken", "committed"))
    pauses.wait("lock-taken", holder)  # it holds the lock but has not written its name yet
    refused = run_cli("resume", run, "--workers", 1)
    pauses.release("lock-taken")
    pauses.wait("committed", holder)  # now it has
    named = run_cli("resume", run, "--workers", 1)
    pauses.release("committed")
    assert holder.wait(timeout=60) == 0
    assert refused.returncode == 1 and one_line_error(refused.stderr) and "in use" in refused.stderr, refused.stderr
    assert f"pid {dead} " not in refused.stderr
    assert named.returncode == 1 and f"pid {holder.pid} " in named.stderr, named.stderr
    assert_same_run(run, reference)


# ---------------------------------------------------------------- threads, processes and signals

SMALL = GenerationConfig(n=40, checkpoint_every=10, seed=5)


def heartbeats():
    return [t for t in threading.enumerate() if t.name == "trajgen-progress" and t.is_alive()]


def interrupt_at_shard(monkeypatch, k):
    """Ctrl-C arrives while this process makes shard k (a real SIGINT, raised in this thread)."""
    from trajgen.making import loop as run_module

    make = run_module.produce_shard

    def produce(config, run_dir, index, **options):
        if index == k:
            signal.raise_signal(signal.SIGINT)
        return make(config, run_dir, index, **options)

    monkeypatch.setattr(run_module, "produce_shard", produce)


def test_cleanup_heartbeat_is_stopped_before_tmp_is_cleared(tmp_path, monkeypatch):
    clear, seen = _fs.clear_dir, []

    def clear_dir(path):
        seen.append(len(heartbeats()))
        clear(path)

    monkeypatch.setattr(_fs, "clear_dir", clear_dir)
    interrupt_at_shard(monkeypatch, 2)
    with pytest.raises(Interrupted):
        generate(SMALL, tmp_path / "run", workers=1, progress_interval=0.01, check_space=False)
    assert seen[-1] == 0  # the interrupt's cleanup of .tmp/ ran with no heartbeat writing there
    assert heartbeats() == []
    assert (tmp_path / "run" / "PROGRESS.txt").read_text().startswith("trajgen STOPPED")


def test_cleanup_a_failing_cleanup_still_stops_the_heartbeat(tmp_path, monkeypatch):
    clear, calls = _fs.clear_dir, []

    def clear_dir(path):  # the third call is the interrupt's: a file vanishes under it
        calls.append(path)
        if len(calls) >= 3:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory")
        clear(path)

    monkeypatch.setattr(_fs, "clear_dir", clear_dir)
    interrupt_at_shard(monkeypatch, 2)
    try:
        with pytest.raises(Interrupted):
            generate(SMALL, tmp_path / "run", workers=1, progress_interval=0.01, check_space=False)
        assert heartbeats() == []  # nothing keeps writing the run after the call returned
        assert progress_state(tmp_path / "run") == "STOPPED"
    finally:
        for t in heartbeats():  # a leaked heartbeat must not outlive this test
            t._target.__self__._stopped.set()


def test_cleanup_a_second_ctrl_c_waits_for_the_cleanup(reference, tmp_path):
    run = tmp_path / "run"
    pauses = Pauses(tmp_path / "pauses")
    proc = start_cli("generate", *ARGS, "--workers", 1, "--out", run, env=pauses.env("committed", "interrupt-cleanup"))
    pauses.wait("committed", proc)
    proc.send_signal(signal.SIGINT)
    pauses.wait("interrupt-cleanup", proc)
    proc.send_signal(signal.SIGINT)  # a second Ctrl-C while the first one's cleanup runs
    pauses.release("interrupt-cleanup")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert one_line_error(err) and f"resumable: trajgen resume {run}" in err, err
    assert (run / "PROGRESS.txt").read_text().startswith("trajgen STOPPED")
    assert list((run / ".tmp").iterdir()) == []
    assert run_cli("resume", run, "--workers", 1, "--quiet").returncode == 0
    assert_same_run(run, reference)


def test_cleanup_ctrl_c_while_workers_start_stops_them_before_reporting(tmp_path):
    run = tmp_path / "run"
    pauses = Pauses(tmp_path / "pauses")
    proc = start_cli("generate", *ARGS, "--workers", 2, "--out", run, env=pauses.env("workers-started", "warm-up"))
    pauses.wait("workers-started", proc)
    pauses.wait("warm-up")  # a worker is still starting, and stays so
    kids = [pid for pid, cmd in children(proc.pid).items() if "spawn_main" in cmd]  # the pool's workers
    assert len(kids) == 2
    proc.send_signal(signal.SIGINT)
    try:
        code = proc.wait(timeout=20)  # without waiting for the worker to finish starting
    finally:
        pauses.release("warm-up")
    err = proc.stderr.read()
    assert code == 130 and one_line_error(err), err
    assert wait_dead(kids, timeout=0) == []  # every worker was stopped before the command reported


# ---------------------------------------------------------------- OS errors are one line


def test_oserrors_log_append_failing_on_a_complete_run(reference, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    result = run_cli("resume", run, "--workers", 1, env={"TRAJGEN_FAULT": "EIO@append:1"})
    assert result.returncode == 1 and one_line_error(result.stderr), result.stderr
    assert "run.log" in result.stderr or "log" in result.stderr
    assert_same_run(run, reference)


def test_oserrors_unreadable_shard_in_verify_and_export(reference, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    shard = run / "shards" / "shard-00002.npz"
    shard.chmod(0)
    verify = run_unprivileged("verify", run, denied=f"open({str(shard)!r})")
    export = run_unprivileged("export", run, "-o", tmp_path / "out.npz", denied=f"open({str(shard)!r})")
    assert verify.returncode == 1 and one_line_error(verify.stderr), verify.stderr
    assert "shards/shard-00002.npz" in verify.stdout and "Permission denied" in verify.stdout, verify.stdout
    assert export.returncode == 1 and one_line_error(export.stderr), export.stderr
    assert "shard-00002.npz" in export.stderr and "Permission denied" in export.stderr
    assert not (tmp_path / "out.npz").exists()


def test_oserrors_unreadable_lock_in_status(reference, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    (run / ".lock").chmod(0)
    result = run_unprivileged("status", run, denied=f"open({str(run / '.lock')!r})")
    assert result.returncode == 1 and one_line_error(result.stderr), result.stderr
    assert ".lock" in result.stderr and "Permission denied" in result.stderr


def test_oserrors_too_many_open_files_while_starting_workers(tmp_path):
    run = tmp_path / "run"

    def few_files():
        resource.setrlimit(resource.RLIMIT_NOFILE, (24, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

    # 40 shards, so all 16 workers are wanted
    proc = subprocess.Popen(
        trajgen_cmd("generate", "--n", 400, "--checkpoint-every", 10, "--workers", 16, "--out", run),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=few_files,
    )
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and one_line_error(err), err
    assert "worker processes" in err and "Too many open files" in err
    assert not run.exists()  # nothing was created: the same command works once the limit is raised


def test_oserrors_an_unlisted_shard_that_cannot_be_removed(reference, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["shards"], manifest["status"] = manifest["shards"][:2], "running"  # shards 2 and 3 are not committed
    (run / "manifest.json").write_text(json.dumps(manifest))
    (run / "shards").chmod(0o555)  # so they cannot be removed before being made again
    try:
        result = run_unprivileged("resume", run, "--workers", 1, denied=f"open({str(run / 'shards' / 'probe')!r}, 'w')")
    finally:
        (run / "shards").chmod(0o755)
    assert result.returncode == 1 and one_line_error(result.stderr), result.stderr
    assert "Permission denied" in result.stderr and f"trajgen resume {run}" in result.stderr


# ---------------------------------------------------------------- terminal states match the manifest


def test_states_a_failed_last_progress_write_leaves_complete(reference, tmp_path):
    log = tmp_path / "ops.log"
    first = run_cli(
        "generate",
        *ARGS,
        "--workers",
        1,
        "--quiet",
        "--progress-interval",
        3600,
        "--out",
        tmp_path / "counted",
        env={"TRAJGEN_FAULT_LOG": str(log)},
    )
    assert first.returncode == 0, first.stderr
    ops = log.read_text().splitlines()
    last = max(int(line.split()[0]) for line in ops if line.split()[1] == "open" and line.endswith("PROGRESS.txt"))
    run = tmp_path / "run"
    result = run_cli(
        "generate",
        *ARGS,
        "--workers",
        1,
        "--quiet",
        "--progress-interval",
        3600,
        "--out",
        run,
        env={"TRAJGEN_FAULT": f"EIO@{last}"},
    )
    assert result.returncode == 1 and one_line_error(result.stderr), result.stderr
    assert json.loads((run / "manifest.json").read_text())["status"] == "complete"
    assert (run / "PROGRESS.txt").read_text().startswith("trajgen COMPLETE 100.0%")
    assert progress_state(run) == "COMPLETE"
    assert_same_run(run, reference)


@pytest.mark.parametrize("stale", ["FAILED", "STOPPED"])
def test_states_resume_repairs_a_stale_state_of_a_complete_run(reference, tmp_path, stale):
    from dataclasses import replace

    from trajgen.watch.progress import snapshot_from_json, write_progress

    run = tmp_path / "run"
    shutil.copytree(reference, run)
    snapshot = snapshot_from_json(json.loads((run / "progress.json").read_text()))
    write_progress(run, replace(snapshot, state=stale, error="disk full" if stale == "FAILED" else None), run / ".tmp")
    result = run_cli("resume", run, "--workers", 1)
    assert result.returncode == 0 and "already complete" in result.stdout, result.stderr
    assert (run / "PROGRESS.txt").read_text().startswith("trajgen COMPLETE 100.0%")
    assert progress_state(run) == "COMPLETE"
    assert_same_run(run, reference)


# ---------------------------------------------------------------- worker deaths

DEATHS = (2, 5, 8, 11)  # more isolated deaths than MAX_POOL_RESTARTS, with commits between them


def make_or_die(config, run_dir, k):
    """A task that kills its own worker (kill -9) the first time it is given a shard in DEATHS,
    and every time it is given a shard named in ALWAYS_DIES."""
    marker = Path(run_dir) / f"died-{k}"
    if (k in DEATHS and not marker.exists()) or (Path(run_dir) / "ALWAYS_DIES").read_text() == str(k):
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return k


def make_all(tmp_path, shards, always_dies=None):
    (tmp_path / "ALWAYS_DIES").write_text(str(always_dies))
    # one worker: a death breaks its pool at once, so every death is one restart
    executor = ProcessExecutor(1)
    try:
        return list(executor.run(make_or_die, SMALL, str(tmp_path), shards))
    finally:
        executor.close()


def test_restarts_isolated_worker_deaths_do_not_stop_a_run(tmp_path):
    assert sorted(make_all(tmp_path, list(range(14)))) == list(range(14))
    assert sorted(p.name for p in tmp_path.glob("died-*")) == sorted(f"died-{k}" for k in DEATHS)


def test_restarts_deaths_without_progress_stop_the_run(tmp_path):
    from trajgen.making.executors import MAX_POOL_RESTARTS, WorkerLostError

    with pytest.raises(WorkerLostError, match=f"died {MAX_POOL_RESTARTS + 1} times"):
        make_all(tmp_path, [0, 1], always_dies=0)


# ---------------------------------------------------------------- CPUs


@pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs at least two CPUs to restrict",
)
def test_cpus_dry_run_plans_with_the_cpus_it_may_use(tmp_path):
    one = min(os.sched_getaffinity(0))
    result = subprocess.run(
        trajgen_cmd("generate", *ARGS, "--dry-run", "--out", tmp_path / "run"),
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: os.sched_setaffinity(0, {one}),
    )  # like taskset -c 0
    assert "with 1 worker(s)" in result.stdout, result.stdout + result.stderr
