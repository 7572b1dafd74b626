"""The --progress-to mirror: keeps DIR/PROGRESS.txt and DIR/PROGRESS.html current in a (synced)
folder, and the bounded history the page's chart draws.

The mirror writes from its own thread, newest state only: a slow or hung folder (a dead
network mount) never holds up a commit, and a folder that cannot be written is one
warning per distinct failure, never a reason to stop. Temp files are dot-prefixed in the
folder itself and renamed over the targets, so a sync client never uploads half a file.
"""

from __future__ import annotations

import errno
import json
import math
import os
import threading
import time

from trajgen.store import _fs
from trajgen.watch.page import render_page
from trajgen.watch.progress import format_progress_text

HISTORY_FILE = "progress_history.json"
HISTORY_FORMAT = "trajgen-progress-history/1"
MAX_HISTORY_POINTS = 240
CLOSE_TIMEOUT = 3.0  # at the end of a run, how long the last mirror write may take before we give up
MAX_MIRROR_SPACING = 1.0  # seconds: a synced folder gets at most one update a second (or per interval, if shorter)
MIRROR_FILES = ("PROGRESS.txt", "PROGRESS.html")
THUMBNAIL_SPACING = 5.0  # seconds: the page's samples are at most this much behind (drawing them: ~35 ms)


# ---------------------------------------------------------------- history


class ProgressHistory:
    """(unix time, completed samples) points for the chart, at most MAX_HISTORY_POINTS.

    The newest point always floats (each update replaces it until a step has passed); when
    the list is full every other point goes and the step doubles, so the chart covers the
    whole run at an even, coarser spacing however long it runs."""

    def __init__(self, points=()):
        self.points = [(float(t), int(done)) for t, done in points]
        self._step = self._typical_step() if len(self.points) >= MAX_HISTORY_POINTS // 2 else 0.0

    def _typical_step(self):
        fixed = self.points[:-1]
        return (fixed[-1][0] - fixed[0][0]) / max(1, len(fixed) - 1) if len(fixed) > 1 else 0.0

    def add(self, t, done):
        t, done = float(t), int(done)
        if self.points and t < self.points[-1][0]:
            return  # a clock step backwards: keep the chart monotonic
        if len(self.points) >= 2 and t - self.points[-2][0] < self._step:
            self.points[-1] = (t, done)
            return
        self.points.append((t, done))
        if len(self.points) > MAX_HISTORY_POINTS:
            newest = self.points[-1]
            self.points = self.points[:-1:2] + [newest]
            self._step = self._typical_step()

    def to_bytes(self):
        points = [[round(t, 3), done] for t, done in self.points]
        return (json.dumps({"format": HISTORY_FORMAT, "points": points}) + "\n").encode("utf-8")

    @classmethod
    def from_bytes(cls, data):
        doc = json.loads(data)
        if doc.get("format") != HISTORY_FORMAT:
            raise ValueError(f"not a {HISTORY_FORMAT} file")
        return cls(doc["points"][-MAX_HISTORY_POINTS:])

    @classmethod
    def load(cls, path):
        """The history kept by earlier processes of the run; empty if missing or unreadable."""
        try:
            with open(path, "rb") as f:
                return cls.from_bytes(f.read())
        except (OSError, ValueError, KeyError, TypeError):
            return cls()


# ---------------------------------------------------------------- the mirror


class ProgressMirror:
    """Keeps FOLDER/PROGRESS.txt and FOLDER/PROGRESS.html equal to the run's progress.

    ``publish`` is called by whoever writes PROGRESS.txt: it records the chart's point
    (persisting the history in the run directory at most once per interval) and hands the
    snapshot to the mirror thread, which writes the newest one it has. ``warn(message, kind)``
    reports failures ("warning") and recoveries ("note"). ``pictures(shard)`` gives (shard,
    [(class name, sample index, PNG bytes)]) for the page: the first samples of that committed
    shard, or of the newest one committed when ``shard`` is None (a resumed run's)."""

    def __init__(self, folder, run_dir, tmp_dir, interval, warn, pictures=None):
        self.folder = os.path.abspath(folder)
        self._run_dir, self._tmp_dir, self._interval, self._warn = (
            os.fspath(run_dir),
            os.fspath(tmp_dir),
            interval,
            warn,
        )
        self._history_path = os.path.join(self._run_dir, HISTORY_FILE)
        self._history = ProgressHistory.load(self._history_path)
        self._history_saved = -math.inf
        self._cond = threading.Condition()
        self._pending = None  # the newest (snapshot, chart points, shard) not yet written
        self._busy = False
        self._closing = False
        self._failing = None  # the failure last warned about, until a write succeeds
        self._thumbs, self._thumbs_shard, self._thumbs_at, self._thumbs_warned = [], None, -math.inf, False
        self._pictures = pictures
        self._thread = None

    # ---- the writer's side (never blocks on the folder)

    def publish(self, snapshot, shard=None):
        self._history.add(snapshot.updated_at.timestamp(), snapshot.completed_samples)
        now = time.monotonic()
        if snapshot.state != "RUNNING" or now - self._history_saved >= self._interval:
            self._history_saved = now
            try:
                _fs.atomic_write_bytes(self._history_path, self._history.to_bytes(), self._tmp_dir)
            except OSError:
                pass  # only the chart's memory; PROGRESS.txt's own write reports a failing disk
        with self._cond:
            self._pending = (snapshot, list(self._history.points), shard)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="trajgen-mirror", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def flush(self, timeout=None):
        """Wait until everything published so far is written (or failed); False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._pending is not None or self._busy:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self, timeout=CLOSE_TIMEOUT):
        """Write the last published state and stop; give up (with a warning) after ``timeout``."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            thread = self._thread
        if thread is None:
            return
        thread.join(timeout)
        if thread.is_alive():
            self._warn(
                f"the progress mirror in {self.folder} did not finish writing within {timeout:g} s; "
                f"it may show an older state (the run's own PROGRESS.txt is current)",
                "warning",
            )

    # ---- the mirror thread

    def _loop(self):
        self._prepare()
        spacing, last = min(MAX_MIRROR_SPACING, self._interval), -math.inf
        while True:
            with self._cond:
                # the newest state only, and not more often than ``spacing`` (sync clients keep every
                # version of a file); the last one is written at once
                while not self._closing and (self._pending is None or time.monotonic() - last < spacing):
                    self._cond.wait(None if self._pending is None else spacing - (time.monotonic() - last))
                if self._pending is None:
                    return
                item, self._pending, self._busy = self._pending, None, True
            try:
                self._write(*item)
            except Exception as e:  # a bug must not end the mirror silently, nor the run
                self._failed(e)
            finally:
                last = time.monotonic()
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _prepare(self):
        try:
            os.makedirs(self.folder, exist_ok=True)
        except OSError as e:
            self._failed(e)
            return
        self._discard_dead_temps()

    def _discard_dead_temps(self):
        """Temps a killed writer left behind (their names carry its pid)."""
        try:
            names = os.listdir(self.folder)
        except OSError:
            return
        for name in names:
            parts = name.rsplit(".", 3)  # .PROGRESS.txt, pid, random, tmp
            if len(parts) == 4 and parts[0].lstrip(".") in MIRROR_FILES and parts[3] == "tmp" and parts[1].isdigit():
                if not _alive(int(parts[1])):
                    try:
                        os.unlink(os.path.join(self.folder, name))
                    except OSError:
                        pass

    def _write(self, snapshot, points, shard):
        thumbs, note = self._thumbnails(shard, final=snapshot.state != "RUNNING")
        text = format_progress_text(snapshot).encode("utf-8")
        page = render_page(snapshot, points, thumbs, note).encode("utf-8")
        try:
            for name, data in zip(MIRROR_FILES, (text, page)):
                _fs.atomic_write_bytes(os.path.join(self.folder, name), data, self.folder, temp_prefix=".")
        except OSError as e:
            self._failed(e)
            return
        if self._failing is not None:
            self._failing = None
            self._warn(f"the progress mirror in {self.folder} works again", "note")

    def _failed(self, e):
        if isinstance(e, OSError):
            name = errno.errorcode.get(e.errno or 0, "")
            reason = f"{e.strerror or e}" + (f" [{name}]" if name else "")
        else:
            reason = " ".join(str(e).split()) or type(e).__name__
        if reason == self._failing:
            return  # warned already; not again every heartbeat
        self._failing = reason
        self._warn(
            f"cannot write the progress mirror in {self.folder}: {reason}; the run goes on "
            f"(its own PROGRESS.txt is current)",
            "warning",
        )

    def _thumbnails(self, shard, final):
        """Thumbnails of the newest committed shard: remade at most every THUMBNAIL_SPACING seconds (or
        interval, if shorter) while the run works, and for the last state whatever the time."""
        if self._pictures is None:
            return [], ""
        first_look = shard is None and self._thumbs_shard is None and not self._thumbs_warned
        changed = first_look or (shard is not None and shard != self._thumbs_shard)
        spacing = min(THUMBNAIL_SPACING, self._interval)
        if changed and (final or time.monotonic() - self._thumbs_at >= spacing):
            self._thumbs_at = time.monotonic()
            try:
                drawn, thumbs = self._pictures(shard)
                if drawn is not None:
                    self._thumbs, self._thumbs_shard = thumbs, drawn
            except Exception as e:  # pictures are a nicety: keep the older ones, say so once
                if not self._thumbs_warned:
                    self._thumbs_warned = True
                    reason = " ".join(str(e).split()) or type(e).__name__
                    self._warn(f"cannot draw the progress page's samples from {shard}: {reason}", "warning")
        if not self._thumbs or self._thumbs_shard is None:  # (both are set together)
            return [], ""
        first, last = self._thumbs[0][1], self._thumbs[-1][1]
        return self._thumbs, f"First samples of {os.path.basename(self._thumbs_shard)} (#{first:,}–#{last:,})"


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
