#!/usr/bin/env python
"""The package's layout changes no figure: generate, verify and the loader, side by side with another
commit of trajgen (default: 0c5933e, 0.2.0 in one folder) in one run.

The other commit is checked out with `git worktree` and imported through PYTHONPATH; both trees run
in the same virtual environment (same numpy, OpenCV, torch), in alternating rounds, each in a fresh
process:
  - generate: `python -m trajgen generate --n N --workers 1 --quiet`, wall seconds;
  - verify: verify_run over the run that generate made, seconds inside the process: the first call
    (with its imports and a cold cache of what it reads) and the median of three more;
  - loader: one epoch of `open_run(run).torch_stream(seed=0, batch_size=32)` in a DataLoader with no
    workers, samples/s inside the process.

Usage: python scripts/bench_layout.py [--n 10000] [--repeats 3] [--baseline 0c5933e] → artifacts/bench_layout.json
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

ROOT = Path(__file__).resolve().parent.parent

VERIFY = """
import sys, time
try:
    from trajgen.use.verify import verify_run
except ImportError:
    from trajgen.verify import verify_run
seconds = []
for _ in range(4):
    t = time.perf_counter(); report = verify_run(sys.argv[1]); seconds.append(time.perf_counter() - t)
    assert report.ok, report.summary
print(seconds[0], sorted(seconds[1:])[1])
"""

LOADER = """
import sys, time
import torch
from trajgen import open_run
stream = open_run(sys.argv[1]).torch_stream(seed=0, batch_size=32)
loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=0)
t = time.perf_counter(); n = sum(len(labels) for _, labels in loader); s = time.perf_counter() - t
print(n / s)
"""


def run(tree: Path, args: list[str]) -> str:
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    out = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--baseline", default="0c5933e")
    ap.add_argument("--out", type=Path, default=ROOT / "artifacts" / "bench_layout.json")
    opts = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="trajgen-bench-layout-"))
    old = work / "baseline"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old), opts.baseline],
        check=True,
        capture_output=True,
    )
    trees = {"baseline": old, "this": ROOT}
    figures: dict[str, dict[str, list[float]]] = {
        name: {"generate_s": [], "verify_first_s": [], "verify_warm_s": [], "loader_samples_per_s": []}
        for name in trees
    }
    load_start = os.getloadavg()
    try:
        for r in range(opts.repeats):
            for name in trees if r % 2 == 0 else reversed(list(trees)):
                tree, out = trees[name], work / f"run-{name}-{r}"
                t = time.perf_counter()
                run(
                    tree,
                    ["-m", "trajgen", "generate", "--n", str(opts.n), "--workers", "1", "--quiet", "--out", str(out)],
                )
                figures[name]["generate_s"].append(round(time.perf_counter() - t, 3))
                first, warm = map(float, run(tree, ["-c", VERIFY, str(out)]).split())
                figures[name]["verify_first_s"].append(round(first, 3))
                figures[name]["verify_warm_s"].append(round(warm, 3))
                figures[name]["loader_samples_per_s"].append(round(float(run(tree, ["-c", LOADER, str(out)])), 1))
                shutil.rmtree(out)
                print(name, {k: v[-1] for k, v in figures[name].items()}, flush=True)
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    medians = {name: {k: statistics.median(v) for k, v in f.items()} for name, f in figures.items()}
    ratios = {k: round(medians["this"][k] / medians["baseline"][k], 3) for k in medians["this"]}
    result = {
        "baseline_commit": opts.baseline,
        "this_commit": subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "n": opts.n,
        "repeats": opts.repeats,
        "load_average_at_start": [round(x, 2) for x in load_start],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "runs": figures,
        "medians": medians,
        "this_over_baseline": ratios,
        "command": "python scripts/bench_layout.py " + " ".join(sys.argv[1:]),
    }
    opts.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"medians": medians, "this_over_baseline": ratios}, indent=2))


if __name__ == "__main__":
    main()
