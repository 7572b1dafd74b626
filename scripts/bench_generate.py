#!/usr/bin/env python
"""End-to-end `trajgen generate --workers 1`, side by side with trajgen 0.1.0 and the floor.

In one run, in alternating rounds (this machine's speed drifts minute to minute, so only
ratios measured side by side mean much):
  - this trajgen: the real CLI, `trajgen generate --n N --workers 1` (a subprocess);
  - trajgen 0.1.0 (git commit 5f704d1), installed from git into a temporary virtual
    environment, the same command;
  - two floors: a program of its own (Python, numpy, OpenCV, isal or zlib) drawing the same
    dots with cv2.circle (frames filled with the background, one anti-aliased circle per
    frame) and deflating the same frames with ISA-L level 1 (the floor the speed target names)
    or with zlib level 1 (the encoder shards use: ISA-L's deflate was not reproducible under
    load, artifacts/isal_nondeterminism.md);
and reports wall and CPU seconds of each, the speed-up over 0.1.0, the ratio to the
floor, and bytes per sample on disk. CPU seconds (user + system of the process) are what
the programs cost; wall seconds also count waiting for the disk (fsync) and for the CPU
on a loaded machine. Then the split of one run between making samples,
compressing and writing, peak RSS of the CLI for 4,000 vs 40,000 samples, and the wall
time of `trajgen resume` on a finished 100-shard run.

Usage: python scripts/bench_generate.py [--n 20000] [--repeats 3] [--baseline 5f704d1]
       → artifacts/bench_generate.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import site
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from trajgen import GenerationConfig, __version__
from trajgen.making import generate
from trajgen.making.shardmaker import build_shard_arrays, videos_buffer_kept
from trajgen.store import _fs
from trajgen.store.rundir import RunPaths
from trajgen.store.shards import encode_shard

ROOT = Path(__file__).resolve().parent.parent
SPEEDUP_TARGET = 3.0  # over 0.1.0
FLOOR_LIMIT, FLOOR_GOAL = 1.5, 1.2  # end-to-end time over the floor's


def install_baseline(ref: str, scratch: Path) -> Path:
    """trajgen at git ``ref`` installed into a fresh venv that reuses this one's packages; its python."""
    src, venv = scratch / "baseline-src", scratch / "baseline-venv"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(src)], check=True)
    subprocess.run(["git", "-C", str(src), "checkout", "-q", ref], check=True)
    # --without-pip: the venv must not shadow this environment's setuptools with the bundled one
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    own = subprocess.run(
        [str(python), "-c", "import site; print(site.getsitepackages()[0])"], capture_output=True, text=True, check=True
    ).stdout.strip()
    Path(own, "parent_env.pth").write_text(site.getsitepackages()[0] + "\n")  # numpy, OpenCV, click...
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", str(src)],
        check=True,
        env=_env(None),
        capture_output=True,
    )
    return python


def _env(pythonpath: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return env


def cli_generate(python: Path | str, env: dict, n: int, out: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of `trajgen generate --n N --workers 1` run by ``python``."""
    shutil.rmtree(out, ignore_errors=True)
    return _timed(
        [str(python), "-m", "trajgen", "generate", "--n", str(n), "--workers", "1", "--quiet", "--out", str(out)], env
    )


def run_bytes(out: Path) -> int:
    return sum(p.stat().st_size for p in (out / "shards").glob("*.npz"))


# The floor as a program of its own: start Python, import numpy, OpenCV and isal or zlib, draw the
# dots of every sample with cv2.circle and deflate each 1,000-sample block of frames at level 1.
FLOOR_PROGRAM = """
import sys
import cv2
import numpy as np
if sys.argv[5] == "isal":
    from isal import isal_zlib as deflater
else:
    import zlib as deflater

points = np.load(sys.argv[1])
size, radius16, block = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
colour, background = (0, 0, 255), (255, 255, 255)
blank = np.empty((size, size, 3), np.uint8)
blank[...] = background
for start in range(0, len(points), block):
    chunk = points[start : start + block]
    videos = np.empty((len(chunk), chunk.shape[1], size, size, 3), np.uint8)
    videos[...] = blank
    centres = np.rint(chunk * 16).astype(np.int64).tolist()
    for video, row in zip(videos, centres):
        for frame, centre in zip(video, row):
            cv2.circle(frame, centre, radius16, colour, -1, cv2.LINE_AA, 4)
    deflater.compress(videos, 1, -15)
"""


def floor_run(points_file: Path, config: GenerationConfig, encoder: str) -> tuple[float, float]:
    """(wall, CPU) seconds of the floor program (deflating with "isal" or "zlib") on the dots in ``points_file``."""
    radius16 = int(round(config.radius * 16))
    return _timed(
        [
            sys.executable,
            "-c",
            FLOOR_PROGRAM,
            str(points_file),
            str(config.size),
            str(radius16),
            str(config.checkpoint_every),
            encoder,
        ],
        _env(None),
    )


def _timed(cmd: list[str], env: dict) -> tuple[float, float]:
    """(wall, CPU of the child: user + system) seconds of a command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, cwd="/")
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def split(config: GenerationConfig, scratch: Path) -> dict[str, float]:
    """Seconds spent making samples, compressing and writing, stage by stage."""
    paths = RunPaths(scratch / "split")
    shutil.rmtree(paths.root, ignore_errors=True)
    paths.shards.mkdir(parents=True)
    paths.tmp.mkdir()
    spent = {"make_samples": 0.0, "compress": 0.0, "write": 0.0}
    with videos_buffer_kept():  # as `generate --workers 1` makes them
        for k in range(config.num_shards):
            _split_shard(config, k, paths, spent)
    shutil.rmtree(paths.root, ignore_errors=True)
    return spent


def _split_shard(config: GenerationConfig, k: int, paths: RunPaths, spent: dict[str, float]) -> None:
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
    import trajgen.making

    trajgen.making.resume(out)
    library = time.perf_counter() - t0
    shutil.rmtree(out, ignore_errors=True)
    return {"cli_wall_s_median": round(statistics.median(walls), 3), "library_call_s": round(library, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", default="5f704d1", help="git commit of the version to compare with (0.1.0)")
    parser.add_argument("--quick", action="store_true", help="only the side-by-side comparison")
    parser.add_argument("--out", default=str(ROOT / "artifacts" / "bench_generate.json"))
    args = parser.parse_args()
    config = GenerationConfig(n=args.n)
    scratch = Path(tempfile.mkdtemp(prefix="trajgen-bench-"))
    try:
        baseline_python = install_baseline(args.baseline, scratch)
        ours_env = _env(str(ROOT / "src"))
        who_all = ["this", "baseline", "floor_isal", "floor_zlib"]
        seconds: dict[str, list[float]] = {k: [] for k in who_all}
        cpu: dict[str, list[float]] = {k: [] for k in who_all}
        sizes = {}
        cli_generate(sys.executable, ours_env, args.n, scratch / "this")  # the floor draws this trajgen's dots
        points = []
        for p in sorted((scratch / "this" / "shards").glob("*.npz")):
            with np.load(p) as z:
                points.append(z["points_2d"])
        points_file = scratch / "points.npy"
        np.save(points_file, np.concatenate(points))
        for rep in range(args.repeats):
            order = who_all if rep % 2 == 0 else who_all[::-1]
            for who in order:
                if who.startswith("floor"):
                    wall, used = floor_run(points_file, config, who.removeprefix("floor_"))
                else:
                    python, env = (sys.executable, ours_env) if who == "this" else (baseline_python, _env(None))
                    wall, used = cli_generate(python, env, args.n, scratch / who)
                    sizes[who] = run_bytes(scratch / who) / args.n
                seconds[who].append(wall)
                cpu[who].append(used)
                print(f"round {rep + 1} {who:8s} {wall:6.2f} s wall {used:6.2f} s CPU", flush=True)
        med = {k: statistics.median(v) for k, v in seconds.items()}
        med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
        speedup = med["baseline"] / med["this"]
        over_floor = med["this"] / med["floor_isal"]
        result = {
            "command": f"python scripts/bench_generate.py --n {args.n} --repeats {args.repeats} --baseline {args.baseline}",
            "what": "wall and CPU (user + system) seconds of four programs, each started as a process: "
            "`trajgen generate --n N --workers 1 --quiet` of this trajgen and of the baseline commit, and two floors: "
            "Python + numpy + OpenCV drawing the same dots with cv2.circle and deflating the same "
            "frames with ISA-L level 1 (floor_isal, the target's floor) or zlib level 1 (floor_zlib, "
            "the encoder shards use), 1,000 samples at a time",
            "trajgen_version": __version__,
            "baseline": args.baseline,
            "python": platform.python_version(),
            "host": platform.node(),
            "cpus": os.cpu_count(),
            "load_average_at_end": os.getloadavg(),
            "samples": args.n,
            "wall_seconds": {k: [round(s, 3) for s in v] for k, v in seconds.items()},
            "cpu_seconds": {k: [round(s, 3) for s in v] for k, v in cpu.items()},
            "samples_per_s_median": {k: round(args.n / m) for k, m in med.items()},
            "speedup_over_baseline": round(speedup, 2),
            "speedup_over_baseline_cpu": round(med_cpu["baseline"] / med_cpu["this"], 2),
            "speedup_target": SPEEDUP_TARGET,
            "time_over_floor": round(over_floor, 2),
            "time_over_floor_cpu": round(med_cpu["this"] / med_cpu["floor_isal"], 2),
            "time_over_zlib_floor": round(med["this"] / med["floor_zlib"], 2),
            "time_over_zlib_floor_cpu": round(med_cpu["this"] / med_cpu["floor_zlib"], 2),
            "time_over_floor_limit": FLOOR_LIMIT,
            "time_over_floor_goal": FLOOR_GOAL,
            "bytes_per_sample": {k: round(v) for k, v in sizes.items()},
            "meets_targets": speedup >= SPEEDUP_TARGET
            and over_floor <= FLOOR_LIMIT
            and sizes["this"] <= sizes["baseline"],
        }
        if not args.quick:
            small = config.replace(n=min(args.n, 10_000))
            parts = split(small, scratch)
            total = sum(parts.values())
            rss = {n: round(peak_rss_mb(n, scratch), 1) for n in (4_000, 40_000)}
            result |= {
                "split_share": {k: round(v / total, 3) for k, v in parts.items()},
                "split_us_per_sample": {k: round(v / small.n * 1e6, 1) for k, v in parts.items()},
                "peak_rss_mb": {str(k): v for k, v in rss.items()},
                "peak_rss_ratio_40k_over_4k": round(rss[40_000] / rss[4_000], 3),
                "resume_finished_100_shard_run": resume_startup(scratch),
            }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
