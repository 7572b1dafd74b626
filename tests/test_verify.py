"""verify: a good run passes; each kind of damage is found and named."""

import json
import shutil

import pytest

from runtools import run_cli, snapshot_tree
from trajgen import GenerationConfig
from trajgen.making import generate
from trajgen.store.rundir import RunError
from trajgen.store.shards import read_shard, write_shard
from trajgen.use.verify import verify_run

SMALL = GenerationConfig(n=40, checkpoint_every=10, seed=11, frames=6, size=16)


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    out = tmp_path_factory.mktemp("verify") / "good"
    generate(SMALL, out, workers=1)
    return out


def shard(run, k):
    return run / "shards" / f"shard-{k:05d}.npz"


def rewrite_shard(run, k, mutate):
    """Change a shard's arrays and re-commit it with a correct checksum, so only content checks can notice."""
    arrays = read_shard(shard(run, k))
    mutate(arrays)
    info = write_shard(shard(run, k), arrays, SMALL.compress_level, run / ".tmp")
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["shards"][k].update(sha256=info.sha256, bytes=info.bytes)
    (run / "manifest.json").write_text(json.dumps(manifest))


def problems_for(report, name):
    return [p.message for p in report.problems if p.file == name]


def test_good_run_passes(good):
    report = verify_run(good)
    assert report.ok, report.text
    assert report.problems == []
    assert report.checked_samples == 40 and report.checked_shards == 4
    assert "OK" in report.text


def test_good_run_passes_deep(good):
    report = verify_run(good, deep=True, deep_samples=12)
    assert report.ok, report.text
    assert report.deep_checked == 12


def test_flipped_byte(run):
    data = bytearray(shard(run, 2).read_bytes())
    data[len(data) // 2] ^= 0x01
    shard(run, 2).write_bytes(bytes(data))
    report = verify_run(run)
    assert not report.ok
    messages = problems_for(report, "shards/shard-00002.npz")
    assert any("sha256" in m for m in messages), report.text
    assert "shards/shard-00002.npz" in report.text
    assert all(p.file == "shards/shard-00002.npz" for p in report.problems)


def test_truncated_shard(run):
    data = shard(run, 1).read_bytes()
    shard(run, 1).write_bytes(data[: len(data) // 3])
    report = verify_run(run)
    messages = problems_for(report, "shards/shard-00001.npz")
    assert not report.ok and any("size" in m and "bytes" in m for m in messages), report.text
    assert any("unreadable" in m for m in messages), report.text


def test_missing_shard(run):
    shard(run, 3).unlink()
    report = verify_run(run)
    assert not report.ok
    assert any("missing" in m for m in problems_for(report, "shards/shard-00003.npz")), report.text


def test_unlisted_shard_and_stray_files(run):
    shutil.copy(shard(run, 0), run / "shards" / "shard-00009.npz")
    (run / "notes.txt").write_text("hello")
    (run / ".tmp" / "leftover.tmp").write_bytes(b"x")
    report = verify_run(run)
    assert not report.ok
    assert any("not listed" in m for m in problems_for(report, "shards/shard-00009.npz")), report.text
    assert any("stray" in m for m in problems_for(report, "notes.txt")), report.text
    assert any("in-flight" in m or "stray" in m for m in problems_for(report, ".tmp/leftover.tmp")), report.text


def test_duplicated_sample_across_shards(run):
    first_video = read_shard(shard(run, 0))["videos"][1].copy()

    def copy_over(arrays):
        arrays["videos"][2] = first_video

    rewrite_shard(run, 3, copy_over)
    report = verify_run(run)
    assert not report.ok
    dup = [p for p in report.problems if "duplicate" in p.message]
    assert len(dup) == 1, report.text
    assert dup[0].file == "shards/shard-00003.npz"
    assert "index 32" in dup[0].message and "index 1" in dup[0].message and "shard-00000.npz" in dup[0].message


def test_points_out_of_frame(run):
    def push_out(arrays):
        arrays["points_2d"][4, 2] = (-3.0, 5.0)

    rewrite_shard(run, 0, push_out)
    report = verify_run(run)
    assert not report.ok
    assert any("out of frame" in m and "4" in m for m in problems_for(report, "shards/shard-00000.npz")), report.text


def test_bad_labels_and_index_order(run):
    def damage(arrays):
        arrays["labels"][0] = 9
        arrays["index"][[1, 2]] = arrays["index"][[2, 1]]

    rewrite_shard(run, 1, damage)
    messages = problems_for(verify_run(run), "shards/shard-00001.npz")
    assert any("label" in m for m in messages), messages
    assert any("index" in m and "order" in m for m in messages), messages


def test_class_counts_disagree_with_manifest(run):
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["shards"][2]["class_counts"] = {"linear": 10, "circular": 0, "helical": 0, "parabolic": 0}
    (run / "manifest.json").write_text(json.dumps(manifest))
    report = verify_run(run)
    assert any("class" in m for m in problems_for(report, "shards/shard-00002.npz")), report.text


def test_deep_finds_content_that_differs_from_make_sample(run):
    def nudge(arrays):
        arrays["trajectory_3d"][5, 0, 0] += 1.0

    rewrite_shard(run, 2, nudge)
    assert verify_run(run).ok  # nothing else can notice
    report = verify_run(run, deep=True, deep_samples=40)
    assert not report.ok
    assert any("index 25" in m and "trajectory_3d" in m for m in problems_for(report, "shards/shard-00002.npz")), (
        report.text
    )


def test_incomplete_run_is_reported(run):
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["shards"] = manifest["shards"][:2]
    manifest["status"] = "running"
    (run / "manifest.json").write_text(json.dumps(manifest))
    for k in (2, 3):
        shard(run, k).unlink()
    report = verify_run(run)
    assert not report.ok
    assert "2 of 4 shards" in report.text and "trajgen resume" in report.text


def test_missing_run_raises(tmp_path):
    with pytest.raises(RunError, match="does not exist"):
        verify_run(tmp_path / "nope")


def test_cli_verify_good_and_damaged(good, run):
    ok = run_cli("verify", good)
    assert ok.returncode == 0, ok.stderr
    assert "OK" in ok.stdout and ok.stderr == ""
    shard(run, 0).write_bytes(b"")
    before = snapshot_tree(run)
    bad = run_cli("verify", run)
    assert bad.returncode == 1
    assert "shards/shard-00000.npz" in bad.stdout
    assert bad.stderr.startswith("Error: ") and len(bad.stderr.strip().splitlines()) == 1
    assert snapshot_tree(run) == before  # verify only reads


def test_cli_verify_missing_dir(tmp_path):
    result = run_cli("verify", tmp_path / "nope")
    assert result.returncode == 1
    assert result.stderr.startswith("Error: ") and "does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_in_progress_skips_in_flight_files(run):
    from trajgen.store import lock_file

    manifest = json.loads((run / "manifest.json").read_text())
    manifest["shards"], manifest["status"] = manifest["shards"][:3], "running"
    (run / "manifest.json").write_text(json.dumps(manifest))
    (run / ".tmp" / "shard-00003.npz.123.tmp").write_bytes(b"half")
    fd = lock_file.try_lock(run / ".lock", "pid 1 on test")
    try:
        report = verify_run(run)
    finally:
        import os

        os.close(fd)
    assert [p.file for p in report.problems] == ["manifest.json"]
    assert "still being written" in report.problems[0].message
    assert report.checked_shards == 3 and "in progress" in report.text


def test_malformed_manifest_entry_is_reported(run):
    manifest = json.loads((run / "manifest.json").read_text())
    del manifest["shards"][1]["sha256"]
    manifest["shards"].append(dict(manifest["shards"][0]))
    (run / "manifest.json").write_text(json.dumps(manifest))
    messages = problems_for(verify_run(run), "manifest.json")
    assert any("malformed" in m for m in messages) and any("twice" in m for m in messages), messages


# ---------------------------------------------------------------- damage or generation

BLANK = GenerationConfig(n=40, checkpoint_every=10, seed=11, frames=4, size=16, color=(255, 255, 255))


@pytest.fixture(scope="module")
def blank(tmp_path_factory):
    """A run whose config itself makes duplicate videos: the dot is drawn in the background's colour."""
    out = tmp_path_factory.mktemp("verify_blank") / "run"
    generate(BLANK, out, workers=1)
    return out


def test_duplicates_made_by_the_config_are_not_damage(blank):
    report = verify_run(blank, deep=True, deep_samples=40)
    assert not report.ok  # still a failed check
    dups = [p for p in report.problems if "duplicate video" in p.message]
    assert len(dups) == 39 and all(p.kind == "generation" for p in dups), report.text
    assert not any(p.kind == "damage" for p in report.problems), report.text
    assert "backup" not in report.summary and "repair" not in report.summary
    assert "the config that made this run produces duplicate videos" in report.summary, report.summary
    assert "colour" in report.summary, report.summary
    assert "not damage" in report.text
    shown = [line for line in report.text.splitlines() if "duplicate video:" in line]
    assert len(shown) == 20 and report.text.endswith("... and 19 more duplicate videos"), report.text


def test_duplicates_under_other_versions_are_judged_by_the_bytes(blank, tmp_path, monkeypatch):
    """Installed versions differ from the run's: make_sample may differ for that alone, so it is not asked."""
    import trajgen.use.verify

    copy = tmp_path / "run"
    shutil.copytree(blank, copy)
    recorded = json.loads((copy / "config.json").read_text())
    recorded["versions"] = {**recorded.get("versions", {}), "numpy": "0.0.1"}
    (copy / "config.json").write_text(json.dumps(recorded))

    def no_regeneration(*args, **kwargs):
        raise AssertionError("make_sample called although the versions differ")

    monkeypatch.setattr(trajgen.use.verify, "make_sample", no_regeneration)
    report = verify_run(copy)
    dups = [p for p in report.problems if "duplicate video" in p.message]
    assert len(dups) == 39 and all(p.kind == "generation" for p in dups), report.text


def test_deep_mismatch_is_damage_only_under_the_run_s_own_versions(run):
    def nudge(arrays):
        arrays["trajectory_3d"][5, 0, 0] += 1.0

    rewrite_shard(run, 2, nudge)
    mismatch = [
        p for p in verify_run(run, deep=True, deep_samples=40).problems if "differs from make_sample" in p.message
    ]
    assert [p.kind for p in mismatch] == ["damage"]
    recorded = json.loads((run / "config.json").read_text())
    recorded["versions"] = {**recorded.get("versions", {}), "numpy": "0.0.1"}
    (run / "config.json").write_text(json.dumps(recorded))
    report = verify_run(run, deep=True, deep_samples=40)
    mismatch = [p for p in report.problems if "differs from make_sample" in p.message]
    assert [p.kind for p in mismatch] == ["other"], report.text
    assert "backup" not in report.summary and "version effect" in report.text, report.text


def test_generation_advice_names_the_settings_that_are_too_small():
    from trajgen.use.verify_report import GENERATION, Problem, _generation_advice

    made = [Problem("shards/shard-00001.npz", "duplicate video: index 14 is the same video as index 4", GENERATION)]
    advice = _generation_advice(GenerationConfig(frames=2, size=8), made)
    assert "(--frames 2 --size 8 is too small to make every sample distinct)" in advice, advice
    assert "more --frames or a larger --size" in advice and "backup" not in advice
    advice = _generation_advice(GenerationConfig(frames=2, size=8, coverage=1e-300), made)
    assert "--frames 2 --size 8 --coverage 1e-300 is too small" in advice and "larger --coverage" in advice, advice
    assert "do not vary enough" in _generation_advice(GenerationConfig(), made)


def test_cli_tiny_config_never_gets_damage_advice(tmp_path):
    """--frames 2 --size 8 (and --coverage 1e-300): duplicates, if any, are the config's, not damage.
    With the framing's jitter and placement off, every path is a point in the centre: all duplicates."""
    collapsed = ["--coverage", "1e-300", "--coverage-jitter", "0", "--placement", "0"]
    for extra in ([], ["--coverage", "1e-300"], collapsed):
        out = tmp_path / f"run{len(extra)}"
        made = run_cli(
            "generate", "--n", 40, "--checkpoint-every", 10, "--frames", 2, "--size", 8, *extra, "--out", out, "--quiet"
        )
        assert made.returncode == 0, made.stderr
        result = run_cli("verify", "--deep", out)
        if result.returncode == 0 and extra != collapsed:  # every video distinct: nothing to advise
            assert "OK" in result.stdout
            continue
        assert result.returncode == 1
        error = result.stderr.strip()
        assert error.startswith("Error: ") and len(error.splitlines()) == 1, error
        assert "backup" not in error and "generate again" in error and "--frames 2 --size 8" in error, error
        assert "duplicate video" in result.stdout and "(made by the config, not damage)" in result.stdout
        if extra:
            assert "--coverage 1e-300" in error, error


def test_damaged_bytes_get_damage_advice(run):
    data = bytearray(shard(run, 2).read_bytes())
    data[len(data) // 2] ^= 0x01
    shard(run, 2).write_bytes(bytes(data))
    report = verify_run(run)
    assert [p.kind for p in report.problems] == ["damage"] * len(report.problems), report.text
    assert f"trajgen repair {run}" in report.summary and "backup" in report.summary, report.summary


def test_duplicate_in_a_rewritten_shard_is_damage(run):
    """The bytes match the manifest, but make_sample makes another video for that index: not the config's doing."""
    first_video = read_shard(shard(run, 0))["videos"][1].copy()

    def copy_over(arrays):
        arrays["videos"][2] = first_video

    rewrite_shard(run, 3, copy_over)
    report = verify_run(run)
    dup = [p for p in report.problems if "duplicate" in p.message]
    assert len(dup) == 1 and dup[0].kind == "damage", report.text
    assert "make_sample" in dup[0].message
    assert "backup" in report.summary, report.summary


def test_imbalance_in_matching_shards_is_from_generation(run):
    def relabel(arrays):
        arrays["labels"][:] = 0

    rewrite_shard(run, 1, relabel)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["shards"][1]["class_counts"] = {"linear": 10, "circular": 0, "helical": 0, "parabolic": 0}
    (run / "manifest.json").write_text(json.dumps(manifest))
    report = verify_run(run)
    unbalanced = [p for p in report.problems if "unbalanced" in p.message]
    assert unbalanced and all(p.kind == "generation" for p in unbalanced), report.text
    assert not any(p.kind == "damage" for p in report.problems), report.text
    assert "backup" not in report.summary and "made" in report.summary, report.summary


def test_missing_indices_are_damage(run):
    def gap(arrays):
        arrays["index"][3] = 999

    rewrite_shard(run, 0, gap)
    report = verify_run(run)
    assert any("index is incomplete" in p.message and p.kind == "damage" for p in report.problems), report.text


def test_report_files_are_allowed_in_the_run(run):
    (run / "report.html").write_text("<html></html>")
    (run / "report.json").write_text("{}")
    report = verify_run(run)
    assert report.ok, report.text


# ---------------------------------------------------------------- video hashes


def crc64_xz(data: bytes) -> int:
    """CRC-64/XZ (ECMA-182, reflected), bit by bit: the reference the fast one must equal."""
    crc = 0xFFFFFFFFFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0xC96C5795D7870F42 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFFFFFFFFFF


def test_video_hashes_are_each_videos_crc64():
    import numpy as np

    from trajgen.store import checksums

    assert crc64_xz(b"123456789") == 0x995DC9BBDF1939FA  # the published check value
    videos = np.random.default_rng(3).integers(0, 256, (3, 2, 8, 8, 3), dtype=np.uint8)
    videos[2] = videos[0]
    hashes = checksums.video_hashes(videos)
    assert hashes.dtype == np.uint64 and hashes.tolist() == [crc64_xz(v.tobytes()) for v in videos]


@pytest.mark.parametrize("fast", [True, False], ids=["isal-crc64", "blake2b-fallback"])
def test_equal_videos_hash_equal_and_any_changed_byte_changes_the_hash(fast, monkeypatch):
    import numpy as np

    from trajgen.store import checksums

    if not fast:
        monkeypatch.setattr(checksums, "_crc64", lambda: None)  # python-isal without the export
    video = np.random.default_rng(4).integers(0, 256, (1, 4, 16, 16, 3), dtype=np.uint8)
    changed = np.repeat(video, video.size, axis=0)
    flat = changed.reshape(len(changed), -1)
    flat[np.arange(video.size), np.arange(video.size)] ^= 1  # one bit of one byte each
    hashes = checksums.video_hashes(np.concatenate([video, video, changed]))
    assert hashes[0] == hashes[1] and len(set(hashes[1:].tolist())) == 1 + video.size
