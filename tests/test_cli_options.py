"""generate's options: every content field has one, with help and a clear range error;
--coverage above what the frame allows is refused, not silently capped."""

import json

import pytest

from runtools import run_cli
from trajgen import GenerationConfig
from trajgen.errors import ConfigError


def test_coverage_above_the_frame_margin_is_refused_with_the_limit():
    with pytest.raises(
        ConfigError,
        match=r"coverage \(--coverage\) must be at most 0\.827 at --size 64 with a dot "
        r"radius of 5 px",
    ):
        GenerationConfig(coverage=0.9)
    assert GenerationConfig(coverage=0.827).coverage == 0.827


def test_cli_refuses_coverage_0_9_and_writes_nothing(tmp_path):
    result = run_cli("generate", "--n", "8", "--coverage", "0.9", "--out", tmp_path / "run")
    assert result.returncode == 2 and "at most 0.827" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_drawing_options_reach_the_config(tmp_path):
    out = tmp_path / "run"
    result = run_cli(
        "generate",
        "--n",
        "8",
        "--checkpoint-every",
        "8",
        "--frames",
        "4",
        "--size",
        "32",
        "--workers",
        "1",
        "--dot-radius",
        "3",
        "--color",
        "255,0,0",
        "--background",
        "0,0,0",
        "--style",
        "trail",
        "--trail-length",
        "3",
        "--quiet",
        "--out",
        out,
    )
    assert result.returncode == 0, result.stderr
    config = json.loads((out / "config.json").read_text())["config"]
    assert (config["dot_radius"], config["color"], config["background"], config["trail_length"]) == (
        3.0,
        [255, 0, 0],
        [0, 0, 0],
        3,
    )


@pytest.mark.parametrize(
    "args,message",
    [
        (["--color", "red"], "color (--color) must be three integers R,G,B in [0, 255]"),
        (["--color", "1,2"], "color (--color) must be three integers R,G,B in [0, 255]"),
        (["--background", "0,0,256"], "background (--background) must be three integers R,G,B in [0, 255]"),
        (["--dot-radius", "0"], "dot_radius (--dot-radius) must be a number in (0, size/4"),
        (["--trail-length", "0"], "trail_length (--trail-length) must be an integer in [1, 1000]"),
        (["--compress-level", "12"], "12 is not in the range 0<=x<=9"),
    ],
)
def test_bad_drawing_options_are_usage_errors(tmp_path, args, message):
    result = run_cli("generate", "--n", "8", *args, "--out", tmp_path / "run")
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert not (tmp_path / "run").exists()


def test_help_describes_every_option():
    text = run_cli("generate", "--help").stdout
    for option in ("--seed", "--style", "--dot-radius", "--color", "--background", "--trail-length"):
        line = next(line for line in text.splitlines() if line.startswith(f"  {option} "))
        described = line.split(option, 1)[1].split(None, 1)
        assert len(described) == 2 and len(described[1]) > 10, f"{option} has no help: {line!r}"
    assert "--compress-level INTEGER RANGE" in text and "0<=x<=9" in text


def test_one_shard_is_singular(tmp_path):
    result = run_cli(
        "generate",
        "--n",
        "8",
        "--checkpoint-every",
        "8",
        "--frames",
        "4",
        "--size",
        "16",
        "--workers",
        "1",
        "--out",
        tmp_path / "run",
    )
    assert result.returncode == 0, result.stderr
    assert "in 1 shard " in result.stdout and "1 shards" not in result.stdout
