"""Executors: who makes the shards. The generation loop in run.py is the same for all;
an executor only turns a list of shard numbers into ShardResults, in any order.

- SerialExecutor: this process, one shard at a time.
- ProcessExecutor: N spawned worker processes on this machine, at most one shard each.
"""

from __future__ import annotations

import os
import signal
import threading
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Iterator

from trajgen.config import GenerationConfig
from trajgen.errors import TrajgenError

MAX_POOL_RESTARTS = 3


class WorkerLostError(TrajgenError):
    """Worker processes kept dying; the run was left resumable."""


class SerialExecutor:
    def describe(self) -> str:
        return "serial"

    def run(self, task: Callable, config: GenerationConfig, run_dir: str, shards: list[int]) -> Iterator:
        for k in shards:
            yield task(config, run_dir, k)


def _worker_init(parent_pid: int) -> None:
    """In each worker: leave Ctrl-C to the parent, and never outlive it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:  # Linux: the kernel kills this worker when its parent dies, even by kill -9
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:  # portable fallback for systems without PR_SET_PDEATHSIG
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            threading.Event().wait(0.5)

    threading.Thread(target=watch, daemon=True).start()


class ProcessExecutor:
    """Shards made by ``workers`` spawned processes; a pool broken by a dead worker is
    restarted and the lost shards are made again (up to MAX_POOL_RESTARTS times)."""

    def __init__(self, workers: int):
        self.workers = workers

    def describe(self) -> str:
        return f"processes x{self.workers}"

    def _pool(self) -> ProcessPoolExecutor:
        import multiprocessing

        # spawn, not fork: a forked worker would inherit the run's lock descriptor
        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_worker_init, initargs=(os.getpid(),))

    def run(self, task: Callable, config: GenerationConfig, run_dir: str, shards: list[int]) -> Iterator:
        waiting = deque(shards)
        restarts = 0
        pool = self._pool()
        running: dict = {}
        try:
            while waiting or running:
                while waiting and len(running) < self.workers:
                    k = waiting.popleft()
                    running[pool.submit(task, config, run_dir, k)] = k
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                broken = False
                for future in done:
                    k = running.pop(future)
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        waiting.appendleft(k)
                        broken = True
                        continue
                    yield result
                if broken:
                    restarts += 1
                    waiting.extendleft(sorted(running.values(), reverse=True))
                    running.clear()
                    _stop(pool)
                    if restarts > MAX_POOL_RESTARTS:
                        raise WorkerLostError(f"worker processes died {restarts} times (out of memory? killed?); "
                                              f"the run is resumable")
                    pool = self._pool()
        finally:
            _stop(pool)


def _stop(pool: ProcessPoolExecutor) -> None:
    """Stop a pool now: workers write only into .tmp/ and rename atomically, so killing is safe."""
    processes = list((pool._processes or {}).values())
    for p in processes:
        if p.is_alive():
            p.kill()
    pool.shutdown(wait=True, cancel_futures=True)


def choose_executor(workers: int | None, scheduler: str | None, shards: int):
    """The executor for a run: Dask when a scheduler is given, else processes or this one."""
    if scheduler:
        from trajgen.dask_executor import DaskExecutor

        return DaskExecutor(scheduler)
    if workers is None:
        workers = os.cpu_count() or 1
    if workers < 1:
        raise TrajgenError(f"--workers must be ≥ 1, got {workers}")
    workers = min(workers, shards)
    return ProcessExecutor(workers) if workers > 1 else SerialExecutor()
