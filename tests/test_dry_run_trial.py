"""--dry-run times trial shards of the real pipeline (made, compressed with the run's codec, written
and fsynced where the run will be), long enough to be stable; it shows the spread it measured, and
the 5-minute rule takes the slow end."""

import re

from runtools import run_cli


def number(text):
    return float(text.replace(",", ""))


def test_dry_run_times_whole_trial_shards_and_says_how_sure_it_is(tmp_path):
    out = tmp_path / "run"
    result = run_cli("generate", "--n", 20_000, "--checkpoint-every", 10_000, "--workers", 1, "--dry-run", "--out", out)
    assert result.returncode == 0, result.stdout + result.stderr
    text = result.stdout
    trial = re.search(
        r"measured on (\d+) trial shards of ([\d,]+) samples \(made, compressed, written with fsync\)", text
    )
    assert trial and int(trial.group(1)) >= 3 and number(trial.group(2)) >= 100, text
    spread = re.search(r"Estimated time: (\S+)–(\S+) with 1 worker\(s\) \(([\d,]+)–([\d,]+) samples/s\)", text)
    assert spread, text
    slow, fast = number(spread.group(3)), number(spread.group(4))
    assert 0 < slow <= fast
    crash = next(line for line in text.splitlines() if "crash" in line)
    assert f"at about {spread.group(3)} samples/s" in crash  # the pessimistic end
    assert list(tmp_path.iterdir()) == []  # the trial shards' file went with the scratch directory


def test_the_checkpoint_it_suggests_fits_at_the_slow_end():
    from trajgen import GenerationConfig
    from trajgen.making.preflight import Estimate, lost_work_check

    est = Estimate(
        100,
        4000.0,
        10**6,
        10.0,
        1000.0,
        10**8,
        worker_samples_per_second=10.0,
        trial_shards=3,
        slow_worker_samples_per_second=5.0,
    )
    check = lost_work_check(GenerationConfig(n=10_000, checkpoint_every=3_000), est)
    assert not check.ok and "0:10:00" in check.text and "--checkpoint-every 1500 " in check.text, check.text


def test_a_dry_run_where_nothing_can_be_written_still_shows_its_checklist(tmpfs):
    result = run_cli("generate", "--n", 2000, "--dry-run", "--out", tmpfs("256k") / "run")
    assert result.returncode == 1 and "Error:" not in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert "✗ cannot write a trial shard" in result.stdout and "Estimated time" in result.stdout, result.stdout
