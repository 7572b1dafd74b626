"""Shards made by the workers of a Dask distributed cluster (``--scheduler tcp://HOST:PORT``).

Each worker runs the same ``produce_shard`` as a local worker process: it writes the
shard into RUN_DIR/.tmp/ and renames it into RUN_DIR/shards/ itself. So the run must sit
on a filesystem every worker mounts at the same path; this process (the client) alone
holds the lock and commits the manifest. A lost worker's task is recomputed by Dask,
and a shard made twice is the same file (its bytes depend only on the config and k).

Dask is imported only here, and only when a scheduler is used.
"""

from __future__ import annotations

import os
import socket
import sys
import uuid
from collections import deque
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from trajgen.config import GenerationConfig
from trajgen.errors import TrajgenError

CONNECT_TIMEOUT = 5.0  # seconds to reach the scheduler, and to wait for its first worker
CLOSE_TIMEOUT = 3.0


class DaskError(TrajgenError):
    """Dask cannot run this run: not installed, scheduler unreachable, or workers that cannot reach the run."""


class DaskExecutor:
    """Shard tasks on an existing Dask cluster; about one shard in flight per worker thread."""

    def __init__(self, address: str, *, timeout: float | None = None):
        self.address = address
        self.timeout = timeout = CONNECT_TIMEOUT if timeout is None else timeout
        _import_distributed()  # configures Dask's logging, which is then quieted
        self._logs = _QuietDistributedLogs()
        try:
            self._client = _connect(address, timeout)
        except BaseException:
            self._logs.restore()
            raise

    def describe(self) -> str:
        return f"dask {self.address}"

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close(timeout=CLOSE_TIMEOUT)
            except Exception:  # the scheduler may be gone already; nothing of the run depends on it
                pass
            self._logs.restore()

    def run(self, task: Callable, config: GenerationConfig, run_dir: str, shards: list[int]) -> Iterator:
        if self._client is None:
            raise DaskError(f"the connection to the Dask scheduler at {self.address} was closed")
        client = self._client
        # workers resolve paths in their own working directory, so they get an absolute one
        where = os.path.abspath(run_dir)
        _check_workers(client, self.address, run_dir, where, self.timeout)
        yield from _shard_results(client, self.address, task, config, run_dir, where, shards)


def _lost(address: str, run_dir: str) -> str:
    return (f"lost the Dask scheduler at {address} (stopped, restarted or unreachable); "
            f"the run is resumable: {_resume_hint(run_dir, address)}")


def _resume_hint(run_dir: str, address: str) -> str:
    from trajgen.run import resume_command

    return f"{resume_command(run_dir)} --scheduler {address}"


# ---------------------------------------------------------------- connecting

def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise DaskError("--scheduler needs Dask, which is not installed: pip install 'dask[distributed]' (or install trajgen's wheel with the [dask] extra)") from None
    return distributed


def _connect(address: str, timeout: float):
    distributed = _import_distributed()
    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.comm.registry import backends

    try:
        scheme, location = parse_address(address)
        if scheme not in backends:
            raise ValueError(f"unknown scheme {scheme!r}")
        host, port = parse_host_port(location) if scheme in ("tcp", "tls", "ws", "wss") else (None, None)
    except (ValueError, TypeError) as e:
        raise DaskError(f"--scheduler {address!r} is not a Dask scheduler address ({e}); "
                        f"use tcp://HOST:PORT, e.g. tcp://10.0.0.5:8786") from None
    unreachable = (f"cannot reach the Dask scheduler at {address} ({{}}); start one with `dask scheduler` "
                   f"and workers with `dask worker {address}`, or fix --scheduler")
    if host is not None:  # a plain TCP probe first: fails fast on a refused connection or an unknown host
        try:
            socket.create_connection((host, port), timeout=timeout).close()
        except OSError as e:
            raise DaskError(unreachable.format(_reason(e, timeout))) from None
    # Client() can wait forever on a server that accepts but never answers (not a Dask scheduler),
    # so ask "who are you?" first, with a deadline
    try:
        kind = _identity(address, timeout).get("type")
    except Exception as e:
        raise DaskError(unreachable.format(_reason(e, timeout))) from None
    if kind != "Scheduler":
        raise DaskError(f"{address} is a Dask {kind or 'server'}, not the scheduler; give --scheduler the address "
                        f"that `dask scheduler` printed (tcp://HOST:8786 by default)")
    with _quiet_unraisable():
        try:
            return distributed.Client(address, timeout=timeout, set_as_default=False)
        except Exception as e:  # e.g. the scheduler went away since it answered
            reason = _reason(e, timeout)
    raise DaskError(unreachable.format(reason))


def _identity(address: str, timeout: float) -> dict:
    """The server's identity message, asked on a private event loop in a helper thread
    (the caller may be running an event loop of its own, e.g. in Jupyter)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from distributed.core import rpc

    async def ask() -> dict:
        remote = rpc(address, timeout=timeout)
        try:
            return await asyncio.wait_for(remote.identity(), timeout)
        finally:
            await remote.close_rpc()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, ask()).result()


def _reason(e: BaseException, timeout: float) -> str:
    if isinstance(e, (socket.timeout, TimeoutError)):
        return f"no answer within {timeout:g} s"
    if isinstance(e, socket.gaierror):
        return "unknown host"
    text = (getattr(e, "strerror", None) or str(e) or type(e).__name__)
    return " ".join(text.split())


class _QuietDistributedLogs:
    """While trajgen's client lives, Dask's own logs stay below CRITICAL: a lost scheduler
    connection, for one, is logged with a traceback, and the one-line error that trajgen
    raises for it already says what happened and how to resume."""

    def __init__(self) -> None:
        import logging

        self._saved = {}
        names = ["distributed"] + [n for n in logging.root.manager.loggerDict if n.startswith("distributed.")]
        for name in names:
            logger = logging.getLogger(name)
            self._saved[name] = logger.level
            if logger.level != logging.NOTSET or name == "distributed":
                logger.setLevel(logging.CRITICAL)

    def restore(self) -> None:
        import logging

        saved, self._saved = self._saved, {}
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


@contextmanager
def _quiet_unraisable():
    """A Client that failed to start complains from its __del__ when it is collected;
    the clear error raised instead says all there is to say."""
    import gc

    previous = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: None
    try:
        yield
    finally:
        gc.collect()
        sys.unraisablehook = previous


# ---------------------------------------------------------------- can the workers reach the run?

def _write_probe(path: Path, token: str) -> None:
    path.write_text(token, encoding="utf-8")


def _probe(run_dir: str, probe_file: str, token: str) -> dict:
    """On a worker: does it see the client's run directory (the same one) and may it write there?"""
    import trajgen

    try:
        with open(os.path.join(run_dir, ".tmp", probe_file), encoding="utf-8") as f:
            sees = f.read() == token
    except OSError:
        sees = False
    writable = all(os.access(os.path.join(run_dir, d), os.W_OK) for d in ("shards", ".tmp"))
    return {"host": socket.gethostname(), "version": trajgen.__version__, "sees": sees, "writable": writable}


def _check_workers(client, address: str, run_dir: str, where: str, timeout: float) -> None:
    """Fail before any shard is made when a worker could not write the run, or would write it differently."""
    from trajgen import __version__

    try:
        client.wait_for_workers(1, timeout=timeout)
    except Exception:
        raise DaskError(f"the Dask scheduler at {address} has no workers; start some with `dask worker {address}` "
                        f"(on machines that see {where}), then run: {_resume_hint(run_dir, address)}") from None
    token = uuid.uuid4().hex
    probe = Path(where) / ".tmp" / f"dask-probe-{token}"
    _write_probe(probe, token)
    try:
        answers = client.run(_probe, where, probe.name, token, on_error="return")
    except (OSError, TimeoutError):  # CommClosedError is an OSError
        raise DaskError(_lost(address, run_dir)) from None
    finally:
        try:
            probe.unlink()
        except OSError:
            pass
    failed = {w: a for w, a in answers.items() if isinstance(a, BaseException)}
    if failed:
        worker, error = next(iter(failed.items()))
        raise DaskError(f"Dask worker {worker} cannot run trajgen ({type(error).__name__}: "
                        f"{' '.join(str(error).split())}); install trajgen {__version__} on every worker, "
                        f"then run: {_resume_hint(run_dir, address)}")
    blind = sorted({a["host"] for a in answers.values() if not a["sees"]})
    if blind:
        raise DaskError(f"Dask workers on {', '.join(blind)} cannot see the run directory {run_dir} "
                        f"(as {where}); it must be on a shared filesystem that every worker mounts at the same "
                        f"path: use such an --out, or mount it there on the workers, then run: "
                        f"{_resume_hint(run_dir, address)}")
    readonly = sorted({a["host"] for a in answers.values() if not a["writable"]})
    if readonly:
        raise DaskError(f"Dask workers on {', '.join(readonly)} cannot write into {where}/shards and .tmp; "
                        f"give the workers' user write access on the shared filesystem, then run: "
                        f"{_resume_hint(run_dir, address)}")
    versions = sorted({a["version"] for a in answers.values()} - {__version__})
    if versions:  # another version could make other bytes
        raise DaskError(f"Dask workers run trajgen {', '.join(versions)} but this client runs {__version__}; "
                        f"install the same version everywhere, then run: {_resume_hint(run_dir, address)}")


# ---------------------------------------------------------------- making the shards

def _shard_results(client, address: str, task: Callable, config: GenerationConfig, run_dir: str, where: str,
                   shards: list[int]) -> Iterator:
    from distributed import as_completed
    from distributed.scheduler import KilledWorker
    from concurrent.futures import CancelledError

    waiting = deque(shards)
    running: dict = {}  # future -> shard number
    tag = uuid.uuid4().hex[:8]  # keys unique to this client: a killed client's tasks are never adopted
    completed = as_completed(loop=client.loop)

    def top_up() -> None:
        # about one shard per worker thread, plus one so a worker never waits while this process commits;
        # the rest stay here, not on the cluster (a Ctrl-C then has little to cancel)
        limit = max(1, sum(client.nthreads().values())) + 1
        while waiting and len(running) < limit:
            k = waiting.popleft()
            # retries=0: an error in a task is the same on every try (or a full disk that needs a person);
            # a lost worker is not an error, the scheduler reruns its task by itself
            future = client.submit(task, config, where, k, key=f"trajgen-shard-{k:05d}-{tag}", pure=False, retries=0)
            running[future] = k
            completed.add(future)

    lost = _lost(address, run_dir)
    try:
        try:
            top_up()
        except (OSError, TimeoutError):  # the connection to the scheduler broke (CommClosedError is an OSError)
            raise DaskError(lost) from None
        for future in completed:
            k = running.pop(future)
            try:
                result = future.result()
            except KilledWorker:
                raise DaskError(f"Dask workers died again and again while making shard {k} (out of memory? killed?); "
                                f"the run is resumable: {_resume_hint(run_dir, address)}") from None
            except (CancelledError, OSError, TimeoutError):  # the scheduler forgot the task, or the connection
                raise DaskError(lost) from None                 # that fetches its result broke
            future.release()
            try:
                top_up()
            except (OSError, TimeoutError):
                raise DaskError(lost) from None
            yield result
    finally:
        if running:
            try:
                client.cancel(list(running), force=True)
            except Exception:  # the scheduler may be gone; it drops a lost client's tasks itself
                pass
