"""The I/O layer: atomic replace, operation counting and injected faults."""

import errno
import os
import subprocess
import sys
import textwrap

import pytest

from trajgen.store import _fs


@pytest.fixture
def faults(monkeypatch):
    """Set TRAJGEN_FAULT for one test; counters restart at zero."""

    def set_fault(spec):
        if spec is None:
            monkeypatch.delenv("TRAJGEN_FAULT", raising=False)
        else:
            monkeypatch.setenv("TRAJGEN_FAULT", spec)
        _fs._reset_faults()

    set_fault(None)
    yield set_fault
    monkeypatch.delenv("TRAJGEN_FAULT", raising=False)
    _fs._reset_faults()


@pytest.fixture
def run(tmp_path):
    tmp = tmp_path / ".tmp"
    tmp.mkdir()
    return tmp_path, tmp


def test_atomic_write_creates_and_replaces(run, faults):
    root, tmp = run
    target = root / "a.bin"
    _fs.atomic_write_bytes(target, b"first", tmp)
    assert target.read_bytes() == b"first"
    _fs.atomic_write_bytes(target, b"second, longer", tmp)
    assert target.read_bytes() == b"second, longer"
    assert list(tmp.iterdir()) == []


def test_atomic_write_accepts_memoryview_and_large_data(run, faults):
    root, tmp = run
    data = os.urandom(3_000_000)
    _fs.atomic_write_bytes(root / "big.bin", memoryview(data), tmp)
    assert (root / "big.bin").read_bytes() == data


def test_new_files_are_readable_by_others(run, faults):
    root, tmp = run
    old = os.umask(0o022)
    try:
        _fs.atomic_write_bytes(root / "m.json", b"{}", tmp)
    finally:
        os.umask(old)
    assert (root / "m.json").stat().st_mode & 0o777 == 0o644


def test_operation_count_of_one_atomic_write_and_one_append(run, faults):
    root, tmp = run
    assert _fs.operation_count() == 0
    _fs.atomic_write_bytes(root / "a.bin", b"x", tmp)
    # open, write, fsync, replace, fsync dir
    assert _fs.operation_count() == 5
    _fs.append_line(root / "run.log", "hello")
    assert _fs.operation_count() == 7  # append, and the directory's fsync of the new log
    _fs.append_line(root / "run.log", "again")
    assert _fs.operation_count() == 8


def test_append_line_appends_whole_lines(run, faults):
    root, _ = run
    log = root / "run.log"
    _fs.append_line(log, "start")
    _fs.append_line(log, "shard 0 committed\n")
    assert log.read_text() == "start\nshard 0 committed\n"


def test_clear_dir_creates_missing_and_empties_existing(tmp_path):
    missing = tmp_path / "new" / ".tmp"
    _fs.clear_dir(missing)
    assert missing.is_dir() and list(missing.iterdir()) == []
    (missing / "stale.tmp").write_bytes(b"x")
    (missing / "sub").mkdir()
    (missing / "sub" / "deep").write_bytes(b"y")
    _fs.clear_dir(missing)
    assert missing.is_dir() and list(missing.iterdir()) == []


def test_fsync_dir_accepts_a_directory(tmp_path, faults):
    _fs.fsync_dir(tmp_path)
    assert _fs.operation_count() == 1


@pytest.mark.parametrize("name", ["ENOSPC", "EIO", "EDQUOT", "EFBIG", "EROFS"])
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_injected_error_at_every_step_leaves_old_or_new_file(run, faults, name, k):
    root, tmp = run
    target = root / "manifest.json"
    target.write_bytes(b"old")
    faults(f"{name}@{k}")
    with pytest.raises(OSError) as caught:
        _fs.atomic_write_bytes(target, b"new complete", tmp)
    assert caught.value.errno == getattr(errno, name)
    assert caught.value.strerror == os.strerror(getattr(errno, name))
    assert target.read_bytes() in (b"old", b"new complete")
    assert list(tmp.iterdir()) == []


@pytest.mark.parametrize(
    "kind, expect_new",
    [("open", False), ("write", False), ("fsync", False), ("rename", False), ("fsyncdir", True)],
)
def test_injected_error_by_kind(run, faults, kind, expect_new):
    root, tmp = run
    target = root / "a.bin"
    target.write_bytes(b"old")
    _fs.atomic_write_bytes(root / "other.bin", b"warm-up", tmp)
    faults(f"ENOSPC@{kind}:1")
    with pytest.raises(OSError) as caught:
        _fs.atomic_write_bytes(target, b"new", tmp)
    assert caught.value.errno == errno.ENOSPC
    assert target.read_bytes() == (b"new" if expect_new else b"old")
    assert list(tmp.iterdir()) == []


def test_kind_counter_counts_only_that_kind(run, faults):
    root, tmp = run
    faults("EIO@write:2")
    _fs.atomic_write_bytes(root / "one", b"1", tmp)
    with pytest.raises(OSError):
        _fs.atomic_write_bytes(root / "two", b"2", tmp)
    assert not (root / "two").exists()


def test_injected_append_fault(run, faults):
    root, _ = run
    faults("ENOSPC@append:2")
    _fs.append_line(root / "run.log", "one")
    with pytest.raises(OSError) as caught:
        _fs.append_line(root / "run.log", "two")
    assert caught.value.errno == errno.ENOSPC
    assert (root / "run.log").read_text() == "one\n"


def test_comma_separated_faults(run, faults):
    root, tmp = run
    faults("EIO@1,ENOSPC@7")
    with pytest.raises(OSError) as first:
        _fs.atomic_write_bytes(root / "a", b"a", tmp)
    assert first.value.errno == errno.EIO
    # op 1 failed before open; ops 2..6 are the next write's five steps
    _fs.atomic_write_bytes(root / "a", b"a", tmp)
    with pytest.raises(OSError) as second:
        _fs.atomic_write_bytes(root / "b", b"b", tmp)
    assert second.value.errno == errno.ENOSPC


@pytest.mark.parametrize("spec", ["ENOSPC", "ENOSPC@", "ENOSPC@0", "EWHAT@1", "EIO@write:x", "EIO@seek:1"])
def test_bad_fault_spec_is_rejected(monkeypatch, spec):
    monkeypatch.setenv("TRAJGEN_FAULT", spec)
    try:
        with pytest.raises(ValueError, match="TRAJGEN_FAULT"):
            _fs._reset_faults()
    finally:
        monkeypatch.delenv("TRAJGEN_FAULT")
        _fs._reset_faults()


CHILD = textwrap.dedent(
    """
    import sys
    from trajgen.store import _fs
    root, tmp = sys.argv[1], sys.argv[2]
    _fs.atomic_write_bytes(root + "/a.bin", b"new contents", tmp)
    _fs.append_line(root + "/run.log", "done")
    print(_fs.operation_count())
    """
)


def _child(root, tmp, fault=None, log=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAJGEN_FAULT")}
    if fault:
        env["TRAJGEN_FAULT"] = fault
    if log:
        env["TRAJGEN_FAULT_LOG"] = str(log)
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(root), str(tmp)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_exit_at_every_operation_kills_the_process_without_a_torn_file(run):
    root, tmp = run
    clean = _child(root, tmp)
    assert clean.returncode == 0, clean.stderr
    count = int(clean.stdout)
    assert count == 7
    for k in range(1, count + 1):
        (root / "a.bin").write_bytes(b"old")
        (root / "run.log").unlink(missing_ok=True)
        _fs.clear_dir(tmp)
        crashed = _child(root, tmp, fault=f"exit@{k}")
        assert crashed.returncode == 77, (k, crashed.stderr)
        assert crashed.stdout == ""
        assert (root / "a.bin").read_bytes() in (b"old", b"new contents")
        # the 7th operation is the fsync of the directory that the new log was created in
        assert (root / "run.log").exists() == (k == 7)


def test_fault_log_lists_every_operation(run, tmp_path):
    root, tmp = run
    log = tmp_path / "ops.log"
    assert _child(root, tmp, log=log).returncode == 0
    kinds = [line.split()[1] for line in log.read_text().splitlines()]
    assert kinds == ["open", "write", "fsync", "rename", "fsyncdir", "append", "fsyncdir"]
    assert [line.split()[0] for line in log.read_text().splitlines()] == ["1", "2", "3", "4", "5", "6", "7"]
