"""Object storage that fails: throttling and 5xx are retried with backoff; what still fails (a dropped
connection, access denied, no credentials, no bucket) is one `Error:` line, nothing partial is
committed, and resume then finishes the run. Faults come from a real HTTP proxy before moto's server."""

import json

import pytest

from runtools import run_cli
from s3_faults import FaultProxy
from s3_server import get_bytes, object_names

ARGS = ("--n", 24, "--checkpoint-every", 6, "--size", 16, "--frames", 4)


@pytest.fixture
def proxy(s3, s3_server, monkeypatch, tmp_path):
    monkeypatch.setenv("TRAJGEN_CACHE_DIR", str(tmp_path / "cache"))
    with FaultProxy(s3_server) as p:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", p.url)
        yield p


def one_error_line(result) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def test_throttling_and_5xx_are_retried(s3, proxy):
    proxy.fail(503, "SlowDown", times=2, method="PUT", path_regex="shards/")
    proxy.fail(500, "InternalError", times=1, method="PUT", path_regex="manifest.json")
    made = run_cli("generate", *ARGS, "--workers", 1, "--out", f"{s3}/r", "--quiet")
    assert made.returncode == 0, made.stderr
    assert proxy.faults_served == 3
    assert run_cli("verify", f"{s3}/r").returncode == 0


def test_throttling_that_does_not_end_is_one_line_after_the_attempts(s3, proxy):
    proxy.fail(503, "SlowDown", times=10_000, method="PUT", path_regex="shards/")
    said = one_error_line(
        run_cli("generate", *ARGS, "--workers", 1, "--out", f"{s3}/r", env={"TRAJGEN_S3_ATTEMPTS": "2"})
    )
    assert "could not write shard 0" in said and "after 2 attempts with backoff" in said
    assert f"then run: trajgen resume {s3}/r" in said


def test_a_dropped_connection_is_one_line_commits_nothing_partial_and_resume_finishes(s3, s3_server, proxy):
    url = f"{s3}/r"
    proxy.drop(times=10_000, method="PUT", path_regex="shard-00002")
    said = one_error_line(run_cli("generate", *ARGS, "--workers", 1, "--out", url, env={"TRAJGEN_S3_ATTEMPTS": "2"}))
    assert "could not write shard 2" in said and f"trajgen resume {url}" in said
    listed = [e["file"] for e in json.loads(get_bytes(s3_server, f"{url}/manifest.json"))["shards"]]
    assert "shards/shard-00002.npz" not in listed
    assert "r/shards/shard-00002.npz" not in object_names(s3_server, url)
    assert get_bytes(s3_server, f"{url}/PROGRESS.txt").decode().startswith("trajgen FAILED")
    proxy.clear()
    resumed = run_cli("resume", url, "--workers", 1, "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert run_cli("verify", url).returncode == 0


def test_access_denied_is_one_line(s3, proxy):
    proxy.fail(403, "AccessDenied", times=10_000)
    said = one_error_line(run_cli("status", f"{s3}/r"))
    assert "access denied" in said and "check the credentials" in said


def test_missing_credentials_are_one_line(s3, tmp_path):
    env = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "x")}
    env["AWS_CONFIG_FILE"] = str(tmp_path / "x")
    said = one_error_line(run_cli("generate", *ARGS, "--out", f"{s3}/r", env=env))
    assert "no credentials for s3://; set AWS_ACCESS_KEY_ID" in said


def test_a_missing_bucket_is_one_line_and_makes_nothing(s3, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    said = one_error_line(run_cli("generate", *ARGS, "--out", "s3://no-such-bucket-here/r"))
    assert "the bucket 'no-such-bucket-here' does not exist" in said
    assert list(tmp_path.iterdir()) == []
