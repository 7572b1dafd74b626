"""The command line's options that several commands share, their checks, and the options that decide
what the samples are (generate's), kept in --help's order."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import click

from trajgen.content.config import DEFAULT_CLASSES


def class_names(ctx, param, value: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in value.split(",") if name.strip())


ADDRESS = re.compile(r"(?:(?:tcp|tls)://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})")


def scheduler_address(ctx, param, value: str | None) -> str | None:
    """A Dask scheduler address that parses: tcp://HOST:PORT (or tls://, or HOST:PORT)."""
    if value is None:
        return None
    m = ADDRESS.fullmatch(value.strip())
    if not m or not 0 < int(m.group(2)) < 65536:
        raise click.BadParameter(
            f"{value!r} is not a Dask scheduler address; give the tcp://HOST:PORT that "
            f"`dask scheduler` prints (e.g. tcp://10.0.0.5:8786)"
        )
    return value.strip()


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:/")  # a scheme (two letters at least: not a Windows drive)


def not_a_url(ctx, param, value: Path | None) -> Path | None:
    """A local folder, not a URL (which would otherwise become a local folder named 's3:')."""
    if value is not None and _URL.match(str(value)):
        url = str(value).replace(":/", "://", 1)  # click.Path made s3://b/r into s3:/b/r
        raise click.BadParameter(
            f"{url} is a URL; {param.opts[0] if param.opts else 'this'} takes a local (or synced) folder: give a directory"
        )
    return value


def run_location(ctx, param, value: str | None) -> Path | str | None:
    """A run directory, or a run's URL in object storage (``s3://bucket/prefix``; a scheme trajgen cannot
    serve is a usage error, never a local folder named 's3:')."""
    if value is None or not _URL.match(value):
        return None if value is None else Path(value)
    from trajgen.store.objects import UnsupportedURLError, check_url

    try:
        return check_url(value)
    except UnsupportedURLError as e:
        raise click.BadParameter(str(e)) from None


run_dir_argument = click.argument("run_dir", callback=run_location)


def run_dir_name(ctx, param, value: str | None) -> Path | str | None:
    """A new run's directory name or URL: no control characters (they would split PROGRESS.txt's lines)."""
    if value is not None and any(ord(ch) < 32 or ord(ch) == 127 for ch in str(value)):
        raise click.BadParameter(f"{str(value)!r} contains a control character (e.g. a newline); choose a plain name")
    return run_location(ctx, param, value)


def _storage_options(ctx, param, value: str | None) -> None:
    if value is None:
        return
    from trajgen.store.objects import set_default_options

    try:
        parsed = json.loads(value)
    except ValueError as e:
        raise click.BadParameter(f'is not JSON ({e}); e.g. \'{{"endpoint_url": "http://minio:9000"}}\'') from None
    if not isinstance(parsed, dict):
        raise click.BadParameter("must be a JSON object, e.g. '{\"anon\": true}'")
    set_default_options(parsed)


storage_options_option = click.Option(
    ["--storage-options"],
    metavar="JSON",
    default=None,
    expose_value=False,
    is_eager=True,
    callback=_storage_options,
    help="For a run in object storage (s3://…): options for the client (s3fs), as JSON, e.g. "
    '\'{"endpoint_url": "http://minio:9000", "key": "…", "secret": "…"}\'. By default credentials and '
    "endpoint come from the environment (AWS_ACCESS_KEY_ID, AWS_PROFILE, AWS_ENDPOINT_URL_S3, ...).",
)


def add_storage_options(group: click.Group) -> None:
    """--storage-options on every command that takes a run (each may be a URL)."""
    for command in group.commands.values():
        if any(p.name in ("run_dir", "out") for p in command.params):
            command.params.append(storage_options_option)


def cpus() -> int:
    from trajgen.making.executors import usable_cpus  # what generate itself uses: affinity and cpusets count

    return usable_cpus()


def rgb(ctx, param, value: str):
    """ "R,G,B" → a tuple of ints; anything else is passed on as given, for the config's range error."""
    try:
        return tuple(int(part) for part in value.split(","))
    except ValueError:
        return value


workers_option = click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes on this machine [default: number of CPUs].",
)
scheduler_option = click.option(
    "--scheduler",
    metavar="tcp://HOST:PORT",
    default=None,
    callback=scheduler_address,
    help="Run the shards on this Dask cluster: the address `dask scheduler` prints (a bare HOST:PORT "
    "means tcp://HOST:PORT). Needs the dask extra and a shared filesystem.",
)
interval_option = click.option(
    "--progress-interval",
    type=float,
    default=30.0,
    show_default=True,
    help="Rewrite PROGRESS.txt at least this often (seconds, 0.01-86400) while working.",
)
progress_to_option = click.option(
    "--progress-to",
    type=click.Path(path_type=Path),
    default=None,
    callback=not_a_url,
    metavar="DIR",
    help="Also keep DIR/PROGRESS.txt and a DIR/PROGRESS.html page current (e.g. a synced folder; "
    "created if missing; the run remembers it).",
)
quiet_option = click.option("--quiet", is_flag=True, help="Print nothing but errors.")


# generate's options that decide what the samples are, top to bottom as --help lists them
CONTENT_OPTIONS = [
    click.option("--n", "n", type=int, default=10_000, show_default=True, help="Number of samples."),
    click.option(
        "--checkpoint-every", type=int, default=1_000, show_default=True, help="Samples per shard (one commit each)."
    ),
    click.option(
        "--out",
        default=None,
        callback=run_dir_name,
        help="Run directory, or a URL in object storage (s3://bucket/prefix) [default: runs/YYYYMMDD_HHMM_n<N>].",
    ),
    click.option(
        "--seed",
        type=int,
        default=42,
        show_default=True,
        help="Random seed: sample i depends only on the seed, the content options and i.",
    ),
    click.option("--frames", type=int, default=16, show_default=True, help="Frames per video (MAGVIT-v2 likes 17)."),
    click.option("--size", type=int, default=64, show_default=True, help="Frame width and height in pixels."),
    click.option("--coverage", type=float, default=0.7, show_default=True, help="Share of the frame the path fills."),
    click.option("--noise-scale", type=float, default=0.2, show_default=True, help="Scales the augmentation noise."),
    click.option(
        "--augment-prob", type=float, default=0.8, show_default=True, help="Probability of augmenting a sample."
    ),
    click.option(
        "--classes",
        default=",".join(DEFAULT_CLASSES),
        show_default=True,
        callback=class_names,
        help="Comma-separated motion classes.",
    ),
    click.option(
        "--style",
        type=click.Choice(["dot", "trail"]),
        default="dot",
        show_default=True,
        help="dot: one dot per frame; trail: also the last --trail-length positions, older ones fainter.",
    ),
    click.option(
        "--dot-radius",
        type=float,
        default=None,
        help="Dot radius in pixels (up to --size/4) [default: 5 at 64×64, scaled with --size].",
    ),
    click.option("--color", default="0,0,255", show_default=True, callback=rgb, help="Dot colour R,G,B (0-255)."),
    click.option(
        "--background", default="255,255,255", show_default=True, callback=rgb, help="Background colour R,G,B (0-255)."
    ),
    click.option(
        "--trail-length",
        type=int,
        default=5,
        show_default=True,
        help="Positions drawn per frame with --style trail (1-1000).",
    ),
    click.option(
        "--roll",
        type=float,
        default=180.0,
        show_default=True,
        help="Camera roll about the viewing axis, up to ± this many degrees (0-180; 0: world z up).",
    ),
    click.option(
        "--coverage-jitter",
        type=float,
        default=0.1,
        show_default=True,
        help="Each sample's coverage is drawn within ± this of --coverage (0-0.5).",
    ),
    click.option(
        "--placement",
        type=float,
        default=1.0,
        show_default=True,
        help="Share of the free margin the path may be moved within (0-1; 0: centred).",
    ),
    click.option(
        "--speed-variation",
        type=float,
        default=1.0,
        show_default=True,
        help="How far the pace along linear, circular and helical paths varies (0-1; 1: from "
        "standing still to double speed), within the limit of one dot diameter per frame.",
    ),
    click.option(
        "--appearance",
        type=click.Choice(["plain", "varied"]),
        default="plain",
        show_default=True,
        help="plain: --color on --background; varied: per sample a dot colour (always in contrast), "
        "a size within ±30% of --dot-radius, soft shading, and a plain, gradient or textured background.",
    ),
    click.option(
        "--distractors",
        type=int,
        default=0,
        show_default=True,
        help="Squares and triangles per video (0-8), each moving along a path of any class.",
    ),
    click.option(
        "--occluders",
        type=int,
        default=0,
        show_default=True,
        help="Static bars per video (0-4) drawn over everything; they may hide the dot for a few frames.",
    ),
    click.option(
        "--max-hidden",
        type=float,
        default=0.25,
        show_default=True,
        help="With --occluders: most share of frames the dot may be hidden in (under half visible); "
        "occluders that hide it longer are drawn again (0-1).",
    ),
    click.option(
        "--compress-level",
        type=click.IntRange(0, 9),
        default=3,
        show_default=True,
        help="Shard compression: zlib-ng's deflate level 1-9 (1 fastest and largest, 3 the balance, 9 smallest; "
        "zlib's where zlib-ng is not installed); 0 stores them uncompressed.",
    ),
]


def content_options(command):
    """Apply CONTENT_OPTIONS to a click command, in --help's order."""
    for option in reversed(CONTENT_OPTIONS):
        command = option(command)
    return command


def show_bar(quiet: bool) -> bool | str:
    """A bar on a terminal; plain progress lines when stderr is a file or a pipe; nothing when quiet."""
    if quiet:
        return False
    return True if sys.stderr.isatty() else "lines"
