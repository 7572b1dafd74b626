"""verify on a run in object storage names what the bucket holds beside the run, as verify on a disk
names what a run directory holds beside it: shard objects the manifest does not list, uploads a
stopped writer left pending, and stray objects. Against moto's real S3 server; verify changes nothing."""

import time

import pytest

from runtools import kill, run_cli, start_cli
from s3_server import object_key, object_names, pending_uploads, put_object, s3_client

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAJGEN_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def url(bucket_run):
    return bucket_run


def put(endpoint, url, name):
    put_object(endpoint, url, name, b"x")


def test_a_run_in_a_bucket_with_nothing_beside_it_verifies(url):
    checked = run_cli("verify", url)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "OK: every check passed" in checked.stdout


def test_unlisted_shards_pending_uploads_and_stray_objects_are_named_and_left_alone(s3_server, url):
    put(s3_server, url, "shards/shard-00009.npz")  # made, never committed
    put(s3_server, url, "shards/notes.txt")
    put(s3_server, url, "mine.csv")
    put(s3_server, url, "old/a.bin")
    put(s3_server, url, "report.html")  # what users make from a run may stay in it
    bucket, key = object_key(url, "shards/shard-00010.npz")
    s3_client(s3_server).create_multipart_upload(Bucket=bucket, Key=key)
    before = object_names(s3_server, url), pending_uploads(s3_server, url)

    checked = run_cli("verify", url)
    out = checked.stdout
    assert checked.returncode == 1, out + checked.stderr
    assert (
        "shards/shard-00009.npz: is not listed in the manifest (never committed; readers ignore it); delete it" in out
    )
    assert "shards/notes.txt: stray object: not a shard of this run; move it elsewhere" in out
    assert "mine.csv: stray object: not part of a trajgen run; move it elsewhere" in out
    assert "old/: stray objects: not part of a trajgen run; move them elsewhere" in out
    assert "shards/shard-00010.npz: a multipart upload left pending by a stopped process" in out
    assert "report.html" not in out.split("PROBLEMS")[1]
    assert out.startswith(f"Checked {url}: ") and checked.stderr.startswith("Error: verify found 5 problem(s) in ")
    assert (object_names(s3_server, url), pending_uploads(s3_server, url)) == before  # verify changes nothing


def test_while_a_writer_holds_the_lease_its_uncommitted_shard_is_not_called_stray(s3, tmp_path):
    """A shard object made and not yet listed is the live writer's, not a leftover: verify says the run
    is in progress and leaves uncommitted shards and pending uploads unchecked."""
    url = f"{s3}/live"
    pause = {"TRAJGEN_PAUSE": "bucket-commit", "TRAJGEN_PAUSE_DIR": str(tmp_path)}
    args = ("--n", 20, "--checkpoint-every", 10, "--size", 16, "--frames", 6, "--workers", 1, "--quiet")
    writer = start_cli("generate", *args, "--out", url, env=pause)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "bucket-commit.reached").exists():
            assert writer.poll() is None and time.monotonic() < deadline, writer.stderr.read() if writer.poll() else ""
            time.sleep(0.01)
        checked = run_cli("verify", url)
    finally:
        kill(writer)
    out = checked.stdout
    assert "in progress: another process holds the run's lease" in out, out
    assert "not listed in the manifest" not in out
    assert f"is still being written by pid {writer.pid}" in checked.stderr, checked.stderr
