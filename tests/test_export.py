"""export: one .npz in the training code's schema, streamed shard by shard."""

import json
import re
import zipfile

import numpy as np
import pytest

from runtools import run_cli, snapshot_tree
from trajgen import GenerationConfig
from trajgen.errors import TrajgenError
from trajgen.making import generate
from trajgen.store.rundir import RunError
from trajgen.store.shards import SHARD_KEYS, read_shard
from trajgen.use.export import export_run
from trajgen.use.verify import verify_run

SMALL = GenerationConfig(n=40, checkpoint_every=10, seed=21, frames=6, size=16)
EXPORT_KEYS = {"videos", "labels", "trajectory_3d", "equations", "descriptions", "points_2d", "index", "camera"}


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "run"
    generate(SMALL, out, workers=1)
    return out


def shard_contents(run_dir):
    parts = [read_shard(p) for p in sorted((run_dir / "shards").glob("shard-*.npz"))]
    return {key: np.concatenate([p[key] for p in parts]) for key in SHARD_KEYS}


def load(path):
    with np.load(path, allow_pickle=False) as z:
        return {key: z[key] for key in z.files}


def test_default_export_nthwc_uint8_equals_the_shards(run):
    path = export_run(run)
    assert path.parent == run
    assert re.fullmatch(r"\d{8}_\d{4}_dataset_40_validated\.npz", path.name)
    data, whole = load(path), shard_contents(run)
    assert set(data) == EXPORT_KEYS
    assert data["videos"].dtype == np.uint8 and data["videos"].shape == (40, 6, 16, 16, 3)
    for key in EXPORT_KEYS:
        np.testing.assert_array_equal(data[key], whole[key])
        assert data[key].dtype.kind == whole[key].dtype.kind
    assert list((run / ".tmp").iterdir()) == []
    assert verify_run(run).ok  # the export lives beside the shards without making the run look damaged


def test_export_ntchw_float32_is_the_old_layout(run, tmp_path):
    path = export_run(run, tmp_path / "old.npz", layout="ntchw", dtype="float32")
    assert path == tmp_path / "old.npz"
    data, whole = load(path), shard_contents(run)
    assert data["videos"].dtype == np.float32 and data["videos"].shape == (40, 6, 3, 16, 16)
    expected = whole["videos"].transpose(0, 1, 4, 2, 3).astype(np.float32) / np.float32(255)
    np.testing.assert_array_equal(data["videos"], expected)
    assert 0.0 <= data["videos"].min() and data["videos"].max() <= 1.0
    for key in EXPORT_KEYS - {"videos"}:
        np.testing.assert_array_equal(data[key], whole[key])


def test_export_nthwc_float32_and_ntchw_uint8(run, tmp_path):
    whole = shard_contents(run)
    a = load(export_run(run, tmp_path / "a.npz", layout="nthwc", dtype="float32"))["videos"]
    np.testing.assert_array_equal(a, whole["videos"].astype(np.float32) / np.float32(255))
    b = load(export_run(run, tmp_path / "b.npz", layout="ntchw", dtype="uint8"))["videos"]
    np.testing.assert_array_equal(b, whole["videos"].transpose(0, 1, 4, 2, 3))


def test_export_is_byte_identical_whatever_the_shard_size(good, tmp_path):
    other = tmp_path / "other"
    generate(SMALL.replace(checkpoint_every=7), other, workers=1)
    a = export_run(good, tmp_path / "a.npz")
    b = export_run(other, tmp_path / "b.npz")
    assert a.read_bytes() == b.read_bytes()


def test_export_is_a_plain_npz_with_stored_members(run, tmp_path):
    path = export_run(run, tmp_path / "x.npz")
    with zipfile.ZipFile(path) as z:
        assert {i.filename for i in z.infolist()} == {f"{k}.npy" for k in EXPORT_KEYS}
        assert z.testzip() is None


def test_export_is_deflated_at_the_runs_level_unless_told(run, tmp_path):
    deflated = export_run(run, tmp_path / "d.npz")
    stored = export_run(run, tmp_path / "s.npz", compress_level=0)
    with zipfile.ZipFile(deflated) as z:
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_DEFLATED}
    with zipfile.ZipFile(stored) as z:
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_STORED}
    assert deflated.stat().st_size * 5 < stored.stat().st_size
    a, b = load(deflated), load(stored)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_refuses_to_overwrite_without_force(run, tmp_path):
    target = tmp_path / "taken.npz"
    target.write_bytes(b"precious")
    with pytest.raises(TrajgenError, match="already exists.*--force"):
        export_run(run, target)
    assert target.read_bytes() == b"precious"
    export_run(run, target, force=True)
    assert load(target)["labels"].shape == (40,)


def test_checks_free_space_first(run, tmp_path, monkeypatch):
    monkeypatch.setenv("TRAJGEN_FREE_BYTES", "1000")
    with pytest.raises(TrajgenError, match="not enough free space"):
        export_run(run, tmp_path / "big.npz")
    assert list(tmp_path.glob("big*")) == [] and list(tmp_path.glob(".big*")) == []


def test_incomplete_run_is_refused(run, tmp_path):
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["shards"] = manifest["shards"][:3]
    manifest["status"] = "running"
    (run / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RunError, match="3 of 4 shards.*trajgen resume"):
        export_run(run, tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists()


def test_damaged_shard_stops_the_export_and_leaves_nothing(run, tmp_path):
    data = bytearray((run / "shards" / "shard-00002.npz").read_bytes())
    data[100] ^= 0xFF
    (run / "shards" / "shard-00002.npz").write_bytes(bytes(data))
    with pytest.raises(TrajgenError, match="shard-00002.npz.*sha256"):
        export_run(run, tmp_path / "x.npz")
    assert list(tmp_path.iterdir()) == [run]


def test_bad_layout_or_dtype(run):
    with pytest.raises(ValueError, match="layout"):
        export_run(run, layout="nchw")
    with pytest.raises(ValueError, match="dtype"):
        export_run(run, dtype="float16")


def test_cli_export_and_refusal(run, tmp_path):
    target = tmp_path / "cli.npz"
    result = run_cli("export", run, "-o", target, "--layout", "ntchw", "--dtype", "float32")
    assert result.returncode == 0, result.stderr
    assert str(target) in result.stdout
    assert load(target)["videos"].shape == (40, 6, 3, 16, 16)
    before = snapshot_tree(tmp_path)
    again = run_cli("export", run, "-o", target)
    assert again.returncode == 1
    assert again.stderr.startswith("Error: ") and "--force" in again.stderr and "Traceback" not in again.stderr
    assert snapshot_tree(tmp_path) == before
    forced = run_cli("export", run, "-o", target, "--force")
    assert forced.returncode == 0, forced.stderr
    assert load(target)["videos"].dtype == np.uint8


def test_cli_export_bad_input(tmp_path):
    missing = run_cli("export", tmp_path / "nope")
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    assert list(tmp_path.iterdir()) == []
    bad = run_cli("export", tmp_path, "--layout", "nchw")
    assert bad.returncode == 2 and "nchw" in bad.stderr


def test_generate_with_export(tmp_path):
    out = tmp_path / "run"
    result = run_cli(
        "generate",
        "--n",
        12,
        "--checkpoint-every",
        5,
        "--frames",
        4,
        "--size",
        16,
        "--workers",
        1,
        "--out",
        out,
        "--export",
    )
    assert result.returncode == 0, result.stderr
    exports = list(out.glob("*_dataset_12_validated.npz"))
    assert len(exports) == 1 and f"Exported {exports[0]}" in result.stdout
    assert load(exports[0])["videos"].shape == (12, 4, 16, 16, 3)


def test_out_may_be_a_directory(run, tmp_path):
    target = tmp_path / "exports"
    target.mkdir()
    path = export_run(run, target)
    assert path.parent == target and path.name.endswith("_dataset_40_validated.npz")


def test_a_stop_while_a_member_is_being_opened_raises_the_stop_and_leaves_nothing(run, tmp_path, monkeypatch):
    # a signal inside zipfile's open() leaves a member handle open: closing the zip then raised
    # "Can't close the ZIP file while there is an open writing handle" over the stop (a traceback)
    from trajgen.use import export

    class Stop(BaseException):
        pass

    left_open = []

    def open_then_stop(zf, key, *args):
        left_open.append(zf.open(export.zip_member(f"{key}.npy", 1), "w", force_zip64=True))
        raise Stop

    monkeypatch.setattr(export, "_write_member", open_then_stop)
    exports = tmp_path / "exports"
    exports.mkdir()
    with pytest.raises(Stop):
        export_run(run, exports / "out.npz")
    assert list(exports.iterdir()) == []
