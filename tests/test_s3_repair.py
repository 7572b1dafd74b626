"""repair on a run in object storage, against moto's real S3 server: a missing shard object is put back by
conditional create, a changed one replaced by compare-and-swap on the ETag it had when read, each only
once its remade bytes match the manifest; under the run's lease, so it never races a live writer."""

import json
import time
import uuid

import pytest

from runtools import run_cli, start_cli
from s3_server import SMALL_RUN, get_bytes, object_key, object_names, put_object, s3_client
from trajgen.making import generate

pytestmark = pytest.mark.slow

SMALL = SMALL_RUN
SHARD = "shards/shard-{:05d}.npz"


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAJGEN_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def disk(tmp_path_factory):
    """The same run made in a directory: the bytes every repaired shard object must have."""
    out = tmp_path_factory.mktemp("disk") / "run"
    generate(SMALL, out, workers=1)
    return out


@pytest.fixture
def url(bucket_run):
    """A finished run in a fresh bucket."""
    return bucket_run


def delete(endpoint, url, name):
    bucket, key = object_key(url, name)
    s3_client(endpoint).delete_object(Bucket=bucket, Key=key)


def etags(endpoint, url) -> dict[str, str]:
    """Every object under the URL and its ETag, but the lease (which taking it rewrites)."""
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    pages = s3_client(endpoint).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    found = {o["Key"]: o["ETag"] for page in pages for o in page.get("Contents", [])}
    return {k: v for k, v in found.items() if not k.endswith("/.lock")}


def flipped(data: bytes) -> bytes:
    damaged = bytearray(data)
    damaged[len(damaged) // 2] ^= 0x10
    return bytes(damaged)


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("Error:")]


def test_a_deleted_shard_object_is_remade_byte_identical_and_verify_passes(url, s3_server, disk):
    from trajgen.making.repair import repair_run
    from trajgen.use.verify import verify_run

    delete(s3_server, url, SHARD.format(1))
    assert not verify_run(url).ok

    result = repair_run(url)

    assert result.repaired == [(SHARD.format(1), "missing")] and result.refused == [] and result.ok
    assert get_bytes(s3_server, f"{url}/{SHARD.format(1)}") == (disk / SHARD.format(1)).read_bytes()
    assert f"of {url}" in result.text and "Repaired 1 shard" in result.text
    assert "repaired shard 1" in get_bytes(s3_server, f"{url}/run.log").decode()
    assert verify_run(url).ok


def test_a_changed_shard_object_is_replaced_and_the_cli_names_the_url(url, s3_server, disk, cache):
    for k, data in ((2, flipped((disk / SHARD.format(2)).read_bytes())), (3, b"not a shard")):
        put_object(s3_server, url, SHARD.format(k), data)

    result = run_cli("repair", url)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Checked 4 committed shard(s) of {url}" in result.stdout
    assert f"{SHARD.format(2)}: was changed (sha256 does not match)" in result.stdout
    assert f"{SHARD.format(3)}: was 11 bytes instead of" in result.stdout
    assert str(cache) not in result.stdout + result.stderr
    for k in range(4):
        assert get_bytes(s3_server, f"{url}/{SHARD.format(k)}") == (disk / SHARD.format(k)).read_bytes()
    log = get_bytes(s3_server, f"{url}/run.log").decode()
    assert "repaired shard 2" in log and "repaired shard 3" in log
    assert run_cli("verify", url).returncode == 0


def test_an_intact_run_needs_nothing_and_nothing_is_written(url, s3_server):
    from trajgen.making.repair import repair_run

    before = etags(s3_server, url)
    result = repair_run(url)
    assert result.repaired == [] and result.refused == [] and result.ok
    assert "nothing to repair" in result.text
    assert etags(s3_server, url) == before


def test_a_run_whose_lease_is_held_is_refused_in_one_line_and_nothing_changes(url, s3_server):
    from trajgen.store.lease import Lease
    from trajgen.store.objects import Bucket

    delete(s3_server, url, SHARD.format(0))
    before = etags(s3_server, url)
    held = Lease(Bucket(url), "pid 4242 on elsewhere", seconds=60)
    held.acquire()
    try:
        result = run_cli("repair", url)
    finally:
        held.release()
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == error_lines(result)
    assert len(error_lines(result)) == 1 and "is in use by pid 4242 on elsewhere" in result.stderr
    assert "Traceback" not in result.stderr
    assert etags(s3_server, url) == before  # the shard is still missing: nothing was made


def test_a_shard_that_regenerates_to_other_bytes_is_one_error_line_and_not_installed(url, s3_server, cache):
    manifest = json.loads(get_bytes(s3_server, f"{url}/manifest.json"))
    manifest["shards"][0]["sha256"] = "f" * 64  # as if another generator made the run
    put_object(s3_server, url, "manifest.json", json.dumps(manifest).encode())
    delete(s3_server, url, SHARD.format(0))

    result = run_cli("repair", url)

    assert result.returncode == 1, result.stdout + result.stderr
    errors = error_lines(result)
    assert len(errors) == 1 and SHARD.format(0) in errors[0] and "regenerates to other bytes" in errors[0]
    assert f"{url}/config.json" in errors[0] and str(cache) not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert f"{url.partition('://')[2].partition('/')[2]}/{SHARD.format(0)}" not in object_names(s3_server, url)


@pytest.mark.parametrize("damage", ["missing", "changed"])
def test_a_shard_object_changed_while_repair_works_is_never_overwritten(damage, url, s3_server, tmp_path):
    name = SHARD.format(1)
    if damage == "missing":
        delete(s3_server, url, name)
    else:
        put_object(s3_server, url, name, b"damaged")
    pause = {"TRAJGEN_PAUSE": "repair-install", "TRAJGEN_PAUSE_DIR": str(tmp_path)}
    proc = start_cli("repair", url, env=pause)
    deadline = time.monotonic() + 60
    while not (tmp_path / "repair-install.reached").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else "timeout"
        time.sleep(0.01)
    put_object(s3_server, url, name, b"another writer's bytes")  # not through trajgen, so not under the lease
    (tmp_path / "repair-install.go").touch()
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and name in errors[0] and "nothing was overwritten" in errors[0], stderr
    assert get_bytes(s3_server, f"{url}/{name}") == b"another writer's bytes"


def test_a_url_without_a_run_is_refused_and_nothing_is_created(s3, s3_server):
    from trajgen.making.repair import repair_run
    from trajgen.store.rundir import RunError

    with pytest.raises(RunError, match="is not a trajgen run"):
        repair_run(f"{s3}/nothing")
    assert object_names(s3_server, f"{s3}/nothing") == []


def test_a_run_in_memory_is_repaired_in_process(disk):
    from trajgen.making.repair import repair_run
    from trajgen.store.objects import Bucket

    url = f"memory://repair-{uuid.uuid4().hex[:8]}/run"
    generate(SMALL, url, workers=1)
    bucket = Bucket(url)
    bucket.remove(SHARD.format(2))
    bucket.replace(SHARD.format(3), b"x", bucket.read_tagged(SHARD.format(3))[1] or "")
    result = repair_run(url)
    assert [name for name, _ in result.repaired] == [SHARD.format(2), SHARD.format(3)]
    for k in (2, 3):
        assert bucket.read(SHARD.format(k)) == (disk / SHARD.format(k)).read_bytes()
