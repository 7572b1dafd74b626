"""How a command ends when it cannot succeed: a library error becomes one `Error: ...` line and its
exit code (2 for a usage error), an OSError one line with its fix, and SIGINT or SIGTERM one line
and 130 or 143. Never a traceback."""

from __future__ import annotations

import functools
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import click

from trajgen.errors import ConfigError, TrajgenError, os_advice, os_reason


def fail(e: TrajgenError) -> None:
    if isinstance(e, ConfigError):
        raise click.UsageError(str(e))
    click.echo(f"Error: {e}", err=True)
    sys.exit(e.exit_code)


class Stopped(BaseException):
    """SIGINT or SIGTERM outside a run's own handling (which raises run.Interrupted instead)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def raise_stopped(signum, frame) -> None:
    raise Stopped(signum)


@contextmanager
def signals_raise() -> Iterator[None]:
    """While a command runs, SIGINT and SIGTERM raise Stopped, so what it was writing is cleaned up."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, raise_stopped) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# what a command stopped by a signal left behind, and what to do next
STOPPED_ADVICE = {
    "generate": "; if the run directory holds a config.json, trajgen resume RUN_DIR finishes the run (keeping every "
    "committed shard), else run the same command again",
    "resume": "; every committed shard is kept: run the same trajgen resume again",
    "export": "; the partial file was removed and nothing else was changed: export again",
    "preview": "; the partial picture or video was removed: run the preview again",
    "verify": "; nothing was changed: run verify again",
}


def stopped(name: str, signum: int) -> None:
    sig = signal.Signals(signum).name
    click.echo(f"Error: {name} stopped by {sig}{STOPPED_ADVICE.get(name, '; nothing was changed')}", err=True)
    sys.exit(128 + signum)


def translate_errors(command):
    """Turn library errors into `Error: ...` lines and exit codes; never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            with signals_raise():
                return command(*args, **kwargs)
        except Stopped as e:
            stopped(command.__name__, e.signum)
        except KeyboardInterrupt:  # SIGINT with Python's own handler (library use of the commands)
            stopped(command.__name__, signal.SIGINT)
        except TrajgenError as e:
            fail(e)
        except OSError as e:  # the library maps the ones it foresees; any other is still one line
            click.echo(f"Error: {os_error_line(e)}", err=True)
            sys.exit(1)
        except MemoryError:  # the bounds checked before allocating did not cover it: still one line
            click.echo(
                f"Error: {command.__name__} ran out of memory; use a smaller --checkpoint-every, --size, --frames "
                f"or --per-class, or fewer --workers (nothing was committed that is not whole)",
                err=True,
            )
            sys.exit(1)

    return wrapper


def os_error_line(e: OSError) -> str:
    """One line for an OSError: the path, the reason and the fix."""
    where = f" {e.filename}" if e.filename is not None else ""
    return f"cannot use{where}: {os_reason(e)}; {os_advice(e)}"
