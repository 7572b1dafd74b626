"""The command line: parse → config → one library call → echo; errors become exit codes.

Exit codes: 0 success; 1 a runtime failure (one line `Error: ...`); 2 a usage error;
130 / 143 stopped by SIGINT / SIGTERM with the run left resumable.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import click

import trajgen
from trajgen import cli_options as options
from trajgen.cli_errors import Stopped, raise_stopped, translate_errors
from trajgen.content.config import GenerationConfig


def entry() -> None:
    """The console command: main(), with a signal at any moment ending in one line (see __main__)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, raise_stopped)
    try:
        try:
            main()
        finally:  # the command is over: a signal from now on changes nothing (not even during shutdown)
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_IGN)
    except Stopped as e:  # between commands: while click parses, or while an error line is written
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        os.write(2, f"Error: stopped by {signal.Signals(e.signum).name}\n".encode())
        os._exit(128 + e.signum)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(trajgen.__version__, prog_name="trajgen")
def main() -> None:
    """trajgen — synthetic trajectory video datasets for video models.

    Each sample is a noisy 3D trajectory (linear, circular, helical, parabolic) filmed
    by an auto-framed camera and rendered to a small uint8 video. Runs are sharded,
    crash-safe and resumable, with byte-identical output.

    \b
    Example:
      trajgen generate --n 10000 --checkpoint-every 1000
      cat runs/*/PROGRESS.txt
      trajgen resume runs/20261128_1150_n10000
    """
    from trajgen.store import _fs

    if _fs.fault_error is not None:
        raise click.UsageError(f"{_fs.fault_error} (TRAJGEN_FAULT injects faults for tests; unset it)")


@main.command()
@options.content_options
@options.workers_option
@options.scheduler_option
@options.interval_option
@options.progress_to_option
@click.option("--dry-run", is_flag=True, help="Print the plan and check the target; leave nothing behind.")
@click.option("--export", "export_when_done", is_flag=True, help="Also export one .npz when the run completes.")
@options.quiet_option
@translate_errors
def generate(out, workers, scheduler, progress_interval, progress_to, dry_run, export_when_done, quiet, **content):
    """Make a new run: shards committed one by one, PROGRESS.txt kept current.

    \b
    Example:
      trajgen generate --n 10000 --checkpoint-every 1000 --out runs/demo
      trajgen generate --n 10000000 --dry-run
      trajgen generate --n 1000000 --progress-to ~/Dropbox/trajgen   # open PROGRESS.html there
    """
    config = GenerationConfig(**content)  # every content option is named as its GenerationConfig field
    if dry_run:
        from trajgen.making import default_out
        from trajgen.making.preflight import dry_run as plan

        ok, lines = plan(config, out or default_out(config), workers or options.cpus(), progress_to=progress_to)
        click.echo("\n".join(lines))
        sys.exit(0 if ok else 1)
    from trajgen.making import generate as generate_run

    summary = generate_run(
        config,
        out,
        workers=workers,
        scheduler=scheduler,
        progress_interval=progress_interval,
        show_bar=options.show_bar(quiet),
        progress_to=progress_to,
    )
    if not quiet:
        click.echo(
            f"Done: {summary.total_samples:,} samples in {config.num_shards:,} shard{'s' if config.num_shards != 1 else ''} → {summary.run_dir} "
            f"({summary.seconds:.1f} s, {summary.rate:,.0f} samples/s)"
        )
    _maybe_export(summary.run_dir, export_when_done, quiet)


@main.command()
@options.run_dir_argument
@options.workers_option
@options.scheduler_option
@options.interval_option
@options.progress_to_option
@click.option(
    "--allow-version-change",
    is_flag=True,
    help="Go on although the installed numpy/OpenCV/deflate/trajgen versions differ from the run's; "
    "the shards made now record theirs and verify reports the run as mixed.",
)
@options.quiet_option
@translate_errors
def resume(run_dir, workers, scheduler, progress_interval, progress_to, allow_version_change, quiet):
    """Finish an interrupted run: make only the missing shards.

    The result is byte-identical to a run that was never interrupted. Refuses, changing
    nothing, when the installed trajgen/numpy/OpenCV/deflate versions differ from those
    in the run's config.json, unless --allow-version-change. Progress keeps going to the
    run's --progress-to folder, if it has one; --progress-to changes it.

    \b
    Example:
      trajgen resume runs/20261128_1150_n10000
    """
    from trajgen.making import resume as resume_run

    summary = resume_run(
        run_dir,
        workers=workers,
        scheduler=scheduler,
        progress_interval=progress_interval,
        show_bar=options.show_bar(quiet),
        progress_to=progress_to,
        allow_version_change=allow_version_change,
    )
    if quiet:
        return
    if summary.repaired:
        click.echo(f"Repaired: {summary.repaired}")
    if summary.already_complete:
        click.echo(f"{run_dir} is already complete ({summary.total_samples:,} samples); nothing to do.")
    else:
        click.echo(
            f"Done: made {summary.made_samples:,} missing samples ({summary.made_shards} shards) → {run_dir} "
            f"({summary.seconds:.1f} s); {summary.total_samples:,} samples in all."
        )


@main.command()
@options.run_dir_argument
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@translate_errors
def status(run_dir, as_json):
    """Show a run's state: what PROGRESS.txt says, read from the run itself.

    Works while another process writes the run, and after it died (then the state
    is INTERRUPTED, with the command that finishes it).

    \b
    Example:
      trajgen status runs/20261128_1150_n10000 --json
    """
    from trajgen.making import run_status

    st = run_status(run_dir)
    click.echo(json.dumps(st.to_json(), indent=2, ensure_ascii=False) if as_json else st.text.rstrip("\n"))


def _maybe_export(run_dir: Path, wanted: bool, quiet: bool) -> None:
    if not wanted:
        return
    from trajgen.use.export import export_run

    path = export_run(run_dir)
    if not quiet:
        click.echo(f"Exported {path}")


# ---------------------------------------------------------------- using a run: verify, export, preview


def _echo_outcome(outcome) -> None:
    """A check's report on stdout; when it found problems, its one-line summary as the Error (exit 1)."""
    click.echo(outcome.text)
    if not outcome.ok:
        click.echo(f"Error: {outcome.summary}", err=True)
        sys.exit(1)


@main.command()
@options.run_dir_argument
@click.option("--deep", is_flag=True, help="Also regenerate a seeded random subset of samples and compare bytes.")
@translate_errors
def verify(run_dir, deep):
    """Check a run; exit 0 only when every check passes.

    Checks checksums and sizes, counts and class balance, arrays, indices, labels,
    points in frame, duplicate videos and stray files, and names each bad file.
    Tells damage (repair or restore the shards) from what the config itself made
    (duplicates or imbalance in shards that match the manifest: change the config).

    \b
    Example:
      trajgen verify runs/20261128_1150_n10000 --deep
    """
    from trajgen.use.verify import verify_run

    _echo_outcome(verify_run(run_dir, deep=deep))


@main.command()
@options.run_dir_argument
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Output .npz [default: RUN_DIR/YYYYMMDD_HHMM_dataset_<N>_validated.npz].",
)
@click.option(
    "--layout",
    type=click.Choice(["nthwc", "ntchw"]),
    default="nthwc",
    show_default=True,
    help="Video axes: (N, T, H, W, C) or (N, T, C, H, W).",
)
@click.option(
    "--dtype",
    type=click.Choice(["uint8", "float32"]),
    default="uint8",
    show_default=True,
    help="uint8 0-255, or float32 in [0, 1].",
)
@click.option(
    "--compress-level",
    type=click.IntRange(0, 9),
    default=None,
    help="zlib deflate level 0-9; 0 stores uncompressed [default: the run's --compress-level].",
)
@click.option("--force", is_flag=True, help="Replace the output if it is a regular file (never the run's own files).")
@translate_errors
def export(run_dir, out, layout, dtype, compress_level, force):
    """Write a complete run as one .npz, streamed shard by shard.

    Keys: videos, labels, trajectory_3d, equations, descriptions, points_2d, index,
    camera. Memory stays about one shard whatever the run size.

    \b
    Example:
      trajgen export runs/20261128_1150_n10000
      trajgen export runs/20261128_1150_n10000 -o old_layout.npz --layout ntchw --dtype float32
    """
    from trajgen.use.export import export_run

    path = export_run(run_dir, out, layout=layout, dtype=dtype, force=force, compress_level=compress_level)
    click.echo(f"Exported {path} ({path.stat().st_size / 1e6:,.1f} MB, layout {layout}, {dtype})")


@main.command()
@options.run_dir_argument
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Contact sheet, .png or .jpg [default: RUN_DIR/preview.png]; an existing picture is replaced.",
)
@click.option("--video", type=click.Path(path_type=Path), default=None, help="Also write the grid as an MP4 (.mp4).")
@click.option("--per-class", type=click.IntRange(min=1), default=6, show_default=True, help="Samples per class (row).")
@translate_errors
def preview(run_dir, out, video, per_class):
    """Draw a run as a contact sheet PNG (and optionally an MP4).

    One row per class; each cell is a sample's frames blended with a fading trail.
    Works on a run in progress.

    \b
    Example:
      trajgen preview runs/20261128_1150_n10000 --per-class 8 --video grid.mp4
    """
    from trajgen.use.preview import make_preview

    result = make_preview(run_dir, out, video=video, per_class=per_class)
    click.echo(f"Preview {result.png}" + (f" and {result.video}" if result.video else ""))


@main.command()
@options.run_dir_argument
@translate_errors
def repair(run_dir):
    """Remake a run's missing or damaged shards, byte for byte.

    Each committed shard whose file is missing or does not match the manifest's size
    and sha256 is made again from the run's config, checked against that sha256, and
    only then put in place (under the run's lock, atomically). A shard that regenerates
    to other bytes (other trajgen/numpy/OpenCV/encoder versions) is reported, not installed.
    A run in object storage (s3://…) is repaired under its lease, each shard put back only by
    a conditional write, never over an object another process changed.

    \b
    Example:
      trajgen verify runs/20261128_1150_n10000 || trajgen repair runs/20261128_1150_n10000
      trajgen repair s3://my-bucket/runs/demo
    """
    from trajgen.making.repair import repair_run

    _echo_outcome(repair_run(run_dir))


@main.command()
@options.run_dir_argument
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Directory for report.html and report.json [default: RUN_DIR; files replaced].",
)
@translate_errors
def report(run_dir, out_dir):
    """Measure how good a run's samples are: report.html to look at, report.json for programs.

    Per class: a montage of samples, coverage, a heat map of the dot, step lengths,
    parameter histograms and near-duplicate paths; for the run: the single-frame and
    motion probes and identical videos. Each number is set against its target with a
    check mark. One self-contained page (opens offline). Works on a run in progress
    (committed shards only).

    \b
    Example:
      trajgen report runs/20261128_1150_n10000
      trajgen report runs/20261128_1150_n10000 -o ~/Sync/reports
    """
    from trajgen.use.report import make_report

    result = make_report(run_dir, out_dir)
    click.echo(
        f"Report {result.html_path} and {result.json_path.name} ({result.samples:,} samples"
        f"{'' if result.complete else ', run not complete'}): {result.summary}"
    )


options.add_storage_options(main)  # every command that takes a run, which may be in a bucket
