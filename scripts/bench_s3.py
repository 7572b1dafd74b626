#!/usr/bin/env python
"""A run in object storage against the same run on disk, on this machine: `trajgen generate --workers 2`
into a bucket of moto's S3 server on 127.0.0.1 vs into a directory, and one epoch of torch_stream
(2 DataLoader workers) from the bucket (cold cache: every shard fetched; warm: the cache kept) vs from
disk. The local server measures trajgen's own overhead, not a network. Rounds alternate (this VM's
speed drifts); the figure is the median of the per-round ratios (disk time / bucket time: ≥ 0.8 is the goal).

Usage: python scripts/bench_s3.py [--n 4000] [--rounds 3] → artifacts/bench_s3.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start_server() -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    raise SystemExit("moto's server did not start")


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def epoch_seconds(location: str, cache: str | None) -> float:
    code = (
        "import sys,time;from torch.utils.data import DataLoader;from trajgen import open_run\n"
        "kw={'cache_dir':sys.argv[2]} if sys.argv[2] else {}\n"
        "s=time.perf_counter();n=0\n"
        "for v,l in DataLoader(open_run(sys.argv[1],**kw).torch_stream(seed=1),batch_size=64,num_workers=2): n+=len(l)\n"
        "print(time.perf_counter()-s)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, location, cache or ""], check=True, capture_output=True, text=True
    )
    return float(out.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--checkpoint-every", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    server, endpoint = start_server()
    work = Path(tempfile.mkdtemp(prefix="bench-s3-"))
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL_S3=endpoint,
        TRAJGEN_CACHE_DIR=str(work / "cache"),
    )
    import boto3

    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    trajgen = [sys.executable, "-m", "trajgen", "generate", "--n", str(args.n)]
    trajgen += ["--checkpoint-every", str(args.checkpoint_every), "--workers", "2", "--quiet"]
    rounds = []
    try:
        for r in range(args.rounds):
            disk, url = work / f"disk{r}", f"s3://{bucket}/run{r}"
            row = {"generate_disk_s": timed([*trajgen, "--out", str(disk)])}
            row["generate_bucket_s"] = timed([*trajgen, "--out", url])
            row["stream_disk_s"] = epoch_seconds(str(disk), None)
            row["stream_bucket_cold_s"] = epoch_seconds(url, str(work / f"read{r}"))
            row["stream_bucket_warm_s"] = epoch_seconds(url, str(work / f"read{r}"))
            rounds.append(row)
            print(json.dumps(row), flush=True)
            shutil.rmtree(disk)
    finally:
        server.kill()
        shutil.rmtree(work, ignore_errors=True)

    def ratio(disk_key: str, bucket_key: str) -> float:
        return round(statistics.median(r[disk_key] / r[bucket_key] for r in rounds), 3)

    result = {
        "command": f"python scripts/bench_s3.py --n {args.n} --checkpoint-every {args.checkpoint_every} --rounds {args.rounds}",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "samples": args.n,
        "checkpoint_every": args.checkpoint_every,
        "rounds": rounds,
        "generate_speed_bucket_over_disk": ratio("generate_disk_s", "generate_bucket_s"),
        "stream_speed_bucket_cold_over_disk": ratio("stream_disk_s", "stream_bucket_cold_s"),
        "stream_speed_bucket_warm_over_disk": ratio("stream_disk_s", "stream_bucket_warm_s"),
    }
    (ROOT / "artifacts" / "bench_s3.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "rounds"}, indent=2))


if __name__ == "__main__":
    main()
