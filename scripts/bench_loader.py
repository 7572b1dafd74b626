#!/usr/bin/env python
"""Training-loader throughput, side by side in one run: uint8 16×64×64 clips, batch 32.

- decode floor: plain `numpy.load` of every shard's `videos` member, one process;
- `run.torch_stream()` (uint8, shuffled) iterated by itself (its own work: reading, inflating,
  handing out each sample's view), and in a DataLoader with 0, 1 and 2 worker processes;
- the DataLoader alone, its items made in memory without reading anything (what its
  collating into shared memory and passing batches between processes costs by itself);
- the map-style path for comparison: `run.torch_dataset()` (float32, its default) with
  `shard_sampler()` as before (workers not told: every worker decodes every shard), and told
  the loader's workers and batch size, over the first `--map-samples` samples (it is slow).

Each figure is samples per second of one pass, from creating the DataLoader iterator until
its workers are joined after the last batch, and CPU time per sample; the passes alternate, `--repeats` times, and the
figures are the medians. Targets: one loader worker ≥ the decode floor (goal: 2×); two workers
≥ 1.6× one.

Usage: python scripts/bench_loader.py [--n 20000] [--checkpoint-every 1000] [--repeats 3] [--work DIR] [--keep]
       → artifacts/bench_loader.json
"""

from __future__ import annotations

import argparse
import itertools
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
import torch
from torch.utils.data import DataLoader

import trajgen

BATCH = 32


def make_run(n: int, work: Path, checkpoint_every: int) -> Path:
    out = work / f"run_n{n}_e{checkpoint_every}"
    if not (out / "manifest.json").exists() or json.loads((out / "manifest.json").read_text())["status"] != "complete":
        shutil.rmtree(out, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "trajgen", "generate", "--n", str(n), "--checkpoint-every",
                        str(checkpoint_every), "--workers", "2", "--out", str(out), "--quiet"], check=True)
    return out


def measured(count):
    """Run ``count()`` (it returns the samples it went through): samples/s, and CPU µs per sample of this
    process plus its reaped children (the DataLoader workers, once joined), and of this process alone."""
    t, w0 = os.times(), time.perf_counter()
    n = count()
    seconds, u = time.perf_counter() - w0, os.times()
    main = u.user + u.system - t.user - t.system
    children = u.children_user + u.children_system - t.children_user - t.children_system
    return {"rate": n / seconds, "cpu_us": (main + children) / n * 1e6, "main_cpu_us": main / n * 1e6}


def numpy_load(run_dir: Path) -> int:
    n = 0
    for path in sorted((run_dir / "shards").glob("shard-*.npz")):
        with np.load(path, allow_pickle=False) as z:
            n += len(z["videos"])
    return n


def stream_items(stream) -> int:
    """The stream's own work, no DataLoader: every sample's (C, T, H, W) view and label, not batched."""
    n = 0
    for _video, _label in stream:
        n += 1
    return n


def loader_pass(loader, limit: int | None = None) -> int:
    n = 0
    batches = iter(loader)
    for video, _ in itertools.islice(batches, None if limit is None else -(-limit // BATCH)):
        n += len(video)
    if hasattr(batches, "_shutdown_workers"):
        batches._shutdown_workers()  # the workers are joined now, so their CPU time counts
    return n


class Preloaded(torch.utils.data.IterableDataset):
    """The same (video, label) items as the stream, without reading anything: what a DataLoader costs by
    itself (collating into shared memory, passing batches between processes)."""

    def __init__(self, n: int, shape: tuple):
        self.n, self.shape = n, shape

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        share = self.n // (info.num_workers if info else 1)
        videos = torch.full((1000, *self.shape[1:], self.shape[0]), 255, dtype=torch.uint8).permute(0, 4, 1, 2, 3)
        return ((videos[i % 1000], 0) for i in range(share))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--checkpoint-every", type=int, default=1_000)
    ap.add_argument("--map-samples", type=int, default=4_000, help="samples per pass of the (slow) map-style path")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--work", type=Path, default=Path("/tmp/trajgen-bench-loader"))
    ap.add_argument("--keep", action="store_true", help="keep the run for another time")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)  # the main process only receives batches (or collates them, with 0 workers)
    run_dir = make_run(args.n, args.work, args.checkpoint_every)
    run = trajgen.open_run(run_dir)

    def stream(workers):
        return lambda: loader_pass(DataLoader(run.torch_stream(seed=0), batch_size=BATCH, num_workers=workers))

    def map_style(workers, told):
        ds = run.torch_dataset()
        sampler = ds.shard_sampler(seed=0, num_workers=workers, batch_size=BATCH) if told else ds.shard_sampler(seed=0)
        return lambda: loader_pass(DataLoader(ds, batch_size=BATCH, sampler=sampler, num_workers=workers), args.map_samples)

    shape = (3, run.config.frames, run.config.size, run.config.size)
    cases = {
        "numpy_load_videos": lambda: numpy_load(run_dir),
        "torch_stream_items_no_dataloader": lambda: stream_items(run.torch_stream(seed=0)),
        "torch_stream_0_workers": stream(0),
        "torch_stream_1_worker": stream(1),
        "torch_stream_2_workers": stream(2),
        "dataloader_alone_0_workers": lambda: loader_pass(DataLoader(Preloaded(len(run), shape), batch_size=BATCH)),
        "dataloader_alone_1_worker": lambda: loader_pass(DataLoader(Preloaded(len(run), shape), batch_size=BATCH,
                                                                    num_workers=1)),
        "torch_dataset_shard_sampler_0_workers": map_style(0, False),
        "torch_dataset_shard_sampler_2_workers": map_style(2, False),
        "torch_dataset_shard_sampler_2_workers_told": map_style(2, True),
    }
    runs: dict[str, list[dict]] = {name: [] for name in cases}
    for _ in range(args.repeats):
        for name, count in cases.items():  # alternating, so drift hits all alike
            runs[name].append(measured(count))
            print(f"{name}: " + ", ".join(f"{k} {v:,.0f}" for k, v in runs[name][-1].items()), file=sys.stderr)

    def med(key):
        return {name: round(statistics.median(r[key] for r in v)) for name, v in runs.items()}

    median = med("rate")
    one_over_floor = median["torch_stream_1_worker"] / median["numpy_load_videos"]
    own_over_floor = median["torch_stream_items_no_dataloader"] / median["numpy_load_videos"]
    two_over_one = median["torch_stream_2_workers"] / median["torch_stream_1_worker"]
    result = {
        "trajgen_version": trajgen.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "config": f"{args.n} samples, generate defaults (16 frames, 64x64, uint8), --checkpoint-every {args.checkpoint_every}",
        "batch_size": BATCH,
        "method": "main process with torch.set_num_threads(1) (it only receives batches); samples/s of one pass "
                  "from creating the DataLoader iterator until its workers are joined after the last batch; "
                  "torch_stream uint8 shuffled; torch_dataset float32 (its default) over the first "
                  f"{args.map_samples} samples; medians of {args.repeats} alternating passes",
        "samples_per_s_median": median,
        "samples_per_s_runs": {name: [round(r["rate"]) for r in v] for name, v in runs.items()},
        "cpu_us_per_sample_median": med("cpu_us"),
        "main_process_cpu_us_per_sample_median": med("main_cpu_us"),
        "cpu_note": "CPU time per sample of the main process plus its DataLoader workers, and of the main process "
                    "alone: less sensitive than samples/s to other load on the machine",
        "ratio_1_worker_over_numpy_load": round(one_over_floor, 2),
        "ratio_2_workers_over_1": round(two_over_one, 2),
        "ratio_stream_itself_over_numpy_load": round(own_over_floor, 2),
        "ratio_1_worker_over_dataloader_alone_1_worker": round(
            median["torch_stream_1_worker"] / median["dataloader_alone_1_worker"], 2),
        "ratio_note": "dataloader_alone_1_worker is the most any dataset can deliver through one DataLoader worker "
                      "here (its batches are collated into new shared memory and passed to the main process)",
        "target": "1 worker >= numpy.load (goal 2x); 2 workers >= 1.6x 1 worker",
        "pass": {"1_worker_over_floor": one_over_floor >= 1.0, "goal_2x_floor": one_over_floor >= 2.0,
                 "2_workers_over_1": two_over_one >= 1.6},
        "command": "python scripts/bench_loader.py " + " ".join(sys.argv[1:]),
    }
    Path("artifacts").mkdir(exist_ok=True)
    Path("artifacts/bench_loader.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if not args.keep:
        shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    main()
