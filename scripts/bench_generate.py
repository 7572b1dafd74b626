#!/usr/bin/env python
"""End-to-end benchmark of `generate` with one worker, against its parts.

Measures, in alternating blocks (this machine's speed drifts by 1.5x minute to minute):
  - end-to-end: `trajgen.run.generate` of N samples at defaults, --workers 1
  - floor: make_sample for the same N samples + compressing the same frames (encode_shard)
and reports both rates and their ratio, plus the split of one run between making
samples, compressing and writing. Then peak RSS of the real CLI for 4,000 vs 40,000
samples, and the wall time of `trajgen resume` on a finished 100-shard run.

Usage: python scripts/bench_generate.py [--n 10000] [--repeats 3]   → artifacts/bench_generate.json
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

from trajgen import GenerationConfig, __version__, _fs
from trajgen.run import RunPaths, build_shard_arrays, generate
from trajgen.shards import encode_shard


def end_to_end(config: GenerationConfig, scratch: Path) -> float:
    out = scratch / "e2e"
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    generate(config, out, workers=1, check_space=False)
    return time.perf_counter() - t0


def split(config: GenerationConfig, scratch: Path) -> dict[str, float]:
    """Seconds spent making samples, compressing and writing, stage by stage."""
    paths = RunPaths(scratch / "split")
    shutil.rmtree(paths.root, ignore_errors=True)
    paths.shards.mkdir(parents=True)
    paths.tmp.mkdir()
    spent = {"make_samples": 0.0, "compress": 0.0, "write": 0.0}
    for k in range(config.num_shards):
        t0 = time.perf_counter()
        arrays, _, _ = build_shard_arrays(config, k)
        t1 = time.perf_counter()
        data = encode_shard(arrays, config.compress_level)
        t2 = time.perf_counter()
        _fs.atomic_write_bytes(paths.shard(k), data, paths.tmp)
        t3 = time.perf_counter()
        spent["make_samples"] += t1 - t0
        spent["compress"] += t2 - t1
        spent["write"] += t3 - t2
    return spent


def compression_levels(config: GenerationConfig) -> dict[str, dict[str, float]]:
    """One 1,000-sample shard: encode_shard at levels 1 and 6 vs np.savez_compressed."""
    import io

    import numpy as np

    arrays, _, _ = build_shard_arrays(config.replace(n=1000, checkpoint_every=1000), 0)
    out = {}
    for name, encode in (
        ("encode_shard_level_1", lambda: encode_shard(arrays, 1)),
        ("encode_shard_level_6", lambda: encode_shard(arrays, 6)),
        ("np_savez_compressed", lambda: _savez(np, io, arrays)),
    ):
        times, size = [], 0
        for _ in range(3):
            t0 = time.perf_counter()
            size = len(encode())
            times.append(time.perf_counter() - t0)
        out[name] = {"seconds": round(min(times), 3), "bytes_per_sample": round(size / 1000)}
    return out


def _savez(np, io, arrays) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def peak_rss_mb(n: int, scratch: Path) -> float:
    """Peak RSS of a real `trajgen generate --workers 1` child process, in MB."""
    out = scratch / f"rss{n}"
    shutil.rmtree(out, ignore_errors=True)
    code = (
        "import resource, subprocess, sys;"
        f"subprocess.run([sys.executable, '-m', 'trajgen', 'generate', '--n', '{n}', '--workers', '1', "
        f"'--quiet', '--out', '{out}'], check=True);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    kb = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    shutil.rmtree(out, ignore_errors=True)
    return kb / 1024


def resume_startup(scratch: Path) -> dict[str, float]:
    out = scratch / "hundred"
    shutil.rmtree(out, ignore_errors=True)
    generate(GenerationConfig(n=10_000, checkpoint_every=100), out, workers=2, check_space=False)
    walls = []
    for _ in range(5):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "trajgen", "resume", str(out), "--quiet"], check=True)
        walls.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    import trajgen.run

    trajgen.run.resume(out)
    library = time.perf_counter() - t0
    shutil.rmtree(out, ignore_errors=True)
    return {"cli_wall_s_median": round(statistics.median(walls), 3), "library_call_s": round(library, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="artifacts/bench_generate.json")
    args = parser.parse_args()
    config = GenerationConfig(n=args.n)
    scratch = Path(tempfile.mkdtemp(prefix="trajgen-bench-"))
    try:
        e2e_rates, floor_rates, ratios = [], [], []
        for _ in range(args.repeats):
            seconds = end_to_end(config, scratch)
            parts = split(config, scratch)
            floor = parts["make_samples"] + parts["compress"]
            e2e_rates.append(config.n / seconds)
            floor_rates.append(config.n / floor)
            ratios.append(seconds / floor)
        parts = split(config, scratch)
        total = sum(parts.values())
        rss = {n: round(peak_rss_mb(n, scratch), 1) for n in (4_000, 40_000)}
        result = {
            "trajgen_version": __version__,
            "python": platform.python_version(),
            "host": platform.node(),
            "cpus": os.cpu_count(),
            "load_average_at_end": os.getloadavg(),
            "samples": config.n,
            "end_to_end_samples_per_s": [round(r) for r in e2e_rates],
            "end_to_end_samples_per_s_median": round(statistics.median(e2e_rates)),
            "make_plus_compress_samples_per_s": [round(r) for r in floor_rates],
            "ratio_end_to_end_over_make_plus_compress": [round(r, 2) for r in ratios],
            "split_share": {k: round(v / total, 3) for k, v in parts.items()},
            "split_us_per_sample": {k: round(v / config.n * 1e6, 1) for k, v in parts.items()},
            "compression_1000_samples": compression_levels(config),
            "peak_rss_mb": {str(k): v for k, v in rss.items()},
            "peak_rss_ratio_40k_over_4k": round(rss[40_000] / rss[4_000], 3),
            "resume_finished_100_shard_run": resume_startup(scratch),
            "command": f"python scripts/bench_generate.py --n {args.n} --repeats {args.repeats}",
        }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
