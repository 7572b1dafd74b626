"""A URL trajgen cannot serve (`status gs://…`, `--progress-to s3://…`) is a usage error in one line,
never a local folder named `gs:`; s3:// and memory:// runs are served (tests/test_s3_runs.py), repair
included (tests/test_s3_repair.py)."""

import pytest

from runtools import run_cli


@pytest.mark.parametrize(
    "args, says",
    [
        (("generate", "--n", 8, "--checkpoint-every", 4, "--out", "gs://bkt/run"), "trajgen keeps runs on a local"),
        (("generate", "--n", 8, "--checkpoint-every", 4, "--out", "run", "--progress-to", "s3://bkt/w"), "is a URL"),
        (("status", "gs://bkt/run"), "trajgen keeps runs on a local"),
        (("resume", "ftp://host/run"), "trajgen keeps runs on a local"),
        (("verify", "az://container/run"), "trajgen keeps runs on a local"),
        (("repair", "gs://bkt/run"), "trajgen keeps runs on a local"),
        (("repair", "s3://bucket-only"), "names a whole bucket"),
        (("status", "s3://bucket-only"), "names a whole bucket"),
    ],
)
def test_a_url_trajgen_cannot_serve_is_refused_in_one_line_and_nothing_is_made(args, says, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_cli(*args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert says in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []
