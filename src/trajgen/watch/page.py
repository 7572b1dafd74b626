"""PROGRESS.html: one self-contained page for a run's progress (the state line as its title, the
bar, the chart of its history, the newest shard's first samples), prefixed STALE by the viewer's
own clock when a RUNNING run has been silent too long."""

from __future__ import annotations

import base64
import html
import json
import math
import shlex
from datetime import datetime, timezone

from trajgen.store.objects import is_url
from trajgen.watch.progress import format_duration, format_progress_text

MIN_REFRESH_SECONDS = 5  # the page reloads every progress interval, but not faster than this
STALE_MIN_SECONDS = 90  # RUNNING and silent for max(3 × interval, this) → STALE


def stale_after_seconds(interval):
    return max(3 * interval, STALE_MIN_SECONDS)


# ---------------------------------------------------------------- the page

_COLORS = {
    "RUNNING": "#2563eb",
    "COMPLETE": "#16a34a",
    "STOPPED": "#d97706",
    "FAILED": "#dc2626",
    "INTERRUPTED": "#d97706",
}


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
        parts.append(
            f'<text class="axis" x="{left - 8}" y="{gy + 4:.1f}" text-anchor="end">{_compact(total * frac)}</text>'
        )
    xy = " ".join(f"{x(t):.1f},{y(d):.1f}" for t, d in points)
    base = f"{x(points[-1][0]):.1f},{y(0):.1f} {x(t0):.1f},{y(0):.1f}"
    parts.append(f'<polygon class="area" points="{xy} {base}"/>')
    parts.append(f'<polyline class="line" points="{xy}"/>')
    if finish is not None:
        parts.append(
            f'<line class="projection" x1="{x(now):.1f}" y1="{y(snapshot.completed_samples):.1f}" '
            f'x2="{x(finish):.1f}" y2="{y(total):.1f}"/>'
        )
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
    data = {
        "title": title,
        "state": s.state,
        "updated": round(updated.timestamp() * 1000),
        "staleAfter": stale_after * 1000,
        "interval": interval,
    }
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
    tiles_html = "".join(
        f'<div class="tile"><div class="k">{k}</div><div class="v">{_esc(v)}</div><div class="s">{sub}</div></div>'
        for k, v, sub in tiles
    )

    per_class = max(1, s.total_samples / max(1, len(s.class_counts)))
    classes_html = "".join(
        f'<div class="cls"><span class="name">{_esc(name)}</span><span class="track">'
        f'<i style="width:{min(100, 100 * n / per_class):.1f}%"></i></span><span class="num">{n:,}</span></div>'
        for name, n in s.class_counts.items()
    )

    if thumbnails:
        figures = "".join(
            f'<figure><img alt="{_esc(name)} sample {i}" src="data:image/png;base64,'
            f'{base64.b64encode(png).decode("ascii")}"><figcaption>{_esc(name)} #{i:,}</figcaption></figure>'
            for name, i, png in thumbnails
        )
        thumbs_html = f'<div class="thumbs">{figures}</div><div class="note">{_esc(shard_note)}</div>'
    elif is_url(s.run_dir):  # the shards are in the bucket, not on the machine that draws this page
        thumbs_html = (
            '<div class="note">No sample pictures here for a run in object storage: see them with '
            f"<code>trajgen preview {_esc(shlex.quote(s.run_dir))}</code>.</div>"
        )
    else:
        thumbs_html = '<div class="note">Appears after the first shard this process commits.</div>'

    banners = []
    if s.state == "FAILED":
        banners.append(
            f'<div class="banner bad"><strong>Failed:</strong> {_esc(s.error or "unknown error")}. '
            f"Fix the cause, then on {_esc(s.host)} run <code>{_esc(resume_cmd)}</code></div>"
        )
    elif s.state in ("STOPPED", "INTERRUPTED"):
        banners.append(
            f'<div class="banner warn"><strong>Stopped.</strong> The run is resumable: on {_esc(s.host)} '
            f"run <code>{_esc(resume_cmd)}</code></div>"
        )
    stale_html = (
        f'<div id="stale" class="banner bad" hidden><strong>Nothing heard for <span id="stale-age">'
        f"</span></strong> (last update {updated:%Y-%m-%d %H:%M:%S} UTC; one was due every "
        f"{_fmt_seconds(interval)}). The run may have died or lost its connection. On {_esc(s.host)}, run "
        f"<code>{_esc(status_cmd)}</code></div>"
    )
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
{"".join(banners)}
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
<footer>{"".join(f"<span>{part}</span>" for part in footer)}</footer>
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
