"""Runs in object storage, against moto's real S3 server (started by the tests): the same bytes as on
disk, kill -9 at every stage of a commit, racing writers, reading back, and the loader."""

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from runtools import kill, result_bytes, run_cli, start_cli
from s3_server import get_bytes, object_names, pending_uploads

pytestmark = pytest.mark.slow

ARGS = ("--n", 48, "--checkpoint-every", 12, "--size", 32, "--frames", 8, "--seed", 5)
# shards of 12.6 MB (stored, not deflated): each goes up as a multipart upload of 5 MiB parts
BIG = ("--n", 128, "--checkpoint-every", 64, "--size", 64, "--frames", 16, "--compress-level", 0)
PARTS = {"TRAJGEN_S3_PART_BYTES": str(5 * 2**20)}


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAJGEN_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def disk_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("disk") / "run"
    assert run_cli("generate", *ARGS, "--workers", 2, "--out", out, "--quiet").returncode == 0
    return out


@pytest.fixture(scope="module")
def big_disk_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("big") / "run"
    assert run_cli("generate", *BIG, "--workers", 1, "--out", out, "--quiet").returncode == 0
    return out


def bucket_bytes(endpoint, url) -> dict[str, bytes]:
    """The objects that must equal a disk run's files: config.json, manifest.json and the shards."""
    prefix = url.removeprefix("s3://").partition("/")[2]
    names = [k[len(prefix) + 1 :] for k in object_names(endpoint, url)]
    keep = [n for n in names if n in ("config.json", "manifest.json") or n.startswith("shards/")]
    return {n: get_bytes(endpoint, f"{url}/{n}") for n in keep}


def assert_same_as_disk(endpoint, url, disk):
    on_disk, in_bucket = result_bytes(disk), bucket_bytes(endpoint, url)
    assert sorted(in_bucket) == sorted(on_disk)
    for name in on_disk:
        if name == "config.json":  # records where progress goes; the same config and versions
            a, b = json.loads(on_disk[name]), json.loads(in_bucket[name])
            assert a["config"] == b["config"] and a["versions"] == b["versions"]
        else:
            assert in_bucket[name] == on_disk[name], f"{name} differs"


def test_a_run_in_a_bucket_has_the_bytes_of_the_same_run_on_disk_and_verifies(s3, s3_server, disk_run):
    url = f"{s3}/runs/a"
    made = run_cli("generate", *ARGS, "--workers", 2, "--out", url)
    assert made.returncode == 0, made.stderr
    assert f"→ {url}" in made.stdout
    assert_same_as_disk(s3_server, url, disk_run)
    progress = get_bytes(s3_server, f"{url}/PROGRESS.txt").decode()
    assert progress.startswith(f"trajgen COMPLETE 100.0%  {url}")
    assert "committed shard 3" in get_bytes(s3_server, f"{url}/run.log").decode()
    checked = run_cli("verify", url)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"Checked {url}: 4 of 4 shards committed" in checked.stdout and "OK: every check passed" in checked.stdout
    st = run_cli("status", url, "--json")
    assert json.loads(st.stdout)["state"] == "COMPLETE" and json.loads(st.stdout)["run_dir"] == url


@pytest.mark.parametrize("where", ["upload-part", "bucket-commit"])
def test_kill_9_mid_upload_or_mid_commit_then_resume_gives_the_same_bytes_and_leaves_no_debris(
    where, s3, s3_server, big_disk_run, tmp_path
):
    url = f"{s3}/big"
    # a short lease, still long enough that the refused resume below starts within it on a busy machine
    lease = {"TRAJGEN_LEASE_SECONDS": "8"}
    pause = {"TRAJGEN_PAUSE": where, "TRAJGEN_PAUSE_DIR": str(tmp_path), **lease, **PARTS}
    proc = start_cli("generate", *BIG, "--workers", 1, "--out", url, "--quiet", env=pause)
    reached = tmp_path / f"{where}.reached"
    deadline = time.monotonic() + 60
    while not reached.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else "timeout"
        time.sleep(0.01)
    kill(proc)
    if where == "upload-part":
        assert pending_uploads(s3_server, url) == ["big/shards/shard-00000.npz"]  # one part up, never completed
        assert "big/shards/shard-00000.npz" not in object_names(s3_server, url)  # nothing half-visible
    else:
        assert "big/shards/shard-00000.npz" in object_names(s3_server, url)  # made, never listed
        assert json.loads(get_bytes(s3_server, f"{url}/manifest.json"))["shards"] == []
    st = run_cli("status", url)
    assert st.stdout.startswith("trajgen ") and "pid" not in st.stdout.splitlines()[0]
    # the killed holder's lease runs out before anyone may take the run over
    env = {**lease, **PARTS}
    refused = run_cli("resume", url, "--quiet", env=env)
    assert refused.returncode == 1 and "is in use by pid" in refused.stderr, refused.stderr
    _wait_for_lease_to_expire(s3_server, url)
    resumed = run_cli("resume", url, "--workers", 1, env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert "took over the lease of pid" in resumed.stderr
    assert pending_uploads(s3_server, url) == []
    assert_same_as_disk(s3_server, url, big_disk_run)


def _wait_for_lease_to_expire(endpoint, url, timeout=90):
    deadline = time.monotonic() + timeout
    while json.loads(get_bytes(endpoint, f"{url}/.lock"))["expires_unix"] > time.time():
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_two_racing_writers_one_proceeds_the_other_is_refused_in_one_line(s3, s3_server, tmp_path):
    url = f"{s3}/race"
    pause = {"TRAJGEN_PAUSE": "shard-start", "TRAJGEN_PAUSE_DIR": str(tmp_path)}
    racers = [start_cli("generate", *ARGS, "--workers", 1, "--out", url, "--quiet", env=pause) for _ in range(2)]
    deadline = time.monotonic() + 60
    while all(p.poll() is None for p in racers):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    loser = next(p for p in racers if p.poll() is not None)
    winner = next(p for p in racers if p is not loser)
    err = loser.stderr.read()
    assert loser.returncode == 1 and err.count("\n") == 1 and err.startswith("Error: "), err
    assert "already holds a run" in err or "is in use by" in err
    while not (tmp_path / "shard-start.reached").exists():
        assert winner.poll() is None, winner.stderr.read()
        time.sleep(0.01)
    again = run_cli("resume", url, "--quiet")
    assert again.returncode == 1 and f"is in use by pid {winner.pid}" in again.stderr, again.stderr
    st = run_cli("status", url)
    assert st.stdout.startswith("trajgen RUNNING"), st.stdout
    (tmp_path / "shard-start.go").touch()
    assert winner.wait(timeout=60) == 0, winner.stderr.read()
    assert run_cli("verify", url).returncode == 0


def test_a_stale_etag_commits_nothing(s3, s3_server):
    from trajgen.making.bucket_commit import BucketCommit
    from trajgen.making.lock import leased
    from trajgen.store.objects import Bucket, ObjectStoreError
    from trajgen.store.run_copy import RunCopy

    bucket = Bucket(f"{s3}/cas")
    etag = bucket.create("manifest.json", b"{}")
    bucket.replace("manifest.json", b'{"other": 1}', etag)  # a second writer committed meanwhile
    with leased(bucket) as lease:
        commit = BucketCommit(RunCopy(bucket, Path(os.environ["TRAJGEN_CACHE_DIR"]) / "c"), etag, lease)
        with pytest.raises(ObjectStoreError, match="was changed by another process.*nothing was overwritten"):
            commit.commit(b'{"mine": 1}')
    assert bucket.read("manifest.json") == b'{"other": 1}'


def test_read_back_from_the_bucket_equals_the_disk_run_and_exports_preview_report(s3, s3_server, disk_run, tmp_path):
    from trajgen import open_run

    url = f"{s3}/read"
    assert run_cli("generate", *ARGS, "--workers", 2, "--out", url, "--quiet").returncode == 0
    remote, local = open_run(url), open_run(disk_run)
    assert len(remote) == len(local) == 48 and remote.complete
    for a, b in zip(remote.iter_shards(), local.iter_shards()):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    os.chdir(tmp_path)
    exported = run_cli("export", url, "-o", tmp_path / "all.npz")
    assert exported.returncode == 0, exported.stderr
    with np.load(tmp_path / "all.npz") as z, np.load(disk_run / "shards" / "shard-00000.npz") as first:
        np.testing.assert_array_equal(z["videos"][:12], first["videos"])
    assert run_cli("preview", url).returncode == 0 and (tmp_path / "preview.png").stat().st_size > 0
    assert run_cli("report", url, "-o", tmp_path / "rep").returncode == 0
    assert (tmp_path / "rep" / "report.html").exists()


def test_the_loader_reads_each_sample_once_per_epoch_with_2_workers_and_2_ranks(s3, tmp_path):
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader

    from trajgen import open_run

    url = f"{s3}/loader"
    assert (
        run_cli("generate", "--n", 40, "--checkpoint-every", 5, "--size", 16, "--frames", 4, "--out", url).returncode
        == 0
    )
    seen = []
    for rank in (0, 1):
        stream = open_run(url, cache_dir=tmp_path / f"rank{rank}").torch_stream(
            rank=rank, world_size=2, with_index=True, seed=1
        )
        for _, _, index in DataLoader(stream, batch_size=4, num_workers=2):
            seen += index.tolist()
        assert len(list((tmp_path / f"rank{rank}" / "shards").glob("*.npz"))) == 4  # its own shards only
    assert sorted(seen) == list(range(40))
    assert torch is not None
