#!/usr/bin/env python
"""Deflate encoders side by side on real shards: zlib and zlib-ng at several levels, speed (µs per
sample) and size (bytes per sample), in alternating rounds in one process (this machine's speed
drifts; only side-by-side figures compare). Each encoder deflates every member of the same shards
as trajgen does (raw deflate, in 16 MiB pieces).

Usage: python scripts/bench_codecs.py [--shards 2] [--rounds 5] → artifacts/bench_codecs.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import zlib
from pathlib import Path

import numpy as np

from trajgen import GenerationConfig
from trajgen.making.shardmaker import build_shard_arrays
from trajgen.store.shards import SHARD_KEYS

ROOT = Path(__file__).resolve().parent.parent
CHUNK = 16 << 20


def encoders() -> dict:
    found = {f"zlib {level}": (zlib, level) for level in (1, 4)}
    try:
        from zlib_ng import zlib_ng
    except ImportError:
        return found
    return found | {f"zlib-ng {level}": (zlib_ng, level) for level in (1, 2, 3, 4)}


def deflate(module, level: int, members: list[np.ndarray]) -> int:
    size = 0
    for raw in members:
        deflater = module.compressobj(level, module.DEFLATED, -15)
        for start in range(0, raw.size, CHUNK):
            size += len(deflater.compress(raw[start : start + CHUNK].data))
        size += len(deflater.flush())
    return size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shards", type=int, default=2, help="default-config shards of 1,000 samples")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=ROOT / "artifacts" / "bench_codecs.json")
    opts = ap.parse_args()
    config = GenerationConfig(n=1000 * opts.shards, checkpoint_every=1000)
    shards = [build_shard_arrays(config, k)[0] for k in range(opts.shards)]
    members = [np.ascontiguousarray(s[key]).reshape(-1).view(np.uint8) for s in shards for key in SHARD_KEYS]
    samples = config.n
    found = encoders()
    us: dict[str, list[float]] = {name: [] for name in found}
    size: dict[str, int] = {}
    for r in range(opts.rounds):
        for name in found if r % 2 == 0 else reversed(list(found)):
            module, level = found[name]
            t = time.perf_counter()
            size[name] = deflate(module, level, members)
            us[name].append((time.perf_counter() - t) / samples * 1e6)
    table = {
        name: {"us_per_sample": round(statistics.median(us[name]), 1), "bytes_per_sample": round(size[name] / samples)}
        for name in found
    }
    base = table["zlib 1"]
    for row in table.values():
        row["speed_vs_zlib_1"] = round(base["us_per_sample"] / row["us_per_sample"], 2)
        row["size_vs_zlib_1"] = round(row["bytes_per_sample"] / base["bytes_per_sample"], 3)
    result = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "shards": f"{opts.shards} default-config shards of 1,000 samples (16 frames of 64x64), every member",
        "encoders": table,
        "command": "python scripts/bench_codecs.py " + " ".join(sys.argv[1:]),
    }
    opts.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
