"""A real full disk (a small tmpfs) under the default process pool: the run ends FAILED with
its cause in PROGRESS.txt, progress.json and status, like the serial executor."""

import json

import pytest

from runtools import run_cli


@pytest.fixture
def small_disk(tmpfs):
    return tmpfs("9M")


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
