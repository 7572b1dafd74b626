"""A real full disk (a small tmpfs) under the default process pool: the run ends FAILED with
its cause in PROGRESS.txt, progress.json and status, like the serial executor."""

import json
import os
import subprocess

import pytest

from runtools import run_cli


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=9M", "tmpfs", str(mount)], capture_output=True
        ).returncode
        != 0
    ):
        pytest.skip("needs root to mount a small tmpfs")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_full_disk_leaves_the_run_failed_with_the_cause(small_disk, workers):
    out = small_disk / "run"
    result = run_cli(
        "generate", "--n", "6000", "--workers", workers, "--out", out, env={"TRAJGEN_FREE_BYTES": str(10**12)}
    )  # past the free-space check, into the real limit
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "No space left on device" in errors[0] and "trajgen resume" in errors[0]
    first = (out / "PROGRESS.txt").read_text().splitlines()[0]
    assert first.startswith("trajgen FAILED ") and "No space left" in first
    progress = json.loads((out / "progress.json").read_text())
    assert progress["state"] == "FAILED" and "No space left" in progress["error"]
    status = run_cli("status", out, "--json")
    assert json.loads(status.stdout)["state"] == "FAILED"
