"""Headless Chromium for page tests: the DOM after scripts ran, and screenshots to look at.

Pages are opened from file:// like a person opens them from a synced folder. Without
chromium the tests skip, unless TRAJGEN_REQUIRE_BROWSER=1 (set by .ci/run) makes that a failure.
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--allow-file-access-from-files",
)


def chromium() -> str:
    """The chromium binary, or skip (fail under TRAJGEN_REQUIRE_BROWSER=1)."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        message = "chromium is not installed (apt-get install chromium faketime)"
        if os.environ.get("TRAJGEN_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


def _run(args: list[str], faketime: str | None, timeout: float) -> subprocess.CompletedProcess:
    cmd = [chromium(), *FLAGS, *args]
    if faketime is not None:  # the browser's clock, e.g. "+3h" or "@2030-01-01 00:00:00"
        tool = shutil.which("faketime")
        if tool is None:
            message = "faketime is not installed (apt-get install faketime)"
            if os.environ.get("TRAJGEN_REQUIRE_BROWSER") == "1":
                pytest.fail(message)
            pytest.skip(message)
        cmd = [tool, "-f", faketime, *cmd]
    with tempfile.TemporaryDirectory(prefix="trajgen-chromium-") as profile:
        return subprocess.run(
            [*cmd[:-1], f"--user-data-dir={profile}", cmd[-1]], capture_output=True, text=True, timeout=timeout
        )


def dump_dom(
    page: os.PathLike | str, *, faketime: str | None = None, budget_ms: int = 3000, timeout: float = 90
) -> str:
    """The serialized DOM of ``page`` after its scripts ran (``--dump-dom``)."""
    url = Path(page).resolve().as_uri()
    result = _run([f"--virtual-time-budget={budget_ms}", "--dump-dom", url], faketime, timeout)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def screenshot(
    page: os.PathLike | str,
    png: os.PathLike | str,
    *,
    size: tuple[int, int] = (1280, 1000),
    faketime: str | None = None,
    timeout: float = 90,
) -> Path:
    """A PNG of ``page`` as a person would see it."""
    url = Path(page).resolve().as_uri()
    png = Path(png).resolve()
    _run(
        [f"--window-size={size[0]},{size[1]}", "--virtual-time-budget=3000", f"--screenshot={png}", url],
        faketime,
        timeout,
    )
    assert png.is_file(), f"chromium wrote no screenshot of {page}"
    return png
