#!/usr/bin/env python
"""What one sample costs made on its own (`make_sample(config, i)`, as a notebook, a custom
IterableDataset or `verify --deep` make them) against drawing its dots alone, and what a sample
costs in bulk (`make_samples` over a shard's 1,000 indices), side by side and interleaved in one
process: rounds of each, alternating, medians reported.

Usage: python scripts/bench_make_sample.py [--samples 2000] [--rounds 5] [--out FILE]
       → artifacts/bench_make_sample.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from trajgen import GenerationConfig, make_sample
from trajgen.content.bulk import make_samples
from trajgen.content.render import render_video

ROOT = Path(__file__).resolve().parent.parent


def per_sample_us(fn, count: int) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) / count * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=2000, help="single samples made per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=ROOT / "artifacts" / "bench_make_sample.json")
    opts = ap.parse_args()
    config = GenerationConfig()
    indices = list(range(opts.samples))
    points = [make_sample(config, i).points_2d for i in indices]  # the dots each sample draws
    video = np.empty((config.frames, config.size, config.size, 3), np.uint8)
    bulk = np.arange(1000)
    figures: dict[str, list[float]] = {"make_sample_us": [], "draw_alone_us": [], "bulk_us_per_sample": []}
    for _ in range(opts.rounds):
        figures["make_sample_us"].append(per_sample_us(lambda: [make_sample(config, i) for i in indices], len(indices)))
        figures["draw_alone_us"].append(
            per_sample_us(lambda: [render_video(p, config, video) for p in points], len(points))
        )
        figures["bulk_us_per_sample"].append(per_sample_us(lambda: make_samples(config, bulk), len(bulk)))
    medians = {k: round(statistics.median(v), 1) for k, v in figures.items()}
    result = {
        "commit": subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "config": "defaults (16 frames of 64x64, dot)",
        "rounds": {k: [round(x, 1) for x in v] for k, v in figures.items()},
        "medians": medians,
        "make_sample_over_drawing": round(medians["make_sample_us"] / medians["draw_alone_us"], 2),
        "make_sample_per_second": round(1e6 / medians["make_sample_us"]),
        "command": "python scripts/bench_make_sample.py " + " ".join(sys.argv[1:]),
    }
    opts.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        json.dumps({k: result[k] for k in ("medians", "make_sample_over_drawing", "make_sample_per_second")}, indent=2)
    )


if __name__ == "__main__":
    main()
