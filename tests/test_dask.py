"""--scheduler: shards made on a real Dask cluster (LocalCluster, worker processes on loopback)."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from runtools import LONG, LONG_ARGS, assert_same_run, kill, run_cli, start_cli, wait_for_port, wait_for_shards
from trajgen import GenerationConfig
from trajgen.errors import TrajgenError
from trajgen.making import generate, resume

distributed = pytest.importorskip("distributed")

SMALL = GenerationConfig(n=600, checkpoint_every=50, seed=23, size=32, frames=8)
# runtools.LONG_ARGS: about 2 s of work on one core, long enough for a kill or a restart to land mid-run;
# conftest's long_reference is that run made by one local worker
LONG_CONFIG = GenerationConfig(**LONG)


@pytest.fixture(scope="module")
def cluster():
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1"
        ) as local,
        distributed.Client(local, set_as_default=False) as client,
    ):
        yield local.scheduler_address, client


@pytest.fixture
def two_workers(cluster):
    """The cluster with both workers up (a test before may have killed one)."""
    address, client = cluster
    client.wait_for_workers(2, timeout=60)
    return address, client


@pytest.fixture(scope="module")
def small_reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("dask") / "small"
    generate(SMALL, out, workers=1)
    return out


def _scheduler_tasks(client):
    return client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dask_run_is_identical_to_one_worker(two_workers, small_reference, tmp_path):
    address, client = two_workers
    out = tmp_path / "run"
    seen = []
    done = threading.Event()

    def watch():  # tasks the scheduler holds at any moment: the client keeps only a few in flight
        while not done.is_set():
            seen.append(_scheduler_tasks(client))
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        summary = generate(SMALL, out, scheduler=address)
    finally:
        done.set()
        watcher.join()
    assert summary.made_shards == SMALL.num_shards == 12
    assert_same_run(out, small_reference)
    assert f"executor=dask {address}" in (out / "run.log").read_text()
    assert list((out / ".tmp").iterdir()) == []
    assert seen and max(seen) <= 2 * 2 + 1, seen  # never all 12 shards at once


def test_relative_out_is_resolved_for_the_workers(two_workers, small_reference, tmp_path, monkeypatch):
    address, _ = two_workers
    monkeypatch.chdir(tmp_path)  # the workers' working directory is elsewhere
    generate(SMALL, "rel/run", scheduler=address)
    assert_same_run(tmp_path / "rel" / "run", small_reference)


def test_cli_with_scheduler_is_identical(two_workers, small_reference, tmp_path):
    address, _ = two_workers
    out = tmp_path / "run"
    args = (
        "--n",
        SMALL.n,
        "--checkpoint-every",
        SMALL.checkpoint_every,
        "--seed",
        SMALL.seed,
        "--size",
        SMALL.size,
        "--frames",
        SMALL.frames,
    )
    result = run_cli("generate", *args, "--scheduler", address, "--out", out)
    assert result.returncode == 0, result.stderr
    # without a terminal the only stderr output is plain progress lines
    assert all(line.startswith("trajgen ") for line in result.stderr.splitlines()), result.stderr
    assert "600 samples" in result.stdout
    assert_same_run(out, small_reference)


def test_a_worker_killed_mid_run_only_means_recompute(two_workers, long_reference, tmp_path):
    address, client = two_workers
    out = tmp_path / "run"
    pids = client.run(os.getpid)
    config = LONG_CONFIG
    killed = []

    def kill_one_worker():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if len(json.loads((out / "manifest.json").read_text())["shards"]) >= 1:
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.005)
        pid = next(iter(pids.values()))
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    killer = threading.Thread(target=kill_one_worker, daemon=True)
    killer.start()
    generate(config, out, scheduler=address)
    killer.join()
    assert killed
    assert_same_run(out, long_reference)
    # the watcher learns why the run took longer, as with a local worker
    lines = [line for line in (out / "run.log").read_text().splitlines() if "left the cluster" in line]
    assert len(lines) == 1 and next(iter(pids)) in lines[0] and "other workers" in lines[0], lines


def test_a_worker_restarted_mid_run_only_means_recompute(two_workers, long_reference, tmp_path):
    address, client = two_workers
    out = tmp_path / "run"
    proc = start_cli("generate", *LONG_ARGS, "--scheduler", address, "--out", out)
    wait_for_shards(out, 1, proc)
    client.restart_workers([next(iter(client.scheduler_info()["workers"]))])
    assert proc.wait(timeout=60) == 0, proc.stderr.read()
    assert_same_run(out, long_reference)


def test_resume_after_the_client_is_killed(two_workers, long_reference, tmp_path):
    address, client = two_workers
    out = tmp_path / "run"
    proc = start_cli("generate", *LONG_ARGS, "--scheduler", address, "--out", out)
    wait_for_shards(out, 1, proc)
    kill(proc, signal.SIGKILL)
    result = run_cli("resume", out, "--scheduler", address, "--quiet")
    assert result.returncode == 0, result.stderr
    assert_same_run(out, long_reference)


def test_ctrl_c_cancels_the_cluster_work_and_leaves_the_run_resumable(two_workers, long_reference, tmp_path):
    address, client = two_workers
    out = tmp_path / "run"
    proc = start_cli("generate", *LONG_ARGS, "--scheduler", address, "--out", out)
    wait_for_shards(out, 1, proc)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    assert time.monotonic() - sent < 3.0
    stderr = proc.stderr.read()
    assert stderr.count("\n") == 1 and f"trajgen resume {out}" in stderr, stderr
    deadline = time.monotonic() + 10
    while _scheduler_tasks(client) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _scheduler_tasks(client) == 0  # nothing left queued on the cluster
    result = run_cli("resume", out, "--scheduler", address, "--quiet")
    assert result.returncode == 0, result.stderr
    assert_same_run(out, long_reference)


def test_unreachable_scheduler_fails_fast_with_one_line_and_leaves_nothing(two_workers, small_reference, tmp_path):
    address, _ = two_workers
    out = tmp_path / "run"
    bad = f"tcp://127.0.0.1:{_free_port()}"
    args = (
        "--n",
        SMALL.n,
        "--checkpoint-every",
        SMALL.checkpoint_every,
        "--seed",
        SMALL.seed,
        "--size",
        SMALL.size,
        "--frames",
        SMALL.frames,
        "--quiet",
        "--out",
        out,
    )
    started = time.monotonic()
    result = run_cli("generate", *args, "--scheduler", bad)
    assert result.returncode == 1
    assert time.monotonic() - started < 15
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: "), result.stderr
    assert bad in result.stderr and "dask scheduler" in result.stderr
    assert not out.exists()  # nothing that blocks the same command once the scheduler is up
    retry = run_cli("generate", *args, "--scheduler", address)
    assert retry.returncode == 0, retry.stderr
    assert_same_run(out, small_reference)


def test_malformed_scheduler_address_is_a_clear_error(tmp_path):
    with pytest.raises(TrajgenError) as e:
        generate(SMALL, tmp_path / "run", scheduler="http://127.0.0.1:1")
    assert "tcp://HOST:PORT" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "run").exists()


def test_resume_against_an_unreachable_scheduler_changes_nothing(small_reference, tmp_path):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(small_reference, out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["shards"], manifest["status"] = manifest["shards"][:3], "running"
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    before = (out / "manifest.json").read_bytes()
    with pytest.raises(TrajgenError) as e:
        resume(out, scheduler=f"tcp://127.0.0.1:{_free_port()}")
    assert "dask scheduler" in str(e.value)
    assert (out / "manifest.json").read_bytes() == before
    resume(out, workers=1)
    assert_same_run(out, small_reference)


def test_workers_that_cannot_see_the_run_directory_are_refused(two_workers, tmp_path, monkeypatch):
    """A worker that sees another directory at the same path (no shared filesystem) is caught up front."""
    import trajgen.making.dask_executor as dx

    address, _ = two_workers
    out = tmp_path / "run"
    monkeypatch.setattr(dx, "_write_probe", lambda path, token: path.write_text("another machine's disk"))
    with pytest.raises(TrajgenError) as e:
        generate(SMALL, out, scheduler=address)
    message = str(e.value)
    assert "\n" not in message and "shared filesystem" in message and str(out) in message
    # found before anything was created: the same command works once the workers see the directory
    assert "resume" not in message and "the same command again" in message
    assert not out.exists() and list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    assert generate(SMALL, out, scheduler=address).made_samples == SMALL.n


def test_a_scheduler_without_workers_is_found_before_the_run_is_created(tmp_path, monkeypatch):
    import trajgen.making.dask_executor as dx

    monkeypatch.setattr(dx, "CONNECT_TIMEOUT", 1.0)
    out = tmp_path / "runs" / "new"
    with distributed.LocalCluster(n_workers=0, processes=True, dashboard_address=None, host="127.0.0.1") as empty:
        with pytest.raises(TrajgenError) as e:
            generate(SMALL, out, scheduler=empty.scheduler_address)
    message = str(e.value)
    assert "has no workers" in message and "resume" not in message and "the same command again" in message
    assert not (tmp_path / "runs").exists()


def test_missing_dask_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed → ImportError
    with pytest.raises(TrajgenError) as e:
        generate(SMALL, tmp_path / "run", scheduler="tcp://127.0.0.1:8786")
    assert "pip install 'dask[distributed]'" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "run").exists()


def test_trajgen_imports_dask_only_when_a_scheduler_is_used():
    code = (
        "import sys, trajgen, trajgen.cli, trajgen.making.generate_run, trajgen.making.executors, trajgen.making.dask_executor; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_server_that_is_not_a_scheduler_fails_within_the_timeout(tmp_path):
    from trajgen.making.dask_executor import DaskError, DaskExecutor

    with socket.socket() as server:  # accepts connections and never answers
        server.bind(("127.0.0.1", 0))
        server.listen()
        started = time.monotonic()
        with pytest.raises(DaskError) as e:
            DaskExecutor(f"tcp://127.0.0.1:{server.getsockname()[1]}", timeout=1.0)
    assert time.monotonic() - started < 5
    assert "no answer within 1 s" in str(e.value) and "dask scheduler" in str(e.value)


def test_a_worker_address_is_not_taken_for_the_scheduler(two_workers, tmp_path):
    address, client = two_workers
    worker = next(iter(client.scheduler_info()["workers"]))
    with pytest.raises(TrajgenError) as e:
        generate(SMALL, tmp_path / "run", scheduler=worker)
    assert "not the scheduler" in str(e.value) and not (tmp_path / "run").exists()


def _dask_cli(*args):
    return subprocess.Popen(
        [sys.executable, "-m", "dask", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def test_losing_the_scheduler_mid_run_is_one_line_and_resumable(long_reference, tmp_path, monkeypatch):
    """A scheduler started with `dask scheduler`, killed mid-run: no traceback from Dask's logs."""
    import trajgen.making.dask_executor as dx

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = _dask_cli("scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard")
    worker = None
    try:
        wait_for_port(port, "dask scheduler")
        monkeypatch.setattr(dx, "CONNECT_TIMEOUT", 1.0)
        with pytest.raises(TrajgenError) as e:  # no workers yet
            generate(SMALL, tmp_path / "idle", scheduler=address)
        assert "has no workers" in str(e.value) and f"dask worker {address}" in str(e.value)
        worker = _dask_cli("worker", address, "--nworkers", "2", "--nthreads", "1", "--no-dashboard")
        out = tmp_path / "run"
        proc = start_cli("generate", *LONG_ARGS, "--scheduler", address, "--out", out)
        wait_for_shards(out, 1, proc)
        os.killpg(scheduler.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == 1
        stderr = proc.stderr.read()
        assert stderr.count("\n") == 1 and "lost the Dask scheduler" in stderr, stderr
        assert f"trajgen resume {out} --scheduler {address}" in stderr
    finally:
        for p in (worker, scheduler):
            if p is not None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
    result = run_cli("resume", out, "--workers", 2, "--quiet")  # any executor finishes any run
    assert result.returncode == 0, result.stderr
    assert_same_run(out, long_reference)
