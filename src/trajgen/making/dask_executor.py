"""Shards made by the workers of a Dask distributed cluster (``--scheduler tcp://HOST:PORT``).

Each worker runs the same ``produce_shard`` as a local worker process. For a run on disk it writes
the shard into RUN_DIR/.tmp/ and renames it into RUN_DIR/shards/ itself, so the run must sit on a
filesystem every worker mounts at the same path; for a run in object storage (``s3://…``) it puts
the shard straight into the bucket, and no filesystem is shared. This process (the client) alone
holds the lock and commits the manifest. A lost worker's task is recomputed by Dask, and a shard
made twice is the same bytes (they depend only on the config and k).

Workers are checked when the run starts (they see the run directory, may write it, run the
versions the run is made with), and every task checks its worker again before it writes: a
worker that joins later with other versions, or that sees another directory at the run's path,
refuses the task without writing; the others make its shards (with none left, the run stops,
resumable). Dask is imported only here, and only when a scheduler is used.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

from trajgen.content.config import GenerationConfig
from trajgen.errors import TrajgenError
from trajgen.making.dask_cluster import DaskError, QuietDistributedLogs, connect, import_distributed
from trajgen.store import _fs
from trajgen.store.objects import is_url
from trajgen.store.rundir import note

CONNECT_TIMEOUT = 5.0  # seconds to reach the scheduler, and to wait for its first worker
CLOSE_TIMEOUT = 3.0


class WorkerRefused(TrajgenError):
    """A task found its worker unfit to write the run (other versions, another directory); it wrote nothing."""

    def __init__(self, message: str, worker: str = ""):
        super().__init__(message)
        self.worker = worker

    def __reduce__(self):
        return (WorkerRefused, (str(self), self.worker))


class DaskExecutor:
    """Shard tasks on an existing Dask cluster; about one shard in flight per worker thread."""

    def __init__(self, address: str, *, timeout: float | None = None):
        self.address = address
        self.timeout = timeout = CONNECT_TIMEOUT if timeout is None else timeout
        import_distributed()  # configures Dask's logging, which is then quieted
        self._logs = QuietDistributedLogs()
        try:
            self._client = connect(address, timeout)
        except BaseException:
            self._logs.restore()
            raise

    def describe(self) -> str:
        return f"dask {self.address}"

    def check_target(self, target: os.PathLike | str) -> None:
        """Before a new run is created at ``target``: the scheduler has workers, and every one sees
        the directory the run will be in, may write there and runs the same versions. The check
        uses a scratch directory beside the target, removed afterwards, so a failure leaves
        nothing that would make the same command fail again."""
        if self._client is None:
            raise DaskError(f"the connection to the Dask scheduler at {self.address} was closed")
        if is_url(target):  # workers put shards in the bucket: nothing to share but the versions
            _check_workers(self._client, self.address, str(target), str(target), self.timeout, then=_AGAIN)
            return
        from trajgen.store.capacity import existing_ancestor

        where = Path(os.path.abspath(target))
        parent = existing_ancestor(where.parent)
        scratch = parent / f".trajgen-dask-check-{uuid.uuid4().hex[:12]}"
        try:
            for d in (scratch / ".tmp", scratch / "shards"):
                os.makedirs(d)
        except OSError as e:
            raise DaskError(f"cannot write in {parent} ({e.strerror or e}); choose another --out") from None
        try:
            _check_workers(self._client, self.address, str(target), str(where), self.timeout, probe_dir=str(scratch))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

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
        where = run_dir if is_url(run_dir) else os.path.abspath(run_dir)
        _check_workers(client, self.address, run_dir, where, self.timeout)
        # a token file every task reads before it writes: proof that its worker sees this very directory
        # (none for a run in a bucket: every worker reaches the same one by its URL)
        token = uuid.uuid4().hex
        token_file = Path("") if is_url(run_dir) else Path(where) / ".tmp" / f"dask-token-{token}"
        _write_probe(token_file, token)
        try:
            yield from _shard_results(
                client, self.address, task, config, run_dir, where, shards, token_file.name, token
            )
        finally:
            try:
                if token_file.name:
                    _fs.remove_file(token_file)
            except OSError:  # .tmp/ is cleared at the next start anyway
                pass


_AGAIN = "then run the same command again"


def _lost(address: str, run_dir: str) -> str:
    return (
        f"lost the Dask scheduler at {address} (stopped, restarted or unreachable); "
        f"the run is resumable: {_resume_hint(run_dir, address)}"
    )


def _resume_hint(run_dir: str, address: str) -> str:
    from trajgen.store.rundir import resume_command

    return f"{resume_command(run_dir)} --scheduler {address}"


# ---------------------------------------------------------------- can the workers reach the run?


def _write_probe(path: Path, token: str) -> None:
    if path.name:
        _fs.atomic_write_bytes(path, token.encode("utf-8"), path.parent)


def _probe(run_dir: str, probe_file: str, token: str) -> dict:
    """On a worker: does it see the client's run directory (the same one) and may it write there?"""
    import trajgen

    sees = _sees(run_dir, probe_file, token)
    writable = is_url(run_dir) or all(os.access(os.path.join(run_dir, d), os.W_OK) for d in ("shards", ".tmp"))
    from trajgen.store.versions import byte_versions

    return {
        "host": socket.gethostname(),
        "version": trajgen.__version__,
        "sees": sees,
        "writable": writable,
        "versions": byte_versions(),
    }


def _sees(run_dir: str, name: str, token: str) -> bool:
    """Whether this worker finds the client's ``token`` in RUN_DIR/.tmp/NAME: it sees the very run directory.
    A run in a bucket has no such file: every worker reaches the same run by its URL."""
    if is_url(run_dir):
        return True
    try:
        with open(os.path.join(run_dir, ".tmp", name), encoding="utf-8") as f:
            return f.read() == token
    except OSError:
        return False


def _check_workers(
    client,
    address: str,
    run_dir: str,
    where: str,
    timeout: float,
    *,
    probe_dir: str | None = None,
    then: str | None = None,
) -> None:
    """Fail before any shard is made when a worker could not write the run, or would write it differently.

    ``probe_dir`` (default ``where``) is a directory laid out like a run (.tmp/, shards/) that the
    workers are asked about; ``then`` is the advice that ends each error (default: the resume command)."""
    from trajgen import __version__

    then = then or (_AGAIN if probe_dir else f"then run: {_resume_hint(run_dir, address)}")
    probe_dir = probe_dir or where
    try:
        client.wait_for_workers(1, timeout=timeout)
    except Exception:
        raise DaskError(
            f"the Dask scheduler at {address} has no workers; start some with `dask worker {address}` "
            f"(on machines that see {where}), {then}"
        ) from None
    token = uuid.uuid4().hex
    probe = Path("") if is_url(run_dir) else Path(probe_dir) / ".tmp" / f"dask-probe-{token}"
    _write_probe(probe, token)
    try:
        answers = client.run(_probe, probe_dir, probe.name, token, on_error="return")
    except (OSError, TimeoutError):  # CommClosedError is an OSError
        raise DaskError(_lost(address, run_dir)) from None
    finally:
        try:
            if probe.name:
                _fs.remove_file(probe)
        except OSError:
            pass
    failed = {w: a for w, a in answers.items() if isinstance(a, BaseException)}
    if failed:
        worker, error = next(iter(failed.items()))
        raise DaskError(
            f"Dask worker {worker} cannot run trajgen ({type(error).__name__}: "
            f"{' '.join(str(error).split())}); install trajgen {__version__} on every worker, "
            f"{then}"
        )
    blind = sorted({a["host"] for a in answers.values() if not a["sees"]})
    if blind:
        raise DaskError(
            f"Dask workers on {', '.join(blind)} cannot see the run directory {run_dir} "
            f"(as {where}); it must be on a shared filesystem that every worker mounts at the same "
            f"path: use such an --out, or mount it there on the workers, {then}"
        )
    readonly = sorted({a["host"] for a in answers.values() if not a["writable"]})
    if readonly:
        raise DaskError(
            f"Dask workers on {', '.join(readonly)} cannot write into {where}/shards and .tmp; "
            f"give the workers' user write access on the shared filesystem, {then}"
        )
    from trajgen.store.versions import byte_versions, differences

    wanted = byte_versions()
    other = {w: differences(wanted, a.get("versions") or {"trajgen": a["version"]}) for w, a in answers.items()}
    other = {w: d for w, d in other.items() if d}
    if other:  # other versions could make other bytes
        worker, changed = next(iter(other.items()))
        raise DaskError(
            f"{len(other)} Dask worker(s) run other versions than this run (client → worker), e.g. "
            f"{worker}: {', '.join(changed)}; install the same versions on every worker, "
            f"{then}"
        )


# ---------------------------------------------------------------- making the shards


def _checked_task(
    task: Callable,
    config: GenerationConfig,
    run_dir: str,
    k: int,
    token_file: str,
    token: str,
    versions: dict[str, str],
):
    """On a worker, before anything is written: is this still a worker fit to write the run?"""
    from trajgen.store.versions import byte_versions, differences

    try:
        from distributed import get_worker

        worker = get_worker().address
    except (ImportError, ValueError):  # called outside a Dask worker (tests)
        worker = "?"
    where = f"Dask worker {worker} on {socket.gethostname()}"
    if not _sees(run_dir, token_file, token):
        raise WorkerRefused(
            f"{where} cannot see the run directory {run_dir} (another disk at that path?) and made no shard", worker
        )
    changed = differences(versions, byte_versions())
    if changed:
        raise WorkerRefused(
            f"{where} runs other versions than the run (run → worker): {', '.join(changed)} and made no shard", worker
        )
    return task(config, run_dir, k)


def _shard_results(
    client,
    address: str,
    task: Callable,
    config: GenerationConfig,
    run_dir: str,
    where: str,
    shards: list[int],
    token_file: str,
    token: str,
) -> Iterator:
    from concurrent.futures import CancelledError

    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    from trajgen.store.versions import byte_versions

    versions = byte_versions()  # what the run is made with (resume has checked them, or allowed a change)
    waiting = deque(shards)
    running: dict = {}  # future -> shard number
    refused: dict[str, str] = {}  # worker address -> why it may not write this run
    attempts = itertools.count()  # a refused shard is submitted again under a new key
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
            fit = None
            if refused:  # only workers that have not refused; a new worker is checked by its first task
                fit = [w for w in client.nthreads() if w not in refused]
                if not fit:
                    raise DaskError(
                        f"{next(reversed(refused.values()))}; no other Dask worker is left to make the "
                        f"run's shards: install the run's versions on every worker (with the run "
                        f"directory mounted at {where}), then run: {_resume_hint(run_dir, address)}"
                    )
            future = client.submit(
                _checked_task,
                task,
                config,
                where,
                k,
                token_file,
                token,
                versions,
                key=f"trajgen-shard-{k:05d}-{tag}-{next(attempts)}",
                pure=False,
                retries=0,
                workers=fit,
            )
            running[future] = k
            completed.add(future)

    lost = _lost(address, run_dir)
    workers = set(client.nthreads())

    def watch_workers() -> None:
        # a worker that dies is not an error: the scheduler makes its shards on the others; say so in the log
        nonlocal workers
        now = set(client.nthreads())
        for gone in sorted(workers - now):
            note(
                run_dir,
                f"dask: worker {gone} left the cluster (killed, crashed or stopped); the scheduler "
                f"makes its shards on the other workers",
            )
        workers = now

    try:
        try:
            top_up()
        except (OSError, TimeoutError):  # the connection to the scheduler broke (CommClosedError is an OSError)
            raise DaskError(lost) from None
        for future in completed:
            k = running.pop(future)
            try:
                result = future.result()
            except WorkerRefused as e:
                future.release()
                if e.worker not in refused:
                    refused[e.worker] = str(e)
                    note(run_dir, f"dask: refused worker {e.worker}: {e}; its shards go to the other workers")
                waiting.appendleft(k)
                try:
                    top_up()
                except (OSError, TimeoutError):
                    raise DaskError(lost) from None
                continue
            except KilledWorker:
                raise DaskError(
                    f"Dask workers died again and again while making shard {k} (out of memory? killed?); "
                    f"the run is resumable: {_resume_hint(run_dir, address)}"
                ) from None
            except (CancelledError, OSError, TimeoutError):  # the scheduler forgot the task, or the connection
                raise DaskError(lost) from None  # that fetches its result broke
            future.release()
            try:
                watch_workers()
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
