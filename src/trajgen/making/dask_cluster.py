"""Reaching a Dask cluster: connecting to its scheduler with a bounded wait, naming what went wrong
in one line, and keeping distributed's own logging quiet while trajgen works."""

from __future__ import annotations

import socket
import sys
from contextlib import contextmanager

from trajgen.errors import TrajgenError


class DaskError(TrajgenError):
    """Dask cannot run this run: not installed, scheduler unreachable, or workers that cannot reach the run."""


def import_distributed():
    try:
        import distributed
    except ImportError:
        raise DaskError(
            "--scheduler needs Dask, which is not installed: pip install 'dask[distributed]' (or install trajgen's wheel with the [dask] extra)"
        ) from None
    return distributed


def connect(address: str, timeout: float):
    distributed = import_distributed()
    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.comm.registry import backends

    try:
        scheme, location = parse_address(address)
        if scheme not in backends:
            raise ValueError(f"unknown scheme {scheme!r}")
        probe: tuple[str, int] | None = (
            parse_host_port(location) if scheme in ("tcp", "tls", "ws", "wss") else None
        )  # (host, port)
    except (ValueError, TypeError) as e:
        raise DaskError(
            f"--scheduler {address!r} is not a Dask scheduler address ({e}); "
            f"use tcp://HOST:PORT, e.g. tcp://10.0.0.5:8786"
        ) from None
    unreachable = (
        f"cannot reach the Dask scheduler at {address} ({{}}); start one with `dask scheduler` "
        f"and workers with `dask worker {address}`, or fix --scheduler"
    )
    if probe is not None:  # a plain TCP probe first: fails fast on a refused connection or an unknown host
        try:
            socket.create_connection(probe, timeout=timeout).close()
        except OSError as e:
            raise DaskError(unreachable.format(_reason(e, timeout))) from None
    # Client() can wait forever on a server that accepts but never answers (not a Dask scheduler),
    # so ask "who are you?" first, with a deadline
    try:
        kind = _identity(address, timeout).get("type")
    except Exception as e:
        raise DaskError(unreachable.format(_reason(e, timeout))) from None
    if kind != "Scheduler":
        raise DaskError(
            f"{address} is a Dask {kind or 'server'}, not the scheduler; give --scheduler the address "
            f"that `dask scheduler` printed (tcp://HOST:8786 by default)"
        )
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
    text = getattr(e, "strerror", None) or str(e) or type(e).__name__
    return " ".join(text.split())


class QuietDistributedLogs:
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
