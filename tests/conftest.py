import os
import shutil
import subprocess

import numpy as np
import pytest


def coverage(points_2d: np.ndarray, size: int) -> float:
    """max(bbox width / W, height / H) of projected points (the framing definition)."""
    span = points_2d.max(axis=0) - points_2d.min(axis=0)
    return float(max(span[0], span[1]) / size)


def straightness(points_2d: np.ndarray) -> float:
    """Largest distance of the points from their total-least-squares line, in pixels."""
    centred = points_2d - points_2d.mean(axis=0)
    _, _, vt = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
    normal = vt[-1]
    return float(np.abs(centred @ normal).max())


@pytest.fixture
def run(good, tmp_path):
    """A fresh copy of the module's ``good`` run, free to change or damage."""
    copy = tmp_path / "run"
    shutil.copytree(good, copy)
    return copy


@pytest.fixture
def tmpfs(tmp_path):
    """``tmpfs(size)``: a new directory with a real tmpfs of that size ("16M", "256k") mounted on it,
    unmounted after the test; the test is skipped, with the reason, where it cannot mount one."""
    mounted = []

    def mount(size: str):
        where = tmp_path / f"disk{len(mounted)}"
        where.mkdir()
        if os.geteuid() != 0:
            pytest.skip("mounting a small tmpfs needs root")
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True
        )
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


@pytest.fixture(scope="session")
def long_reference(tmp_path_factory):
    """runtools.LONG_ARGS made once by the real `trajgen generate --workers 1`: what every way of making
    that run (worker processes, a Dask cluster, after kills and signals) must match byte for byte."""
    from runtools import LONG_ARGS, cli_run_dir

    return cli_run_dir(tmp_path_factory, "long", *LONG_ARGS, "--workers", 1)


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server (a real HTTP S3 API) on 127.0.0.1, for the whole session: its endpoint URL."""
    pytest.importorskip("s3fs")
    pytest.importorskip("moto")
    from s3_server import S3Server

    with S3Server() as server:
        yield server.url


@pytest.fixture
def s3(s3_server, monkeypatch, request):
    """A fresh, empty bucket on the session's S3 server, with the credentials and endpoint in the
    environment (as a user sets them, and as child processes inherit them): its ``s3://NAME`` URL."""
    from s3_server import new_bucket, s3_environment

    for name, value in s3_environment(s3_server).items():
        monkeypatch.setenv(name, value)
    return new_bucket(s3_server, request.node.name)


@pytest.fixture
def bucket_run(s3):
    """A small finished run (s3_server.SMALL_RUN) in a fresh bucket: its URL."""
    from s3_server import SMALL_RUN
    from trajgen.making import generate

    where = f"{s3}/runs/r"
    generate(SMALL_RUN, where, workers=1)
    return where
