#!/usr/bin/env python
"""Measure the sample distribution of default runs: diversity, steps, coverage and the probes.

For each seed: `trajgen generate --n N --seed S` (the real CLI, default content options), then
`trajgen verify`, then the run is read back with `trajgen.open_run` shard by shard and measured
with `trajgen.quality` (plus a count of identical videos). The figures go into
artifacts/quality.json under --label (e.g. before / after), next to the command that made them;
other labels already in the file are kept.

--rev REV makes the runs with that commit of this repository (exported to a temporary
directory), so two versions can be measured with one script: e.g. --label before --rev main.

Usage: python scripts/quality.py --label after [--rev REV] [--n 100000] [--seeds 7,2026] [--workers 2] [--keep]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import trajgen
from trajgen.content.quality import QualityAccumulator
from trajgen.store.manifest import read_config

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {
    "duplicate_videos": "0",
    "near_duplicate_rate": "≤ 0.01 per class (whole-pixel path shared with another sample)",
    "single_frame_probe_accuracy": "≤ 0.45 at every frame (goal 0.35; chance 0.25)",
    "motion_probe_accuracy": "≥ 0.95",
    "step_within_diameter": "≥ 0.99 per class",
    "coverage_within_tol": "≥ 0.90 per class (±0.1 of --coverage)",
}


def git_commit(rev: str) -> str:
    out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", rev], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"no such revision {rev!r}: {out.stderr.strip()}")
    return out.stdout.strip()


def export_source(commit: str, into: Path) -> Path:
    """The trajgen tree of ``commit``, written under ``into``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def trajgen_cli(args: list[str], src: Path | None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src / "src")
    return subprocess.run([sys.executable, "-m", "trajgen", *args], env=env, capture_output=True, text=True)


def measure(run_dir: Path) -> dict:
    run = trajgen.open_run(run_dir)
    config = read_config(run_dir)
    acc = QualityAccumulator(len(run.classes), config.size, 2 * config.radius, config.coverage)
    digests: list[bytes] = []
    for arrays in run.iter_shards():
        acc.add(arrays["points_2d"], arrays["labels"])
        digests += [hashlib.blake2b(v.tobytes(), digest_size=8).digest() for v in arrays["videos"]]
    result = acc.result()
    result["duplicate_videos"] = len(digests) - len(set(digests))
    result["classes"] = list(run.classes)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--label", required=True, help="name of this measurement in the JSON (e.g. before, after)")
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--seeds", default="7,2026")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rev", default=None, help="make the runs with this commit [default: the working tree]")
    parser.add_argument("--scratch", type=Path, default=ROOT / "runs" / "quality")
    parser.add_argument("--json", type=Path, default=ROOT / "artifacts" / "quality.json")
    parser.add_argument("--keep", action="store_true", help="keep the run directories")
    args = parser.parse_args()

    seeds = [int(s) for s in args.seeds.split(",")]
    args.src = None
    source = f"working tree at {git_commit('HEAD')[:12]}" + (
        " (with uncommitted changes)"
        if subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "src"], capture_output=True, text=True
        ).stdout
        else ""
    )
    if args.rev:
        commit = git_commit(args.rev)
        args.src = export_source(commit, Path(tempfile.mkdtemp(prefix="trajgen_src_")))
        source = f"{args.rev} at {commit[:12]}"
    results = {}
    for seed in seeds:
        run_dir = args.scratch / f"{args.label}_seed{seed}_n{args.n}"
        shutil.rmtree(run_dir, ignore_errors=True)
        t0 = time.perf_counter()
        made = trajgen_cli(
            [
                "generate",
                "--n",
                str(args.n),
                "--seed",
                str(seed),
                "--workers",
                str(args.workers),
                "--out",
                str(run_dir),
                "--quiet",
            ],
            args.src,
        )
        if made.returncode != 0:
            sys.exit(f"generate failed for seed {seed}: {made.stderr.strip()}")
        seconds = time.perf_counter() - t0
        checked = trajgen_cli(["verify", str(run_dir)], args.src)
        figures = measure(run_dir)
        figures["generate_seconds"] = round(seconds, 1)
        figures["verify_exit_code"] = checked.returncode
        figures["verify_output_tail"] = (
            checked.stdout.strip().splitlines()[-3:] + checked.stderr.strip().splitlines()[-3:]
        )
        results[str(seed)] = figures
        print(
            f"seed {seed}: verify exit {checked.returncode}, duplicates {figures['duplicate_videos']}, "
            f"near-dup {np.round(figures['near_duplicate_rate'], 4).tolist()}, "
            f"steps≤d {np.round(figures['step_within_diameter'], 4).tolist()}, "
            f"coverage {np.round(figures['coverage_within_tol'], 4).tolist()}, "
            f"single-frame worst {figures['single_frame_probe_accuracy']:.3f}, "
            f"motion {figures['motion_probe_accuracy']:.3f}",
            flush=True,
        )
        if not args.keep:
            shutil.rmtree(run_dir, ignore_errors=True)
    if args.src is not None:
        shutil.rmtree(args.src, ignore_errors=True)

    data = json.loads(args.json.read_text()) if args.json.exists() else {}
    data["targets"] = TARGETS
    data.setdefault("measurements", {})[args.label] = {
        "command": "python scripts/quality.py " + shlex.join(sys.argv[1:]),
        "source": source,
        "n": args.n,
        "workers": args.workers,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "measured_at_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seeds": results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
