#!/usr/bin/env python
"""What the scene knobs cost: `trajgen generate --workers 2` of the plain default against the same run
with `--appearance varied --distractors 2 --occluders 1`, side by side (rounds alternate: this VM's
speed drifts). The figure is the median of the per-round ratios of seconds per sample (knobs / plain:
≤ 2 is the goal), with where the time goes in one process (making the samples, encoding the shard).

Usage: python scripts/bench_scene.py [--n 40000] [--rounds 3] → artifacts/bench_scene.json
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

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
KNOBS = ["--appearance", "varied", "--distractors", "2", "--occluders", "1"]


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def in_process(knobs: dict, n: int = 1000, rounds: int = 3) -> dict:
    """Microseconds per sample (CPU time, the least of ``rounds``) to make one shard's samples and to
    encode the shard, and its bytes."""
    from trajgen import GenerationConfig
    from trajgen.making.shardmaker import build_shard_arrays
    from trajgen.store.shards import encode_shard

    config = GenerationConfig(n=2 * n, checkpoint_every=n, **knobs)
    build_shard_arrays(config, 0)  # warm-up
    make = encode = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        arrays, _, _ = build_shard_arrays(config, 1)
        made = time.process_time()
        data = encode_shard(arrays, config.compress_level)
        make, encode = min(make, made - started), min(encode, time.process_time() - made)
    return {
        "make_us_per_sample": round(make / n * 1e6, 1),
        "encode_us_per_sample": round(encode / n * 1e6, 1),
        "shard_bytes_per_sample": round(len(data) / n),
    }


def floor(knobs: dict, plain: dict, drawn: dict, n: int = 1000, rounds: int = 3) -> dict:
    """What the knobs cost before a pixel is drawn: making the samples with the scene's drawing
    (backgrounds and shapes) skipped, plus encoding the drawn shard, against the plain default's
    whole cost per sample. Above 2, no drawing however fast meets the goal at this --compress-level."""
    from trajgen import GenerationConfig
    from trajgen.content import render, scene
    from trajgen.making.shardmaker import build_shard_arrays

    config = GenerationConfig(n=2 * n, checkpoint_every=n, **knobs)
    fill, backgrounds = render.fill_polygons, scene.backgrounds
    render.fill_polygons = lambda videos, layers: None
    scene.backgrounds = lambda a, size: np.zeros((1, size, size, 3), np.uint8)
    try:
        build_shard_arrays(config, 0)
        make = float("inf")
        for _ in range(rounds):
            started = time.process_time()
            build_shard_arrays(config, 1)
            make = min(make, time.process_time() - started)
    finally:
        render.fill_polygons, scene.backgrounds = fill, backgrounds
    make_us = make / n * 1e6
    plain_us = plain["make_us_per_sample"] + plain["encode_us_per_sample"]
    return {
        "make_without_drawing_us_per_sample": round(make_us, 1),
        "encode_us_per_sample": drawn["encode_us_per_sample"],
        "ratio_to_plain": round((make_us + drawn["encode_us_per_sample"]) / plain_us, 2),
        "encode_alone_ratio_to_plain": round(drawn["encode_us_per_sample"] / plain_us, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=40_000)
    parser.add_argument("--checkpoint-every", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "artifacts" / "bench_scene.json"))
    args = parser.parse_args()
    base = [sys.executable, "-m", "trajgen", "generate", "--n", str(args.n)]
    base += ["--checkpoint-every", str(args.checkpoint_every), "--workers", "2", "--quiet"]
    rounds = []
    work = Path(tempfile.mkdtemp(prefix="bench_scene_"))
    try:
        for r in range(args.rounds):
            seconds = {}
            for name, extra in (("plain", []), ("knobs", KNOBS)) if r % 2 == 0 else (("knobs", KNOBS), ("plain", [])):
                run = work / f"{name}-{r}"
                seconds[name] = timed(base + ["--out", str(run)] + extra)
                shutil.rmtree(run)
            rounds.append(
                {
                    "plain_s": round(seconds["plain"], 2),
                    "knobs_s": round(seconds["knobs"], 2),
                    "ratio": round(seconds["knobs"] / seconds["plain"], 3),
                }
            )
            print(rounds[-1], flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ratio = statistics.median(r["ratio"] for r in rounds)
    knobs = dict(appearance="varied", distractors=2, occluders=1)
    one_process = {"plain": in_process({}), "knobs": in_process(knobs)}
    from trajgen.content import render

    if hasattr(render, "fill_polygons"):  # (code from before scenes were drawn by OpenCV has no floor here)
        one_process["floor"] = floor(knobs, one_process["plain"], one_process["knobs"])
    result = {
        "what": "trajgen generate --workers 2, plain default vs " + " ".join(KNOBS) + ", seconds per sample",
        "n": args.n,
        "checkpoint_every": args.checkpoint_every,
        "rounds": rounds,
        "plain_us_per_sample": round(statistics.median(r["plain_s"] for r in rounds) / args.n * 1e6, 1),
        "knobs_us_per_sample": round(statistics.median(r["knobs_s"] for r in rounds) / args.n * 1e6, 1),
        "ratio_median": ratio,
        "goal": "ratio ≤ 2",
        "met": ratio <= 2,
        "one_process": one_process,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_1m_at_end": round(os.getloadavg()[0], 2),  # other work on the machine skews the figures
        },
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
