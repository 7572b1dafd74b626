"""The run directory through the library: layout, manifest, shards, resume, status, lock."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from runtools import assert_same_run, result_bytes
from trajgen import GenerationConfig, make_sample
from trajgen.making import RunLockedError, generate, resume, run_status
from trajgen.store.checksums import sha256_file
from trajgen.store.rundir import RunError
from trajgen.store.shards import read_shard

SMALL = GenerationConfig(n=42, checkpoint_every=10, seed=3)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    generate(SMALL, out, workers=1)
    return out


def test_run_directory_layout(reference):
    names = sorted(p.name for p in reference.iterdir())
    assert names == [
        ".lock",
        ".tmp",
        "PROGRESS.txt",
        "config.json",
        "manifest.json",
        "progress.json",
        "run.log",
        "shards",
    ]
    assert sorted(p.name for p in (reference / "shards").iterdir()) == [f"shard-0000{k}.npz" for k in range(5)]
    assert list((reference / ".tmp").iterdir()) == []
    assert GenerationConfig.from_dict(json.loads((reference / "config.json").read_text())["config"]) == SMALL


def test_manifest_lists_every_shard_with_checksum(reference):
    m = json.loads((reference / "manifest.json").read_text())
    assert m["format"] == "trajgen-run/2" and m["status"] == "complete"
    assert m["classes"] == list(SMALL.classes) and m["total_samples"] == 42
    assert m["checkpoint_every"] == 10 and m["num_shards"] == 5
    assert GenerationConfig.from_dict(m["config"]) == SMALL
    for k, entry in enumerate(m["shards"]):
        path = reference / entry["file"]
        assert entry["index"] == k and entry["file"] == f"shards/shard-{k:05d}.npz"
        assert entry["start"] == 10 * k and entry["count"] == min(10, 42 - 10 * k)
        assert entry["sha256"] == sha256_file(path) and entry["bytes"] == path.stat().st_size
        counts = list(entry["class_counts"].values())
        assert sum(counts) == entry["count"] and max(counts) - min(counts) <= 1


def test_shards_hold_make_sample_output_in_index_order(reference):
    arrays = read_shard(reference / "shards" / "shard-00004.npz")
    assert list(arrays["index"]) == [40, 41]
    for row, i in enumerate(arrays["index"]):
        s = make_sample(SMALL, int(i))
        np.testing.assert_array_equal(arrays["videos"][row], s.video)
        np.testing.assert_array_equal(arrays["trajectory_3d"][row], s.trajectory_3d)
        np.testing.assert_array_equal(arrays["points_2d"][row], s.points_2d)
        np.testing.assert_array_equal(arrays["camera"][row], s.camera)
        assert arrays["labels"][row] == s.label
        assert arrays["equations"][row] == s.equation and arrays["descriptions"][row] == s.description


def test_shards_load_with_plain_numpy(reference):
    with np.load(reference / "shards" / "shard-00000.npz") as z:
        assert set(z.files) == {
            "videos",
            "labels",
            "index",
            "trajectory_3d",
            "points_2d",
            "camera",
            "equations",
            "descriptions",
        }
        assert z["videos"].shape == (10, 16, 64, 64, 3)


def test_progress_file_says_complete(reference):
    text = (reference / "PROGRESS.txt").read_text()
    assert text.startswith("trajgen COMPLETE 100.0%")
    assert "Completed: 42 / 42 (100.0%)" in text and "Last update:" in text


def test_run_log_has_one_line_per_event(reference):
    lines = (reference / "run.log").read_text().splitlines()
    assert "start" in lines[0]
    assert sum("committed shard" in line for line in lines) == 5
    assert "complete" in lines[-1]


def test_resume_of_complete_run_is_a_no_op(reference, tmp_path):
    before = result_bytes(reference)
    summary = resume(reference, workers=1)
    assert summary.made_shards == 0 and summary.already_complete
    assert result_bytes(reference) == before


def test_resume_remakes_only_missing_shards_identically(reference, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(reference, copy)
    m = json.loads((copy / "manifest.json").read_text())
    m["shards"] = [s for s in m["shards"] if s["index"] not in (1, 3)]
    m["status"] = "running"
    (copy / "manifest.json").write_text(json.dumps(m))
    (copy / "shards" / "shard-00003.npz").write_bytes(b"half a shard")  # an unlisted, torn file
    summary = resume(copy, workers=1)
    assert summary.made_shards == 2
    assert_same_run(copy, reference)


def test_checkpoint_every_changes_layout_not_samples(reference, tmp_path):
    other = tmp_path / "other"
    generate(SMALL.replace(checkpoint_every=7), other, workers=1)

    def concat(run, key):
        shards = sorted((run / "shards").glob("*.npz"))
        return np.concatenate([read_shard(p)[key] for p in shards])

    for key in ("videos", "index", "labels", "camera"):
        np.testing.assert_array_equal(concat(reference, key), concat(other, key))


def test_existing_run_is_not_overwritten(reference):
    before = result_bytes(reference)
    with pytest.raises(RunError, match="already holds a run"):
        generate(SMALL, reference, workers=1)
    assert result_bytes(reference) == before


def test_second_writer_is_refused_naming_the_holder(tmp_path):
    run = tmp_path / "run"
    generate(SMALL.replace(n=8, checkpoint_every=8), run, workers=1)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import sys, time
            from trajgen.store import lock_file
            fd = lock_file.try_lock({str(run / ".lock")!r}, "pid 4242 on testhost")
            print("locked" if fd is not None else "busy", flush=True)
            time.sleep(30)
        """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunLockedError, match="pid 4242 on testhost"):
            resume(run, workers=1)
        assert run_status(run).state == "COMPLETE"
    finally:
        holder.kill()
        holder.wait()
    assert resume(run, workers=1).already_complete  # the lock died with its holder


def test_status_of_complete_and_interrupted_runs(reference, tmp_path):
    import shutil

    st = run_status(reference)
    assert st.state == "COMPLETE" and st.completed_samples == 42
    assert "trajgen COMPLETE 100.0%" in st.text

    copy = tmp_path / "run"
    shutil.copytree(reference, copy)
    m = json.loads((copy / "manifest.json").read_text())
    m["shards"], m["status"] = m["shards"][:2], "running"
    (copy / "manifest.json").write_text(json.dumps(m))
    progress = json.loads((copy / "progress.json").read_text())
    progress["state"] = "RUNNING"
    (copy / "progress.json").write_text(json.dumps(progress))
    st = run_status(copy)
    assert st.state == "INTERRUPTED" and st.completed_samples == 20
    assert f"trajgen resume {copy}" in st.text
    assert st.to_json()["state"] == "INTERRUPTED"


@pytest.mark.parametrize(
    "setup,message",
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.mkdir(), "is not a trajgen run"),
        (
            lambda p: (p.mkdir(), (p / "config.json").write_text("{}"), (p / "manifest.json").write_text("{not json")),
            "manifest.json",
        ),
    ],
)
def test_resume_and_status_on_bad_directories(tmp_path, setup, message):
    path = tmp_path / "bad"
    setup(path)
    before = sorted(os.listdir(path)) if path.exists() else None
    for call in (lambda: resume(path, workers=1), lambda: run_status(path)):
        with pytest.raises(RunError, match=message):
            call()
    assert (sorted(os.listdir(path)) if path.exists() else None) == before


def test_manifest_is_json_with_one_shard_per_line(reference):
    text = (reference / "manifest.json").read_text()
    assert json.loads(text)["num_shards"] == 5
    shard_lines = [line for line in text.splitlines() if line.strip().startswith('{"index"')]
    assert len(shard_lines) == 5
    from trajgen.store.manifest import manifest_bytes

    assert manifest_bytes(json.loads(text)) == text.encode()  # a pure function of the content


@pytest.mark.parametrize(
    "damage",
    [
        lambda e: e.pop("sha256"),
        lambda e: e.update(count="ten"),
        lambda e: e.update(file="shards/elsewhere.npz"),
        lambda e: e.update(start=3),
    ],
)
def test_a_damaged_shard_entry_is_a_clear_error(reference, tmp_path, damage):
    import shutil

    from trajgen import open_run

    copy = tmp_path / "run"
    shutil.copytree(reference, copy)
    m = json.loads((copy / "manifest.json").read_text())
    damage(m["shards"][2])
    (copy / "manifest.json").write_text(json.dumps(m))
    for call in (lambda: open_run(copy), lambda: run_status(copy), lambda: resume(copy, workers=1)):
        with pytest.raises(RunError, match="manifest.json.*commit record is damaged"):
            call()
