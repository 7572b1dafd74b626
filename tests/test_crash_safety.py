"""Crash at every file operation, injected I/O errors, and real signals to real processes."""

import json
import os
import random
import signal
import threading
import time

import pytest

from runtools import assert_same_run, check_each_in_processes, cli_run_dir, kill, run_cli, start_cli, wait_for_shards
from trajgen import GenerationConfig
from trajgen.errors import StorageError
from trajgen.making import generate, resume
from trajgen.store import _fs

TINY = GenerationConfig(n=12, checkpoint_every=4, seed=11, size=16, frames=4)


@pytest.fixture(scope="module")
def tiny_reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny") / "run"
    _fs._reset_faults()
    start = _fs.operation_count()
    generate(TINY, out, workers=1)
    return out, _fs.operation_count() - start


def _generate_in_child(out, fault):
    """Run generate in a forked child with TRAJGEN_FAULT set; return its exit status."""
    pid = os.fork()
    if pid == 0:  # child: a real process that dies at the injected step
        code = 0
        try:
            os.environ["TRAJGEN_FAULT"] = fault
            _fs._reset_faults()
            generate(TINY, out, workers=1)
        except BaseException:
            code = 3
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _no_torn_files(run):
    """Every committed file parses and every listed shard matches its checksum."""
    assert not any((run / ".tmp").iterdir()) if (run / ".tmp").exists() else True
    if (run / "manifest.json").exists():
        m = json.loads((run / "manifest.json").read_text())
        for entry in m["shards"]:
            from trajgen.store.checksums import sha256_file

            assert sha256_file(run / entry["file"]) == entry["sha256"]


def test_crash_at_every_file_operation_then_resume_is_identical(tiny_reference, tmp_path):
    reference, operations = tiny_reference
    assert operations > 20

    def crash_at(k):
        out = tmp_path / f"crash{k}"
        assert _generate_in_child(out, f"exit@{k}") == _fs.EXIT_CODE, k
        if (out / "config.json").exists():
            resume(out, workers=1)
        else:  # died before the run's config was committed: the same generate starts it afresh
            generate(TINY, out, workers=1)
        assert_same_run(out, reference)

    check_each_in_processes(crash_at, range(1, operations + 1))  # every operation, on each CPU at once


@pytest.mark.parametrize("error", ["ENOSPC", "EIO", "EDQUOT", "EFBIG", "EROFS"])
@pytest.mark.parametrize("kind", ["write", "fsync", "rename"])
def test_io_errors_leave_nothing_torn_and_resume_completes(tiny_reference, tmp_path, monkeypatch, error, kind):
    reference, _ = tiny_reference
    for k in (1, 3, 6):
        out = tmp_path / f"{kind}{k}"
        monkeypatch.setenv("TRAJGEN_FAULT", f"{error}@{kind}:{k}")
        _fs._reset_faults()
        with pytest.raises(StorageError) as e:
            generate(TINY, out, workers=1)
        monkeypatch.delenv("TRAJGEN_FAULT")
        _fs._reset_faults()
        message = str(e.value)
        assert "\n" not in message and "trajgen" in message
        if not (out / "config.json").exists():
            generate(TINY, out, workers=1)
            assert_same_run(out, reference)
            continue
        assert f"trajgen resume {out}" in message
        _no_torn_files(out)
        resume(out, workers=1)
        assert_same_run(out, reference)


def test_disk_full_message_names_the_shard(tmp_path, monkeypatch):
    out = tmp_path / "run"
    # fail a shard's data write: start writes config, manifest, the reserve's 3 files and progress first
    monkeypatch.setenv("TRAJGEN_FAULT", "ENOSPC@write:8")
    _fs._reset_faults()
    with pytest.raises(StorageError) as e:
        generate(TINY, out, workers=1)
    monkeypatch.delenv("TRAJGEN_FAULT")
    _fs._reset_faults()
    assert "No space left on device" in str(e.value)
    assert "shard" in str(e.value)
    assert (out / "PROGRESS.txt").read_text().startswith("trajgen FAILED")


MEDIUM = ("--n", 3000, "--checkpoint-every", 100, "--seed", 5, "--workers", 1, "--quiet")


@pytest.fixture(scope="module")
def medium_reference(tmp_path_factory):
    return cli_run_dir(tmp_path_factory, "medium", *MEDIUM)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill_9_at_random_moments_then_resume(medium_reference, tmp_path, seed):
    out = tmp_path / "run"
    proc = start_cli("generate", *MEDIUM, "--out", out)
    wait_for_shards(out, 1, proc)
    time.sleep(random.Random(seed).uniform(0.0, 0.4))
    kill(proc, signal.SIGKILL)
    result = run_cli("resume", out, "--workers", 1, "--quiet")  # the lock died with the process
    assert result.returncode == 0, result.stderr
    assert_same_run(out, medium_reference)


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_sigint_and_sigterm_stop_promptly_and_resumably(medium_reference, tmp_path, sig, code):
    out = tmp_path / "run"
    proc = start_cli("generate", *MEDIUM, "--out", out)
    wait_for_shards(out, 2, proc)
    sent = time.monotonic()
    proc.send_signal(sig)
    assert proc.wait(timeout=30) == code
    assert time.monotonic() - sent < 2.0
    stderr = proc.stderr.read()
    assert f"trajgen resume {out}" in stderr and "Traceback" not in stderr
    progress = (out / "PROGRESS.txt").read_text()
    assert progress.startswith("trajgen STOPPED") and f"Resume: trajgen resume {out}" in progress
    assert list((out / ".tmp").iterdir()) == []
    result = run_cli("resume", out, "--workers", 1, "--quiet")
    assert result.returncode == 0, result.stderr
    assert_same_run(out, medium_reference)


def test_reader_polling_progress_never_sees_a_torn_file(tmp_path):
    out = tmp_path / "run"
    seen, bad = [0], []
    stop = threading.Event()

    def poll():
        path = out / "PROGRESS.txt"
        while not stop.is_set():
            try:
                text = path.read_text()
            except FileNotFoundError:
                continue
            seen[0] += 1
            if not (text.startswith("trajgen ") and "Last update:" in text):
                bad.append(text)

    reader = threading.Thread(target=poll)
    reader.start()
    result = run_cli(
        "generate",
        "--n",
        2000,
        "--checkpoint-every",
        50,
        "--workers",
        1,
        "--quiet",
        "--progress-interval",
        0.01,
        "--out",
        out,
    )
    stop.set()
    reader.join()
    assert result.returncode == 0, result.stderr
    assert seen[0] > 50 and bad == []


def test_five_thousand_sample_integration_with_interruption(tmp_path):
    """The user's 5K integration test: interrupt, resume, compare with an uninterrupted run."""
    args = ("--n", 5000, "--checkpoint-every", 500, "--seed", 9, "--quiet")
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    uninterrupted = start_cli("generate", *args, "--workers", 1, "--out", whole)  # made meanwhile, on another CPU
    try:
        proc = start_cli("generate", *args, "--workers", 1, "--out", broken)
        wait_for_shards(broken, 3, proc)
        kill(proc, signal.SIGKILL)
        assert run_cli("status", broken).returncode == 0
        result = run_cli("resume", broken, "--quiet")
        assert result.returncode == 0, result.stderr
    finally:
        _, err = uninterrupted.communicate(timeout=120)
    assert uninterrupted.returncode == 0, err
    assert_same_run(broken, whole)
    m = json.loads((broken / "manifest.json").read_text())
    assert m["status"] == "complete" and sum(s["count"] for s in m["shards"]) == 5000
