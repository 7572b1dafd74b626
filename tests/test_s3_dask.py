"""Dask with no shared filesystem: the workers of a real cluster on loopback put their shards straight
into the bucket (only the manifest commit goes through the client), and a worker killed with -9 in
the middle of a shard costs nothing but time: the shards are byte-identical to the same run on disk."""

import json
import os
import signal
import time

import pytest

from runtools import result_bytes
from s3_server import get_bytes, object_names, pending_uploads
from trajgen import GenerationConfig
from trajgen.making import generate

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.slow

CONFIG = GenerationConfig(n=48, checkpoint_every=6, size=16, frames=4, seed=3)


def test_dask_workers_write_the_bucket_and_a_killed_worker_changes_no_byte(s3, s3_server, tmp_path, monkeypatch):
    reference = tmp_path / "disk"
    generate(CONFIG, reference, workers=1)
    monkeypatch.setenv("TRAJGEN_CACHE_DIR", str(tmp_path / "cache"))
    # every worker holds its first shard until told to go: the test kills one of them there
    monkeypatch.setenv("TRAJGEN_PAUSE", "shard-start")
    monkeypatch.setenv("TRAJGEN_PAUSE_DIR", str(tmp_path))
    url = f"{s3}/dask"
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1"
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        client.wait_for_workers(2, timeout=60)
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(generate, CONFIG, url, scheduler=cluster.scheduler_address)
            reached = tmp_path / "shard-start.reached"
            deadline = time.monotonic() + 60
            while not reached.exists():
                assert time.monotonic() < deadline and not running.done()
                time.sleep(0.01)
            victim = int(reached.read_text())
            assert victim != os.getpid()  # a worker process, not the client
            os.kill(victim, signal.SIGKILL)
            (tmp_path / "shard-start.go").touch()
            summary = running.result(timeout=120)
    assert summary.made_shards == CONFIG.num_shards
    on_disk = result_bytes(reference)
    for name, data in on_disk.items():
        if name.startswith("shards/") or name == "manifest.json":
            assert get_bytes(s3_server, f"{url}/{name}") == data, f"{name} differs"
    shards = [n for n in object_names(s3_server, url) if "/shards/" in n]
    assert len(shards) == CONFIG.num_shards and pending_uploads(s3_server, url) == []
    assert json.loads(get_bytes(s3_server, f"{url}/manifest.json"))["status"] == "complete"
