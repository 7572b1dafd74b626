"""report: report.html (checked in headless Chromium) and report.json, from a real run."""

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from browser import dump_dom
from runtools import kill, run_cli, snapshot_tree, start_cli, wait_for_shards
from trajgen import GenerationConfig
from trajgen.content import quality
from trajgen.making import generate
from trajgen.store.rundir import RunError
from trajgen.use.dataset import open_run
from trajgen.use.report import make_report
from trajgen.use.report_targets import FIGURES_PER_CLASS
from trajgen.use.verify import verify_run

CONFIG = GenerationConfig(n=320, checkpoint_every=80, seed=5)
PER_CLASS_KEYS = ("near_duplicate_rate", "step_within_diameter", "coverage_within_tol")


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A complete run and its report, written into the run directory (the default)."""
    run = tmp_path_factory.mktemp("report") / "run"
    generate(CONFIG, run, workers=1)
    before = snapshot_tree(run)
    result = make_report(run)
    return run, before, result


class Page(HTMLParser):
    """What a reader sees: section headings per class, images, marks, and every external reference."""

    def __init__(self):
        super().__init__()
        self.section = None
        self.images: dict[str | None, list[str]] = {}
        self.external: list[str] = []
        self.headings: list[str] = []
        self._in_heading = False
        self.text = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section" and attrs.get("data-class"):
            self.section = attrs["data-class"]
        if tag == "img":
            self.images.setdefault(self.section, []).append(attrs.get("src", ""))
        for key in ("src", "href"):
            value = attrs.get(key) or ""
            if value and not value.startswith(("data:", "#")):
                self.external.append(value)
        if tag in ("h1", "h2", "h3"):
            self._in_heading = True
            self.headings.append("")

    def handle_endtag(self, tag):
        if tag in ("h1", "h2", "h3"):
            self._in_heading = False
        if tag == "section":
            self.section = None

    def handle_data(self, data):
        self.text.append(data)
        if self._in_heading:
            self.headings[-1] += data


def test_json_holds_the_quality_numbers(made):
    run, _, result = made
    data = json.loads((run / "report.json").read_text())
    assert result.json_path == run / "report.json" and result.html_path == run / "report.html"
    arrays = open_run(run).arrays(keys=("points_2d", "labels"))
    points, labels = arrays["points_2d"], arrays["labels"]
    classes = list(CONFIG.classes)
    assert list(data["classes"]) == classes
    expected = {
        "near_duplicate_rate": quality.near_duplicate_rate(points, labels, 4),
        "step_within_diameter": quality.step_within_diameter(points, labels, 4, 2 * CONFIG.radius),
        "coverage_within_tol": quality.coverage_within_tol(points, labels, 4, CONFIG.size, CONFIG.coverage),
    }
    for c, name in enumerate(classes):
        for key in PER_CLASS_KEYS:
            assert data["classes"][name][key] == pytest.approx(float(expected[key][c])), (name, key)
            assert isinstance(data["classes"][name]["passed"][key], bool)
        assert data["classes"][name]["samples"] == 80
    per_frame = quality.single_frame_probe(points, labels, 4, CONFIG.size)
    assert data["single_frame_probe_per_frame"] == pytest.approx(per_frame.tolist())
    assert data["single_frame_probe_accuracy"] == pytest.approx(float(per_frame.max()))
    assert data["motion_probe_accuracy"] == pytest.approx(quality.motion_probe(points, labels, 4))
    for key in (*PER_CLASS_KEYS, "single_frame_probe_accuracy", "motion_probe_accuracy", "duplicate_videos"):
        assert key in data["targets"], key
    assert data["targets"]["single_frame_probe_accuracy"]["max"] == 0.45
    assert data["targets"]["motion_probe_accuracy"]["min"] == 0.95
    assert data["passed"]["single_frame_probe_accuracy"] == (data["single_frame_probe_accuracy"] <= 0.45)
    assert data["passed"]["motion_probe_accuracy"] == (data["motion_probe_accuracy"] >= 0.95)
    assert data["all_passed"] == (
        all(data["passed"].values()) and all(all(c["passed"].values()) for c in data["classes"].values())
    )
    assert data["samples"] == 320 and data["complete"] is True
    assert data["duplicate_videos"] == 0


def test_page_renders_in_chromium_with_every_class_and_figure(made):
    run, _, _ = made
    dom = dump_dom(run / "report.html")
    page = Page()
    page.feed(dom)
    data = json.loads((run / "report.json").read_text())
    for name in CONFIG.classes:
        assert any(name in h for h in page.headings), (name, page.headings)
        images = page.images.get(name, [])
        assert len(images) == FIGURES_PER_CLASS, (name, len(images))
        assert all(re.fullmatch(r"data:image/png;base64,[A-Za-z0-9+/=]{200,}", src) for src in images)
    assert len(page.images.get(None, [])) >= 1  # the run-wide probe figure
    assert page.external == []  # opens offline: nothing fetched
    text = " ".join(page.text)
    marks = text.count("✓") + text.count("✗")
    checks = sum(len(c["passed"]) for c in data["classes"].values()) + len(data["passed"])
    assert marks >= 2 * checks  # each check in the summary table and again by its figure
    assert text.count("✗") >= sum(not v for c in data["classes"].values() for v in c["passed"].values())
    assert "Summary" in text and "single-frame" in text.lower() and "motion probe" in text.lower()


def test_report_changes_no_run_file_and_verify_accepts_it(made):
    run, before, _ = made
    after = snapshot_tree(run)
    assert {k: v for k, v in after.items() if not k.startswith("report.")} == before
    assert sorted(set(after) - set(before)) == ["report.html", "report.json"]
    assert verify_run(run).ok


def test_cli_out_dir_on_a_run_in_progress(tmp_path):
    """A real generate still writing the run: the report covers the shards committed when it started."""
    run = tmp_path / "run"
    writer = start_cli(
        "generate",
        "--n",
        20000,
        "--checkpoint-every",
        100,
        "--frames",
        4,
        "--size",
        16,
        "--workers",
        1,
        "--quiet",
        "--out",
        run,
    )
    try:
        assert wait_for_shards(run, 2, writer), writer.communicate()[1]
        result = run_cli("report", run, "-o", tmp_path / "out")
    finally:
        kill(writer)
    assert result.returncode == 0, result.stderr
    assert str(tmp_path / "out" / "report.html") in result.stdout and result.stderr == ""
    assert not any(p.name.startswith("report") for p in run.iterdir())  # nothing written into the run
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    done = data["committed_shards"]
    assert 2 <= done < 200 and data["samples"] == 100 * done
    assert data["complete"] is False and data["in_progress"] is True
    text = (tmp_path / "out" / "report.html").read_text()
    assert "This run is in progress" in text and f"{done} of 200 shards" in text


def test_cli_help_has_an_example():
    help_text = run_cli("report", "--help").stdout
    assert "Example" in help_text and "report.html" in help_text


def _error(result):
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_cli_report_errors(made, tmp_path):
    run, _, _ = made
    # the last case draws the whole report before its write fails: it runs meanwhile, on another CPU
    out = tmp_path / "ro"
    read_only = start_cli("report", run, "-o", out, env={"TRAJGEN_FAULT": "EROFS@write:1"})
    assert "does not exist" in _error(run_cli("report", tmp_path / "nope"))

    empty = tmp_path / "empty"
    shutil.copytree(run, empty, ignore=shutil.ignore_patterns("report.*"))
    manifest = json.loads((empty / "manifest.json").read_text())
    manifest["shards"], manifest["status"] = [], "running"
    (empty / "manifest.json").write_text(json.dumps(manifest))
    assert "no shards committed" in _error(run_cli("report", empty))

    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    assert "not a directory" in _error(run_cli("report", run, "-o", a_file))
    assert "does not exist" in _error(run_cli("report", run, "-o", tmp_path / "no" / "such" / "dir"))
    assert "shards" in _error(run_cli("report", run, "-o", run / "shards"))

    stdout, stderr = read_only.communicate(timeout=120)
    message = _error(subprocess.CompletedProcess(read_only.args, read_only.returncode, stdout, stderr))
    assert "could not write" in message and "-o" in message
    assert not any(p.name.startswith("report") for p in out.iterdir())


def test_library_errors(tmp_path):
    with pytest.raises(RunError, match="does not exist"):
        make_report(tmp_path / "nope")


def test_points_out_of_margin_fail_the_in_frame_check(made, tmp_path):
    """Numbers come from the data: a run whose dots leave the frame shows ✗ for that class."""
    from trajgen.store.shards import read_shard, write_shard

    run, _, _ = made
    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("report.*"))
    path = copy / "shards" / "shard-00000.npz"
    arrays = read_shard(path)
    arrays["points_2d"][arrays["labels"] == 1, 0] = (-20.0, -20.0)  # every circular sample of shard 0
    info = write_shard(path, arrays, CONFIG.compress_level, copy / ".tmp")
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["shards"][0].update(sha256=info.sha256, bytes=info.bytes)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    data = make_report(copy).data
    assert data["classes"]["circular"]["in_frame"] < 1 and data["classes"]["circular"]["passed"]["in_frame"] is False
    assert data["classes"]["linear"]["passed"]["in_frame"] is True
    assert data["all_passed"] is False


def test_in_progress_run_without_every_class_yet(tmp_path):
    """Shards smaller than the class count: the classes not yet committed are said to be so, not drawn."""
    run = tmp_path / "run"
    generate(GenerationConfig(n=6, checkpoint_every=2, seed=1, frames=4, size=16), run, workers=1)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["shards"], manifest["status"] = manifest["shards"][:1], "running"
    (run / "manifest.json").write_text(json.dumps(manifest))
    result = make_report(run)
    assert result.data["classes"]["helical"]["samples"] == 0
    assert result.data["classes"]["helical"]["passed"]["near_duplicate_rate"] is None
    assert "not measured" in result.summary
    page = Page()
    page.feed(result.html_path.read_text())
    assert page.images.get("helical") is None and len(page.images["linear"]) == FIGURES_PER_CLASS
    assert "no committed samples yet" in " ".join(page.text)
