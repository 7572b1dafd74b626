"""The pre-launch checklist: size and time measured from a small trial, free space, and
in-place checks that the target filesystem supports what a run relies on (the run lock,
fsync, atomic rename). Leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from trajgen.content.config import GenerationConfig
from trajgen.making.bucket_commit import bucket_checks
from trajgen.store import _fs, lock_file
from trajgen.store.capacity import existing_ancestor, free_bytes, human_size, memory_bytes
from trajgen.store.objects import ObjectStoreError, is_url
from trajgen.watch.progress import format_duration

TRIAL_SAMPLES = 32
TRIAL_BYTES = 64 * 2**20  # the trial's arrays stay under this whatever the frame size (at least one sample)
STRING_BYTES = 2048  # one sample's equation and description as numpy unicode strings, generously
PROCESS_BASELINE_BYTES = 80 * 2**20  # Python + numpy + OpenCV in one process
MIN_PROGRESS_INTERVAL, MAX_PROGRESS_INTERVAL = 0.01, 86_400.0  # seconds: at most 100 rewrites a second
RATE_ENV = "TRAJGEN_SAMPLES_PER_SECOND"  # pretend one worker makes this many samples/s (to test the 5-minute rule)
MAX_LOST_SECONDS = 300  # the team's rule: a crash loses at most 5 minutes of work
TRIAL_SECONDS = 2.0  # --dry-run times trial shards for at least this long, and at least MIN_TRIAL_SHARDS
MIN_TRIAL_SHARDS, MAX_TRIAL_SHARDS = 3, 12


@dataclass(frozen=True)
class Estimate:
    trial_samples: int
    bytes_per_sample: float
    total_bytes: int
    samples_per_second: float  # all workers together
    seconds: float
    peak_memory_bytes: int
    worker_samples_per_second: float = 0.0
    trial_shards: int = 1
    # the slow end of what the trial shards measured (None: one trial, no spread); the 5-minute rule uses it
    slow_worker_samples_per_second: float | None = None

    @property
    def slow_rate(self) -> float:
        """Samples/s of one worker at the slow end of the measurement."""
        return self.slow_worker_samples_per_second or self.worker_samples_per_second

    def shard_seconds(self, config: GenerationConfig) -> float:
        """How long one worker takes for one shard at the slow end: the most work a crash can lose."""
        return min(config.checkpoint_every, config.n) / self.slow_rate


@dataclass(frozen=True)
class Check:
    ok: bool
    text: str


def check_progress_interval(seconds: float) -> None:
    """ConfigError unless PROGRESS.txt's refresh interval is finite and sensible."""
    from trajgen.errors import ConfigError

    ok = (
        isinstance(seconds, (int, float))
        and not isinstance(seconds, bool)
        and MIN_PROGRESS_INTERVAL <= seconds <= MAX_PROGRESS_INTERVAL
    )  # False for nan
    if not ok:
        raise ConfigError(
            f"progress interval (--progress-interval) must be a number of seconds in "
            f"[{MIN_PROGRESS_INTERVAL:g}, {MAX_PROGRESS_INTERVAL:g}], got {seconds!r}"
        )


def sample_bytes(config: GenerationConfig) -> int:
    """Memory of one sample's arrays in a shard: the video, its paths and camera, its strings."""
    t, s = config.frames, config.size
    return t * s * s * 3 + t * (3 + 2) * 4 + 15 * 4 + 2 * 8 + STRING_BYTES


def trial_samples(config: GenerationConfig) -> int:
    """How many samples the size-and-speed trial makes: up to TRIAL_SAMPLES, within TRIAL_BYTES."""
    return max(1, min(config.n, TRIAL_SAMPLES, TRIAL_BYTES // sample_bytes(config)))


def process_peak_bytes(config: GenerationConfig, shard_samples: int) -> float:
    """Peak memory of one process making a shard of ``shard_samples`` (its arrays and compressed
    bytes; measured: 254 MB for 1,000 samples at defaults, see artifacts/bench_generate.json)."""
    return 1.1 * sample_bytes(config) * shard_samples + PROCESS_BASELINE_BYTES


def check_memory(
    config: GenerationConfig, workers: int | None = 1, *, shards: bool = True, resuming: bool = False
) -> None:
    """ConfigError (a usage error) when one sample, or ``workers`` shards at once (None: one per
    usable CPU), cannot fit in this machine's memory: found before anything is allocated, with the
    limit stated. ``shards=False`` checks one sample only (the shards are made on other machines).
    ``resuming``: the layout is the run's, so the advice is fewer workers or a larger machine."""
    from trajgen.errors import ConfigError

    ram = memory_bytes()
    if ram is None:
        return
    one = process_peak_bytes(config, 1)
    if one > ram:
        raise ConfigError(
            f"one sample of {config.frames:,} frames of {config.size}×{config.size} needs about "
            f"{human_size(one)} of memory, more than this machine's {human_size(ram)}; "
            + ("resume the run on a machine with more memory" if resuming else "use fewer --frames or a smaller --size")
        )
    if not shards:
        return
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    shard = min(config.checkpoint_every, config.n)
    parallel = max(1, min(workers, config.num_shards))
    need = parallel * process_peak_bytes(config, shard)
    if need <= ram:
        return
    fits = int((ram / parallel - PROCESS_BASELINE_BYTES) / (1.1 * sample_bytes(config)))
    who = f"{parallel} workers making a shard each" if parallel > 1 else "making one shard"
    fewer = " (or use fewer --workers)" if parallel > 1 and process_peak_bytes(config, shard) <= ram else ""
    if resuming:
        raise ConfigError(
            f"this run's shards ({shard:,} samples of {human_size(sample_bytes(config))}) need about "
            f"{human_size(need)} of memory for {who}, more than this machine's {human_size(ram)}; "
            + ("use fewer --workers" if fewer else "resume the run on a machine with more memory")
        )
    raise ConfigError(
        f"--checkpoint-every {config.checkpoint_every:,} needs about {human_size(need)} of memory for "
        f"{who} ({shard:,} samples of {human_size(sample_bytes(config))}), more than this machine's "
        f"{human_size(ram)}; use --checkpoint-every {max(1, fits):,} or less{fewer}"
    )


def estimate(config: GenerationConfig, workers: int = 1, scratch: Path | None = None) -> Estimate:
    """Make and compress trial shards, and scale them to the whole run.

    Without ``scratch``: one small shard (at most TRIAL_SAMPLES), made and compressed (generate's quick
    check). With it: whole trial shards of the real pipeline, also written with fsync into ``scratch``
    (on the run's filesystem), for at least TRIAL_SECONDS and MIN_TRIAL_SHARDS; the fastest and the
    slowest bound the rate (--dry-run)."""
    from trajgen.making.shardmaker import build_shard_arrays
    from trajgen.store.shards import encode_shard

    if scratch is None:
        m, least, most, for_seconds = trial_samples(config), 1, 1, 0.0
    else:
        m = max(1, min(config.n, config.checkpoint_every, TRIAL_BYTES // sample_bytes(config)))
        least, most, for_seconds = MIN_TRIAL_SHARDS, MAX_TRIAL_SHARDS, TRIAL_SECONDS
    trial = config.replace(n=m * most, checkpoint_every=m)
    encode_shard(build_shard_arrays(config.replace(n=1, checkpoint_every=1), 0)[0], config.compress_level)  # warm-up
    seconds: list[float] = []
    sizes: list[int] = []
    began = time.perf_counter()
    while len(seconds) < most and (len(seconds) < least or time.perf_counter() - began < for_seconds):
        started = time.perf_counter()
        arrays = build_shard_arrays(trial, len(seconds))[0]
        data = encode_shard(arrays, config.compress_level)
        if scratch is not None:
            with open(scratch / "trial-shard.npz", "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        seconds.append(max(time.perf_counter() - started, 1e-6))
        sizes.append(len(data))
    parallel = max(1, min(workers, config.num_shards))
    fast, slow = m / min(seconds), m / max(seconds)
    if os.environ.get(RATE_ENV):
        fast = slow = float(os.environ[RATE_ENV])
    elif parallel > 1:
        fast, slow = 0.9 * fast, 0.9 * slow  # workers share the machine's memory bandwidth and the committer
    per_sample = sum(sizes) / (m * len(sizes))
    total = int(per_sample * config.n * 1.02) + 4096 * config.num_shards + 65536  # + zip headers, manifest, logs
    raw_shard = sum(a.nbytes for a in arrays.values()) / m * min(config.checkpoint_every, config.n)
    # each making process holds one shard's arrays and its compressed bytes (measured: 254 MB for
    # 1,000 samples at defaults, see artifacts/bench_generate.json); the main one only commits
    peak = parallel * (1.1 * raw_shard + PROCESS_BASELINE_BYTES) + (PROCESS_BASELINE_BYTES if parallel > 1 else 0)
    return Estimate(
        m,
        per_sample,
        total,
        fast * parallel,
        config.n / (fast * parallel),
        int(peak),
        worker_samples_per_second=fast,
        trial_shards=len(seconds),
        slow_worker_samples_per_second=slow if len(seconds) > 1 else None,
    )


def _trial_estimate(config: GenerationConfig, workers: int, where: Path) -> tuple[Estimate, str | None]:
    """The measured estimate, from trial shards written in a scratch directory in ``where`` (removed after);
    where nothing can be written there, the quick one and the ✗ line that says why."""
    try:
        scratch = Path(tempfile.mkdtemp(prefix=".trajgen-trial-", dir=where))
    except OSError as e:
        return estimate(config, workers), f"cannot write a trial shard in {where}: {e.strerror or e}"
    try:
        return estimate(config, workers, scratch), None
    except OSError as e:
        reason = f"{e.strerror or e}" + (f" ({e.filename})" if e.filename else "")
        return estimate(config, workers), f"cannot write a trial shard in {where}: {reason}"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def filesystem_checks(target: Path) -> list[Check]:
    """Try the run lock, fsync and atomic rename in a scratch directory beside the target."""
    where = existing_ancestor(target)
    try:
        scratch = Path(tempfile.mkdtemp(prefix=".trajgen-check-", dir=where))
    except OSError as e:
        return [Check(False, f"cannot write in {where}: {e.strerror or e}")]
    checks = []
    try:
        first = lock_file.try_lock(scratch / ".lock", "dry run")
        second = lock_file.try_lock(scratch / ".lock", "dry run") if first is not None else None
        checks.append(
            Check(
                first is not None and second is None,
                "the run lock works: a second writer is refused"
                if first is not None and second is None
                else "the run lock does not exclude a second writer on this filesystem",
            )
        )
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


def progress_folder_check(out: Path, progress_to: os.PathLike | str) -> Check:
    """--progress-to: outside the run, and a file can be made there (a probe, removed at once)."""
    from trajgen.errors import ConfigError
    from trajgen.store.rundir import check_progress_to

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
    from trajgen.store.rundir import RunError, check_new_run_dir

    check_memory(config, workers)
    in_bucket = is_url(out)
    est, trial_failed = _trial_estimate(
        config, workers, Path(tempfile.gettempdir()) if in_bucket else existing_ancestor(out)
    )
    free = 0 if in_bucket else free_bytes(out)
    lines = [
        f"Plan: {config.n:,} samples in {config.num_shards:,} shards of up to {config.checkpoint_every:,} → {out}",
        f"  classes {', '.join(config.classes)}; {config.frames} frames of {config.size}×{config.size}; seed {config.seed}",
    ]
    checks = []
    if trial_failed is not None:
        checks.append(Check(False, trial_failed))
    try:
        if in_bucket:
            checks.extend(Check(ok, text) for ok, text in bucket_checks(str(out)))
        else:
            check_new_run_dir(out)
            checks.append(Check(True, f"output directory {out} is free to use"))
    except (RunError, ObjectStoreError) as e:
        checks.append(Check(False, str(e)))
    checks.append(
        Check(
            True,
            f"Estimated size {human_size(est.total_bytes)} ({human_size(est.bytes_per_sample)}/sample, "
            f"measured on {est.trial_shards} trial shards of {est.trial_samples:,} samples (made, compressed, "
            f"written with fsync) at --compress-level {config.compress_level})",
        )
    )
    if not in_bucket:
        checks.append(
            Check(
                est.total_bytes < free,
                f"Free space at {existing_ancestor(out)}: {human_size(free)}"
                + ("" if est.total_bytes < free else f" — not enough for {human_size(est.total_bytes)}"),
            )
        )
        checks.extend(filesystem_checks(out))
    checks.append(lost_work_check(config, est))
    if progress_to is not None:
        checks.append(progress_folder_check(out, progress_to))
    lines += [f"  {'✓' if c.ok else '✗'} {c.text}" for c in checks]
    parallel = max(1, min(workers, config.num_shards))
    slow = est.slow_rate * parallel
    lines.append(
        f"  Estimated time: {format_duration(est.seconds)}–{format_duration(config.n / slow)} with {parallel} "
        f"worker(s) ({slow:,.0f}–{est.samples_per_second:,.0f} samples/s)"
    )
    lines.append(f"  Peak memory: about {human_size(est.peak_memory_bytes)}")
    ok = all(c.ok for c in checks)
    lines.append(
        "Dry run: nothing was left behind (the trial shards' scratch directory is removed). "
        + ("All checks passed; run the same command without --dry-run." if ok else "Fix the ✗ items before starting.")
    )
    return ok, lines


def _checkpoint_that_fits(est: Estimate) -> int:
    """The largest round --checkpoint-every whose shard takes one worker at most 5 minutes (at the slow end)."""
    fit = int(MAX_LOST_SECONDS * est.slow_rate)
    if fit >= 100:
        step = 10 ** (len(str(fit)) - 2)  # two significant digits
        fit = fit // step * step
    return max(1, fit)


def lost_work_check(config: GenerationConfig, est: Estimate) -> Check:
    """The 5-minute rule: a crash loses at most the shards in flight, one per worker."""
    seconds = est.shard_seconds(config)
    what = (
        f"one {min(config.checkpoint_every, config.n):,}-sample shard per worker at about "
        f"{est.slow_rate:,.{0 if est.slow_rate >= 10 else 1}f} samples/s each"
    )
    if seconds <= MAX_LOST_SECONDS:
        return Check(True, f"A crash loses at most {format_duration(seconds)} of work ({what}; the limit is 5 minutes)")
    return Check(
        False,
        f"A crash can lose {format_duration(seconds)} of work ({what}), more than 5 minutes: "
        f"use --checkpoint-every {_checkpoint_that_fits(est)} or less",
    )


def warn_if_shards_are_slow(config: GenerationConfig, est: Estimate) -> None:
    """A real run only warns about the 5-minute rule (the dry run fails on it)."""
    check = lost_work_check(config, est)
    if not check.ok:
        from trajgen.watch.progress import warn

        warn(None, check.text)


def require_free_space(config: GenerationConfig, out: Path) -> Estimate:
    """The estimate, or RunError when the run would not fit in the free space at ``out``."""
    from trajgen.store.rundir import RunError

    est = estimate(config)
    free = free_bytes(out)
    if est.total_bytes >= free:
        where = existing_ancestor(out)
        try:  # no room, or no files at all (/proc, a read-only mount): say which
            shutil.rmtree(tempfile.mkdtemp(prefix=".trajgen-check-", dir=where))
        except OSError as e:
            raise RunError(
                f"cannot create {out}: nothing can be created in {where} ({e.strerror or e}); choose another --out"
            ) from None
        raise RunError(
            f"not enough free space at {existing_ancestor(out)}: the run needs about {human_size(est.total_bytes)}, "
            f"{human_size(free)} is free; free some space, use a smaller --n, or choose another --out"
        )
    return est
