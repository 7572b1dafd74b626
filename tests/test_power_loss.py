"""Power loss: rebuild every on-disk state a power cut may leave at every step of a real
run, and check that each one is reported clearly and resumes to the same bytes.

How: a real run (40 samples, 4 shards) is made once with ``_fs.recording`` on, which
reports every disk change the run makes (create, write with its bytes, fsync, rename,
fsyncdir, append, mkdir, unlink); so is a real resume of a run killed between a shard's
rename and its commit, with a torn temp file left in .tmp/ (it unlinks both). The trace is replayed into a model of the disk that
keeps, per file, what was fsynced (durable) and what was only written (volatile), and per
directory the entries fsynced with it and the changes since. The model of a power cut:

- file data written but not fsynced may be lost, kept, or cut short (any length between
  the fsynced content and the written content);
- a directory entry changed since its directory was last fsynced (a created, renamed or
  removed name; a new directory) may end up with any value it had since that fsync:
  a rename or creation may be undone, or half done (the old name and the new one both);
- an fsync of a file makes its content durable, an fsync of a directory its entries;
  nothing else is guaranteed (no ordering between files, no rename atomicity across
  directories beyond the above).

A crash after each operation of the trace (and before the first) is a crash point. At each,
every combination of the undecided entries and files is checked when there are at most
``EXHAUSTIVE`` of them; otherwise the two extremes (everything volatile lost / kept) and
``SAMPLED`` random combinations (fixed seed). Identical states are checked once. For each
state: ``status`` and ``verify`` answer with exit 0 or 1 and no traceback; nothing that a
completed commit made known (manifest.json, PROGRESS.txt, the lines of run.log, as they
were when their fsyncs returned) is missing; ``resume`` (or, before config.json was ever
durable, the same ``generate``) finishes the run; the result is byte-identical to the
uninterrupted run.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import random
import re
import shutil
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from runtools import check_each_in_processes, result_bytes, run_cli
from trajgen import GenerationConfig
from trajgen.cli import main
from trajgen.making import generate, resume
from trajgen.store import _fs

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="reads fd paths from /proc")

CONFIG = GenerationConfig(n=40, checkpoint_every=10, seed=5, size=16, frames=4)
EXHAUSTIVE = 16  # combinations enumerated in full up to this many
SAMPLED = 4  # random combinations per crash point beyond that (plus the two extremes)
SEED = 20261128
SUBPROCESS_STATES = 2  # states per trace checked with the real CLI in subprocesses (status, verify, resume)
# what a user (or a program) reads to learn what is committed
TOLD_FILES = ("run/config.json", "run/manifest.json", "run/PROGRESS.txt", "run/progress.json", "run/run.log")


# ---------------------------------------------------------------- the disk model


class Disk:
    """Replays a trace; knows what the kernel holds and what a power cut keeps."""

    def __init__(self, base: str):
        self.base = base
        self.content = {}  # inode -> {"durable": bytes, "current": bytes}
        self.dirs = {base: self._new_dir()}
        self.next_inode = 0
        self.told: dict[str, bytes] = {}  # file -> what it held when its last durable write returned

    def preload(self, source: str):
        """A copy of the base directory as it was when the trace began, all of it durable
        (what an earlier crash left)."""
        for srcdir, _, filenames in os.walk(source):
            dirpath = os.path.normpath(os.path.join(self.base, os.path.relpath(srcdir, source)))
            if dirpath not in self.dirs:
                self.dirs[dirpath] = self._new_dir()
                parent, name = self.dirs[os.path.dirname(dirpath)], os.path.basename(dirpath)
                parent["durable"][name] = parent["current"][name] = ("d", dirpath)
            for name in filenames:
                self.next_inode += 1
                data = Path(srcdir, name).read_bytes()
                self.content[self.next_inode] = {"durable": data, "current": data}
                d = self.dirs[dirpath]
                d["durable"][name] = d["current"][name] = ("f", self.next_inode)
                rel = os.path.relpath(os.path.join(dirpath, name), self.base)
                if rel in TOLD_FILES:
                    self.told[rel] = data

    @staticmethod
    def _new_dir():
        return {"durable": {}, "current": {}, "pending": {}}

    def _entry(self, path):
        return self.dirs[os.path.dirname(path)]["current"].get(os.path.basename(path))

    def _set(self, path, value):
        d, name = self.dirs[os.path.dirname(path)], os.path.basename(path)
        history = d["pending"].setdefault(name, [d["durable"].get(name)])
        history.append(value)
        if value is None:
            d["current"].pop(name, None)
        else:
            d["current"][name] = value

    def _new_file(self, path):
        self.next_inode += 1
        self.content[self.next_inode] = {"durable": b"", "current": b""}
        self._set(path, ("f", self.next_inode))
        return self.next_inode

    def apply(self, op):
        kind, path = op["op"], op["path"]
        if kind == "create":
            self._new_file(path)
        elif kind in ("write", "append"):
            entry = self._entry(path)
            inode = entry[1] if entry else self._new_file(path)
            self.content[inode]["current"] += op["data"]
        elif kind == "overwrite":  # written over from the start, then cut to this length
            self.content[self._entry(path)[1]]["current"] = op["data"]
        elif kind == "fsync":
            c = self.content[self._entry(path)[1]]
            c["durable"] = c["current"]
        elif kind == "rename":
            entry = self._entry(path)
            self._set(path, None)
            self._set(op["to"], entry)
        elif kind == "fsyncdir":
            d = self.dirs[path]
            d["durable"], d["pending"] = dict(d["current"]), {}
        elif kind == "done":  # a durable write returned: what the file holds now may be told to the user
            self.told[os.path.relpath(path, self.base)] = self.content[self._entry(path)[1]]["current"]
        elif kind == "mkdir":
            self.dirs[path] = self._new_dir()
            self._set(path, ("d", path))
        elif kind in ("unlink", "rmtree"):
            self._set(path, None)
        else:
            raise AssertionError(f"unknown operation {kind}")

    def choices(self):
        """The undecided parts of a power cut now: directory entries, then file contents."""
        entries = []
        for dpath, d in self.dirs.items():
            for name, history in d["pending"].items():
                options = list(dict.fromkeys(history))
                if len(options) > 1:
                    entries.append(((dpath, name), options))
        inodes = {v[1] for d in self.dirs.values() for h in d["pending"].values() for v in h if v and v[0] == "f"}
        inodes |= {v[1] for d in self.dirs.values() for v in d["durable"].values() if v[0] == "f"}
        files = [
            (i, ["old", "new", "short"])
            for i in sorted(inodes)
            if self.content[i]["durable"] != self.content[i]["current"]
        ]
        return entries + files

    def materialize(self, picks: dict, rng: random.Random) -> dict[str, bytes | None]:
        """The tree a power cut with these picks leaves: relative path -> bytes (None for a directory)."""
        tree = {}

        def walk(dpath):
            d = self.dirs[dpath]
            names = set(d["durable"]) | set(d["pending"])
            for name in sorted(names):
                value = picks.get((dpath, name), d["durable"].get(name))
                if value is None:
                    continue
                rel = os.path.relpath(os.path.join(dpath, name), self.base)
                if value[0] == "d":
                    tree[rel] = None
                    walk(value[1])
                else:
                    tree[rel] = self._bytes(value[1], picks.get(value[1], "old"), rng)

        walk(self.base)
        return tree

    def _bytes(self, inode, pick, rng):
        c = self.content[inode]
        old, new = c["durable"], c["current"]
        if pick == "old" or old == new:
            return old
        if pick == "new":
            return new
        same = len(os.path.commonprefix([old, new]))
        return new[: rng.randrange(same, len(new))] if len(new) > same else old


def tree_key(tree) -> str:
    """A digest of a whole tree: each path with its length (None for a directory), then its bytes."""
    digest = hashlib.sha256()
    for rel, data in sorted(tree.items()):
        digest.update(repr((rel, None if data is None else len(data))).encode())
        digest.update(data or b"")
    return digest.hexdigest()


def crash_states(trace, base, start=None):
    """Every (crash point, tree) of the model, identical trees once; and how many were built.
    ``start``: the directory tree that was on disk (durable) when the trace began."""
    disk = Disk(base)
    if start is not None:
        disk.preload(start)
    seen: dict[str, tuple] = {}
    built = 0
    for point in range(len(trace) + 1):
        if point:
            disk.apply(trace[point - 1])
        told = dict(disk.told)
        dims = disk.choices()
        rng = random.Random(f"{SEED}-{point}")
        combos = 1
        for _, options in dims:
            combos *= len(options)
        if combos <= EXHAUSTIVE:
            picks_list = [
                dict(zip([k for k, _ in dims], values)) for values in itertools.product(*[o for _, o in dims])
            ]
        else:
            picks_list = [{k: o[0] for k, o in dims}, {k: o[-1] if isinstance(k, tuple) else "new" for k, o in dims}]
            picks_list += [{k: rng.choice(o) for k, o in dims} for _ in range(SAMPLED)]
        for picks in picks_list:
            tree = disk.materialize(picks, rng)
            built += 1
            key = tree_key(tree)
            # the same tree at a later point may carry more told content; check the strictest
            if key not in seen or len(repr(told)) > len(repr(seen[key][1])):
                seen[key] = (point, told, tree)
    return list(seen.values()), built


def write_tree(tree, root: Path):
    root.mkdir(parents=True)
    for rel, data in sorted(tree.items()):
        p = root / rel
        if data is None:
            p.mkdir()
        else:
            p.write_bytes(data)


# ---------------------------------------------------------------- the recorded run


def _record(action):
    """Run ``action`` and return every disk change it made. The fsyncs in the trace are the
    real os.fsync calls (seen by a wrapper), not _fs's records of them: a removed os.fsync
    leaves the data volatile in the model, whatever _fs records."""
    events = []
    real_fsync = os.fsync

    def fsync(fd):
        result = real_fsync(fd)
        path = os.readlink(f"/proc/self/fd/{fd}")
        events.append({"op": "fsyncdir" if os.path.isdir(path) else "fsync", "path": path, "real": True})
        return result

    os.fsync = fsync
    try:
        with _fs.recording(events.append):
            action()
    finally:
        os.fsync = real_fsync
    trace = [e for e in events if e.get("real") or e["op"] not in ("fsync", "fsyncdir")]
    return trace, events


@pytest.fixture(scope="module")
def scratch():
    path = Path(tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def recorded(scratch):
    """A real run from nothing: (trace, events, base directory, result bytes, start tree)."""
    base = scratch / "world"
    base.mkdir()
    trace, events = _record(
        lambda: generate(CONFIG, base / "run", workers=1, progress_interval=3600, check_space=False)
    )
    return trace, events, str(base), result_bytes(base / "run"), None


def _killed_after_rename_of(target: Path):
    """Run generate in a forked child that dies (os._exit) right after renaming ``target`` into place."""
    pid = os.fork()
    if pid == 0:

        def die(op):
            if op["op"] == "rename" and op["to"] == str(target):
                os._exit(77)

        try:
            with _fs.recording(die):
                generate(CONFIG, target.parent.parent, workers=1, progress_interval=3600, check_space=False)
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 77


@pytest.fixture(scope="module")
def recorded_resume(scratch, recorded):
    """A real resume of a run killed after committing 2 shards and renaming the 3rd into
    shards/ (not committed), with a torn temp file in .tmp/: it removes both and finishes."""
    base = scratch / "world-resume"
    run = base / "run"
    _killed_after_rename_of(run / "shards" / "shard-00002.npz")
    assert len(json.loads((run / "manifest.json").read_bytes())["shards"]) == 2
    (run / ".tmp" / "shard-00003.npz.4242.0a1b2c3d4e5f.tmp").write_bytes(b"PK\x03\x04 torn")
    start = scratch / "resume-start"
    shutil.copytree(base, start)
    trace, events = _record(lambda: resume(run, workers=1, progress_interval=3600))
    return trace, events, str(base), recorded[3], str(start)


def test_the_traces_cover_the_whole_commit_protocol(recorded, recorded_resume):
    trace, _, base, _, _ = recorded
    kinds = {op["op"] for op in trace}
    assert {"mkdir", "create", "write", "fsync", "rename", "fsyncdir", "append", "done"} <= kinds
    renamed = [os.path.relpath(op["to"], base) for op in trace if op["op"] == "rename"]
    assert [f"run/shards/shard-{k:05d}.npz" for k in range(4)] == [r for r in renamed if "shards/" in r]
    assert renamed.count("run/manifest.json") == 5  # the empty one, then one per shard
    trace, _, base, _, _ = recorded_resume
    unlinked = [os.path.relpath(op["path"], base) for op in trace if op["op"] == "unlink"]
    # the unfinished files, then (the run complete) the space it kept for its last words on a full disk
    assert unlinked == [
        "run/.tmp/shard-00003.npz.4242.0a1b2c3d4e5f.tmp",
        "run/shards/shard-00002.npz",
        "run/.reserve/PROGRESS.txt",
        "run/.reserve/progress.json",
        "run/.reserve/run.log.spare",
    ]
    renamed = [os.path.relpath(op["to"], base) for op in trace if op["op"] == "rename"]
    assert [r for r in renamed if "shards/" in r] == ["run/shards/shard-00002.npz", "run/shards/shard-00003.npz"]


def _clear_answer(result, what):
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{what}: {type(result.exception).__name__}: {result.exception}"
    )
    assert result.exit_code in (0, 1), f"{what}: exit {result.exit_code}: {result.output}"
    if result.exit_code == 1:
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
        assert len(errors) == 1, f"{what}: {result.stderr!r}"
    assert "Traceback" not in result.output


def _shards_said(progress: bytes) -> int:
    m = re.search(rb"Shards: (\d+) /", progress)
    return int(m.group(1)) if m else 0


def _read(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def _check_told(run: Path, told: dict, where: str):
    """Nothing that a completed commit made known is gone."""
    for name in set(told) & set(TOLD_FILES):
        assert _read(run / os.path.basename(name)) is not None, f"{where}: {name} was written but is gone"
    if "run/manifest.json" in told:
        said = json.loads(told["run/manifest.json"])
        now = json.loads((run / "manifest.json").read_bytes())
        assert all(entry in now["shards"] for entry in said["shards"]), f"{where}: committed shards lost"
        for entry in said["shards"]:
            data = _read(run / entry["file"])
            assert data is not None and hashlib.sha256(data).hexdigest() == entry["sha256"], (
                f"{where}: committed {entry['file']} is gone or damaged"
            )
        assert said["status"] != "complete" or now["status"] == "complete", f"{where}: lost completion"
    if "run/PROGRESS.txt" in told:
        listed = len(json.loads((run / "manifest.json").read_bytes())["shards"])
        assert listed >= _shards_said(told["run/PROGRESS.txt"]), f"{where}: PROGRESS.txt said more than is committed"
    if "run/run.log" in told:
        assert (run / "run.log").read_bytes().startswith(told["run/run.log"]), f"{where}: run.log lost lines"


@pytest.mark.parametrize("which", ["generate", "resume"])
def test_every_power_cut_state_resumes_to_the_same_bytes(which, request, scratch):
    trace, _, base, reference, start = request.getfixturevalue("recorded" if which == "generate" else "recorded_resume")
    states, built = crash_states(trace, base, start)
    operations = sum(op["op"] != "done" for op in trace)
    print(
        f"\npower loss during {which}: {operations} operations, {operations + 1} crash points (and "
        f"{len(trace) - operations} points where a durable write returned), {built} states built, "
        f"{len(states)} distinct states checked"
    )
    assert len(states) > operations > (100 if which == "generate" else 40)
    runner = CliRunner()
    picked = set(random.Random(SEED).sample(range(len(states)), SUBPROCESS_STATES))

    def check(n):
        point, told, tree = states[n]
        where = (
            f"crash after operation {point} ({trace[point - 1]['op']} {trace[point - 1]['path']})"
            if point
            else "crash before the first operation"
        )
        world = scratch / f"{which}-state{n}"
        write_tree(tree, world)
        run = world / "run"
        _check_told(run, told, where)
        for command in (["status", str(run)], ["verify", str(run)]):
            result = runner.invoke(main, command)
            _clear_answer(result, f"{where}: {command[0]}")
            if n in picked:
                real = run_cli(*command)
                assert real.returncode == result.exit_code and "Traceback" not in real.stderr, f"{where}: {real.stderr}"
        if (run / "config.json").exists() and n in picked:
            real = run_cli("resume", run, "--workers", 1, "--quiet")
            assert real.returncode == 0 and real.stderr == "", f"{where}: resume failed: {real.stderr}"
        elif (run / "config.json").exists():
            result = runner.invoke(main, ["resume", str(run), "--workers", "1", "--quiet"])
            _clear_answer(result, f"{where}: resume")
            assert result.exit_code == 0, f"{where}: resume failed: {result.stderr}"
        else:  # the run was never created durably: nothing was told; the same command makes it
            assert not told, f"{where}: {sorted(told)} told but config.json lost"
            generate(CONFIG, run, workers=1, progress_interval=3600, check_space=False)
        assert result_bytes(run) == reference, f"{where}: resumed run differs from the uninterrupted one"
        _check_told(run, told, where)
        shutil.rmtree(world)

    check_each_in_processes(check, range(len(states)))  # every state, on each CPU at once


def test_the_recorded_fsyncs_are_the_real_ones(recorded, recorded_resume):
    for _, events, _, _, _ in (recorded, recorded_resume):
        real = [(e["op"], e["path"]) for e in events if e.get("real")]
        said = [(e["op"], e["path"]) for e in events if e["op"] in ("fsync", "fsyncdir") and not e.get("real")]
        assert said == real
