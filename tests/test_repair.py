"""repair: a finished run's missing or damaged shards are made again, checked against the
manifest's sha256, and only then put in place."""

import json

import pytest

from runtools import result_bytes, run_cli, snapshot_tree
from trajgen import GenerationConfig
from trajgen.making import generate
from trajgen.making.repair import repair_run
from trajgen.use.verify import verify_run

SMALL = GenerationConfig(n=40, checkpoint_every=10, seed=5, frames=6, size=16)


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    out = tmp_path_factory.mktemp("repair") / "good"
    generate(SMALL, out, workers=1)
    return out


def shard(run, k):
    return run / "shards" / f"shard-{k:05d}.npz"


def test_missing_and_damaged_shards_are_remade_to_the_same_bytes(good, run):
    shard(run, 1).unlink()
    data = bytearray(shard(run, 3).read_bytes())
    data[len(data) // 2] ^= 0x10
    shard(run, 3).write_bytes(bytes(data))
    assert not verify_run(run).ok

    result = repair_run(run)

    assert [name for name, _ in result.repaired] == ["shards/shard-00001.npz", "shards/shard-00003.npz"]
    assert result.refused == [] and result.ok
    assert result_bytes(run) == result_bytes(good)
    assert verify_run(run).ok
    assert "repaired shard 1" in (run / "run.log").read_text()


def test_a_healthy_run_needs_nothing(good, run):
    before = snapshot_tree(run)
    result = repair_run(run)
    assert result.repaired == [] and result.refused == [] and result.ok
    assert "nothing to repair" in result.text
    assert snapshot_tree(run) == before


def test_a_shard_that_regenerates_to_other_bytes_is_reported_not_installed(run):
    # as if another generator made the run: the manifest records bytes this one cannot make
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["shards"][2]["sha256"] = "0" * 64
    (run / "manifest.json").write_text(json.dumps(manifest))
    shard(run, 2).unlink()
    result = repair_run(run)
    assert result.repaired == [] and not result.ok
    assert [name for name, _ in result.refused] == ["shards/shard-00002.npz"]
    assert not shard(run, 2).exists()  # nothing unverified is put in place
    assert "versions" in result.text


def test_cli_repairs_and_says_what_it_fixed(good, run):
    shard(run, 0).write_bytes(b"")
    result = run_cli("repair", run)
    assert result.returncode == 0, result.stderr
    assert "shards/shard-00000.npz" in result.stdout and "1 shard" in result.stdout
    assert result_bytes(run) == result_bytes(good)
    assert run_cli("verify", run).returncode == 0


def test_cli_refusal_is_one_error_line(run):
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["shards"][0]["sha256"] = "f" * 64
    (run / "manifest.json").write_text(json.dumps(manifest))
    shard(run, 0).unlink()
    result = run_cli("repair", run)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "shard-00000" in errors[0], result.stderr
    assert "Traceback" not in result.stderr


def test_repair_of_a_run_in_use_is_refused(good, run):
    import os

    from trajgen.store import lock_file

    fd = lock_file.try_lock(run / ".lock", "pid 4242 on box")
    try:
        result = run_cli("repair", run)
    finally:
        os.close(fd)
    assert result.returncode == 1 and "in use" in result.stderr


@pytest.mark.parametrize("codec", [None, {"name": "isal-deflate", "version": "2.32.1", "level": 1}])
def test_a_codec_this_trajgen_cannot_make_is_one_error_line_and_nothing_changes(run, codec):
    manifest = json.loads((run / "manifest.json").read_text())
    if codec is None:
        del manifest["codec"]
    else:
        manifest["codec"] = codec
    (run / "manifest.json").write_text(json.dumps(manifest))
    shard(run, 1).unlink()
    unlocked = lambda: {k: v for k, v in snapshot_tree(run).items() if k != ".lock"}  # noqa: E731 (.lock names its holder)
    before = unlocked()
    result = run_cli("repair", run)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "backup" in lines[0], result.stderr
    assert unlocked() == before
