#!/usr/bin/env python
"""What reporting samples in flight costs a shard maker: produce_shard timed with the reports
off, at the default rate (at most every 0.5 s) and at every encoder step (the worst case),
in rotating order per repetition so the machine's drift hits every setting alike; the
shards made must be byte-identical. Reports medians and ratios to "off".

Also times one report (a small file replaced in .tmp/) and the reader side: inflight.read of
a .tmp/ holding 16 files (what the watch thread, the heartbeat and `status` do).

Usage: python scripts/bench_inflight.py [--samples 4000] [--repeats 5] → artifacts/bench_inflight.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = {"off": "inf", "default": None, "every_step": "0"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "artifacts" / "bench_inflight.json"))
    args = parser.parse_args()

    from trajgen.content.config import GenerationConfig
    from trajgen.making import inflight
    from trajgen.making.shardmaker import produce_shard, videos_buffer_kept

    config = GenerationConfig(n=args.samples, checkpoint_every=args.samples, seed=1)
    times: dict[str, list[float]] = {name: [] for name in SETTINGS}
    digests: set[str] = set()
    names = list(SETTINGS)
    with tempfile.TemporaryDirectory() as run_dir, videos_buffer_kept():
        for sub in ("shards", ".tmp"):
            os.makedirs(os.path.join(run_dir, sub))
        produce_shard(config, run_dir, 0)  # warm up: imports, the videos buffer's first touch
        for rep in range(args.repeats):
            for name in names[rep % len(names) :] + names[: rep % len(names)]:
                value = SETTINGS[name]
                if value is None:
                    os.environ.pop("TRAJGEN_INFLIGHT_SECONDS", None)
                else:
                    os.environ["TRAJGEN_INFLIGHT_SECONDS"] = value
                started = time.perf_counter()
                result = produce_shard(config, run_dir, 0)
                times[name].append(time.perf_counter() - started)
                digests.add(result.sha256)
        assert len(digests) == 1, "reporting changed the shard's bytes"
        assert not any(n.startswith("inflight-") for n in os.listdir(os.path.join(run_dir, ".tmp")))

        tmp = os.path.join(run_dir, ".tmp")
        for k in range(16):
            inflight.ShardProgress(tmp, k, 10_000, every=0).encoded(k, 16)
        writes = []
        report = inflight.ShardProgress(tmp, 99, 10_000, every=0)
        for j in range(200):
            started = time.perf_counter()
            report.encoded(j, 200)
            writes.append(time.perf_counter() - started)
        report.done()
        reads = []
        for _ in range(200):
            started = time.perf_counter()
            inflight.read(tmp)
            reads.append(time.perf_counter() - started)

    medians = {name: statistics.median(t) for name, t in times.items()}
    result = {
        "command": f"python scripts/bench_inflight.py --samples {args.samples} --repeats {args.repeats}",
        "samples_per_shard": args.samples,
        "repeats": args.repeats,
        "seconds": times,
        "median_seconds": medians,
        "ratio_to_off": {name: medians[name] / medians["off"] for name in medians},
        "write_one_report_median_ms": statistics.median(writes) * 1000,
        "read_16_files_median_ms": statistics.median(reads) * 1000,
        "default_reports_per_second_at_most": 1 / 0.5,
        "identical_shards": True,
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "load_average": os.getloadavg(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(
        json.dumps(
            {
                k: result[k]
                for k in ("median_seconds", "ratio_to_off", "write_one_report_median_ms", "read_16_files_median_ms")
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
