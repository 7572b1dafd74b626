#!/usr/bin/env python
"""The --progress-to mirror at full size, watched like a sync client would watch it.

Runs `trajgen generate --n 40000 --progress-interval 1 --progress-to DIR` and, while it
runs, polls DIR every 5 ms: lists it (only PROGRESS.txt, PROGRESS.html and dot-prefixed
temps may appear) and reads both files (no read may be torn). At the end both must say
COMPLETE and DIR/PROGRESS.txt must equal the run's. Then runs with and without
--progress-to in alternating order (this machine's speed drifts), for the wall-time ratio:
the mirror must not slow the run.

Usage: python scripts/check_mirror.py [--n 40000] [--interval 1] [--poll-ms 5] [--repeats 2]
       → artifacts/mirror_check.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ALLOWED = {"PROGRESS.txt", "PROGRESS.html"}


def whole_text(text: str) -> bool:
    lines = text.splitlines()
    return text.startswith("trajgen ") and text.endswith("\n") and any(l.startswith("Last update:") for l in lines)


def whole_page(text: str) -> bool:
    return text.startswith("<!DOCTYPE html>") and text.endswith("</html>\n") and "<title>trajgen " in text


def watched_run(cmd: list[str], folder: Path, poll_s: float) -> dict:
    stats = {
        "polls": 0,
        "reads_txt": 0,
        "reads_html": 0,
        "torn": [],
        "stray": [],
        "names_seen": set(),
        "txt_versions_seen": 0,
        "max_seconds_between_txt_changes": 0.0,
    }
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started = time.perf_counter()
    last_text, last_change = None, None

    def poll():
        nonlocal last_text, last_change
        while proc.poll() is None:
            time.sleep(poll_s)
            stats["polls"] += 1
            try:
                names = os.listdir(folder)
            except FileNotFoundError:
                continue
            stats["names_seen"].update(n if not n.startswith(".") else ".<temp>" for n in names)
            stray = [n for n in names if n not in ALLOWED and not n.startswith(".")]
            if stray:
                stats["stray"].append(stray)
            for name, check, key in (
                ("PROGRESS.txt", whole_text, "reads_txt"),
                ("PROGRESS.html", whole_page, "reads_html"),
            ):
                try:
                    text = (folder / name).read_text(encoding="utf-8")
                except FileNotFoundError:
                    continue
                stats[key] += 1
                if not check(text):
                    stats["torn"].append(f"{name}: {text[:80]!r}...{text[-80:]!r}")
                if name == "PROGRESS.txt" and text != last_text:
                    now = time.perf_counter()
                    if last_change is not None and text.startswith("trajgen RUNNING"):
                        stats["max_seconds_between_txt_changes"] = max(
                            stats["max_seconds_between_txt_changes"], round(now - last_change, 3)
                        )
                    last_text, last_change = text, now
                    stats["txt_versions_seen"] += 1

    poller = threading.Thread(target=poll)
    poller.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - started
    poller.join()
    stats["names_seen"] = sorted(stats["names_seen"])
    stats.update(returncode=proc.returncode, seconds=round(seconds, 2), stderr=err[-2000:])
    return stats


def mirror_costs(run_dir: Path, folder: Path, repeats: int = 30) -> dict:
    """Milliseconds per update: on the commit path (publish) and in the mirror's own thread."""
    from trajgen.making.thumbnails import shard_thumbnails
    from trajgen.store.manifest import read_config
    from trajgen.watch.mirror import ProgressMirror
    from trajgen.watch.progress import snapshot_from_json, warn

    snapshot = snapshot_from_json(json.loads((run_dir / "progress.json").read_text()))
    snapshot = dataclasses.replace(snapshot, state="RUNNING")  # a final state always saves the history
    shard = str(sorted((run_dir / "shards").glob("*.npz"))[-1])
    (run_dir / ".tmp").mkdir(exist_ok=True)
    mirror = ProgressMirror(
        folder, run_dir, run_dir / ".tmp", interval=1e9, warn=lambda m, k="warning": warn(None, m, k)
    )
    t0 = time.perf_counter()
    mirror.publish(snapshot, shard)  # with the history file's atomic write (at most once per interval)
    persist_ms = (time.perf_counter() - t0) * 1000
    mirror.flush()  # the first write (thumbnails, page) done: what follows is the hand-over alone
    t0 = time.perf_counter()
    for _ in range(repeats):
        mirror.publish(snapshot, shard)  # the chart's point and a hand-over (written within a second)
    publish_ms = (time.perf_counter() - t0) / repeats * 1000
    mirror.close()
    config = read_config(run_dir)
    t0 = time.perf_counter()
    shard_thumbnails(shard, list(config.classes), config.background)
    thumbs_ms = (time.perf_counter() - t0) * 1000
    points = json.loads((run_dir / "progress_history.json").read_text())["points"]
    t0 = time.perf_counter()
    for _ in range(repeats):
        mirror._write(snapshot, points, None)  # format, render the page, two atomic writes with fsync
    return {
        "publish_ms_per_update_on_commit_path": round(publish_ms, 3),
        "publish_ms_with_history_write_at_most_once_per_interval": round(persist_ms, 2),
        "mirror_thread_ms_per_update": round((time.perf_counter() - t0) / repeats * 1000, 2),
        "thumbnails_ms_at_most_once_per_interval": round(thumbs_ms, 1),
    }


def plain_run(cmd: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=40_000)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--poll-ms", type=float, default=5.0)
    ap.add_argument("--repeats", type=int, default=2, help="extra unwatched runs with and without the mirror")
    ap.add_argument("--out", type=Path, default=Path("artifacts/mirror_check.json"))
    args = ap.parse_args()

    from trajgen import __version__
    from trajgen.use.verify import verify_run

    with tempfile.TemporaryDirectory(prefix="trajgen-mirror-") as scratch:
        scratch = Path(scratch)
        run_dir, folder = scratch / "run", scratch / "synced" / "watch"
        base = [
            sys.executable,
            "-m",
            "trajgen",
            "generate",
            "--n",
            str(args.n),
            "--progress-interval",
            str(args.interval),
            "--quiet",
        ]
        mirrored_cmd = [*base, "--progress-to", str(folder), "--out", str(run_dir)]
        stats = watched_run(mirrored_cmd, folder, args.poll_ms / 1000)
        run_text = (run_dir / "PROGRESS.txt").read_text(encoding="utf-8")
        mirror_text = (folder / "PROGRESS.txt").read_text(encoding="utf-8")
        page = (folder / "PROGRESS.html").read_text(encoding="utf-8")
        history = json.loads((run_dir / "progress_history.json").read_text())
        report = verify_run(run_dir)
        costs = mirror_costs(run_dir, scratch / "costs")
        with_mirror, without = [], []
        for i in range(args.repeats):  # alternating: without, with, with, without, ...
            order = [False, True] if i % 2 == 0 else [True, False]
            for mirrored in order:
                out = scratch / f"timing-{i}-{int(mirrored)}"
                extra = ["--progress-to", str(scratch / f"watch-{i}")] if mirrored else []
                (with_mirror if mirrored else without).append(round(plain_run([*base, *extra, "--out", str(out)]), 2))
                shutil.rmtree(out)

    result = {
        "command": " ".join(
            [
                "python",
                "scripts/check_mirror.py",
                "--n",
                str(args.n),
                "--interval",
                str(args.interval),
                "--poll-ms",
                str(args.poll_ms),
                "--repeats",
                str(args.repeats),
            ]
        ),
        "run_command": "trajgen " + " ".join(mirrored_cmd[3:]).replace(str(scratch), "SCRATCH"),
        "trajgen_version": __version__,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        "samples": args.n,
        "progress_interval": args.interval,
        "poll_ms": args.poll_ms,
        "exit_code": stats["returncode"],
        "polls": stats["polls"],
        "reads_progress_txt": stats["reads_txt"],
        "reads_progress_html": stats["reads_html"],
        "torn_reads": len(stats["torn"]),
        "torn_examples": stats["torn"][:3],
        "stray_listings": len(stats["stray"]),
        "stray_examples": stats["stray"][:3],
        "names_seen": stats["names_seen"],
        "progress_txt_versions_seen": stats["txt_versions_seen"],
        "max_seconds_between_progress_txt_changes_while_running": stats["max_seconds_between_txt_changes"],
        "final_mirror_equals_run_progress_txt": mirror_text == run_text,
        "final_first_lines": {
            "mirror_txt": mirror_text.splitlines()[0],
            "page_title": page.split("<title>", 1)[1].split("</title>", 1)[0],
        },
        "page_bytes": len(page.encode()),
        "history_points": len(history["points"]),
        "verify_ok": report.ok,
        **costs,
        "seconds_watched_run": stats["seconds"],
        "seconds_with_mirror": with_mirror,
        "seconds_without_mirror": without,
        "ratio_with_over_without_median": round(statistics.median(with_mirror) / statistics.median(without), 3)
        if without
        else None,
        "stderr_tail": stats["stderr"],
    }
    result["passed"] = bool(
        result["exit_code"] == 0
        and not result["torn_reads"]
        and not result["stray_listings"]
        and result["final_mirror_equals_run_progress_txt"]
        and result["final_first_lines"]["mirror_txt"].startswith("trajgen COMPLETE 100.0%")
        and result["final_first_lines"]["page_title"].startswith("trajgen COMPLETE 100.0%")
        and result["verify_ok"]
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "stderr_tail"}, indent=2))
    sys.exit(0 if result["passed"] else 1)


if __name__ == "__main__":
    main()
