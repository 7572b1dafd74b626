"""Executors: who makes the shards. The generation loop (loop.py) is the same for all;
an executor only turns a list of shard numbers into ShardResults, in any order.

- SerialExecutor: this process, one shard at a time.
- ProcessExecutor: N spawned worker processes on this machine, at most one shard each.
- DaskExecutor (dask_executor.py): the workers of a Dask distributed cluster.

Every executor has ``describe()``, ``run(task, config, run_dir, shards)`` (a generator;
closing it stops the work promptly) and ``close()``.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path
from typing import cast

from trajgen.content.config import GenerationConfig
from trajgen.errors import TrajgenError
from trajgen.making import inflight
from trajgen.store import _fs
from trajgen.store.rundir import note

MAX_POOL_RESTARTS = 3


class WorkerLostError(TrajgenError):
    """Worker processes kept dying; the run was left resumable."""


class SerialExecutor:
    def describe(self) -> str:
        return "serial"

    def run(self, task: Callable, config: GenerationConfig, run_dir: str, shards: list[int]) -> Iterator:
        from trajgen.making.shardmaker import videos_buffer_kept

        with videos_buffer_kept():
            for k in shards:
                yield task(config, run_dir, k)

    def close(self) -> None:
        pass


def _worker_init(parent_pid: int) -> None:
    """In each worker: leave Ctrl-C to the parent, and never outlive it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):  # blocked since spawn (see _ctrl_c_blocked); now ignored instead
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    try:  # Linux: the kernel kills this worker when its parent dies, even by kill -9
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)
    from trajgen.making import shardmaker

    shardmaker._keep_videos_buffer = True  # this process makes one shard at a time, for one run

    def watch() -> None:  # portable fallback for systems without PR_SET_PDEATHSIG
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            threading.Event().wait(0.5)

    threading.Thread(target=watch, daemon=True).start()


@contextmanager
def _ctrl_c_blocked():
    """Spawn workers with SIGINT blocked: a Ctrl-C that reaches the whole process group
    while a worker is still importing would otherwise kill it with a traceback. The
    worker ignores SIGINT and unblocks it in _worker_init; this process handles it
    as soon as the block is lifted."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class ProcessExecutor:
    """Shards made by ``workers`` spawned processes; a pool broken by a dead worker is
    restarted and the lost shards are made again (up to MAX_POOL_RESTARTS times)."""

    def __init__(self, workers: int):
        self.workers = workers
        self._ready: ProcessPoolExecutor | None = None

    def describe(self) -> str:
        return f"processes x{self.workers}"

    def start(self, config: GenerationConfig | None = None) -> None:
        """Spawn the workers now, so their start-up (imports, and the first touch of a shard's
        memory) overlaps this process's set-up. On any failure (Ctrl-C included) the workers
        started so far are stopped before the error goes on."""
        try:
            self._ready = self._pool(self.workers)
            with _ctrl_c_blocked():
                for _ in range(self.workers):
                    self._ready.submit(_warm_up, config)
            _fs.pause_point("workers-started")
        except BrokenProcessPool:  # a worker died while starting: run() starts a fresh pool
            self.close()
        except BaseException as e:
            self.close()
            if isinstance(e, OSError):  # e.g. EMFILE: too many open files for this many workers
                raise WorkerLostError(
                    f"could not start {self.workers} worker processes: {e.strerror or e}; "
                    f"use fewer --workers (or raise the open-file limit, ulimit -n)"
                ) from None
            raise

    def close(self) -> None:
        pool, self._ready = self._ready, None
        if pool is not None:  # started but never used (e.g. the run was refused)
            _stop(pool, None)

    def _pool(self, workers: int) -> ProcessPoolExecutor:
        import multiprocessing

        _quiet_resource_tracker()
        _quiet_pool_manager_thread()

        # spawn, not fork: a forked worker would inherit the run's lock descriptor and this process's threads
        return ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init, initargs=(os.getpid(),)
        )

    def run(self, task: Callable, config: GenerationConfig, run_dir: str, shards: list[int]) -> Iterator:
        waiting = deque(shards)
        workers = max(1, min(self.workers, len(shards)))
        # one shard queued beyond the busy workers, so none waits while this process commits;
        # a queued shard is only its number: each worker still holds one shard's arrays at most
        in_flight = workers + 1
        restarts = 0  # pool restarts since the last shard arrived: the budget is for deaths without progress
        pool = None
        running: dict = {}
        try:
            while waiting or running:
                if pool is None:
                    pool, self._ready = (self._ready or self._pool(workers)), None
                broken = False
                try:
                    with _ctrl_c_blocked():
                        while waiting and len(running) < in_flight:
                            running[pool.submit(task, config, run_dir, waiting[0])] = waiting[0]
                            waiting.popleft()
                except BrokenProcessPool:  # a worker died since the last wait
                    broken = True
                except (OSError, ValueError) as e:  # ValueError: spawning raced a dying worker's pipes
                    if not (pool._broken or any(not p.is_alive() for p in (pool._processes or {}).values())):
                        from trajgen.store.rundir import resume_command

                        raise WorkerLostError(
                            f"could not start worker processes ({e}); try fewer --workers: "
                            f"{resume_command(run_dir)} --workers 1"
                        ) from None
                    broken = True  # the pool broke while starting a replacement worker
                done, _ = wait(running, return_when=FIRST_COMPLETED) if not broken else (set(), set())
                lost = []  # shards whose worker pool broke: made again
                for future in sorted(done, key=running.__getitem__):
                    k = running.pop(future)
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        waiting.appendleft(k)
                        lost.append(k)
                        broken = True
                        continue
                    restarts = 0
                    yield result
                if broken:
                    # the pool is unusable once a worker died: every shard in it is made again
                    restarts += 1
                    waiting.extendleft(sorted(running.values(), reverse=True))
                    lost = sorted(lost + list(running.values()))
                    running.clear()
                    workers_before = list((pool._processes or {}).values())
                    manager = getattr(pool, "_executor_manager_thread", None)
                    if manager is not None:  # ends the broken pool's other workers and reaps all: exit codes settle
                        manager.join(timeout=5)
                    killed = _stop(pool, run_dir)
                    pool = None
                    inflight.discard(Path(run_dir) / ".tmp", lost)  # they start again from nothing
                    if restarts > MAX_POOL_RESTARTS:
                        from trajgen.store.rundir import resume_command

                        raise WorkerLostError(
                            f"worker processes died {restarts} times in a row without finishing a "
                            f"shard (out of memory? killed?); the run is resumable: "
                            f"{resume_command(run_dir)}"
                        )
                    note(
                        run_dir,
                        f"{_dead_workers(workers_before, killed)}; restarting the {workers} worker "
                        f"processes, making {_shards_text(lost)} again",
                    )
        finally:
            if pool is not None:
                _stop(pool, run_dir)


def _dead_workers(processes: list, killed: set[int]) -> str:
    """Which worker of a stopped pool died, for run.log: not one that _stop killed (``killed``),
    nor, if another is left, one the pool ended with SIGTERM once a worker was dead."""
    ended = [(p.pid, p.exitcode) for p in processes if p.pid not in killed and p.exitcode is not None]
    first = [(pid, code) for pid, code in ended if code != -signal.SIGTERM] or ended
    if not first:
        return "a worker process died"

    def how(code: int) -> str:
        if code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit code {code}"

    return "; ".join(f"worker process pid {pid} died ({how(code)})" for pid, code in sorted(first))


def _shards_text(shards: list[int]) -> str:
    if not shards:
        return "no shard"
    return f"shard {shards[0]}" if len(shards) == 1 else "shards " + ", ".join(map(str, shards))


def _quiet_resource_tracker() -> None:
    """After a kill -9 of this process, multiprocessing's resource tracker (a helper process
    started with this interpreter's -W options) frees the pool's semaphores and warns about
    "leaked" ones on the user's terminal. Freeing them is right; the warning is noise."""
    option = "ignore:resource_tracker:UserWarning"
    if option not in sys.warnoptions:
        sys.warnoptions.append(option)


def _quiet_pool_manager_thread() -> None:
    """A worker killed while the pool is still spawning others can make the pool's own manager
    thread fail as it tears the broken pool down (CPython's "dictionary changed size during
    iteration"). It has already failed every pending future by then, which run() handles by
    restarting the pool; its traceback would only be noise on the user's terminal."""
    if getattr(threading.excepthook, "_trajgen", False):
        return
    previous = threading.excepthook

    def hook(args) -> None:
        if type(args.thread).__name__ == "_ExecutorManagerThread":
            return
        previous(args)

    hook._trajgen = True  # type: ignore[attr-defined]  # marks the hook as installed; mypy has no function attributes
    threading.excepthook = hook


def _warm_up(config: GenerationConfig | None) -> None:
    _fs.pause_point("warm-up")
    from trajgen.making import shardmaker  # numpy, OpenCV and the pipeline, imported before the first shard

    if config is not None:
        shardmaker.videos_buffer(config, min(config.checkpoint_every, config.n))


def _stop(pool: ProcessPoolExecutor, run_dir: str | None) -> set[int]:
    """Stop a pool now: workers write only into .tmp/ and rename atomically, so killing is
    safe; the half-written files of the killed workers are removed. A Ctrl-C meanwhile waits
    until every worker is gone. Returns the pids of the workers it killed."""
    killed: set[int] = set()
    with _signals_held():
        processes = list((pool._processes or {}).values())
        for p in processes:
            if p.is_alive():
                p.kill()
                killed.add(cast(int, p.pid))  # an alive process has its pid
        pool.shutdown(wait=True, cancel_futures=True)
        if run_dir is not None:
            _fs.discard_temp_files(Path(run_dir) / ".tmp", [p.pid for p in processes])
    return killed


@contextmanager
def _signals_held():
    """SIGINT and SIGTERM that arrive inside are delivered when it ends (main thread only: the
    only one where Python runs signal handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig, handler in previous.items():
        if handler is not None:  # None: installed outside Python, left alone
            signal.signal(sig, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            if handler is not None:
                signal.signal(sig, handler)
        if held:
            signal.raise_signal(held[0])


def usable_cpus() -> int:
    """CPUs this process may run on (affinity and container cpusets count, not the host's total)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def choose_executor(
    workers: int | None, scheduler: str | None, shards: int | None = None, config: GenerationConfig | None = None
):
    """The executor for a run: Dask when a scheduler is given, else processes or this one.

    With a scheduler this connects to it, so a wrong address fails here, before any write."""
    if scheduler:
        from trajgen.making.dask_executor import DaskExecutor

        return DaskExecutor(scheduler)
    if workers is None:
        workers = usable_cpus()
    if workers < 1:
        raise TrajgenError(f"--workers must be ≥ 1, got {workers}")
    if shards is not None:
        workers = min(workers, shards)
    if workers == 1:
        return SerialExecutor()
    executor = ProcessExecutor(workers)
    executor.start(config)
    return executor
