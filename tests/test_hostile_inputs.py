"""Hostile and careless inputs: every one gets one clear line (exit 1 or 2) and leaves the run
byte-for-byte unchanged, or works as documented.

Classes (one section each): outputs never land on inputs; a signal during any command cleans
up; every file read is validated against one schema; memory and sizes are bounded before
anything is allocated; every OS error and option value gets one line.
R is a finished 400-sample run (--checkpoint-every 100), built once and copied per test.
"""

import http.server
import json
import os
import shutil
import signal
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from runtools import cli_run_dir, run_cli, snapshot_tree, start_cli
from trajgen.cli import main
from trajgen.content.config import GenerationConfig
from trajgen.making import generate
from trajgen.store import lock_file

LONG = "x" * 300  # one path component longer than any filesystem allows (255 bytes)


# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return cli_run_dir(tmp_path_factory, "hostile", "--n", 400, "--checkpoint-every", 100, "--workers", 1, "--quiet")


@pytest.fixture
def R(reference, tmp_path):
    copy = tmp_path / "R"
    shutil.copytree(reference, copy)
    return copy


@pytest.fixture
def I(R):  # noqa: E743 - an unfinished run: shards 0-1 committed, 2-3 never made
    m = json.loads((R / "manifest.json").read_text())
    m["shards"], m["status"] = m["shards"][:2], "running"
    (R / "manifest.json").write_text(json.dumps(m, indent=2))
    for k in (2, 3):
        (R / f"shards/shard-{k:05d}.npz").unlink()
    return R


class SignalNotHandled(Exception):
    pass


def _unhandled(signum, frame):
    raise SignalNotHandled(f"trajgen left signal {signum} to the default action (death without a word)")


def cli(*args, env=None):
    """The real CLI in this process: (exit code, stdout, stderr). A traceback fails the test."""
    previous = signal.signal(signal.SIGTERM, _unhandled)  # without trajgen's own handler: a failure, not pytest's death
    try:
        result = CliRunner().invoke(main, [str(a) for a in args], env=env)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"traceback from trajgen {' '.join(map(str, args))}") from result.exception
    return result.exit_code, result.stdout, result.stderr


def one_error(code, err, expected_code, *words):
    """Exactly one `Error:` line, no traceback, the expected exit code, and these words in it."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("Error:")]
    assert code == expected_code, (code, err)
    assert len(lines) == 1, err
    if expected_code == 1:
        assert [line for line in err.splitlines() if line.strip()] == lines, err  # nothing but that line
    for word in words:
        assert word.lower() in lines[0].lower(), (word, lines[0])
    return lines[0]


def tree(run):
    """The run's files, byte for byte (the lock file's holder note aside)."""
    return {k: v for k, v in snapshot_tree(run).items() if k != ".lock"}


def edit_manifest(run, change):
    path = run / "manifest.json"
    m = json.loads(path.read_text())
    m = change(m)
    path.write_text(m if isinstance(m, str) else json.dumps(m, indent=2))


READERS = [("status",), ("verify",), ("export",), ("preview",), ("resume", "--workers", 1)]


def command(args, run):
    return [args[0], run, *args[1:]]


# ================================================================ outputs never land on inputs

RUN_FILES = [
    "manifest.json",
    "config.json",
    "progress.json",
    "PROGRESS.txt",
    "run.log",
    ".lock",
    "shards/shard-00000.npz",
    "shards/new.npz",
    ".tmp/x.png",
    "shards/../manifest.json",
    "shards",
]


@pytest.mark.parametrize("target", RUN_FILES)
@pytest.mark.parametrize(
    "how", [("preview", "-o"), ("preview", "--video"), ("export", "-o"), ("export", "-o", "--force")]
)
def test_outputs_an_output_never_lands_on_the_runs_own_files(R, target, how):
    before = tree(R)
    code, _, err = cli(how[0], R, how[1], R / target, *how[2:])
    line = one_error(code, err, 2)
    assert "run" in line.lower() and ("own" in line.lower() or "inside" in line.lower()), line
    assert tree(R) == before


def test_outputs_an_output_through_a_symlink_into_the_run_is_refused(R, tmp_path):
    link = tmp_path / "innocent.npz"
    link.symlink_to(R / "manifest.json")
    before = tree(R)
    for args in (("export", R, "-o", link, "--force"), ("preview", R, "-o", tmp_path / "pic.png", "--video", link)):
        code, _, err = cli(*args)
        one_error(code, err, 2, "manifest.json")
    assert tree(R) == before and link.is_symlink()


def test_outputs_never_land_on_another_runs_files_either(R, reference, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(reference, other)
    before = tree(other)
    for args in (
        ("export", R, "-o", other / "manifest.json", "--force"),
        ("preview", R, "-o", other / "shards/x.png"),
        ("export", R, "-o", other / "shards"),
    ):
        code, _, err = cli(*args)
        one_error(code, err, 2, "run's own files")
    assert tree(other) == before


def _fifo(tmp_path, name):
    path = tmp_path / name
    os.mkfifo(path)
    return path


def _socket_file(tmp_path, name):
    path = tmp_path / name
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    s.close()
    return path


@pytest.mark.parametrize("make", [_fifo, _socket_file])
@pytest.mark.parametrize(
    "how",
    [
        ("export", "-o", "x.npz", "--force"),
        ("export", "-o", "x.npz"),
        ("preview", "-o", "x.png"),
        ("preview", "--video", "x.mp4"),
    ],
)
def test_outputs_a_special_file_is_never_replaced(R, tmp_path, make, how):
    """Device nodes, FIFOs and sockets are refused, --force or not (tested with a FIFO and a socket)."""
    target = make(tmp_path, how[2])
    before = tree(R)
    code, _, err = cli(how[0], R, how[1], target, *how[3:])
    one_error(code, err, 1, str(target), "not a regular file")
    assert tree(R) == before
    assert not target.is_file() and target.exists()  # still the FIFO / socket


def test_outputs_preview_refuses_a_directory_as_its_picture(R, tmp_path):
    code, _, err = cli("preview", R, "-o", tmp_path)
    one_error(code, err, 1, str(tmp_path), "directory")


def test_outputs_export_replaces_a_regular_file_only_with_force(R, tmp_path):
    target = tmp_path / "old.npz"
    target.write_bytes(b"keep me")
    code, _, err = cli("export", R, "-o", target)
    one_error(code, err, 1, "--force")
    assert target.read_bytes() == b"keep me"
    code, out, err = cli("export", R, "-o", target, "--force")
    assert code == 0, err
    assert np.load(target)["videos"].shape == (400, 16, 64, 64, 3)


@pytest.mark.parametrize("force", [False, True])
def test_outputs_export_to_a_dangling_symlink_needs_force(R, tmp_path, force):
    link = tmp_path / "dangling.npz"
    link.symlink_to(tmp_path / "nowhere" / "gone.npz")
    code, _, err = cli("export", R, "-o", link, *(["--force"] if force else []))
    if not force:
        one_error(code, err, 1, "symbolic link", "--force")
        assert link.is_symlink()
    else:
        assert code == 0, err
        assert link.is_file() and not link.is_symlink()


def test_outputs_two_exports_to_one_file_cannot_both_succeed(R, tmp_path, monkeypatch):
    """The second writer finds the file the first one published while it was writing: refused, not replaced."""
    from trajgen.use import export

    target = tmp_path / "same.npz"
    real = export._write_member
    calls = []

    def first_writer_finishes_meanwhile(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            target.write_bytes(b"the other export")
        return real(*args, **kwargs)

    monkeypatch.setattr(export, "_write_member", first_writer_finishes_meanwhile)
    code, _, err = cli("export", R, "-o", target)
    one_error(code, err, 1, str(target))
    assert target.read_bytes() == b"the other export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["R", "same.npz"]  # the partial file was removed


def test_outputs_two_real_exports_to_one_file(R, tmp_path):
    target = tmp_path / "same.npz"
    procs = [start_cli("export", R, "-o", target) for _ in range(2)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    assert sorted(code for code, _ in results) == [0, 1], results
    assert "Traceback" not in "".join(err for _, err in results)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["R", "same.npz"]  # no partial left behind


@pytest.mark.parametrize("suffix,magic", [(".jpg", b"\xff\xd8\xff"), (".jpeg", b"\xff\xd8\xff"), (".png", b"\x89PNG")])
def test_outputs_preview_writes_what_the_suffix_says(R, tmp_path, suffix, magic):
    out = tmp_path / f"sheet{suffix}"
    code, _, err = cli("preview", R, "-o", out)
    assert code == 0, err
    assert out.read_bytes().startswith(magic)


@pytest.mark.parametrize("option,name", [("-o", "sheet.gif"), ("-o", "sheet"), ("--video", "grid.avi")])
def test_outputs_preview_refuses_a_suffix_it_cannot_write(R, tmp_path, option, name):
    code, _, err = cli("preview", R, option, tmp_path / name)
    one_error(code, err, 2, name)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["R"]


def test_outputs_preview_still_replaces_its_default_picture(R):
    assert cli("preview", R)[0] == 0
    first = (R / "preview.png").read_bytes()
    assert cli("preview", R, "--per-class", 2)[0] == 0
    assert (R / "preview.png").read_bytes() != first


# ================================================================ a signal during any command cleans up


def _kill_self(sig):
    os.kill(os.getpid(), sig)


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signals_a_signal_during_export_removes_the_partial_file(R, tmp_path, monkeypatch, sig, code):
    from trajgen.use import export

    real, calls = export._write_member, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            _kill_self(sig)
        return real(*args, **kwargs)

    monkeypatch.setattr(export, "_write_member", interrupted)
    before = tree(R)
    rc, _, err = cli("export", R, "-o", tmp_path / "out.npz")
    line = one_error(rc, err, code, "export", signal.Signals(sig).name)
    assert "before any shard was made" not in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["R"]
    assert tree(R) == before


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signals_a_signal_during_preview_video_removes_the_partial_video(R, tmp_path, monkeypatch, sig, code):
    from trajgen.content import render

    real = render.write_mp4

    def interrupted(path, frames, *args):
        def some_then_signal():
            for t, frame in enumerate(frames):
                if t == 3:
                    _kill_self(sig)
                yield frame

        return real(path, some_then_signal(), *args)

    monkeypatch.setattr(render, "write_mp4", interrupted)
    rc, _, err = cli("preview", R, "-o", tmp_path / "p.png", "--video", tmp_path / "v.mp4")
    one_error(rc, err, code, "preview", signal.Signals(sig).name)
    assert not (tmp_path / "v.mp4").exists()
    assert not [p for p in tmp_path.iterdir() if "partial" in p.name]


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signals_a_signal_during_verify_says_verify(R, monkeypatch, sig, code):
    from trajgen.use import verify

    real = verify._check_deep

    def interrupted(*args, **kwargs):
        _kill_self(sig)
        return real(*args, **kwargs)

    monkeypatch.setattr(verify, "_check_deep", interrupted)
    before = tree(R)
    rc, _, err = cli("verify", R, "--deep")
    line = one_error(rc, err, code, "verify", signal.Signals(sig).name)
    assert "shard was made" not in line
    assert tree(R) == before


@pytest.mark.parametrize("sig", [signal.SIGTERM])  # SIGINT: in-process above
def test_signals_a_real_signal_to_a_real_export(R, tmp_path, sig):
    proc = start_cli("export", R, "-o", tmp_path / "big.npz", "--dtype", "float32", "--compress-level", "9")
    deadline = time.monotonic() + 60
    while not any("partial" in p.name for p in tmp_path.iterdir()):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.005)
    proc.send_signal(sig)
    rc = proc.wait(timeout=60)
    err = proc.stderr.read()
    one_error(rc, err, 128 + sig, "export")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["R"]
    assert cli("verify", R)[0] == 0  # no stray partial file in the run either


def _catches_sigterm(pid):
    """Whether process ``pid`` has a handler for SIGTERM yet (Linux: SigCgt in /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    return False


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
@pytest.mark.parametrize("delay", [0.0, 0.05, 0.15, 0.3, 0.45])
def test_signals_ctrl_c_at_start_up_never_shows_a_traceback(R, delay):
    """Ctrl-C at any moment from trajgen's first line on (the interpreter's own start-up, before any
    trajgen code runs, is Python's): during the imports, while click parses, while the command runs."""
    proc = start_cli("status", R)
    deadline = time.monotonic() + 30
    while not _catches_sigterm(proc.pid):  # python -m trajgen installs its handlers first thing
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.001)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    rc = proc.wait(timeout=60)
    err = proc.stderr.read()
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert rc in (0, 130), (rc, err)
    if rc == 130:
        one_error(rc, err, 130, "SIGINT")


# ================================================================ every file read is validated


def _drop(key):
    def change(m):
        del m[key]
        return m

    return change


def _set(key, value):
    def change(m):
        m[key] = value
        return m

    return change


def _entry(key, value):
    def change(m):
        m["shards"][1][key] = value
        return m

    return change


def _class_count(m):
    m["shards"][0]["class_counts"]["linear"] = "25"
    return m


MANIFEST_DAMAGE = {
    "a list": (lambda m: "[]", "object"),
    "a string": (lambda m: '"x"', "object"),
    "truncated": (lambda m: json.dumps(m)[:200], "json"),
    "no status": (_drop("status"), "status"),
    "no classes": (_drop("classes"), "classes"),
    "classes 5": (_set("classes", 5), "classes"),
    "other classes": (_set("classes", ["linear", "circular", "helical", "zigzag"]), "classes"),
    "total_samples x": (_set("total_samples", "x"), "total_samples"),
    "total_samples other": (_set("total_samples", 500), "total_samples"),
    "num_shards other": (_set("num_shards", 7), "num_shards"),
    "status other": (_set("status", "done"), "status"),
    "shards an object": (_set("shards", {}), "shards"),
    "class count a string": (_class_count, "class_counts"),
    "sha256 not hex": (_entry("sha256", "zz"), "sha256"),
    "bytes negative": (_entry("bytes", -5), "bytes"),
    "config a list": (_set("config", []), "config"),
    "config bad size": (lambda m: {**m, "config": {**m["config"], "size": "big"}}, "size"),
}


@pytest.mark.parametrize("damage", list(MANIFEST_DAMAGE))
@pytest.mark.parametrize("args", READERS, ids=lambda a: a[0])
def test_schema_a_damaged_manifest_is_one_line_naming_the_field(R, damage, args):
    change, field = MANIFEST_DAMAGE[damage]
    edit_manifest(R, change)
    before = tree(R)
    code, out, err = cli(*command(args, R))
    line = one_error(code, err, 1, "manifest.json")
    assert field.lower() in (out + line if args[0] == "verify" else line).lower()  # or verify's report
    assert tree(R) == before


CONFIG_DAMAGE = {
    "a list": ("[]", "object"),
    "empty": ("", "json"),
    "no config": ('{"trajgen_version": "0.1.0"}', "config"),
    "bad size": (None, "size"),
}


@pytest.mark.parametrize("damage", list(CONFIG_DAMAGE) + ["missing", "a directory"])
@pytest.mark.parametrize("args", READERS[:4], ids=lambda a: a[0])
def test_schema_a_damaged_config_is_named_and_the_rebuild_offered(R, damage, args):
    path = R / "config.json"
    if damage == "missing":
        path.unlink()
    elif damage == "a directory":
        path.unlink()
        path.mkdir()
    elif CONFIG_DAMAGE[damage][0] is None:
        c = json.loads(path.read_text())
        c["config"]["size"] = "big"
        path.write_text(json.dumps(c))
    else:
        path.write_text(CONFIG_DAMAGE[damage][0])
    before = tree(R)
    code, out, err = cli(*command(args, R))
    if args[0] == "status":  # status reads the manifest, which is intact: it works and says what is wrong
        assert code == 0, err
        assert "config.json" in out and "trajgen resume" in out
    else:
        line = one_error(code, err, 1, "config.json")
        if damage == "a directory":
            assert "directory" in line
        else:
            assert "trajgen resume" in line and "manifest" in line, line
        assert "trajgen generate" not in line
    assert tree(R) == before


@pytest.mark.parametrize("damage", ["missing", "a list", "bad size", "versions and progress_to kept"])
def test_schema_resume_rebuilds_config_json_from_an_intact_manifest(R, reference, damage):
    path = R / "config.json"
    original = path.read_bytes()
    if damage == "missing":
        path.unlink()
    elif damage == "a list":
        path.write_text("[]")
    elif damage == "bad size":
        c = json.loads(original)
        c["config"]["size"] = "big"
        path.write_text(json.dumps(c))
    else:  # keys other parts of trajgen add are accepted and left alone
        c = json.loads(original)
        c["versions"] = {"trajgen": "0.1.0", "numpy": np.__version__}
        c["progress_to"] = None
        path.write_text(json.dumps(c, indent=2))
        original = path.read_bytes()
    code, out, err = cli("resume", R, "--workers", 1)
    assert code == 0, err
    assert path.read_bytes() == original
    assert cli("verify", R)[0] == 0
    assert cli("status", R)[0] == 0


def test_schema_manifest_status_running_with_every_shard_listed_is_repaired_by_resume(R, reference):
    """Readers take the status from the entries (the commit record); resume writes it back."""
    edit_manifest(R, _set("status", "running"))
    code, out, err = cli("status", R)
    assert code == 0 and out.startswith("trajgen COMPLETE"), out
    code, out, err = cli("resume", R, "--workers", 1)
    assert code == 0, err
    assert "repaired" in out.lower()
    assert json.loads((R / "manifest.json").read_text())["status"] == "complete"
    assert cli("export", R, "-o", R / "x.npz")[0] == 0


def test_schema_manifest_complete_with_an_entry_missing_is_finished_by_resume(R, reference):
    edit_manifest(R, lambda m: {**m, "shards": m["shards"][:3]})  # status stays "complete"
    code, out, err = cli("status", R)
    assert code == 0 and not out.startswith("trajgen COMPLETE"), out
    code, _, err = cli("export", R)
    one_error(code, err, 1, "trajgen resume")
    code, out, err = cli("resume", R, "--workers", 1)
    assert code == 0, err
    assert "already complete" not in out
    assert (R / "manifest.json").read_bytes() == (reference / "manifest.json").read_bytes()
    assert (R / "shards/shard-00003.npz").read_bytes() == (reference / "shards/shard-00003.npz").read_bytes()


@pytest.mark.parametrize("content", ["[]", "{", '{"format": "trajgen-progress/1", "state": 5}', '{"state": "RUNNING"}'])
def test_schema_a_damaged_progress_json_does_not_break_status(R, content):
    (R / "progress.json").write_text(content)
    code, out, err = cli("status", R)
    assert code == 0, err
    assert out.startswith("trajgen COMPLETE")
    assert "progress.json" in out


def test_schema_one_schema_module_checks_all_three_files(R):
    from trajgen.store import schema

    m = json.loads((R / "manifest.json").read_text())
    c = json.loads((R / "config.json").read_text())
    p = json.loads((R / "progress.json").read_text())
    schema.check_manifest(m)
    schema.check_config_file(c)
    schema.check_progress(p)
    for check, bad, field in [
        (schema.check_manifest, {**m, "num_shards": -1}, "num_shards"),
        (schema.check_config_file, {**c, "versions": 3}, "versions"),
        (schema.check_config_file, {**c, "content_fingerprint": "0" * 64}, "content_fingerprint"),
        (schema.check_progress, {**p, "completed_samples": "many"}, "completed_samples"),
    ]:
        with pytest.raises(schema.SchemaError) as e:
            check(bad)
        assert e.value.field == field


# ================================================================ memory and sizes bounded before allocation


@pytest.mark.parametrize(
    "args",
    [
        ("--n", 2_000_000, "--checkpoint-every", 2_000_000),
        ("--n", 4, "--checkpoint-every", 4, "--size", 4096, "--frames", 10_000),
    ],
)
@pytest.mark.parametrize("dry", [False, True])
def test_bounds_a_shard_larger_than_memory_is_a_usage_error(tmp_path, args, dry):
    out = tmp_path / "big"
    code, _, err = cli("generate", *args, "--out", out, "--workers", 1, *(["--dry-run"] if dry else []))
    line = one_error(code, err, 2, "memory")
    assert "GB" in line  # the limit is stated
    assert not out.exists()


def test_bounds_the_largest_fitting_shard_is_named(tmp_path):
    code, _, err = cli(
        "generate", "--n", 2_000_000, "--checkpoint-every", 2_000_000, "--out", tmp_path / "x", "--workers", 1
    )
    assert "--checkpoint-every" in err


def test_bounds_resume_of_a_run_too_large_for_this_machine(I, monkeypatch):
    """A run made on a larger machine: resume says so (its layout cannot change), before anything."""
    from trajgen.making import preflight

    monkeypatch.setattr(preflight, "memory_bytes", lambda: 100 * 2**20)  # this machine: 100 MB
    before = tree(I)
    code, _, err = cli("resume", I, "--workers", 1)
    line = one_error(code, err, 2, "memory", "more memory")
    assert "--checkpoint-every" not in line
    assert tree(I) == before


@pytest.mark.parametrize("args", [("--per-class", 1_000_000), ("--per-class", 5000, "--video", "v.mp4")])
def test_bounds_a_preview_too_large_is_a_usage_error(R, tmp_path, args):
    args = [tmp_path / a if a == "v.mp4" else a for a in args]
    before = tree(R)
    code, _, err = cli("preview", R, *args)
    line = one_error(code, err, 2, "--per-class")
    assert "at most" in line
    assert tree(R) == before and not (tmp_path / "v.mp4").exists()


def test_bounds_the_free_space_trial_is_bounded_in_memory():
    from trajgen.making import preflight

    big = GenerationConfig(n=100, checkpoint_every=1, size=512, frames=64)
    assert preflight.trial_samples(big) * 512 * 512 * 64 * 3 <= preflight.TRIAL_BYTES
    assert preflight.trial_samples(GenerationConfig()) == preflight.TRIAL_SAMPLES
    est = preflight.estimate(GenerationConfig(n=100, checkpoint_every=1, size=256, frames=64))
    assert est.trial_samples * 256 * 256 * 64 * 3 <= preflight.TRIAL_BYTES and est.trial_samples >= 1


@pytest.fixture(scope="module")
def other_size_shard(tmp_path_factory):
    out = tmp_path_factory.mktemp("small") / "run"
    generate(GenerationConfig(n=100, checkpoint_every=100, size=32), out, workers=1, check_space=False)
    return out / "shards/shard-00000.npz"


@pytest.mark.parametrize("damage", ["other size", "empty", "random bytes"])
@pytest.mark.parametrize("args", [("preview", "--per-class", 60), ("export",), ("verify",)], ids=lambda a: a[0])
def test_bounds_a_foreign_or_broken_shard_is_one_line(R, other_size_shard, damage, args):
    shard = R / "shards/shard-00001.npz"
    if damage == "other size":
        shutil.copy(other_size_shard, shard)
    elif damage == "empty":
        shard.write_bytes(b"")
    else:
        shard.write_bytes(np.random.default_rng(0).bytes(5000))
    before = tree(R)
    code, _, err = cli(*command(args, R))
    line = one_error(code, err, 1, "shard-00001")
    assert "pickle" not in line and "Aborted" not in err
    assert tree(R) == before


# ================================================================ OS errors and option values


@pytest.mark.parametrize(
    "args",
    [
        ("generate", "--n", 8, "--checkpoint-every", 4, "--workers", 1, "--out", "{L}"),
        ("generate", "--n", 8, "--checkpoint-every", 4, "--out", "{L}", "--dry-run"),
        ("status", "{L}"),
        ("verify", "{L}"),
        ("resume", "{L}"),
        ("export", "{L}"),
        ("preview", "{L}"),
        ("export", "{R}", "-o", "{L}.npz"),
        ("preview", "{R}", "-o", "{L}.png"),
        ("preview", "{R}", "--video", "{L}.mp4"),
    ],
    ids=lambda a: "-".join(str(x) for x in a if not str(x).startswith("-"))[:40],
)
def test_oserrors_a_name_too_long_is_one_line(R, tmp_path, args):
    long = tmp_path / LONG
    args = [str(a).format(L=long, R=R) for a in args]
    before = tree(R)
    code, _, err = cli(*args)
    one_error(code, err, 1, "too long")
    assert tree(R) == before


@pytest.mark.parametrize(
    "code,words",
    [
        ("EACCES", "permission"),
        ("EPERM", "not permitted"),
        ("EMFILE", "ulimit"),
        ("EIO", "I/O"),
        ("EXDEV", "check the path"),
    ],
)
@pytest.mark.parametrize("cmd", ["status", "verify", "export", "preview"])
def test_oserrors_any_os_error_is_one_line_naming_the_path(R, monkeypatch, code, words, cmd):
    """What the library does not foresee still ends as one line with the path and a fix (as a non-root
    user these come from permissions; here they are injected where each command reads the manifest)."""
    import errno as errno_module

    from trajgen.store import schema

    number = getattr(errno_module, code)

    def failing(path):
        raise OSError(number, os.strerror(number), str(path))

    monkeypatch.setattr(schema, "load_json", failing)
    code_, _, err = cli(cmd, R)
    line = one_error(code_, err, 1, "manifest.json", words)
    assert code in line


def test_oserrors_a_symlink_loop_is_named(tmp_path):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    for args in (("status", loop), ("generate", "--n", 8, "--checkpoint-every", 4, "--workers", 1, "--out", loop)):
        code, _, err = cli(*args)
        one_error(code, err, 1, "symbolic link")
    code, out, err = cli("generate", "--n", 8, "--checkpoint-every", 4, "--out", loop, "--dry-run")
    assert code == 1 and "Traceback" not in err
    assert [line for line in out.splitlines() if "✗" in line and "symbolic link" in line]  # the checklist says it


@pytest.mark.parametrize("name", [".tmp", "shards"])
def test_oserrors_a_run_dir_part_that_is_a_regular_file(R, tmp_path, name):
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / name).write_text("not a directory")
    code, _, err = cli("generate", "--n", 8, "--checkpoint-every", 4, "--workers", 1, "--out", fresh)
    one_error(code, err, 1, name, "not a directory")
    assert (fresh / name).read_text() == "not a directory"
    shutil.rmtree(R / name)
    (R / name).write_text("not a directory")
    edit_manifest(R, lambda m: {**m, "shards": m["shards"][:2], "status": "running"} if name == ".tmp" else m)
    before = tree(R)
    code, _, err = cli("resume", R, "--workers", 1)
    one_error(code, err, 1, name)
    assert tree(R) == before


def test_oserrors_a_lock_that_is_a_directory(I):
    (I / ".lock").unlink()
    (I / ".lock").mkdir()
    before = tree(I)
    code, _, err = cli("resume", I, "--workers", 1)
    line = one_error(code, err, 1, ".lock", "directory")
    assert "must be writable" not in line
    assert tree(I) == before


def test_oserrors_shards_dir_removed_from_an_unfinished_run(I):
    shutil.rmtree(I / "shards")
    before = tree(I)
    code, _, err = cli("resume", I, "--workers", 1)
    line = one_error(code, err, 1, "shards", "committed")
    assert "0" in line and "1" in line
    assert tree(I) == before


@pytest.mark.parametrize("value", ["inf", "1e308", "0", "-5", "nan", "-inf", "0.001"])
@pytest.mark.parametrize("cmd", ["generate", "resume"])
def test_oserrors_progress_interval_must_be_finite_and_sensible(I, tmp_path, value, cmd):
    args = (
        ["generate", "--n", 8, "--checkpoint-every", 4, "--workers", 1, "--out", tmp_path / "new"]
        if cmd == "generate"
        else ["resume", I, "--workers", 1]
    )
    before = tree(I)
    code, _, err = cli(*args, "--progress-interval", value)
    one_error(code, err, 2, "progress-interval")
    assert tree(I) == before and not (tmp_path / "new").exists()


@pytest.mark.parametrize(
    "address",
    ["", "inproc://foo", "tcp://", "tcp://host", "tcp://host:port", "tcp://host:99999", "http://host:8786", "host"],
)
def test_oserrors_a_scheduler_address_that_does_not_parse_is_a_usage_error(tmp_path, address):
    code, _, err = cli("generate", "--n", 8, "--checkpoint-every", 4, "--out", tmp_path / "new", "--scheduler", address)
    one_error(code, err, 2, "--scheduler")
    assert not (tmp_path / "new").exists()


def test_oserrors_a_scheduler_that_is_an_http_server():
    pytest.importorskip("distributed")
    from trajgen.errors import TrajgenError
    from trajgen.making.dask_executor import DaskExecutor

    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(TrajgenError) as e:
            DaskExecutor(f"tcp://127.0.0.1:{server.server_address[1]}", timeout=1.0)
    finally:
        server.shutdown()
    line = str(e.value)
    assert "scheduler" in line and "allocate" not in line and "\n" not in line, line


@pytest.mark.parametrize(
    "option,value", [("--noise-scale", "1e300"), ("--noise-scale", "inf"), ("--coverage", "nan"), ("--out", "nl\nrun")]
)
def test_oserrors_option_values_out_of_range(tmp_path, option, value):
    value = str(tmp_path / value) if option == "--out" else value
    code, _, err = cli(
        "generate",
        "--n",
        8,
        "--checkpoint-every",
        4,
        "--workers",
        1,
        option,
        value,
        *(["--out", tmp_path / "new"] if option != "--out" else []),
    )
    one_error(code, err, 2, option)
    assert sorted(tmp_path.iterdir()) == []


def test_oserrors_garbage_in_trajgen_fault_is_one_line(R):
    result = run_cli("status", R, env={"TRAJGEN_FAULT": "garbage"})
    one_error(result.returncode, result.stderr, 2, "TRAJGEN_FAULT")


def test_oserrors_out_on_a_filesystem_that_cannot_hold_files(tmp_path):
    if not Path("/proc/self").exists():
        pytest.skip("needs /proc")
    code, _, err = cli("generate", "--n", 8, "--checkpoint-every", 4, "--workers", 1, "--out", "/proc/trajgen-x")
    line = one_error(code, err, 1, "/proc")
    assert "free space" not in line


def test_oserrors_an_output_in_a_missing_or_file_parent(R, tmp_path):
    (tmp_path / "file").write_text("x")
    for args in (
        ("preview", R, "-o", tmp_path / "file" / "p.png"),
        ("export", R, "-o", tmp_path / "file" / "e.npz"),
        ("preview", R, "-o", tmp_path / "no" / "p.png"),
    ):
        code, _, err = cli(*args)
        one_error(code, err, 1, str(tmp_path))


# ---------------------------------------------------------------- a run that another process holds


@pytest.fixture
def held(I):
    fd = lock_file.try_lock(I / ".lock", "pid 4242 on testhost")
    yield I
    os.close(fd)


@pytest.mark.parametrize("args", [("verify",), ("export",), ("resume", "--workers", 1)], ids=lambda a: a[0])
def test_oserrors_advice_on_a_held_run_never_points_at_resume(held, args):
    before = tree(held)
    code, out, err = cli(*command(args, held))
    assert code == 1, err
    assert "trajgen resume" not in err and "Traceback" not in err
    assert "pid 4242 on testhost" in err
    assert tree(held) == before


def test_oserrors_a_second_generate_on_a_held_run_names_the_holder(held):
    code, _, err = cli("generate", "--n", 400, "--checkpoint-every", 100, "--workers", 1, "--out", held)
    line = one_error(code, err, 1, "pid 4242 on testhost")
    assert "trajgen resume" not in line
