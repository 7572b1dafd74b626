"""A URL where a run directory goes (`--out s3://bkt/run`, `status gs://…`, `--progress-to s3://…`)
is a usage error in one line, never a local folder named `s3:`."""

import pytest

from runtools import run_cli


@pytest.mark.parametrize(
    "args",
    [
        ("generate", "--n", 8, "--checkpoint-every", 4, "--out", "s3://bkt/run"),
        ("generate", "--n", 8, "--checkpoint-every", 4, "--out", "run", "--progress-to", "s3://bkt/watch"),
        ("status", "gs://bkt/run"),
        ("resume", "memory://run"),
        ("verify", "az://container/run"),
    ],
)
def test_a_url_is_refused_in_one_line_and_nothing_is_made(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_cli(*args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "is a URL" in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []
