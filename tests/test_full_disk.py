"""A disk that another program keeps 100% full mid-run (a real small tmpfs): the run still ends
FAILED with its cause in PROGRESS.txt and progress.json, `status` agrees, and once space is freed
`resume` finishes it (taking its reserve back) and `verify` passes."""

import errno
import json
import os
import threading
import time

import pytest

from runtools import run_cli, start_cli, wait_for_shards


@pytest.fixture
def small_disk(tmpfs):
    return tmpfs("16M")


class Filler:
    """Another program that takes every block it can get, again and again (a growing log, a copy):
    whatever the run frees is gone at once, so nothing new can be written on the disk."""

    def __init__(self, path):
        self.path, self.stop = path, threading.Event()
        self.full = threading.Event()
        self.thread = threading.Thread(target=self._fill, daemon=True)
        self.thread.start()

    def _fill(self):
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            while not self.stop.is_set():
                for size in (1 << 20, 4096):
                    try:
                        while os.write(fd, b"\0" * size):
                            pass
                    except OSError as e:
                        assert e.errno == errno.ENOSPC, e
                self.full.set()
                time.sleep(0.002)
        finally:
            os.close(fd)

    def close(self):
        self.stop.set()
        self.thread.join()
        os.unlink(self.path)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_disk_kept_full_leaves_the_run_failed_with_its_cause(small_disk, workers):
    out = small_disk / "run"
    proc = start_cli(
        "generate",
        "--n",
        "3000",
        "--checkpoint-every",
        "250",
        "--workers",
        workers,
        "--out",
        out,
        env={"TRAJGEN_FREE_BYTES": str(10**12)},  # past the free-space check, into the real limit
    )
    assert wait_for_shards(out, 1, proc), proc.communicate()
    filler = Filler(small_disk / "other-program.bin")
    try:
        assert filler.full.wait(30)
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 1, stderr
        errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1 and "No space left on device" in errors[0] and "trajgen resume" in errors[0], stderr
        first = (out / "PROGRESS.txt").read_text().splitlines()[0]
        assert first.startswith("trajgen FAILED ") and "disk full" in first and "No space left" in first, first
        progress = json.loads((out / "progress.json").read_text())
        assert progress["state"] == "FAILED" and progress["error"].startswith("disk full"), progress
        assert any(
            " error: " in line and "No space left" in line for line in (out / "run.log").read_text().splitlines()
        )
        status = run_cli("status", out, "--json")
        assert json.loads(status.stdout)["state"] == "FAILED"
        text = run_cli("status", out).stdout
        assert text.startswith("trajgen FAILED") and "disk full" in text.splitlines()[0]
    finally:
        filler.close()
    resumed = run_cli("resume", out, "--workers", workers)
    assert resumed.returncode == 0, resumed.stderr
    assert (out / "PROGRESS.txt").read_text().startswith("trajgen COMPLETE")
    verified = run_cli("verify", out)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_disk_that_fills_right_after_the_last_commit_leaves_the_run_complete_and_no_reserve(tmp_path):
    """The last shard is committed; the log line and the progress files after it find the disk full:
    the run says COMPLETE with all its samples (through the reserve) and keeps no reserve."""
    args = ("generate", "--n", 12, "--checkpoint-every", 4, "--size", 16, "--frames", 4, "--workers", 1)
    ops_log = tmp_path / "ops.log"
    assert run_cli(*args, "--out", tmp_path / "probe", env={"TRAJGEN_FAULT_LOG": str(ops_log)}).returncode == 0
    ops = [(int(k), kind, path) for k, kind, path in (line.split(" ", 2) for line in ops_log.read_text().splitlines())]
    last_commit = max(k for k, kind, path in ops if kind == "rename" and path.endswith("manifest.json"))
    log_after = min(k for k, kind, path in ops if kind == "append" and k > last_commit)
    progress_after = min(
        k for k, kind, path in ops if kind == "write" and path.endswith("PROGRESS.txt") and k > log_after
    )
    out = tmp_path / "run"
    result = run_cli(*args, "--out", out, env={"TRAJGEN_FAULT": f"ENOSPC@{log_after},ENOSPC@{progress_after}"})
    assert result.returncode == 1 and "is committed" in result.stderr and "Traceback" not in result.stderr, (
        result.stderr
    )
    assert json.loads((out / "manifest.json").read_text())["status"] == "complete"
    first = (out / "PROGRESS.txt").read_text().splitlines()[0]
    assert first.startswith("trajgen COMPLETE 100.0%"), first
    assert json.loads((out / "progress.json").read_text())["completed_samples"] == 12
    assert not (out / ".reserve").exists()
