"""Every Dask task re-checks the worker it runs on before writing: a worker that joins a
running cluster with other versions (or without the run's directory) writes nothing.

A real cluster on loopback: `dask scheduler` and `dask worker` processes. "Other versions"
is a worker started with TRAJGEN_VERSIONS_OVERRIDE (read by versions.byte_versions in that
process only); TRAJGEN_FAULT_LOG in its environment logs every file operation it makes.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from runtools import assert_same_run, wait_for_port
from trajgen import GenerationConfig
from trajgen.errors import TrajgenError
from trajgen.making import generate
from trajgen.store.versions import OVERRIDE_ENV

distributed = pytest.importorskip("distributed")

CONFIG = GenerationConfig(n=120, checkpoint_every=10, seed=31, size=16, frames=4)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dask(*args, env=None):
    return subprocess.Popen(
        [sys.executable, "-m", "dask", *map(str, args)],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _stop(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


@pytest.fixture(scope="module")
def scheduler():
    port = _free_port()
    proc = _dask("scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard")
    try:
        wait_for_port(port, "dask scheduler")
        address = f"tcp://127.0.0.1:{port}"
        with distributed.Client(address, set_as_default=False, timeout=30) as client:
            yield address, client
    finally:
        _stop(proc)


@pytest.fixture
def cluster(scheduler):
    """The scheduler with one worker of this environment; yields (address, client, start_worker)."""
    address, client = scheduler
    workers = []

    def start_worker(name, nthreads=1, env=None):
        workers.append(
            _dask("worker", address, "--name", name, "--nthreads", nthreads, "--no-nanny", "--no-dashboard", env=env)
        )

    try:
        start_worker("good")
        client.wait_for_workers(1, timeout=60)
        yield address, client, start_worker
    finally:
        for p in workers:
            _stop(p)
        deadline = time.monotonic() + 30
        while client.nthreads() and time.monotonic() < deadline:  # the next test starts from no workers
            time.sleep(0.05)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("dask_workers") / "run"
    generate(CONFIG, out, workers=1, check_space=False)
    return out


def _join_late(monkeypatch, client, start_worker, bad_log, *, retire_good, nthreads=1):
    """Once the run has checked its workers, a worker with other versions joins (and the good one may leave)."""
    import trajgen.making.dask_executor as dx

    checked = dx._check_workers

    def check_then_join(*args, **kwargs):
        checked(*args, **kwargs)
        if kwargs.get("probe_dir"):  # the check before the run's directory exists; the run checks again
            return
        start_worker("late", nthreads, env={OVERRIDE_ENV: "numpy=0.0.1", "TRAJGEN_FAULT_LOG": str(bad_log)})
        client.wait_for_workers(2, timeout=60)
        if retire_good:
            good = [a for a, w in client.scheduler_info()["workers"].items() if w["name"] == "good"]
            client.retire_workers(good, close_workers=True)
            deadline = time.monotonic() + 30
            while len(client.scheduler_info()["workers"]) != 1:
                assert time.monotonic() < deadline
                time.sleep(0.05)

    monkeypatch.setattr(dx, "_check_workers", check_then_join)


def test_a_late_worker_with_other_versions_is_refused_and_writes_nothing(cluster, tmp_path, monkeypatch):
    address, client, start_worker = cluster
    bad_log = tmp_path / "late-worker-io.log"
    _join_late(monkeypatch, client, start_worker, bad_log, retire_good=True)
    out = tmp_path / "run"
    with pytest.raises(TrajgenError) as e:
        generate(CONFIG, out, scheduler=address, check_space=False)
    message = str(e.value)
    assert "\n" not in message and "numpy" in message and "0.0.1" in message, message
    assert f"trajgen resume {out} --scheduler {address}" in message
    assert not bad_log.exists() or bad_log.read_text() == "", bad_log.read_text()
    assert json.loads((out / "manifest.json").read_text())["shards"] == []
    assert list((out / "shards").iterdir()) == []


def test_the_other_workers_make_the_shards_a_late_worker_refused(cluster, reference, tmp_path, monkeypatch):
    address, client, start_worker = cluster
    bad_log = tmp_path / "late-worker-io.log"
    # four threads against the good worker's one: the scheduler hands the late worker tasks at once
    _join_late(monkeypatch, client, start_worker, bad_log, retire_good=False, nthreads=4)
    out = tmp_path / "run"
    generate(CONFIG, out, scheduler=address, check_space=False)
    assert_same_run(out, reference)
    assert not bad_log.exists() or bad_log.read_text() == "", bad_log.read_text()
    log = (out / "run.log").read_text()
    assert "refused" in log and "numpy" in log, log


def test_a_task_on_a_worker_that_sees_another_directory_writes_nothing(reference, tmp_path):
    """The directory token: a worker whose RUN_DIR is not the client's (no shared filesystem)."""
    from trajgen.making.dask_executor import WorkerRefused, _checked_task
    from trajgen.making.shardmaker import produce_shard
    from trajgen.store.versions import byte_versions

    run = tmp_path / "run"
    (run / ".tmp").mkdir(parents=True)
    (run / "shards").mkdir()
    (run / ".tmp" / "dask-token-x").write_text("another machine's token")
    with pytest.raises(WorkerRefused, match="cannot see the run directory"):
        _checked_task(produce_shard, CONFIG, str(run), 0, "dask-token-x", "the client's token", byte_versions())
    assert list((run / "shards").iterdir()) == []
