"""Runs pinned to the versions that decide their bytes: recorded, checked by resume, overridable."""

import json
import shutil

import pytest
from click.testing import CliRunner

from runtools import result_bytes, run_cli, snapshot_tree
from trajgen import GenerationConfig
from trajgen.cli import main
from trajgen.making import generate, resume
from trajgen.making.shardmaker import produce_shard
from trajgen.store.versions import OVERRIDE_ENV, byte_versions

CONFIG = GenerationConfig(n=40, checkpoint_every=10, seed=8, size=16, frames=4)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("versions") / "run"
    generate(CONFIG, out, workers=1, check_space=False)
    return out


def _interrupted_copy(reference, path, keep=2):
    """A copy of the run as a crash after `keep` commits leaves it."""
    shutil.copytree(reference, path)
    manifest = json.loads((path / "manifest.json").read_text())
    for entry in manifest["shards"][keep:]:
        (path / entry["file"]).unlink()
    manifest["shards"], manifest["status"] = manifest["shards"][:keep], "running"
    (path / "manifest.json").write_text(json.dumps(manifest))
    return path


def _cli(*args):
    """The CLI in this process (the refusal test runs the real one)."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def _pretend_recorded(run, **changes):
    data = json.loads((run / "config.json").read_text())
    data["versions"].update(changes)
    (run / "config.json").write_text(json.dumps(data, indent=2))


def test_config_json_records_every_version_that_decides_the_bytes(reference):
    recorded = json.loads((reference / "config.json").read_text())["versions"]
    assert recorded == byte_versions()
    assert set(recorded) == {"trajgen", "numpy", "opencv", "zlib", "isal", "zlib-ng"}
    import cv2
    import numpy

    assert recorded["numpy"] == numpy.__version__ and recorded["opencv"] == cv2.__version__


def test_resume_under_other_versions_refuses_and_changes_nothing(reference, tmp_path):
    run = _interrupted_copy(reference, tmp_path / "run")
    _pretend_recorded(run, numpy="1.0.0", opencv="3.0.0")
    before = snapshot_tree(run)
    result = run_cli("resume", run)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    installed = byte_versions()
    assert f"numpy 1.0.0 → {installed['numpy']}" in lines[0] and f"opencv 3.0.0 → {installed['opencv']}" in lines[0]
    assert "numpy==1.0.0" in lines[0] and f"trajgen resume {run} --allow-version-change" in lines[0]
    assert "trajgen" not in lines[0].split("→")[0].replace("trajgen resume", "")  # only the differences are named
    assert snapshot_tree(run) == before


def test_allow_version_change_goes_on_and_verify_reports_a_mixed_run(reference, tmp_path):
    run = _interrupted_copy(reference, tmp_path / "run")
    _pretend_recorded(run, numpy="1.0.0")
    result = _cli("resume", run, "--allow-version-change", "--workers", "1")
    assert result.exit_code == 0, result.stderr
    entries = json.loads((run / "manifest.json").read_text())["shards"]
    assert [e.get("versions") for e in entries] == [None, None, byte_versions(), byte_versions()]
    files = {k: v for k, v in result_bytes(run).items() if k.startswith("shards/")}
    assert files == {k: v for k, v in result_bytes(reference).items() if k.startswith("shards/")}
    check = _cli("verify", run)
    assert check.exit_code == 0, check.output  # a warning, not damage
    assert "mixed versions" in check.stdout and "shards 2, 3" in check.stdout and "numpy" in check.stdout
    assert "OK" in check.stdout


def test_library_resume_refuses_too(reference, tmp_path):
    from trajgen.store.rundir import RunError

    run = _interrupted_copy(reference, tmp_path / "run")
    _pretend_recorded(run, zlib="0.9")
    with pytest.raises(RunError, match="zlib 0.9 →"):
        resume(run, workers=1)
    summary = resume(run, workers=1, allow_version_change=True)
    assert summary.made_shards == 2


def test_a_worker_with_other_versions_writes_no_shard(reference, tmp_path, monkeypatch):
    from trajgen.making.shardmaker import WorkerVersionError

    run = _interrupted_copy(reference, tmp_path / "run")
    wanted = byte_versions()
    monkeypatch.setenv(OVERRIDE_ENV, "opencv=0.1")
    with pytest.raises(WorkerVersionError, match="opencv .*0.1"):
        produce_shard(CONFIG, str(run), 3, versions=wanted)
    assert not (run / "shards" / "shard-00003.npz").exists()
    assert list((run / ".tmp").iterdir()) == []


def test_verify_deep_says_when_it_regenerates_under_other_versions(reference, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    same = _cli("verify", run, "--deep")
    assert same.exit_code == 0 and "versions" not in same.stdout.split("deep:")[1], same.stdout
    _pretend_recorded(run, numpy="1.0.0")
    other = _cli("verify", run, "--deep")
    assert other.exit_code == 0, other.output
    assert f"numpy 1.0.0 → {byte_versions()['numpy']}" in other.stdout and "version" in other.stdout.split("deep:")[1]
