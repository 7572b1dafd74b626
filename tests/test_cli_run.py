"""generate / resume / status / dry-run through the real command line."""

import json
import re

import pytest

from runtools import run_cli, snapshot_tree


def test_generate_small_run_then_status(tmp_path):
    out = tmp_path / "run"
    result = run_cli("generate", "--n", 40, "--checkpoint-every", 10, "--workers", 1, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "40 samples" in result.stdout and str(out) in result.stdout
    assert (out / "PROGRESS.txt").read_text().startswith("trajgen COMPLETE 100.0%")
    status = run_cli("status", out)
    assert status.returncode == 0 and status.stdout.startswith("trajgen COMPLETE 100.0%")
    data = json.loads(run_cli("status", out, "--json").stdout)
    assert data["state"] == "COMPLETE" and data["completed_samples"] == 40 and data["total_shards"] == 4
    again = run_cli("resume", out)
    assert again.returncode == 0 and "already complete" in again.stdout


def test_quiet_prints_nothing(tmp_path):
    result = run_cli("generate", "--n", 8, "--checkpoint-every", 4, "--workers", 1, "--out", tmp_path / "r", "--quiet")
    assert result.returncode == 0 and result.stdout == "" and result.stderr == ""


def test_default_out_follows_the_naming_convention(tmp_path):
    result = subprocess_in(tmp_path, "generate", "--n", 8, "--checkpoint-every", 8, "--workers", 1, "--quiet")
    assert result.returncode == 0, result.stderr
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and re.fullmatch(r"\d{8}_\d{4}_n8", runs[0].name)


def subprocess_in(cwd, *args):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "trajgen", *map(str, args)], cwd=cwd, capture_output=True, text=True)


BAD_OPTIONS = [
    (["--n", "0"], "n (--n) must be an integer ≥ 1"),
    (["--n", "-5"], "n (--n) must be an integer ≥ 1"),
    (["--checkpoint-every", "0"], "checkpoint_every (--checkpoint-every) must be an integer ≥ 1"),
    (["--frames", "1"], "frames (--frames) must be an integer in [2, 10000]"),
    (["--size", "7"], "size (--size) must be an integer in [8, 4096]"),
    (["--coverage", "0"], "coverage (--coverage) must be a number in (0, 1]"),
    (["--coverage", "1.5"], "coverage (--coverage) must be a number in (0, 1]"),
    (["--noise-scale", "-1"], "noise_scale (--noise-scale) must be a finite number ≥ 0"),
    (["--augment-prob", "2"], "augment_prob (--augment-prob) must be a number in [0, 1]"),
    (["--classes", "linear,spiral"], "unknown: spiral"),
    (["--n", "ten"], "'ten' is not a valid integer"),
    (["--coverage", "lots"], "'lots' is not a valid float"),
    (["--style", "glow"], "'glow' is not one of"),
]


@pytest.mark.parametrize("args,message", BAD_OPTIONS)
def test_bad_options_are_usage_errors_that_write_nothing(tmp_path, args, message):
    out = tmp_path / "run"
    result = run_cli("generate", *args, "--out", out)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert "Error" in result.stderr
    assert not out.exists()


def test_out_that_is_an_existing_run_is_refused_untouched(tmp_path):
    out = tmp_path / "run"
    assert (
        run_cli("generate", "--n", 8, "--checkpoint-every", 4, "--workers", 1, "--out", out, "--quiet").returncode == 0
    )
    before = snapshot_tree(out)
    result = run_cli("generate", "--n", 8, "--out", out)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: ") and "already holds a run" in result.stderr
    assert f"trajgen resume {out}" in result.stderr
    assert snapshot_tree(out) == before


def test_out_that_is_not_writable_is_refused(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    result = run_cli("generate", "--n", 8, "--out", blocker / "run")
    assert result.returncode == 1 and result.stderr.startswith("Error: ") and "Traceback" not in result.stderr
    assert blocker.read_text() == "x"


def test_out_that_is_a_non_empty_other_directory_is_refused(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    result = run_cli("generate", "--n", 8, "--out", out)
    assert result.returncode == 1 and "not empty" in result.stderr
    assert snapshot_tree(out) == {"thesis.tex": b"precious"}


@pytest.mark.parametrize("command", ["resume", "status"])
def test_resume_and_status_on_bad_directories(tmp_path, command):
    missing = run_cli(command, tmp_path / "nope")
    assert missing.returncode in (1, 2) and "Error" in missing.stderr and "Traceback" not in missing.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli(command, empty)
    assert result.returncode == 1 and "is not a trajgen run" in result.stderr
    assert list(empty.iterdir()) == []
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    (broken / "manifest.json").write_text("{half")
    before = snapshot_tree(broken)
    result = run_cli(command, broken)
    assert result.returncode == 1 and "manifest.json" in result.stderr and "Traceback" not in result.stderr
    assert snapshot_tree(broken) == before


def test_dry_run_reports_plan_and_checks_and_leaves_nothing(tmp_path):
    before = snapshot_tree(tmp_path)
    out = tmp_path / "run"
    result = run_cli("generate", "--n", 10000, "--checkpoint-every", 1000, "--dry-run", "--out", out)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    for words in (
        "10,000 samples",
        "10 shards",
        "Estimated size",
        "Free space",
        "Estimated time",
        "Peak memory",
        "lock",
        "fsync",
        "atomic rename",
    ):
        assert words in text, words
    assert text.count("✓") >= 5 and "✗" not in text
    assert snapshot_tree(tmp_path) == before


def test_dry_run_fails_when_the_estimate_exceeds_free_space(tmp_path):
    out = tmp_path / "run"
    env = {"TRAJGEN_FREE_BYTES": "1000"}
    result = run_cli("generate", "--n", 10000, "--dry-run", "--out", out, env=env)
    assert result.returncode == 1 and "✗" in result.stdout
    real = run_cli("generate", "--n", 10000, "--out", out, env=env)
    assert real.returncode == 1 and "free space" in real.stderr.lower() and not out.exists()


def test_help_of_every_command_has_an_example():
    for command in ("generate", "resume", "status"):
        result = run_cli(command, "--help")
        assert result.returncode == 0 and "Example" in result.stdout, command


def test_a_run_that_finishes_fast_still_reports_its_rate(tmp_path):
    out = tmp_path / "run"
    assert (
        run_cli("generate", "--n", 8, "--checkpoint-every", 4, "--workers", 1, "--out", out, "--quiet").returncode == 0
    )
    rate_line = next(line for line in (out / "PROGRESS.txt").read_text().splitlines() if line.startswith("Rate:"))
    assert "estimating" not in rate_line and "samples/s" in rate_line
