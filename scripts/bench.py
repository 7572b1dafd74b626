#!/usr/bin/env python
"""Benchmark make_sample on one core: samples/s, the split between simulate, frame and
render, and the ratio to drawing alone (white frames + one anti-aliased cv2.circle per
frame), measured in alternating blocks so the machine's drift hits both alike.

Usage: python scripts/bench.py [--blocks 10] [--block-size 500]   → artifacts/bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from trajgen import GenerationConfig, __version__, make_sample
from trajgen.camera import UNIFORMS_PER_CAMERA, frame
from trajgen.motions import MOTIONS
from trajgen.render import render_video
from trajgen.sample import _times, sample_rng, simulate


def draw_only(config: GenerationConfig, count: int, points: np.ndarray) -> None:
    """The fixed cost: allocate white frames and draw one anti-aliased dot per frame."""
    radius = int(round(config.radius * 16))
    for _ in range(count):
        video = np.full((config.frames, config.size, config.size, 3), 255, np.uint8)
        for t, (x, y) in enumerate(points):
            cv2.circle(video[t], (x, y), radius, (0, 0, 255), -1, cv2.LINE_AA, 4)


def stages(config: GenerationConfig, start: int, count: int) -> dict[str, float]:
    """Seconds spent in each stage of the make_sample pipeline (first draw of each sample)."""
    spent = {"simulate": 0.0, "frame": 0.0, "render": 0.0}
    t = _times(config.frames)
    for index in range(start, start + count):
        t0 = time.perf_counter()
        motion = MOTIONS[config.classes[index % len(config.classes)]]
        draw = simulate(config, motion, sample_rng(config.seed, index), t)
        motion.equation(draw.params), motion.description(draw.params) + draw.aug.describe()
        t1 = time.perf_counter()
        framing = frame(draw.points, motion.view_normal(draw.params), draw.u[-UNIFORMS_PER_CAMERA:], config, motion.max_tilt)
        t2 = time.perf_counter()
        render_video(framing.points_2d, config)
        t3 = time.perf_counter()
        spent["simulate"] += t1 - t0
        spent["frame"] += t2 - t1
        spent["render"] += t3 - t2
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--block-size", type=int, default=500)
    parser.add_argument("--out", default="artifacts/bench.json")
    args = parser.parse_args()
    config = GenerationConfig()
    fixed_points = [(int(p[0] * 16), int(p[1] * 16)) for p in make_sample(config, 0).points_2d]

    sample_rates, draw_rates = [], []
    for block in range(args.blocks):
        start = block * args.block_size
        t0 = time.perf_counter()
        for i in range(start, start + args.block_size):
            make_sample(config, i)
        t1 = time.perf_counter()
        draw_only(config, args.block_size, fixed_points)
        t2 = time.perf_counter()
        sample_rates.append(args.block_size / (t1 - t0))
        draw_rates.append(args.block_size / (t2 - t1))
    ratios = [d / s for s, d in zip(sample_rates, draw_rates)]
    split = stages(config, 0, args.blocks * args.block_size)
    total = sum(split.values())
    result = {
        "trajgen_version": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "config": "defaults (16 frames, 64x64, dot)",
        "make_sample_samples_per_s_median": round(statistics.median(sample_rates), 1),
        "make_sample_samples_per_s_best": round(max(sample_rates), 1),
        "draw_only_samples_per_s_median": round(statistics.median(draw_rates), 1),
        "cost_ratio_make_sample_over_draw_median": round(statistics.median(ratios), 2),
        "cost_ratio_per_block": [round(r, 2) for r in ratios],
        "stage_share": {k: round(v / total, 3) for k, v in split.items()},
        "stage_us_per_sample": {k: round(v / (args.blocks * args.block_size) * 1e6, 1) for k, v in split.items()},
        "command": "python scripts/bench.py " + f"--blocks {args.blocks} --block-size {args.block_size}",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
