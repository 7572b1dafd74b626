#!/usr/bin/env python
"""Peak memory of `trajgen export` on 4,000 vs 40,000 samples: it must not grow with the run.

Makes both runs with the real CLI (defaults: 16 frames of 64×64; --workers 2), then
exports each in a fresh process (`trajgen export RUN -o FILE --force`) and reads that
process's own peak RSS from os.wait4. Also records the peak RSS of a process that only
imports the exporter, so the export's own share is visible. Runs export repeats times
each, alternating; the figures are the medians.

Usage: python scripts/bench_export.py [--small 4000] [--large 40000] [--repeats 3] [--work DIR] [--keep]
       → artifacts/bench_export.json   (target: large within 20% of small)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from trajgen import __version__


def trajgen_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "trajgen", *map(str, args)]


def peak_rss_mb(cmd: list[str]) -> tuple[float, float]:
    """(peak RSS in MB, wall seconds) of one child process, measured by the kernel for that child alone."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here; Popen must not wait again
        if proc.returncode != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err.read().decode()}")
    kb = usage.ru_maxrss  # KiB on Linux
    return kb / 1024, seconds


def make_run(n: int, work: Path, checkpoint_every: int) -> Path:
    out = work / f"run_n{n}"
    if not (out / "manifest.json").exists() or json.loads((out / "manifest.json").read_text())["status"] != "complete":
        shutil.rmtree(out, ignore_errors=True)
        subprocess.run(
            trajgen_cmd(
                "generate", "--n", n, "--checkpoint-every", checkpoint_every, "--workers", 2, "--out", out, "--quiet"
            ),
            check=True,
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", type=int, default=4_000)
    ap.add_argument("--large", type=int, default=40_000)
    ap.add_argument("--checkpoint-every", type=int, default=1_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--work", type=Path, default=Path("/tmp/trajgen-bench-export"))
    ap.add_argument("--keep", action="store_true", help="keep the runs for another time")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)

    runs = {n: make_run(n, args.work, args.checkpoint_every) for n in (args.small, args.large)}
    baseline = [
        peak_rss_mb([sys.executable, "-c", "import trajgen.cli, trajgen.use.export"])[0] for _ in range(args.repeats)
    ]
    rss: dict[int, list[float]] = {n: [] for n in runs}
    secs: dict[int, list[float]] = {n: [] for n in runs}
    sizes = {}
    for _ in range(args.repeats):
        for n, run in runs.items():  # alternating, so drift hits both alike
            out = args.work / f"export_n{n}.npz"
            mb, s = peak_rss_mb(trajgen_cmd("export", run, "-o", out, "--force"))
            rss[n].append(mb)
            secs[n].append(s)
            sizes[n] = out.stat().st_size
            out.unlink()

    small, large = (statistics.median(rss[n]) for n in (args.small, args.large))
    result = {
        "trajgen_version": __version__,
        "python": platform.python_version(),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "config": f"generate defaults (16 frames, 64x64, dot), --checkpoint-every {args.checkpoint_every}, --workers 2",
        "export": "trajgen export RUN -o FILE --force (nthwc, uint8), each in a fresh process",
        "samples": [args.small, args.large],
        "export_bytes": {str(n): sizes[n] for n in runs},
        "peak_rss_mb_median": {str(args.small): round(small, 1), str(args.large): round(large, 1)},
        "peak_rss_mb_runs": {str(n): [round(x, 1) for x in v] for n, v in rss.items()},
        "import_only_peak_rss_mb_median": round(statistics.median(baseline), 1),
        "export_seconds_median": {str(n): round(statistics.median(v), 2) for n, v in secs.items()},
        "ratio_large_over_small": round(large / small, 3),
        "target": "ratio <= 1.20",
        "pass": large / small <= 1.20,
        "command": "python scripts/bench_export.py " + " ".join(sys.argv[1:]),
    }
    Path("artifacts").mkdir(exist_ok=True)
    Path("artifacts/bench_export.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if not args.keep:
        shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    main()
