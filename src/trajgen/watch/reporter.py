"""The progress of one working process: the rate and ETA, the terminal bar or plain lines, and the
reporter that rewrites PROGRESS.txt and progress.json at every commit and every interval."""

import math
import os
import socket
import sys
import threading
import time
from datetime import datetime, timezone

from trajgen.watch.progress import (
    ProgressSnapshot,
    eta_text,
    percent_text,
    rate_of,
    rate_text,
    showing_inflight,
    warn,
    write_progress,
)


class RateMeter:
    """Samples per second made by this process since it started (resumed work excluded)."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._start = clock()
        self.samples = 0
        self.commits = 0

    def add(self, samples):
        """Record one committed shard of ``samples`` samples made by this process."""
        self.samples += samples
        self.commits += 1

    def elapsed(self):
        return self._clock() - self._start

    def rate(self, inflight=0):
        """Samples/s, or None while estimating (under min_seconds, or nothing made). ``inflight``:
        samples made in shards not yet committed (all by this process: .tmp/ is cleared at start),
        so the rate is known before the first commit of a run with large shards."""
        return rate_of(self.samples + inflight, self.elapsed())

    def eta(self, remaining, inflight=0):
        """Seconds until ``remaining`` more samples are committed (``inflight`` of them made
        already), or None while estimating."""
        if remaining <= 0:
            return 0.0
        rate = self.rate(inflight)
        return None if rate is None else max(0, remaining - inflight) / rate


class ProgressBar:
    """A tqdm bar on stderr, or nothing when disabled (quiet, or stderr not a terminal)."""

    def __init__(self, total, initial=0, enabled=True, desc="trajgen"):
        self._bar = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total,
                initial=initial,
                desc=desc,
                unit="sample",
                file=sys.stderr,
                dynamic_ncols=True,
                smoothing=0.1,
            )

    def update(self, n):
        if self._bar is not None:
            self._bar.update(n)

    def show(self, committed, inflight):
        """Committed samples plus those in flight (the bar moves with both), each said apart."""
        if self._bar is None:
            return
        said = f"{committed:,} committed + {inflight:,} in flight" if inflight else ""
        self._bar.set_postfix_str(said, refresh=False)
        self._bar.update(committed + inflight - self._bar.n)
        self._bar.refresh()

    def close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def progress_line(snapshot):
    """One line for a log: state, percentage, samples, shards, rate and ETA."""
    s = snapshot
    line = (
        f"trajgen {s.state} {percent_text(s)}% · {s.completed_samples:,} / {s.total_samples:,} samples · "
        f"{s.completed_shards:,} / {s.total_shards:,} shards · {rate_text(s.rate)} · ETA {eta_text(s)}"
    )
    if showing_inflight(s):
        line += f" · + {s.inflight_samples:,} in flight (not yet committed)"
    return line


class ProgressLines:
    """Progress as plain lines on stderr, for when there is no terminal for a bar (nohup, a
    log file, a job scheduler): one line per commit or per ``interval``, whichever is rarer,
    and one when the run completes."""

    def __init__(self, interval, clock=time.monotonic, echo=None):
        self._interval, self._clock = interval, clock
        self._echo = echo or (lambda line: print(line, file=sys.stderr, flush=True))
        self._last = clock()

    def commit(self, make_line):
        now = self._clock()
        if now - self._last >= self._interval:
            self._last = now
            self._echo(make_line())

    def finish(self, make_line):
        self._echo(make_line())


class ProgressReporter:
    """Keeps PROGRESS.txt, progress.json and the bar up to date for one working process:
    at every commit, and every ``interval`` seconds from a background thread.

    ``bar``: True (or "bar") for a terminal bar, "lines" for plain progress lines, False for neither.
    ``inflight``: a callable giving {shard: (samples made, samples)} of the shards being made
    (inflight.read), looked at every WATCH_SECONDS: the bar moves with them, and the progress
    files are rewritten as soon as they give a first rate (not only at the next commit or
    heartbeat, which may be long after).
    ``mirror``: a ProgressMirror that hears of every write (the --progress-to folder).
    ``reserve``: the space the run kept for its last words on a full disk (store.reserve.Reserve): the
    final state (COMPLETE, STOPPED or FAILED) is written there when nothing else can be."""

    WATCH_SECONDS = 1.0
    ESTIMATING_REWRITE_SECONDS = 2.0  # while the rate is still estimated, Elapsed moves at least this often

    def __init__(
        self,
        run_dir,
        display_dir,
        tmp_dir,
        *,
        total_samples,
        total_shards,
        checkpoint_every,
        class_counts,
        completed_samples,
        completed_shards,
        framing_redraws,
        interval,
        bar,
        mirror=None,
        inflight=None,
        reserve=None,
        occlusion_redraws=0,
    ):
        self._run_dir, self._tmp_dir = os.fspath(run_dir), os.fspath(tmp_dir)
        self._reserve = reserve
        self._fixed = dict(
            run_dir=os.fspath(display_dir),
            total_samples=total_samples,
            total_shards=total_shards,
            checkpoint_every=checkpoint_every,
            host=socket.gethostname(),
            pid=os.getpid(),
        )
        self._class_counts = dict(class_counts)
        self._done_samples, self._done_shards, self._redraws = completed_samples, completed_shards, framing_redraws
        self._occlusion_redraws = occlusion_redraws
        self._meter = RateMeter()
        self._bar = ProgressBar(total_samples, initial=completed_samples, enabled=bar not in (False, None, "lines"))
        self._lines = ProgressLines(interval) if bar == "lines" else None
        self._lock = threading.Lock()  # guards the counters
        self._write_lock = threading.Lock()  # one writer at a time, so an older snapshot never lands last
        self._stopped = threading.Event()
        self._interval = interval
        self._thread = threading.Thread(target=self._heartbeat, name="trajgen-progress", daemon=True)
        self._inflight = inflight
        self._bar_lock = threading.Lock()
        self._drawing_bar = inflight is not None and bar not in (False, None, "lines")
        self._estimating = False  # the progress files last said RUNNING with no rate yet
        self._written_at = -math.inf  # monotonic time of the last write
        self._watch_thread = None
        if inflight is not None:
            self._watch_thread = threading.Thread(target=self._watch, name="trajgen-inflight", daemon=True)
        self._last_shard = None  # the newest committed shard file, for the page's thumbnail
        self._mirror = mirror  # --progress-to: PROGRESS.txt and PROGRESS.html copied to a (synced) folder

    def start(self):
        self.write("RUNNING")
        self._thread.start()
        if self._watch_thread is not None:
            self._watch_thread.start()

    def _inflight_totals(self):
        """(samples, shards) in flight now; (0, 0) when they cannot be read."""
        if self._inflight is None:
            return 0, 0
        try:
            found = self._inflight()
        except Exception:  # progress is best effort
            return 0, 0
        return sum(made for made, _ in found.values()), len(found)

    def refresh_bar(self):
        """Redraw the bar with the samples in flight now."""
        samples, _ = self._inflight_totals()
        with self._bar_lock:  # the commit and the bar's own thread both redraw
            with self._lock:
                done = self._done_samples
            self._bar.show(done, samples)

    def commit(self, count, class_counts, redraws, shard=None, occlusion=0):
        """Record one committed shard (made by this process; ``shard`` its file) and rewrite the progress files."""
        with self._lock:
            self._last_shard = shard if shard is not None else self._last_shard
            self._done_samples += count
            self._done_shards += 1
            self._redraws += redraws
            self._occlusion_redraws += occlusion
            for name, n in class_counts.items():
                self._class_counts[name] = self._class_counts.get(name, 0) + n
            self._meter.add(count)
        if not self._drawing_bar:
            self._bar.update(count)
        else:
            self.refresh_bar()
        state = "COMPLETE" if self._done_shards == self._fixed["total_shards"] else "RUNNING"
        snapshot = self.write(state)
        if self._lines is not None and state == "RUNNING":  # the COMPLETE line comes from finish()
            self._lines.commit(lambda: progress_line(snapshot))

    def snapshot(self, state, error=None):
        inflight, shards = self._inflight_totals() if state == "RUNNING" else (0, 0)
        with self._lock:
            remaining = self._fixed["total_samples"] - self._done_samples
            inflight = min(inflight, remaining)
            rate = self._meter.rate(inflight)
            if rate is None and state == "COMPLETE" and self._meter.samples:  # finished inside the estimating window
                rate = self._meter.samples / max(self._meter.elapsed(), 1e-9)
            return ProgressSnapshot(
                state=state,
                completed_samples=self._done_samples,
                completed_shards=self._done_shards,
                rate=rate,
                elapsed_seconds=self._meter.elapsed(),
                eta_seconds=self._meter.eta(remaining, inflight),
                class_counts=dict(self._class_counts),
                framing_redraws=self._redraws,
                occlusion_redraws=self._occlusion_redraws,
                error=error,
                updated_at=datetime.now(timezone.utc),
                interval_seconds=self._interval,
                **self._fixed,
                inflight_samples=inflight,
                inflight_shards=shards if inflight else 0,
                session_samples=self._meter.samples,
            )

    def write(self, state, error=None):
        with self._write_lock:
            snapshot = self.snapshot(state, error)
            try:
                last_words = self._reserve if state != "RUNNING" else None  # the final state, whichever
                write_progress(self._run_dir, snapshot, self._tmp_dir, reserve=last_words)
                self._estimating = snapshot.state == "RUNNING" and snapshot.rate is None
                self._written_at = time.monotonic()
            finally:  # the mirror hears even of a run directory that cannot be written (it is on another disk)
                if self._mirror is not None:
                    self._mirror.publish(snapshot, self._last_shard)
            return snapshot

    def stop(self):
        """Stop the heartbeat and wait until it has (a write in flight ends first); idempotent."""
        self._stopped.set()
        for thread in (self._thread, self._watch_thread):
            if thread is not None and thread.is_alive() and thread is not threading.current_thread():
                thread.join()

    def flush_mirror(self, timeout=None):
        """Wait until the --progress-to folder shows the latest write (True), or ``timeout`` passed."""
        return self._mirror is None or self._mirror.flush(timeout)

    def _warn(self, message, kind="warning"):
        """A problem that does not stop the run: one line in run.log and on stderr."""
        warn(os.path.join(self._run_dir, "run.log"), message, kind)

    def settle(self, completed_samples, completed_shards, class_counts, framing_redraws, occlusion_redraws=0):
        """Take the committed counts as given (the manifest's): a commit whose progress write failed is
        still committed, and the final state must say so."""
        with self._lock:
            self._done_samples, self._done_shards, self._redraws = completed_samples, completed_shards, framing_redraws
            self._occlusion_redraws = occlusion_redraws
            self._class_counts = dict(class_counts)

    def finish(self, state, error=None):
        """Stop the heartbeat and write the final state; best effort when the disk is failing."""
        self.stop()
        self._bar.close()
        try:
            snapshot = self.write(state, error)
        except OSError:
            if state in ("RUNNING", "COMPLETE"):
                raise
            return
        finally:
            if self._mirror is not None:
                self._mirror.close()
        if self._lines is not None and state == "COMPLETE":  # STOPPED and FAILED get the CLI's own line
            self._lines.finish(lambda: progress_line(snapshot))

    def _watch(self):
        while not self._stopped.wait(self.WATCH_SECONDS):
            if self._drawing_bar:
                self.refresh_bar()
            if not (self._estimating and self._meter.commits == 0):
                continue
            due = time.monotonic() - self._written_at >= min(self.ESTIMATING_REWRITE_SECONDS, self._interval)
            if due or self.snapshot("RUNNING").rate is not None:
                try:
                    # the first estimate, from samples in flight (a commit writes its own); until then Elapsed moves
                    self.write("RUNNING")
                except OSError:
                    pass  # as for the heartbeat: the next commit reports a failing disk

    def _heartbeat(self):
        while not self._stopped.wait(self._interval):
            try:
                self.write("RUNNING")
            except OSError:
                pass  # the next commit reports a failing disk; the heartbeat just tries again
