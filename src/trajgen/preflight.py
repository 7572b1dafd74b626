"""The pre-launch checklist: size and time measured from a small trial, free space, and
in-place checks that the target filesystem supports what a run relies on (flock,
fsync, atomic rename). Leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from trajgen import _fs
from trajgen.config import GenerationConfig
from trajgen.progress import format_duration

TRIAL_SAMPLES = 32
PROCESS_BASELINE_BYTES = 80 * 2**20  # Python + numpy + OpenCV in one process
FREE_BYTES_ENV = "TRAJGEN_FREE_BYTES"  # pretend this much is free (to test the refusal)
RATE_ENV = "TRAJGEN_SAMPLES_PER_SECOND"  # pretend one worker makes this many samples/s (to test the 5-minute rule)
MAX_LOST_SECONDS = 300  # the team's rule: a crash loses at most 5 minutes of work


@dataclass(frozen=True)
class Estimate:
    trial_samples: int
    bytes_per_sample: float
    total_bytes: int
    samples_per_second: float  # all workers together
    seconds: float
    peak_memory_bytes: int
    worker_samples_per_second: float = 0.0

    def shard_seconds(self, config: GenerationConfig) -> float:
        """How long one worker takes for one shard: the most work a crash can lose."""
        return min(config.checkpoint_every, config.n) / self.worker_samples_per_second


@dataclass(frozen=True)
class Check:
    ok: bool
    text: str


def estimate(config: GenerationConfig, workers: int = 1) -> Estimate:
    """Make and compress a small trial shard, and scale it to the whole run."""
    from trajgen.shardmaker import build_shard_arrays
    from trajgen.shards import encode_shard

    m = min(config.n, TRIAL_SAMPLES)
    trial = config.replace(n=m, checkpoint_every=m)
    encode_shard(build_shard_arrays(config.replace(n=1, checkpoint_every=1), 0)[0], config.compress_level)  # warm-up
    started = time.perf_counter()
    arrays, _, _ = build_shard_arrays(trial, 0)
    encoded = len(encode_shard(arrays, config.compress_level))
    seconds = max(time.perf_counter() - started, 1e-6)
    per_sample = encoded / m
    total = int(per_sample * config.n * 1.02) + 4096 * config.num_shards + 65536  # + zip headers, manifest, logs
    parallel = max(1, min(workers, config.num_shards))
    per_worker = m / seconds * (0.9 if parallel > 1 else 1.0)
    if os.environ.get(RATE_ENV):
        per_worker = float(os.environ[RATE_ENV])
    rate = per_worker * parallel
    raw_shard = sum(a.nbytes for a in arrays.values()) / m * min(config.checkpoint_every, config.n)
    # each making process holds one shard's arrays and its compressed bytes (measured: 254 MB for
    # 1,000 samples at defaults, see artifacts/bench_generate.json); the main one only commits
    peak = parallel * (1.1 * raw_shard + PROCESS_BASELINE_BYTES) + (PROCESS_BASELINE_BYTES if parallel > 1 else 0)
    return Estimate(m, per_sample, total, rate, config.n / rate, int(peak), worker_samples_per_second=per_worker)


def existing_ancestor(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists():
        path = path.parent
    return path


def free_bytes(path: Path) -> int:
    override = os.environ.get(FREE_BYTES_ENV)
    if override:
        return int(override)
    return shutil.disk_usage(existing_ancestor(path)).free


def filesystem_checks(target: Path) -> list[Check]:
    """Try flock, fsync and atomic rename in a scratch directory beside the target."""
    where = existing_ancestor(target)
    try:
        scratch = Path(tempfile.mkdtemp(prefix=".trajgen-check-", dir=where))
    except OSError as e:
        return [Check(False, f"cannot write in {where}: {e.strerror or e}")]
    checks = []
    try:
        first = _fs.try_lock(scratch / ".lock", "dry run")
        second = _fs.try_lock(scratch / ".lock", "dry run") if first is not None else None
        checks.append(Check(first is not None and second is None,
                            "lock (flock) works: a second writer is refused" if first is not None and second is None
                            else "lock (flock) does not exclude a second writer on this filesystem"))
        for fd in (first, second):
            if fd is not None:
                os.close(fd)
        try:
            _fs.atomic_write_bytes(scratch / "probe", b"trajgen", scratch)
            fine = (scratch / "probe").read_bytes() == b"trajgen"
            checks.append(Check(True, "fsync works (file and directory)"))
            checks.append(Check(fine, "atomic rename works" if fine else "atomic rename lost data"))
        except OSError as e:
            checks.append(Check(False, f"fsync or atomic rename failed: {e.strerror or e}"))
    except OSError as e:
        checks.append(Check(False, f"cannot use {where}: {e.strerror or e}"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return checks


def progress_folder_check(out: Path, progress_to) -> Check:
    """--progress-to: outside the run, and a file can be made there (a probe, removed at once)."""
    from trajgen.errors import ConfigError
    from trajgen.rundir import check_progress_to

    try:
        folder = Path(check_progress_to(Path(out), progress_to))
    except ConfigError as e:
        return Check(False, str(e))
    where = existing_ancestor(folder)
    try:
        fd, probe = tempfile.mkstemp(prefix=".trajgen-check-", dir=where)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        return Check(False, f"progress folder {folder}: cannot write in {where}: {e.strerror or e}")
    return Check(True, f"progress folder {folder} can be written" + ("" if folder.is_dir() else " (created on start)"))


def dry_run(config: GenerationConfig, out: Path, workers: int, progress_to=None) -> tuple[bool, list[str]]:
    """The plan and the checks, as ✓/✗ lines; True when every check passes."""
    from trajgen.rundir import RunError, check_new_run_dir

    est = estimate(config, workers)
    free = free_bytes(out)
    lines = [
        f"Plan: {config.n:,} samples in {config.num_shards:,} shards of up to {config.checkpoint_every:,} → {out}",
        f"  classes {', '.join(config.classes)}; {config.frames} frames of {config.size}×{config.size}; seed {config.seed}",
    ]
    checks = []
    try:
        check_new_run_dir(out)
        checks.append(Check(True, f"output directory {out} is free to use"))
    except RunError as e:
        checks.append(Check(False, str(e)))
    checks.append(Check(True, f"Estimated size {_size(est.total_bytes)} ({_size(est.bytes_per_sample)}/sample, "
                              f"measured on a {est.trial_samples}-sample trial at --compress-level {config.compress_level})"))
    checks.append(Check(est.total_bytes < free, f"Free space at {existing_ancestor(out)}: {_size(free)}"
                        + ("" if est.total_bytes < free else f" — not enough for {_size(est.total_bytes)}")))
    checks.extend(filesystem_checks(out))
    checks.append(lost_work_check(config, est))
    if progress_to is not None:
        checks.append(progress_folder_check(out, progress_to))
    lines += [f"  {'✓' if c.ok else '✗'} {c.text}" for c in checks]
    lines.append(f"  Estimated time: {format_duration(est.seconds)} with {max(1, min(workers, config.num_shards))} worker(s) "
                 f"(about {est.samples_per_second:,.0f} samples/s)")
    lines.append(f"  Peak memory: about {_size(est.peak_memory_bytes)}")
    ok = all(c.ok for c in checks)
    lines.append("Dry run: nothing was written. " + ("All checks passed; run the same command without --dry-run."
                                                      if ok else "Fix the ✗ items before starting."))
    return ok, lines


def _checkpoint_that_fits(est: Estimate) -> int:
    """The largest round --checkpoint-every whose shard takes one worker at most 5 minutes."""
    fit = int(MAX_LOST_SECONDS * est.worker_samples_per_second)
    if fit >= 100:
        step = 10 ** (len(str(fit)) - 2)  # two significant digits
        fit = fit // step * step
    return max(1, fit)


def lost_work_check(config: GenerationConfig, est: Estimate) -> Check:
    """The 5-minute rule: a crash loses at most the shards in flight, one per worker."""
    seconds = est.shard_seconds(config)
    what = (f"one {min(config.checkpoint_every, config.n):,}-sample shard per worker at about "
            f"{est.worker_samples_per_second:,.{0 if est.worker_samples_per_second >= 10 else 1}f} samples/s each")
    if seconds <= MAX_LOST_SECONDS:
        return Check(True, f"A crash loses at most {format_duration(seconds)} of work ({what}; the limit is 5 minutes)")
    return Check(False, f"A crash can lose {format_duration(seconds)} of work ({what}), more than 5 minutes: "
                        f"use --checkpoint-every {_checkpoint_that_fits(est)} or less")


def warn_if_shards_are_slow(config: GenerationConfig, est: Estimate) -> None:
    """A real run only warns about the 5-minute rule (the dry run fails on it)."""
    check = lost_work_check(config, est)
    if not check.ok:
        from trajgen.progress import warn

        warn(None, check.text)


def require_free_space(config: GenerationConfig, out: Path) -> Estimate:
    """The estimate, or RunError when the run would not fit in the free space at ``out``."""
    from trajgen.rundir import RunError

    est = estimate(config)
    free = free_bytes(out)
    if est.total_bytes >= free:
        raise RunError(f"not enough free space at {existing_ancestor(out)}: the run needs about {_size(est.total_bytes)}, "
                       f"{_size(free)} is free; free some space, use a smaller --n, or choose another --out")
    return est


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} TB"
