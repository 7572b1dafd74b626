#!/usr/bin/env python
"""Benchmark making samples in bulk on one core: samples/s of ``make_samples`` over blocks
of a shard's size, the split between its stages, and the ratio to drawing alone (frames
filled with the background + one anti-aliased cv2.circle per frame, on the same dots),
measured in alternating blocks so the machine's drift hits both alike. Also the cost of
``make_sample`` for one index (what verify --deep and random access pay).

Usage: python scripts/bench.py [--blocks 10] [--block-size 1000]   → artifacts/bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from trajgen import GenerationConfig, __version__, make_sample
from trajgen.content import bulk, streams

STAGES = {  # module, function → stage
    (streams, "uniforms"): "streams",
    (streams, "normals"): "streams",
    (bulk, "draw_parameters"): "parameters",
    (bulk, "stack"): "parameters",
    (bulk, "frame"): "frame",
    (bulk, "render_videos"): "render",
}


def draw_only(config: GenerationConfig, points: np.ndarray, videos: np.ndarray) -> None:
    """The fixed cost: frames filled with the background, one anti-aliased dot per frame."""
    videos[...] = np.full((config.size, config.size, 3), config.background, np.uint8)
    centres = np.rint(points * 16).astype(np.int64).tolist()
    radius = int(round(config.radius * 16))
    for video, row in zip(videos, centres):
        for frame, centre in zip(video, row):
            cv2.circle(frame, centre, radius, config.color, -1, cv2.LINE_AA, 4)


def stage_split(config: GenerationConfig, blocks: int, size: int, videos: np.ndarray) -> dict[str, float]:
    """CPU seconds per stage of make_samples: each stage's functions timed where bulk calls them."""
    spent: Counter = Counter()
    originals = {}
    for (module, name), stage in STAGES.items():
        original = originals[(module, name)] = getattr(module, name)

        def timed(*args, _f=original, _stage=stage, **kwargs):
            t0 = time.process_time()
            try:
                return _f(*args, **kwargs)
            finally:
                spent[_stage] += time.process_time() - t0

        setattr(module, name, timed)
    try:
        t0 = time.process_time()
        for block in range(blocks):
            bulk.make_samples(config, range(block * size, (block + 1) * size), videos)
        total = time.process_time() - t0
    finally:
        for (module, name), original in originals.items():
            setattr(module, name, original)
    spent["paths, noise, pace, text and the rest"] = total - sum(spent.values())
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--block-size", type=int, default=1000)
    parser.add_argument("--out", default="artifacts/bench.json")
    args = parser.parse_args()
    config = GenerationConfig()
    size = args.block_size
    videos = np.ones((size, config.frames, config.size, config.size, 3), np.uint8)  # touched once
    bulk.make_samples(config, range(size), videos)  # warm: imports, the dot sprites

    sample_rates, draw_rates = [], []
    for block in range(args.blocks):
        indices = range(block * size, (block + 1) * size)
        t0 = time.process_time()
        made = bulk.make_samples(config, indices, videos)
        t1 = time.process_time()
        draw_only(config, made.points_2d, videos)
        t2 = time.process_time()
        sample_rates.append(size / (t1 - t0))
        draw_rates.append(size / (t2 - t1))
    ratios = [d / s for s, d in zip(sample_rates, draw_rates)]
    split = stage_split(config, args.blocks, size, videos)
    total = sum(split.values())
    t0 = time.process_time()
    for i in range(200):
        make_sample(config, i)
    one = (time.process_time() - t0) / 200
    result = {
        "trajgen_version": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        "config": "defaults (16 frames, 64x64, dot)",
        "clock": "CPU time of this process (time.process_time)",
        "make_samples_samples_per_s_median": round(statistics.median(sample_rates), 1),
        "make_samples_samples_per_s_best": round(max(sample_rates), 1),
        "draw_only_samples_per_s_median": round(statistics.median(draw_rates), 1),
        "cost_ratio_make_samples_over_draw_median": round(statistics.median(ratios), 2),
        "cost_ratio_per_block": [round(r, 2) for r in ratios],
        "stage_share": {k: round(v / total, 3) for k, v in split.items()},
        "stage_us_per_sample": {k: round(v / (args.blocks * size) * 1e6, 1) for k, v in split.items()},
        "make_sample_one_index_us": round(one * 1e6, 1),
        "command": f"python scripts/bench.py --blocks {args.blocks} --block-size {args.block_size}",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
