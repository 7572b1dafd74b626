"""The command line: parse → config → one library call → echo; errors become exit codes."""

from __future__ import annotations

import click

import trajgen


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
    """
