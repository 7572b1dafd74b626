#!/usr/bin/env python
"""Does the same `trajgen generate` make the same bytes, run after run, on a busy machine?

Runs `trajgen generate --n N --checkpoint-every K --seed S --workers W --quiet` --runs times,
--parallel at once (so the runs load the machine and each other), each into a fresh
directory, and compares every run's shard sha256s (from its manifest) with the bytes most runs
made of that shard.
Counted: runs with any shard that differs, and which shards. This is how a deflate encoder
whose output is not a pure function of its input was found (artifacts/isal_nondeterminism.md).

Usage: python scripts/check_repeatability.py [--runs 60] [--parallel 2] [--n 4000]
       [--checkpoint-every 200] [--seed 29] [--workers 1] → artifacts/repeatability.json
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CODECS: set[str] = set()


def one_run(scratch: Path, i: int, args: argparse.Namespace) -> list[str]:
    out = scratch / f"run{i}"
    cmd = [
        sys.executable,
        "-m",
        "trajgen",
        "generate",
        "--n",
        str(args.n),
        "--checkpoint-every",
        str(args.checkpoint_every),
        "--seed",
        str(args.seed),
        "--workers",
        str(args.workers),
        "--quiet",
        "--out",
        str(out),
    ]
    subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    manifest = json.loads((out / "manifest.json").read_text())
    shas = [entry["sha256"] for entry in manifest["shards"]]
    CODECS.add(json.dumps(manifest["codec"], sort_keys=True))  # what deflated the shards (the same in every run)
    shutil.rmtree(out)
    return shas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--checkpoint-every", type=int, default=200)
    parser.add_argument("--seed", type=int, default=29)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "artifacts" / "repeatability.json"))
    args = parser.parse_args()
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="trajgen-repeat-") as scratch:
        with concurrent.futures.ThreadPoolExecutor(args.parallel) as pool:
            runs = list(pool.map(lambda i: one_run(Path(scratch), i, args), range(args.runs)))
    majority = [collections.Counter(shas).most_common(1)[0][0] for shas in zip(*runs)]
    differing = {i: [k for k, (a, b) in enumerate(zip(majority, shas)) if a != b] for i, shas in enumerate(runs)}
    differing = {i: ks for i, ks in differing.items() if ks}
    result = {
        "command": "python scripts/check_repeatability.py " + " ".join(sys.argv[1:]),
        "what": __doc__.split("\n\n")[1].replace("\n", " "),
        "codec": [json.loads(c) for c in sorted(CODECS)],
        "runs": args.runs,
        "shards_per_run": len(majority),
        "runs_with_a_differing_shard": len(differing),
        "differing_shards_by_run": differing,
        "seconds": round(time.time() - started, 1),
        "load_average_at_end": os.getloadavg(),
        "repeatable": not differing,
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
