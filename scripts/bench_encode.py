#!/usr/bin/env python
"""Encoding a shard (store.shards.encode_shard): CPU time per sample for real shards of the plain
default and of `--appearance varied --distractors 2 --occluders 1`, and the crc32 each member needs,
computed by zlib and by zlib-ng, in alternating rounds in one process (this machine's speed drifts;
only side-by-side figures compare). Both give the same number, so the shard's bytes are the same.

Usage: python scripts/bench_encode.py [--samples 1000] [--rounds 5] → artifacts/bench_encode.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import zlib
from pathlib import Path

from zlib_ng import zlib_ng

from trajgen import GenerationConfig
from trajgen.making.shardmaker import build_shard_arrays
from trajgen.store.shards import encode_shard

ROOT = Path(__file__).resolve().parent.parent
KNOBS = {"appearance": "varied", "distractors": 2, "occluders": 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "artifacts" / "bench_encode.json"))
    args = parser.parse_args()
    n = args.samples
    result: dict = {"what": "encode_shard, CPU µs per sample (least of the rounds); crc32 of the videos"}
    for name, knobs in (("plain", {}), ("knobs", KNOBS)):
        arrays, _, _ = build_shard_arrays(GenerationConfig(n=n, checkpoint_every=n, **knobs), 0)
        raw = arrays["videos"].reshape(-1).view("uint8")
        best = {"encode": float("inf"), "crc_zlib": float("inf"), "crc_zlib_ng": float("inf")}
        for _ in range(args.rounds):
            for key, work, data in (
                ("encode", lambda a: encode_shard(a, 3), arrays),
                ("crc_zlib", zlib.crc32, raw),
                ("crc_zlib_ng", zlib_ng.crc32, raw),
            ):
                started = time.process_time()
                work(data)
                best[key] = min(best[key], time.process_time() - started)
        assert zlib.crc32(raw) == zlib_ng.crc32(raw)
        result[name] = {key: round(seconds / n * 1e6, 1) for key, seconds in best.items()}
        result[name]["shard_bytes_per_sample"] = round(len(encode_shard(arrays, 3)) / n)
    result["machine"] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
