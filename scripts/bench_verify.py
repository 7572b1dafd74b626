#!/usr/bin/env python
"""What `trajgen verify` spends, and on what: verify_run over a 20,000-sample run with each
video hashed by ISA-L's CRC-64 (the default where python-isal exports it) and by blake2b (the
fallback), alternating, in one process; plus the cost of one video's hash each way, and
reading one shard (read_shard). A 10,000,000-sample run takes 500 times the figures.

Usage: python scripts/bench_verify.py [--n 20000] [--repeats 3] [--work DIR] [--keep] → artifacts/bench_verify.json
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
import time
from pathlib import Path

import numpy as np

import trajgen
from trajgen.store import checksums
from trajgen.store.shards import read_shard
from trajgen.use import verify


def make_run(n: int, work: Path) -> Path:
    out = work / f"run_n{n}_v{trajgen.__version__}"
    if not (out / "manifest.json").exists() or json.loads((out / "manifest.json").read_text())["status"] != "complete":
        shutil.rmtree(out, ignore_errors=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "trajgen",
                "generate",
                "--n",
                str(n),
                "--checkpoint-every",
                "1000",
                "--out",
                str(out),
                "--quiet",
            ],
            check=True,
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--work", type=Path, default=Path("/tmp/trajgen-bench-verify"))
    ap.add_argument("--keep", action="store_true", help="keep the run for another time")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    run_dir = make_run(args.n, args.work)
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    crc64 = checksums._crc64
    assert crc64() is not None, "python-isal here does not export crc64_ecma_refl"
    hashers = {"crc64": crc64, "blake2b": lambda: None}
    seconds: dict[str, list[float]] = {name: [] for name in hashers}
    for _ in range(args.repeats):
        for name, hasher in hashers.items():
            checksums._crc64 = hasher
            t = time.perf_counter()
            report = verify.verify_run(run_dir)
            seconds[name].append(time.perf_counter() - t)
            assert report.ok, report
    checksums._crc64 = crc64
    shard = sorted((run_dir / "shards").glob("shard-*.npz"))[0]
    t = time.perf_counter()
    videos = read_shard(shard)["videos"]
    read_seconds = time.perf_counter() - t
    per_video = {}
    for name, hasher in hashers.items():
        checksums._crc64 = hasher
        checksums.video_hashes(videos[:10])
        t = time.perf_counter()
        hashes = checksums.video_hashes(videos)
        per_video[name] = round((time.perf_counter() - t) / len(videos) * 1e6, 1)
        assert len(np.unique(hashes)) == len(videos)
    checksums._crc64 = crc64
    median = {name: round(statistics.median(v), 2) for name, v in seconds.items()}
    result = {
        "trajgen_version": trajgen.__version__,
        "python": platform.python_version(),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "load_average_at_start": load_at_start,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "config": f"{args.n} samples, generate defaults (16 frames, 64x64), --checkpoint-every 1000",
        "verify_run_seconds_median": median,
        "verify_run_seconds_runs": {name: [round(s, 2) for s in v] for name, v in seconds.items()},
        "blake2b_over_crc64": round(median["blake2b"] / median["crc64"], 2),
        "hash_us_per_video": per_video,
        "read_shard_us_per_sample": round(read_seconds / len(videos) * 1e6, 1),
        "method": f"verify_run in this process, the two hashers alternating, medians of {args.repeats}; per video: "
        "video_hashes over one shard's 1,000 videos; read_shard: one shard, all arrays",
        "command": "python scripts/bench_verify.py " + " ".join(sys.argv[1:]),
    }
    Path("artifacts").mkdir(exist_ok=True)
    Path("artifacts/bench_verify.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if not args.keep:
        shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    main()
