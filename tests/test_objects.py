"""The object backend against moto's real S3 server: conditional create, compare-and-swap, listings,
pending uploads, the lease, and one clear line for each failure."""

import threading

import pytest

from s3_server import object_names, s3_client
from trajgen.store.lease import Lease, LeaseHeldError, live_holder
from trajgen.store.objects import Bucket, ObjectStoreError, PreconditionFailed, UnsupportedURLError, is_url


def test_urls_and_paths():
    assert is_url("s3://b/run") and is_url("memory://run")
    assert not is_url("runs/x") and not is_url("C:/runs/x") and not is_url("/abs/s3:x")
    with pytest.raises(UnsupportedURLError, match="gs://b/r: trajgen keeps runs"):
        Bucket("gs://b/r")
    with pytest.raises(UnsupportedURLError, match="names a whole bucket"):
        Bucket("s3://b")


def test_create_is_exclusive_among_racing_writers(s3):
    bucket = Bucket(f"{s3}/run")
    won, lost = [], []

    def write(i):
        try:
            bucket_i = Bucket(f"{s3}/run")  # a client of its own, like another process
            bucket_i.create("shards/shard-00000.npz", f"writer {i}".encode())
            won.append(i)
        except PreconditionFailed:
            lost.append(i)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(lost) == 7
    assert bucket.read("shards/shard-00000.npz") == f"writer {won[0]}".encode()


def test_replace_is_compare_and_swap_on_the_etag(s3):
    bucket = Bucket(f"{s3}/run")
    etag = bucket.create("manifest.json", b"one")
    data, seen = bucket.read_tagged("manifest.json")
    assert data == b"one" and seen == etag
    newer = bucket.replace("manifest.json", b"two", etag)
    with pytest.raises(PreconditionFailed, match="changed since it was read"):
        bucket.replace("manifest.json", b"three", etag)  # a second writer with the old ETag
    assert bucket.read("manifest.json") == b"two"
    assert bucket.replace("manifest.json", b"four", newer)
    assert bucket.read("missing") is None and bucket.read_tagged("missing") == (None, None)


def test_listing_is_fresh_and_relative_to_the_run(s3, s3_server):
    bucket = Bucket(f"{s3}/run")
    assert bucket.names("shards/") == []
    bucket.create("shards/shard-00000.npz", b"a")
    s3_client(s3_server).put_object(Bucket=s3.removeprefix("s3://"), Key="run/shards/shard-00001.npz", Body=b"b")
    s3_client(s3_server).put_object(Bucket=s3.removeprefix("s3://"), Key="other/x", Body=b"c")
    assert bucket.names("shards/") == ["shards/shard-00000.npz", "shards/shard-00001.npz"]
    bucket.remove("shards/shard-00001.npz")
    assert bucket.names() == ["shards/shard-00000.npz"]
    assert object_names(s3_server, s3) == ["other/x", "run/shards/shard-00000.npz"]


def test_pending_multipart_uploads_are_found_and_aborted(s3, s3_server):
    bucket = Bucket(f"{s3}/run")
    s3_client(s3_server).create_multipart_upload(Bucket=s3.removeprefix("s3://"), Key="run/shards/shard-00003.npz")
    s3_client(s3_server).create_multipart_upload(Bucket=s3.removeprefix("s3://"), Key="elsewhere/big")
    pending = bucket.pending_uploads("shards/")
    assert [name for name, _ in pending] == ["shards/shard-00003.npz"]
    bucket.abort_upload(*pending[0])
    assert bucket.pending_uploads() == []
    assert len(s3_client(s3_server).list_multipart_uploads(Bucket=s3.removeprefix("s3://"))["Uploads"]) == 1


def test_a_missing_bucket_is_one_line(s3):
    with pytest.raises(ObjectStoreError, match="the bucket 'no-such-bucket-x' does not exist; create it"):
        Bucket("s3://no-such-bucket-x/run").check_reachable()


def test_missing_credentials_are_one_line(s3, monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    with pytest.raises(ObjectStoreError, match="no credentials for s3://; set AWS_ACCESS_KEY_ID"):
        Bucket(f"{s3}/run").check_reachable()


def test_the_lease_is_exclusive_renewed_and_given_back(s3):
    bucket = Bucket(f"{s3}/run")
    first = Lease(bucket, "pid 1 on a", seconds=30)
    assert first.acquire() is None
    assert live_holder(bucket) == "pid 1 on a"
    with pytest.raises(LeaseHeldError, match=r"is in use by pid 1 on a \(its lease runs \d+ s more"):
        Lease(Bucket(f"{s3}/run"), "pid 2 on b", seconds=30).acquire()
    first.renew()
    assert first.lost is None
    first.release()
    assert live_holder(bucket) is None
    second = Lease(bucket, "pid 2 on b", seconds=30)
    assert second.acquire() is None  # a lease given back needs no wait and no takeover line
    second.release()


def test_an_expired_lease_is_taken_over_with_a_line_and_its_holder_learns_it(s3):
    now = [1000.0]
    bucket = Bucket(f"{s3}/run")
    stalled = Lease(bucket, "pid 1 on a", seconds=10, clock=lambda: now[0])
    stalled.acquire()
    stalled._stop.set()  # it stops renewing (stalled, or cut off)
    now[0] += 5
    with pytest.raises(LeaseHeldError):
        Lease(bucket, "pid 2 on b", seconds=10, clock=lambda: now[0]).acquire()
    now[0] += 10
    taker = Lease(bucket, "pid 2 on b", seconds=10, clock=lambda: now[0])
    assert taker.acquire() == (
        "took over the lease of pid 1 on a, which expired 5 s ago (it stopped renewing: killed or cut off)"
    )
    stalled.renew()
    with pytest.raises(ObjectStoreError, match="taken over by pid 2 on b"):
        stalled.check()
    stalled.release()  # gives back nothing: the lease is no longer its own
    assert live_holder(bucket, clock=lambda: now[0]) == "pid 2 on b"
    taker.release()


def test_memory_urls_keep_the_same_rules():
    bucket = Bucket("memory://objects-test/run")
    etag = bucket.create("m", b"1")
    with pytest.raises(PreconditionFailed):
        bucket.create("m", b"2")
    bucket.replace("m", b"3", etag)
    with pytest.raises(PreconditionFailed):
        bucket.replace("m", b"4", etag)
    assert bucket.read("m") == b"3" and bucket.names() == ["m"]
    bucket.remove("m")
