#!/usr/bin/env python
"""End-to-end wall time of the real CLI with --workers 1, --workers 2 and a Dask cluster (or any list).

Runs `trajgen generate` as a subprocess, in ABBA order per repetition (1 2 2 1, 2 1 1 2,
...) so the drift of this machine's speed hits every setting alike, checks that every
run's result files are byte-identical to the first --workers 1 run, and reports each
setting's median time and the speedup over --workers 1 (ratio of medians, and the
median of the per-repetition ratios). The setting `dask` runs `--scheduler` against a
Dask LocalCluster on loopback with 2 single-threaded worker processes, started once.

Usage: python scripts/bench_workers.py [--n 24000] [--checkpoint-every 1000] [--repeats 3] [--workers 1,2,dask]
       → artifacts/bench_workers.json
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
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = 1.8  # the goal for --workers 2 on a 2-core machine
DASK_WORKERS = 2


@contextmanager
def dask_cluster(workers: int):
    """The address of a Dask LocalCluster on loopback: single-threaded worker processes."""
    import logging

    import distributed

    logging.getLogger("distributed").setLevel(logging.ERROR)
    with distributed.LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1"
    ) as cluster:
        yield cluster.scheduler_address


def result_bytes(run_dir: Path) -> dict[str, bytes]:
    files = {name: (run_dir / name).read_bytes() for name in ("config.json", "manifest.json")}
    for shard in sorted((run_dir / "shards").glob("*.npz")):
        files[shard.name] = shard.read_bytes()
    return files


def timed_run(args: list[str], out: Path) -> float:
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    subprocess.run([*args, "--out", str(out)], check=True)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=24_000)
    parser.add_argument("--checkpoint-every", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--workers",
        default="1,2,dask",
        help="comma-separated settings (a number of workers, or dask); the first is the baseline",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts" / "bench_workers.json")
    opts = parser.parse_args()
    settings = [w if w == "dask" else int(w) for w in opts.workers.split(",")]
    base = [
        sys.executable,
        "-m",
        "trajgen",
        "generate",
        "--n",
        str(opts.n),
        "--checkpoint-every",
        str(opts.checkpoint_every),
        "--quiet",
    ]

    times: dict = {w: [] for w in settings}
    with tempfile.TemporaryDirectory(prefix="bench_workers_") as scratch, ExitStack() as stack:
        options = {w: ["--workers", str(w)] for w in settings if w != "dask"}
        if "dask" in settings:
            options["dask"] = ["--scheduler", stack.enter_context(dask_cluster(DASK_WORKERS))]
        scratch = Path(scratch)
        reference = None
        for rep in range(opts.repeats):
            order = settings + settings[::-1] if rep % 2 == 0 else settings[::-1] + settings
            for w in order:
                out = scratch / f"w{w}"
                seconds = timed_run([*base, *options[w]], out)
                times[w].append(seconds)
                print(f"rep {rep + 1}  {w}: {seconds:6.2f} s", flush=True)
                if reference is None:
                    reference = result_bytes(out)
                elif result_bytes(out) != reference:
                    sys.exit(f"--workers {w} made different bytes than --workers {settings[0]}")

    baseline = settings[0]
    medians = {w: statistics.median(t) for w, t in times.items()}
    report = {
        "command": " ".join(["trajgen", *base[3:], "--workers", "W", "--out", "DIR"]),
        "dask": f"trajgen ... --scheduler ADDRESS of a LocalCluster of {DASK_WORKERS} single-threaded worker processes",
        "bench_command": f"python scripts/bench_workers.py --n {opts.n} --checkpoint-every {opts.checkpoint_every} "
        f"--repeats {opts.repeats} --workers {opts.workers}",
        "order": "ABBA per repetition (each setting runs twice per repetition)",
        "n": opts.n,
        "checkpoint_every": opts.checkpoint_every,
        "repeats": opts.repeats,
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "python": platform.python_version(),
        "seconds": {str(w): [round(t, 3) for t in ts] for w, ts in times.items()},
        "median_seconds": {str(w): round(m, 3) for w, m in medians.items()},
        "samples_per_s_median": {str(w): round(opts.n / m, 1) for w, m in medians.items()},
        f"speedup_vs_workers_{baseline}": {str(w): round(medians[baseline] / m, 3) for w, m in medians.items()},
        "speedup_per_repetition": {
            str(w): [round(b / t, 3) for b, t in zip(times[baseline], ts)] for w, ts in times.items() if w != baseline
        },
        "identical_output": True,
        "target_speedup": TARGET,
        "meets_target": all(medians[baseline] / m >= TARGET for w, m in medians.items() if w != baseline),
    }
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(report, indent=2) + "\n")
    for w in settings:
        print(f"--workers {w}: median {medians[w]:.2f} s  speedup {medians[baseline] / medians[w]:.2f}x")
    print(f"wrote {opts.out}")


if __name__ == "__main__":
    main()
