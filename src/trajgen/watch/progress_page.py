"""Watching a run from afar: PROGRESS.html (one self-contained page), the bounded history
its chart draws, the thumbnail of the newest shard, and the --progress-to mirror that keeps
DIR/PROGRESS.txt and DIR/PROGRESS.html current in a synced folder.

The mirror writes from its own thread, newest state only: a slow or hung folder (a dead
network mount) never holds up a commit, and a folder that cannot be written is one
warning per distinct failure, never a reason to stop. Temp files are dot-prefixed in the
folder itself and renamed over the targets, so a sync client never uploads half a file.
"""

from __future__ import annotations

import base64
import errno
import html
import json
import math
import os
import shlex
import threading
import time
import zipfile
from datetime import datetime, timezone

import numpy as np

from trajgen.store import _fs
from trajgen.watch.progress import format_duration, format_progress_text

HISTORY_FILE = "progress_history.json"
HISTORY_FORMAT = "trajgen-progress-history/1"
MAX_HISTORY_POINTS = 240
THUMBNAILS = 4  # the first samples of a shard: one of each class
MIN_REFRESH_SECONDS = 5  # the page reloads every progress interval, but not faster than this
STALE_MIN_SECONDS = 90  # RUNNING and silent for max(3 × interval, this) → STALE
CLOSE_TIMEOUT = 3.0  # at the end of a run, how long the last mirror write may take before we give up
MAX_MIRROR_SPACING = 1.0  # seconds: a synced folder gets at most one update a second (or per interval, if shorter)
MIRROR_FILES = ("PROGRESS.txt", "PROGRESS.html")


def stale_after_seconds(interval):
    return max(3 * interval, STALE_MIN_SECONDS)


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


# ---------------------------------------------------------------- thumbnail

def _npy_member(zf, name):
    """An open .npy member of a shard, positioned after its header, and the header."""
    f = zf.open(name)
    version = np.lib.format.read_magic(f)
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read_header(f)
    if fortran:
        raise ValueError(f"{name} is stored in Fortran order")
    return f, shape, dtype


def _first_rows(zf, name, count):
    f, shape, dtype = _npy_member(zf, name)
    with f:
        count = min(count, shape[0])
        row = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        data = f.read(count * row)  # inflates only this much of the member
    if len(data) != count * row:
        raise ValueError(f"{name} is truncated")
    return np.frombuffer(data, dtype).reshape(count, *shape[1:])


def shard_thumbnails(shard, classes, background, count=THUMBNAILS):
    """[(class name, sample index, PNG bytes)] for the first ``count`` samples of a shard,
    each its frames blended into one picture (preview's trail); reads only those samples."""
    from trajgen.use.preview import blend_trail
    from trajgen.content.render import encode_png

    with zipfile.ZipFile(shard) as zf:
        videos = _first_rows(zf, "videos.npy", count)
        labels = _first_rows(zf, "labels.npy", count)
        index = _first_rows(zf, "index.npy", count)
    return [(classes[int(label)] if 0 <= label < len(classes) else f"class {label}", int(i),
             encode_png(blend_trail(video, background)))
            for video, label, i in zip(videos, labels, index)]


# ---------------------------------------------------------------- the page

_COLORS = {"RUNNING": "#2563eb", "COMPLETE": "#16a34a", "STOPPED": "#d97706", "FAILED": "#dc2626",
           "INTERRUPTED": "#d97706"}


def _compact(n):
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            v = n / div
            return f"{v:.0f}{unit}" if v >= 10 or v == int(v) else f"{v:.1f}{unit}"
    return f"{n:,.0f}"


def _clock(t, seconds=False):
    return f"{datetime.fromtimestamp(t, timezone.utc):{'%H:%M:%S' if seconds else '%H:%M'}}"


def _chart_svg(snapshot, points):
    """Completed samples over time, with the projection to the finish while RUNNING."""
    w, h, left, right, top, bottom = 640, 270, 58, 16, 14, 30
    total = max(snapshot.total_samples, 1)
    now = snapshot.updated_at.timestamp()
    points = [(t, d) for t, d in points if t <= now + 1] or [(now, snapshot.completed_samples)]
    if points[-1][0] < now:
        points.append((now, snapshot.completed_samples))
    t0 = points[0][0]
    finish = now + snapshot.eta_seconds if snapshot.state == "RUNNING" and snapshot.eta_seconds is not None else None
    t1 = max(finish or now, t0 + 1)

    def x(t):
        return left + (t - t0) / (t1 - t0) * (w - left - right)

    def y(done):
        return top + (1 - min(done, total) / total) * (h - top - bottom)

    parts = [f'<svg id="chart" viewBox="0 0 {w} {h}" role="img" aria-label="completed samples over time">']
    for frac in (0, 0.25, 0.5, 0.75, 1):
        gy = y(total * frac)
        parts.append(f'<line class="grid" x1="{left}" y1="{gy:.1f}" x2="{w - right}" y2="{gy:.1f}"/>')
        parts.append(f'<text class="axis" x="{left - 8}" y="{gy + 4:.1f}" text-anchor="end">{_compact(total * frac)}</text>')
    xy = " ".join(f"{x(t):.1f},{y(d):.1f}" for t, d in points)
    base = f"{x(points[-1][0]):.1f},{y(0):.1f} {x(t0):.1f},{y(0):.1f}"
    parts.append(f'<polygon class="area" points="{xy} {base}"/>')
    parts.append(f'<polyline class="line" points="{xy}"/>')
    if finish is not None:
        parts.append(f'<line class="projection" x1="{x(now):.1f}" y1="{y(snapshot.completed_samples):.1f}" '
                     f'x2="{x(finish):.1f}" y2="{y(total):.1f}"/>')
        parts.append(f'<circle class="goal" cx="{x(finish):.1f}" cy="{y(total):.1f}" r="4"/>')
    parts.append(f'<circle class="dot" cx="{x(now):.1f}" cy="{y(snapshot.completed_samples):.1f}" r="5"/>')
    short = t1 - t0 < 600  # a short run: its minutes alone say little
    parts.append(f'<text class="axis" x="{left}" y="{h - 8}">{_clock(t0, short)} UTC</text>')
    end_label = f"finish ≈ {_clock(finish, short)} UTC" if finish is not None else f"{_clock(now, short)} UTC"
    parts.append(f'<text class="axis" x="{w - right}" y="{h - 8}" text-anchor="end">{end_label}</text>')
    parts.append("</svg>")
    return "".join(parts)


_CSS = """
:root{--bg:#f4f6fb;--card:#fff;--ink:#111827;--muted:#6b7280;--line:#e5e7eb;--track:#e8ecf4;--accent:%(accent)s}
@media (prefers-color-scheme:dark){:root{--bg:#0f141c;--card:#18202b;--ink:#e5e7eb;--muted:#9aa3b2;--line:#2a3442;--track:#253041}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:980px;margin:0 auto;padding:22px 20px 28px}
header{display:flex;align-items:center;gap:12px;flex-wrap:wrap}
.brand{font-weight:700;letter-spacing:.02em;color:var(--muted)}
.run{font-weight:600;font-size:18px;overflow-wrap:anywhere;flex:1}
.pill{background:var(--accent);color:#fff;font-weight:700;font-size:13px;letter-spacing:.06em;padding:4px 12px;border-radius:999px}
.banner{margin:14px 0 0;padding:12px 16px;border-radius:10px;border:1px solid;font-size:15px}
.banner code{font-size:14px;background:rgba(0,0,0,.06);padding:1px 6px;border-radius:5px;white-space:nowrap}
.warn{background:#fff4e5;border-color:#f5b45b;color:#7a3e00}.bad{background:#fdecec;border-color:#f2a3a3;color:#7f1d1d}
@media (prefers-color-scheme:dark){.warn{background:#3a2a12;color:#fbd38d}.bad{background:#3b1719;color:#fecaca}}
.card{background:var(--card);border:1px solid var(--line);border-radius:14px;padding:18px 20px;margin-top:16px}
.hero .top{display:flex;align-items:baseline;justify-content:space-between;gap:16px;flex-wrap:wrap}
.pct{font-size:64px;font-weight:800;line-height:1;color:var(--accent);font-variant-numeric:tabular-nums}
.done{color:var(--muted);font-size:17px;font-variant-numeric:tabular-nums}
.bar{height:22px;background:var(--track);border-radius:11px;overflow:hidden;margin-top:14px;display:flex}
.bar>div{height:100%%;background:var(--accent);border-radius:11px;min-width:6px}
.bar>div.inflight{opacity:.35;min-width:0;border-radius:0 11px 11px 0}
.is-stale .bar>div,.is-stale .pill{background:#9ca3af}.is-stale .pct{color:#9ca3af}
.is-stale .tiles,.is-stale .grid2,.is-stale #classes{opacity:.55}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:12px;margin-top:16px}
.tile{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:12px 14px}
.tile .k{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.07em}
.tile .v{font-size:22px;font-weight:700;font-variant-numeric:tabular-nums;margin-top:2px}
.tile .s{color:var(--muted);font-size:13px;margin-top:2px}
.grid2{display:grid;grid-template-columns:2fr 1fr;gap:16px}
@media (max-width:760px){.grid2{grid-template-columns:1fr}}
h2{font-size:13px;text-transform:uppercase;letter-spacing:.07em;color:var(--muted);margin:0 0 10px;font-weight:600}
svg{width:100%%;height:auto;display:block}
svg .grid{stroke:var(--line);stroke-width:1}svg .axis{fill:var(--muted);font-size:12px}
svg .area{fill:var(--accent);opacity:.13}svg .line{fill:none;stroke:var(--accent);stroke-width:2.5;stroke-linejoin:round}
svg .projection{stroke:var(--accent);stroke-width:2;stroke-dasharray:5 5;opacity:.6}
svg .goal{fill:none;stroke:var(--accent);stroke-width:2;opacity:.6}svg .dot{fill:var(--accent)}
.thumbs{display:grid;grid-template-columns:1fr 1fr;gap:10px}
.thumbs figure{margin:0;text-align:center}
.thumbs img{width:100%%;max-width:104px;aspect-ratio:1;image-rendering:pixelated;border-radius:8px;border:1px solid var(--line);background:#fff}
.thumbs figcaption{font-size:12px;color:var(--muted)}
.note{color:var(--muted);font-size:13px;margin-top:8px}
.cls{display:grid;grid-template-columns:110px 1fr 90px;align-items:center;gap:12px;margin:7px 0}
.cls .name{font-weight:600}.cls .num{text-align:right;font-variant-numeric:tabular-nums}
.cls .track{height:10px;background:var(--track);border-radius:5px;overflow:hidden}
.cls .track>i{display:block;height:100%%;background:var(--accent);opacity:.75}
footer{color:var(--muted);font-size:13px;margin-top:16px;display:flex;flex-wrap:wrap;gap:6px 18px}
footer code{color:var(--ink)}
details{margin-top:12px;color:var(--muted);font-size:13px}
pre{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px;overflow:auto;color:var(--ink);font-size:13px}
"""

_SCRIPT = """
(function () {
  var D = JSON.parse(document.getElementById("page-data").textContent);
  function span(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    if (s < 90) return s + " s";
    var m = Math.floor(s / 60);
    if (m < 90) return m + " min";
    var h = Math.floor(m / 60);
    if (h < 48) return h + " h " + (m % 60) + " min";
    return Math.floor(h / 24) + " days";
  }
  function local(ms) {
    return new Date(ms).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"});
  }
  var spans = document.querySelectorAll("[data-local]");
  for (var i = 0; i < spans.length; i++) {
    spans[i].textContent = " (" + local(Number(spans[i].getAttribute("data-local"))) + " your time)";
  }
  function tick() {
    var age = Date.now() - D.updated;
    var stale = D.state === "RUNNING" && age > D.staleAfter;
    document.title = (stale ? "STALE \\u2014 " : "") + D.title;
    document.getElementById("stale").hidden = !stale;
    document.documentElement.classList.toggle("is-stale", stale);
    document.getElementById("stale-age").textContent = span(age);
    document.getElementById("age").textContent = age < 1000 ? "just now" : span(age) + " ago";
  }
  tick();
  setInterval(tick, 1000);
})();
"""


def _esc(value):
    return html.escape(str(value), quote=True)


def render_page(snapshot, points, thumbnails=(), shard_note=""):
    """PROGRESS.html for one snapshot: ``points`` the (unix time, completed) history, ``thumbnails``
    [(class name, sample index, PNG bytes)] from shard_thumbnails. Everything is inline."""
    s = snapshot
    text = format_progress_text(s)
    title = text.splitlines()[0]
    pct = title.split()[2]  # the state line's percentage, so the page and PROGRESS.txt never disagree
    updated = s.updated_at.astimezone(timezone.utc)
    interval = s.interval_seconds or 30.0
    stale_after = stale_after_seconds(interval)
    status_cmd = f"trajgen status {shlex.quote(s.run_dir)}"
    resume_cmd = f"trajgen resume {shlex.quote(s.run_dir)}"
    data = {"title": title, "state": s.state, "updated": round(updated.timestamp() * 1000),
            "staleAfter": stale_after * 1000, "interval": interval}
    fill = 100 * s.completed_samples / s.total_samples if s.total_samples else 100
    # samples made in shards not yet committed: a paler part of the bar, and said apart
    inflight = s.inflight_samples if s.state == "RUNNING" else 0
    inflight_fill = min(100 - fill, 100 * inflight / s.total_samples) if s.total_samples else 0
    inflight_html = f" + {inflight:,} in flight (not yet committed)" if inflight else ""
    inflight_bar = f'<div class="inflight" style="width:{inflight_fill:.2f}%"></div>' if inflight else ""
    # the committed part has a smallest width, so a bar with anything committed shows it: none before then
    committed_bar = f'<div style="width:{fill:.2f}%"></div>' if fill > 0 else ""
    finish_ms = None

    # the tiles: ETA and finish, rate, elapsed, shards
    if s.state == "RUNNING" and s.eta_seconds is not None:
        finish = updated.timestamp() + s.eta_seconds
        finish_ms = round(finish * 1000)
        eta_v, eta_s = format_duration(s.eta_seconds), f"finishes about {_clock(finish, seconds=True)} UTC"
    elif s.state == "RUNNING":
        eta_v, eta_s = "estimating", "once the first samples are made"
    elif s.state == "COMPLETE":
        eta_v, eta_s = "done", f"finished {updated:%H:%M:%S} UTC"
    else:
        eta_v, eta_s = "not running", "resume it on the box"
    rate = "estimating" if s.rate is None else (f"{s.rate:,.0f}" if s.rate >= 10 else f"{s.rate:.1f}")
    tiles = [
        ("ETA", eta_v, _esc(eta_s) + (f'<span data-local="{finish_ms}"></span>' if finish_ms else "")),
        ("Rate", rate, "samples/s" if s.rate is not None else "measured once samples are made"),
        ("Elapsed", format_duration(s.elapsed_seconds), "this process"),
        ("Shards", f"{s.completed_shards:,} / {s.total_shards:,}", f"checkpoint every {s.checkpoint_every:,}"),
    ]
    tiles_html = "".join(f'<div class="tile"><div class="k">{k}</div><div class="v">{_esc(v)}</div>'
                         f'<div class="s">{sub}</div></div>' for k, v, sub in tiles)

    per_class = max(1, s.total_samples / max(1, len(s.class_counts)))
    classes_html = "".join(
        f'<div class="cls"><span class="name">{_esc(name)}</span><span class="track">'
        f'<i style="width:{min(100, 100 * n / per_class):.1f}%"></i></span><span class="num">{n:,}</span></div>'
        for name, n in s.class_counts.items())

    if thumbnails:
        figures = "".join(
            f'<figure><img alt="{_esc(name)} sample {i}" src="data:image/png;base64,'
            f'{base64.b64encode(png).decode("ascii")}"><figcaption>{_esc(name)} #{i:,}</figcaption></figure>'
            for name, i, png in thumbnails)
        thumbs_html = f'<div class="thumbs">{figures}</div><div class="note">{_esc(shard_note)}</div>'
    else:
        thumbs_html = '<div class="note">Appears after the first shard this process commits.</div>'

    banners = []
    if s.state == "FAILED":
        banners.append(f'<div class="banner bad"><strong>Failed:</strong> {_esc(s.error or "unknown error")}. '
                       f'Fix the cause, then on {_esc(s.host)} run <code>{_esc(resume_cmd)}</code></div>')
    elif s.state in ("STOPPED", "INTERRUPTED"):
        banners.append(f'<div class="banner warn"><strong>Stopped.</strong> The run is resumable: on {_esc(s.host)} '
                       f'run <code>{_esc(resume_cmd)}</code></div>')
    stale_html = (f'<div id="stale" class="banner bad" hidden><strong>Nothing heard for <span id="stale-age">'
                  f'</span></strong> (last update {updated:%Y-%m-%d %H:%M:%S} UTC; one was due every '
                  f'{_fmt_seconds(interval)}). The run may have died or lost its connection. On {_esc(s.host)}, run '
                  f'<code>{_esc(status_cmd)}</code></div>')
    next_due = [line for line in text.splitlines() if line.startswith("Next update:")]
    footer = [f'Last update {updated:%Y-%m-%d %H:%M:%S} UTC (<span id="age"></span>)']
    if next_due:
        footer.append(_esc(next_due[0].replace("Next update: ", "next ")))
    footer += [f"host {_esc(s.host)}, pid {s.pid}", f"<code>{_esc(status_cmd)}</code>"]
    if s.framing_redraws:
        footer.append(f"framing redraws {s.framing_redraws:,}")

    page_data = json.dumps(data).replace("<", "\\u003c")  # cannot end the script element early
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="{max(MIN_REFRESH_SECONDS, math.ceil(interval))}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>{_esc(title)}</title>
<style>{_CSS % {"accent": _COLORS.get(s.state, "#2563eb")}}</style>
</head>
<body>
<main>
<header><span class="brand">trajgen</span><span class="run">{_esc(s.run_dir)}</span><span id="state" class="pill">{_esc(s.state)}</span></header>
{stale_html}
{''.join(banners)}
<section class="card hero">
<div class="top"><div id="percent" class="pct">{_esc(pct)}</div><div class="done">{s.completed_samples:,} of {s.total_samples:,} samples{inflight_html}</div></div>
<div class="bar">{committed_bar}{inflight_bar}</div>
</section>
<div class="tiles">{tiles_html}</div>
<div class="grid2">
<section class="card"><h2>Completed samples over time</h2>{_chart_svg(s, points)}</section>
<section class="card"><h2>Latest samples</h2>{thumbs_html}</section>
</div>
<section id="classes" class="card"><h2>Classes</h2>{classes_html}</section>
<footer>{''.join(f'<span>{part}</span>' for part in footer)}</footer>
<details><summary>PROGRESS.txt</summary><pre>{_esc(text)}</pre></details>
</main>
<script type="application/json" id="page-data">{page_data}</script>
<script>{_SCRIPT}</script>
</body>
</html>
"""
    return page


def _fmt_seconds(seconds):
    return f"{seconds:g} s" if seconds < 120 else f"{seconds / 60:g} min"


# ---------------------------------------------------------------- the mirror

class ProgressMirror:
    """Keeps FOLDER/PROGRESS.txt and FOLDER/PROGRESS.html equal to the run's progress.

    ``publish`` is called by whoever writes PROGRESS.txt: it records the chart's point
    (persisting the history in the run directory at most once per interval) and hands the
    snapshot to the mirror thread, which writes the newest one it has. ``warn(message, kind)``
    reports failures ("warning") and recoveries ("note")."""

    def __init__(self, folder, run_dir, tmp_dir, interval, warn):
        self.folder = os.path.abspath(folder)
        self._run_dir, self._tmp_dir, self._interval, self._warn = os.fspath(run_dir), os.fspath(tmp_dir), interval, warn
        self._history_path = os.path.join(self._run_dir, HISTORY_FILE)
        self._history = ProgressHistory.load(self._history_path)
        self._history_saved = -math.inf
        self._cond = threading.Condition()
        self._pending = None  # the newest (snapshot, chart points, shard) not yet written
        self._busy = False
        self._closing = False
        self._failing = None  # the failure last warned about, until a write succeeds
        self._thumbs, self._thumbs_shard, self._thumbs_at, self._thumbs_warned = [], None, -math.inf, False
        self._background = None
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
            self._warn(f"the progress mirror in {self.folder} did not finish writing within {timeout:g} s; "
                       f"it may show an older state (the run's own PROGRESS.txt is current)", "warning")

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
        thumbs, note = self._thumbnails(shard)
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
        self._warn(f"cannot write the progress mirror in {self.folder}: {reason}; the run goes on "
                   f"(its own PROGRESS.txt is current)", "warning")

    def _thumbnails(self, shard):
        """Thumbnails of the newest committed shard, remade at most once per interval."""
        if shard is None and self._thumbs_shard is None and not self._thumbs_warned:
            shard = self._newest_listed_shard()  # a resumed run: what earlier processes committed
        if shard is not None and shard != self._thumbs_shard and time.monotonic() - self._thumbs_at >= self._interval:
            self._thumbs_at = time.monotonic()
            try:
                if self._background is None:
                    from trajgen.making.run import read_config

                    config = read_config(self._run_dir)
                    self._background, self._classes = config.background, list(config.classes)
                self._thumbs = shard_thumbnails(shard, self._classes, self._background)
                self._thumbs_shard = shard
            except Exception as e:  # pictures are a nicety: keep the older ones, say so once
                if not self._thumbs_warned:
                    self._thumbs_warned = True
                    reason = " ".join(str(e).split()) or type(e).__name__
                    self._warn(f"cannot draw the progress page's samples from {shard}: {reason}", "warning")
        if not self._thumbs:
            return [], ""
        first, last = self._thumbs[0][1], self._thumbs[-1][1]
        return self._thumbs, f"First samples of {os.path.basename(self._thumbs_shard)} (#{first:,}–#{last:,})"


    def _newest_listed_shard(self):
        try:
            with open(os.path.join(self._run_dir, "manifest.json"), encoding="utf-8") as f:
                shards = json.load(f)["shards"]
            return os.path.join(self._run_dir, max(shards, key=lambda e: e["index"])["file"]) if shards else None
        except (OSError, ValueError, KeyError, TypeError):
            return None


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
