"""Without a terminal (nohup, a log file, a job scheduler) generate prints plain progress
lines to stderr: one per commit or per --progress-interval, whichever is rarer."""

import re

from runtools import run_cli


def progress_lines(stderr: str) -> list[str]:
    return [
        line
        for line in stderr.splitlines()
        if line.startswith("trajgen RUNNING") or line.startswith("trajgen COMPLETE")
    ]


def test_generate_without_a_tty_prints_a_line_per_commit_when_commits_are_rarer(tmp_path):
    # stderr is a pipe here, as under nohup; the interval is shorter than a commit takes
    # a shard of 250 videos of 16×64×64 (about 0.1 s) takes far longer to make than the interval
    result = run_cli(
        "generate",
        "--n",
        "1000",
        "--checkpoint-every",
        "250",
        "--workers",
        "1",
        "--progress-interval",
        "0.01",
        "--out",
        tmp_path / "run",
    )
    assert result.returncode == 0, result.stderr
    lines = progress_lines(result.stderr)
    assert len(lines) == 4, result.stderr
    assert re.match(r"trajgen RUNNING 25\.0% · 250 / 1,000 samples · 1 / 4 shards · ", lines[0]), lines[0]
    assert lines[-1].startswith("trajgen COMPLETE 100.0% · 1,000 / 1,000 samples · 4 / 4 shards")
    assert "\r" not in result.stderr  # no bar redraws in a log file


def test_lines_are_no_more_frequent_than_the_interval(tmp_path):
    result = run_cli(
        "generate",
        "--n",
        "40",
        "--checkpoint-every",
        "10",
        "--frames",
        "4",
        "--size",
        "16",
        "--workers",
        "1",
        "--progress-interval",
        "3600",
        "--out",
        tmp_path / "run",
    )
    assert result.returncode == 0, result.stderr
    # nothing is due within the hour but the last commit, which always says how the run ended
    assert [line.split(" · ")[0] for line in progress_lines(result.stderr)] == ["trajgen COMPLETE 100.0%"]


def test_quiet_prints_nothing(tmp_path):
    result = run_cli(
        "generate",
        "--n",
        "20",
        "--checkpoint-every",
        "10",
        "--frames",
        "4",
        "--size",
        "16",
        "--workers",
        "1",
        "--progress-interval",
        "0.01",
        "--quiet",
        "--out",
        tmp_path / "run",
    )
    assert result.returncode == 0 and result.stderr == "" and result.stdout == ""


def test_the_rule_with_a_clock():
    from trajgen.watch.reporter import ProgressLines

    now = [0.0]
    printed = []
    lines = ProgressLines(interval=30.0, clock=lambda: now[0], echo=printed.append)
    for t in (5.0, 20.0, 31.0, 40.0, 95.0):  # commits at these times
        now[0] = t
        lines.commit(lambda t=t: f"line at {t:g}")
    assert printed == ["line at 31", "line at 95"]  # at most one per interval, only at commits
    now[0] = 96.0
    lines.finish(lambda: "the end")  # how the run ended is always said
    assert printed[-1] == "the end"
