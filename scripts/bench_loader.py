#!/usr/bin/env python
"""Training-loader throughput, side by side in one run: uint8 16×64×64 clips, batch 32.

- the decode floor: plain `numpy.load` of every shard's `videos` member, one process;
- the recommended way: `run.torch_stream(batch_size=32)` (uint8, shuffled; whole batches built
  in the worker, in shared memory it reuses) in `DataLoader(stream, batch_size=None,
  persistent_workers=True)` with 0, 1 and 2 worker processes;
- the per-sample way for comparison: `run.torch_stream()` in `DataLoader(stream, batch_size=32)`
  (the DataLoader collates every batch into new shared memory) with 1 and 2 workers;
- a DataLoader whose workers do no work at all (they hand out one ready batch over and over):
  what passing batches from worker processes costs by itself, the most any dataset can deliver;
- a worker's work alone, without torch: inflate each shard's videos (as the stream does) and
  copy its samples in shuffled order into a batch, in one process and in two processes at once
  (each half the shards): how far this machine's cores scale the work itself.

Every loader runs two epochs: epoch 0 starts its worker processes (the "cold" figure: a worker
decodes into memory the kernel must first hand it), epoch 1 runs in the same workers (the "warm"
figure, every later epoch of a training run). Batches are consumed as a training loop would:
each is copied into one preallocated tensor (as `.to(device)` reads it). Figures: samples per
second of the epoch (from `iter(loader)` to its last batch), CPU time per sample of the main
process plus its workers (read from /proc while they live), and "cores busy" (CPU time over wall
time). The cases alternate, `--repeats` times; the figures are medians. Targets: one loader
worker ≥ the decode floor (goal: 2×); two workers ≥ 1.6× one. The machine's load average is
recorded: other processes make absolute figures noisy, so compare within one run.

Usage: python scripts/bench_loader.py [--n 20000] [--checkpoint-every 1000] [--repeats 3] [--work DIR] [--keep]
       → artifacts/bench_loader.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
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
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

import trajgen
from trajgen.store.shards import read_members

BATCH = 32


def make_run(n: int, work: Path, checkpoint_every: int) -> Path:
    out = work / f"run_n{n}_e{checkpoint_every}_v{trajgen.__version__}"
    try:
        trajgen.open_run(out)
        complete = json.loads((out / "manifest.json").read_text())["status"] == "complete"
    except Exception:  # none yet, or one this version cannot read: make it again
        complete = False
    if not complete:
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
                str(checkpoint_every),
                "--workers",
                "2",
                "--out",
                str(out),
                "--quiet",
            ],
            check=True,
        )
    return out


def timed(count):
    """Run ``count()`` (it returns the samples it went through, in this process only)."""
    t, w0 = os.times(), time.perf_counter()
    n = count()
    seconds, u = time.perf_counter() - w0, os.times()
    main = u.user + u.system - t.user - t.system
    return {"rate": n / seconds, "cpu_us": main / n * 1e6, "main_cpu_us": main / n * 1e6, "cores_busy": main / seconds}


def numpy_load(run_dir: Path) -> int:
    n = 0
    for path in sorted((run_dir / "shards").glob("shard-*.npz")):
        with np.load(path, allow_pickle=False) as z:
            n += len(z["videos"])
    return n


def decode_and_batch(paths: list, results) -> None:
    """A loader worker's work without torch or a DataLoader: each shard's videos inflated (into one
    reused buffer), its samples copied in shuffled order into one batch; puts (samples, seconds, CPU s)."""
    buffers: dict = {}

    def alloc(nbytes):
        if nbytes < 1 << 20:
            return np.empty(nbytes, np.uint8)
        if nbytes not in buffers:
            buffers[nbytes] = np.ones(nbytes, np.uint8)  # touched now, outside the timing
        return buffers[nbytes]

    read_members(paths[0], ("videos",), alloc=alloc)  # the buffers mapped first, as in a later epoch
    batch, rng, n = None, np.random.default_rng(0), 0
    t, w0 = os.times(), time.perf_counter()
    for path in paths:
        videos = read_members(path, ("videos", "labels"), alloc=alloc)["videos"]
        if batch is None:
            batch = np.ones((BATCH, *videos.shape[1:]), np.uint8)
        for i, row in enumerate(rng.permutation(len(videos)).tolist()):
            batch[i % BATCH] = videos[row]
        n += len(videos)
    u = os.times()
    results.put((n, time.perf_counter() - w0, u.user + u.system - t.user - t.system))


def decode_only(run_dir: Path, processes: int) -> dict:
    """``decode_and_batch`` over every shard in ``processes`` processes at once, each its share."""
    paths = sorted((run_dir / "shards").glob("shard-*.npz"))
    results = mp.get_context("fork").Queue()
    children = [
        mp.get_context("fork").Process(target=decode_and_batch, args=(paths[i::processes], results))
        for i in range(processes)
    ]
    for child in children:
        child.start()
    got = [results.get() for _ in children]
    for child in children:
        child.join()
    n, seconds, cpu = sum(g[0] for g in got), max(g[1] for g in got), sum(g[2] for g in got)
    return {"rate": n / seconds, "cpu_us": cpu / n * 1e6, "main_cpu_us": 0.0, "cores_busy": cpu / seconds}


def workers_cpu(batches) -> float:
    """CPU seconds so far of the DataLoader iterator's worker processes (Linux /proc; they are alive)."""
    total = 0.0
    for worker in getattr(batches, "_workers", []):
        with open(f"/proc/{worker.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    return total


def two_epochs(loader) -> list[dict]:
    """Epoch 0 (the workers start) and epoch 1 (the same workers) of a loader with persistent workers,
    each batch copied into one preallocated tensor as `.to(device)` would read it (in the batch's own
    memory layout, as `.to` keeps it)."""
    figures, device, batches = [], None, None
    for epoch in range(2):
        t, w0 = os.times(), time.perf_counter()
        batches = iter(loader)
        before = workers_cpu(batches) if epoch else 0.0
        n = 0
        for video, *_ in batches:
            if device is None:
                device = torch.empty_like(video)
            device[: len(video)].copy_(video)
            n += len(video)
        seconds, u = time.perf_counter() - w0, os.times()
        main = u.user + u.system - t.user - t.system
        cpu = main + workers_cpu(batches) - before
        figures.append(
            {"rate": n / seconds, "cpu_us": cpu / n * 1e6, "main_cpu_us": main / n * 1e6, "cores_busy": cpu / seconds}
        )
    if hasattr(batches, "_shutdown_workers"):
        batches._shutdown_workers()
    return figures


class ReadyBatches(IterableDataset):
    """The workers hand out one ready batch (made once, in shared memory, so torch passes it without a
    copy) over and over, their shares of ``n`` samples: what a DataLoader costs by itself."""

    def __init__(self, n: int, shape: tuple):
        self.n = n
        self.video = torch.full((BATCH, *shape[1:], shape[0]), 255, dtype=torch.uint8).share_memory_()
        self.label = torch.zeros(BATCH, dtype=torch.int64).share_memory_()

    def __iter__(self):
        info = get_worker_info()
        batches = self.n // BATCH // (info.num_workers if info else 1)
        return ((self.video.permute(0, 4, 1, 2, 3), self.label) for _ in range(batches))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--checkpoint-every", type=int, default=1_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--work", type=Path, default=Path("/tmp/trajgen-bench-loader"))
    ap.add_argument("--keep", action="store_true", help="keep the run for another time")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)  # the main process only receives batches (or builds them, with 0 workers)
    run_dir = make_run(args.n, args.work, args.checkpoint_every)
    run = trajgen.open_run(run_dir)
    shape = (3, run.config.frames, run.config.size, run.config.size)
    load_at_start = [round(x, 2) for x in os.getloadavg()]

    def loader(dataset, workers, batch_size):
        return DataLoader(dataset, batch_size=batch_size, num_workers=workers, persistent_workers=workers > 0)

    cases = {
        "stream_batches_0_workers": lambda: loader(run.torch_stream(seed=0, batch_size=BATCH), 0, None),
        "stream_batches_1_worker": lambda: loader(run.torch_stream(seed=0, batch_size=BATCH), 1, None),
        "stream_batches_2_workers": lambda: loader(run.torch_stream(seed=0, batch_size=BATCH), 2, None),
        "stream_samples_collated_1_worker": lambda: loader(run.torch_stream(seed=0), 1, BATCH),
        "stream_samples_collated_2_workers": lambda: loader(run.torch_stream(seed=0), 2, BATCH),
        "ready_batches_no_work_1_worker": lambda: loader(ReadyBatches(len(run), shape), 1, None),
        "ready_batches_no_work_2_workers": lambda: loader(ReadyBatches(len(run), shape), 2, None),
    }
    names = ["numpy_load_videos", "decode_only_1_process", "decode_only_2_processes"]
    names += [f"{name}_epoch{e}" for name in cases for e in (0, 1)]
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for _ in range(args.repeats):  # alternating, so drift hits all alike
        runs["numpy_load_videos"].append(timed(lambda: numpy_load(run_dir)))
        runs["decode_only_1_process"].append(decode_only(run_dir, 1))
        runs["decode_only_2_processes"].append(decode_only(run_dir, 2))
        for name, make in cases.items():
            for e, figures in enumerate(two_epochs(make())):
                runs[f"{name}_epoch{e}"].append(figures)
        for name in names:
            print(f"{name}: " + ", ".join(f"{k} {v:,.2f}" for k, v in runs[name][-1].items()), file=sys.stderr)

    def med(key, digits=0):
        return {name: round(statistics.median(r[key] for r in v), digits or None) for name, v in runs.items()}

    median, cpu = med("rate"), med("cpu_us")
    floor = median["numpy_load_videos"]
    cold, warm = (
        {w: median[f"stream_batches_{w}_epoch{e}"] for w in ("0_workers", "1_worker", "2_workers")} for e in (0, 1)
    )

    def ratios(rate, e):
        """The targets' ratios for one epoch (``rate``: the batched stream's samples/s by workers)."""
        return {
            "1_worker_over_numpy_load": round(rate["1_worker"] / floor, 2),
            "2_workers_over_1": round(rate["2_workers"] / rate["1_worker"], 2),
            "decode_only_2_processes_over_1": round(
                median["decode_only_2_processes"] / median["decode_only_1_process"], 2
            ),
            "0_workers_over_numpy_load": round(rate["0_workers"] / floor, 2),
            "batches_over_collated_samples_1_worker": round(
                rate["1_worker"] / median[f"stream_samples_collated_1_worker_epoch{e}"], 2
            ),
        }

    def passes(rate):
        return {
            "1_worker_over_floor": rate["1_worker"] >= floor,
            "goal_2x_floor": rate["1_worker"] >= 2 * floor,
            "2_workers_over_1": rate["2_workers"] >= 1.6 * rate["1_worker"],
        }

    result = {
        "trajgen_version": trajgen.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "load_average_at_start": load_at_start,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "config": f"{args.n} samples, generate defaults (16 frames, 64x64, uint8), --checkpoint-every {args.checkpoint_every}",
        "batch_size": BATCH,
        "recommended": "DataLoader(run.torch_stream(batch_size=32), batch_size=None, num_workers=1 or 2, "
        "persistent_workers=True)",
        "method": "main process with torch.set_num_threads(1); every loader with persistent workers, two epochs: "
        "epoch0 starts the worker processes (cold), epoch1 runs in the same ones (warm, as every later "
        "epoch of a training run); each batch copied into one preallocated tensor (as .to(device) reads "
        "it); samples/s from iter(loader) to the epoch's last batch; torch_stream uint8 shuffled; "
        f"medians of {args.repeats} alternating repeats",
        "samples_per_s_median": median,
        "samples_per_s_runs": {name: [round(r["rate"]) for r in v] for name, v in runs.items()},
        "cpu_us_per_sample_median": med("cpu_us"),
        "main_process_cpu_us_per_sample_median": med("main_cpu_us"),
        "cores_busy_median": med("cores_busy", 2),
        "cpu_note": "CPU time per sample of the main process plus its DataLoader workers (from /proc), and of the "
        "main process alone: less sensitive than samples/s to other load on the machine. cores_busy = "
        "CPU time / wall time of the epoch: on 2 cores, a loader whose 1-worker epoch keeps more than "
        "2/1.6 = 1.25 cores busy cannot be 1.6x faster with 2 workers. decode_only_*: a worker's work "
        "alone (inflate, copy into batches; no torch), in 1 process and in 2 at once: how far the cores "
        "scale the work itself",
        "ratios_warm_epoch": ratios(warm, 1)
        | {
            "1_worker_over_no_work_1_worker": round(
                warm["1_worker"] / median["ready_batches_no_work_1_worker_epoch1"], 2
            )
        },
        "ratios_cold_epoch": ratios(cold, 0),
        "cores_needed_warm_epoch": {
            "2_workers_at_1.6x_1_worker": round(
                1.6 * warm["1_worker"] * cpu["stream_batches_2_workers_epoch1"] / 1e6, 2
            ),
            "2_workers_over_1_at_most": round(
                med("cores_busy", 2)["decode_only_2_processes"]
                / (warm["1_worker"] * cpu["stream_batches_2_workers_epoch1"] / 1e6),
                2,
            ),
            "1_worker_at_2x_numpy_load": round(2 * floor * cpu["stream_batches_1_worker_epoch1"] / 1e6, 2),
            "2_workers_at_1.6x_of_2x_numpy_load": round(
                1.6 * 2 * floor * cpu["stream_batches_2_workers_epoch1"] / 1e6, 2
            ),
        },
        "cores_needed_note": "samples/s wanted x CPU time per sample (main process plus workers) of that loader: "
        f"more than the machine's {os.cpu_count()} cores is out of reach, however the work is "
        "spread over workers. 2_workers_over_1_at_most: the 2-worker loader's speed-up were it to "
        "keep the cores as busy as two processes doing the work alone (decode_only_2_processes) "
        "at its CPU time per sample",
        "target": "1 worker >= numpy.load (goal 2x); 2 workers >= 1.6x 1 worker",
        "pass_warm_epoch": passes(warm),
        "pass_cold_epoch": passes(cold),
        "command": "python scripts/bench_loader.py " + " ".join(sys.argv[1:]),
    }
    Path("artifacts").mkdir(exist_ok=True)
    Path("artifacts/bench_loader.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if not args.keep:
        shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    main()
