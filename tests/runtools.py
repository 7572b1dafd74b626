"""Helpers for tests that make and compare real run directories."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

RESULT_FILES = ("config.json", "manifest.json")
# a run long enough (about 2 s on one core, 1 s with two workers) that a signal, a kill or a restart
# lands mid-run; conftest's session fixture ``long_reference`` is this run made once with --workers 1
LONG = {"n": 4000, "checkpoint_every": 200, "seed": 17}  # as GenerationConfig(**LONG)
LONG_ARGS = ("--n", LONG["n"], "--checkpoint-every", LONG["checkpoint_every"], "--seed", LONG["seed"], "--quiet")


def result_bytes(run_dir) -> dict[str, bytes]:
    """The files that must be byte-identical between two runs of the same config."""
    run_dir = Path(run_dir)
    files = {name: (run_dir / name).read_bytes() for name in RESULT_FILES}
    for shard in sorted((run_dir / "shards").glob("*")):
        files[f"shards/{shard.name}"] = shard.read_bytes()
    return files


def assert_same_run(a, b):
    fa, fb = result_bytes(a), result_bytes(b)
    assert sorted(fa) == sorted(fb)
    for name in fa:
        if fa[name] != fb[name] and name.endswith(".json"):  # say where: a shard's sha256, a count, a status
            import difflib

            diff = difflib.unified_diff(
                fa[name].decode().splitlines(), fb[name].decode().splitlines(), lineterm="", n=0
            )
            raise AssertionError(f"{name} differs:\n" + "\n".join(list(diff)[:12]))
        assert fa[name] == fb[name], f"{name} differs"


def trajgen_cmd(*args):
    return [sys.executable, "-m", "trajgen", *map(str, args)]


def run_cli(*args, env=None, timeout=120):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(trajgen_cmd(*args), capture_output=True, text=True, env=full_env, timeout=timeout)


def cli_run_dir(tmp_path_factory, name, *args) -> Path:
    """A run made by the real `trajgen generate` (a reference to compare others with)."""
    out = tmp_path_factory.mktemp(name) / "run"
    result = run_cli("generate", *args, "--out", out)
    assert result.returncode == 0, result.stderr
    return out


def start_cli(*args, env=None):
    full_env = {**os.environ, **(env or {})}
    return subprocess.Popen(trajgen_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env)


def wait_for_shards(run_dir, count, proc, timeout=60):
    """Wait until the manifest lists at least ``count`` shards (or the process ends)."""
    import json

    deadline = time.monotonic() + timeout
    manifest = Path(run_dir) / "manifest.json"
    while time.monotonic() < deadline:
        try:
            if len(json.loads(manifest.read_text())["shards"]) >= count:
                return True
        except (OSError, ValueError, KeyError):
            pass
        if proc.poll() is not None:
            return False
        time.sleep(0.01)
    raise TimeoutError(f"no {count} shards in {run_dir} after {timeout}s")


def check_each_in_processes(check, items, processes=None):
    """``check(item)`` for every item, the items dealt out among forked processes (one per CPU this
    process may use, at most 4), each going through its share in order, as one loop would, and
    stopping at its first failure. Every failure is raised here as an AssertionError with its
    traceback; nothing is skipped. For checks of many independent cases that cost CPU in this process."""
    import traceback

    items = list(items)
    if processes is None:
        processes = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    processes = max(1, min(processes, 4, len(items)))
    if processes == 1:
        for item in items:
            check(item)
        return
    children = []
    for share in range(processes):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # a child: its share of the items, then out without returning into pytest
            code = 0
            try:
                os.close(read)
                for item in items[share::processes]:
                    check(item)
            except BaseException:
                code = 1
                with os.fdopen(write, "wb") as f:
                    f.write(traceback.format_exc().encode(errors="replace"))
            finally:
                os._exit(code)
        os.close(write)
        children.append((pid, read))
    failures = []
    for pid, read in children:
        with os.fdopen(read, "rb") as f:
            said = f.read().decode(errors="replace")
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            failures.append(said or f"a checking process ended with {code} and said nothing")
    if failures:
        raise AssertionError("\n".join(failures))


def snapshot_tree(root) -> dict[str, bytes]:
    root = Path(root)
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else b"<dir>") for p in sorted(root.rglob("*"))}


def kill(proc, sig=signal.SIGKILL):
    proc.send_signal(sig)
    return proc.wait(timeout=30)


def wait_for_port(port, what, timeout=30):
    """Wait until something listens on 127.0.0.1:``port``."""
    import socket

    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"{what} did not start"
            time.sleep(0.1)
