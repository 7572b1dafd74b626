"""Helpers for tests that make and compare real run directories."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

RESULT_FILES = ("config.json", "manifest.json")


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
