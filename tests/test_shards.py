"""One shard: encode, write atomically, read back, reject damage."""

import hashlib
import subprocess
import sys
import zipfile
import zlib

import numpy as np
import pytest

from trajgen.errors import CorruptShardError, TrajgenError
from trajgen.store import checksums, shards

KEYS = ("videos", "labels", "index", "trajectory_3d", "points_2d", "camera", "equations", "descriptions")


def make_arrays(n=6, t=4, size=8, k=5, seed=0, white=False):
    rng = np.random.default_rng(seed)
    if white:
        videos = np.full((n, t, size, size, 3), 255, np.uint8)
        videos[:, :, size // 2, size // 2] = 0
    else:
        videos = rng.integers(0, 256, (n, t, size, size, 3), dtype=np.uint8)
    return {
        "videos": videos,
        "labels": (np.arange(n) % 4).astype(np.int64),
        "index": np.arange(100, 100 + n, dtype=np.int64),
        "trajectory_3d": rng.normal(size=(n, t, 3)).astype(np.float32),
        "points_2d": rng.uniform(0, size, (n, t, 2)).astype(np.float32),
        "camera": rng.normal(size=(n, k)).astype(np.float32),
        "equations": np.array([f"x(t) = {i}·t" for i in range(n)]),
        "descriptions": np.array([f"sample {i}, moving in a straight line" for i in range(n)]),
    }


def assert_same(a, b):
    assert set(a) == set(b)
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        np.testing.assert_array_equal(a[key], b[key])


@pytest.fixture
def tmp(tmp_path):
    d = tmp_path / ".tmp"
    d.mkdir()
    return d


def test_shard_keys_constant():
    assert tuple(shards.SHARD_KEYS) == KEYS


def test_round_trip(tmp_path, tmp):
    arrays = make_arrays()
    path = tmp_path / "shard-00000.npz"
    info = shards.write_shard(path, arrays, 1, tmp)
    assert_same(shards.read_shard(path), arrays)
    assert info.bytes == path.stat().st_size
    assert info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert checksums.sha256_file(path) == info.sha256
    assert list(tmp.iterdir()) == []


def test_readable_by_plain_numpy_load_with_exactly_the_keys(tmp_path, tmp):
    arrays = make_arrays()
    path = tmp_path / "shard-00001.npz"
    shards.write_shard(path, arrays, 6, tmp)
    with np.load(path, allow_pickle=False) as z:
        assert sorted(z.files) == sorted(KEYS)
        loaded = {k: z[k] for k in z.files}
    assert_same(loaded, arrays)
    assert loaded["equations"].dtype.kind == "U"


def test_encode_is_byte_identical_for_identical_input():
    a = shards.encode_shard(make_arrays(seed=3), 1)
    b = shards.encode_shard(make_arrays(seed=3), 1)
    assert a == b
    assert shards.encode_shard(make_arrays(seed=4), 1) != a


def test_encode_is_byte_identical_across_processes():
    here = str(__import__("pathlib").Path(__file__).parent)
    code = (
        f"import hashlib, sys; sys.path.insert(0, {here!r}); from test_shards import make_arrays;"
        "from trajgen.store import shards;"
        "print(hashlib.sha256(shards.encode_shard(make_arrays(seed=3), 1)).hexdigest())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == hashlib.sha256(shards.encode_shard(make_arrays(seed=3), 1)).hexdigest()


def test_encode_does_not_depend_on_dict_order_or_memory_layout():
    arrays = make_arrays()
    reordered = {k: arrays[k] for k in reversed(KEYS)}
    reordered["videos"] = np.asfortranarray(arrays["videos"])
    assert shards.encode_shard(reordered, 1) == shards.encode_shard(arrays, 1)


def test_zip_members_have_fixed_metadata():
    data = shards.encode_shard(make_arrays(), 1)
    import io

    with zipfile.ZipFile(io.BytesIO(data)) as z:
        infos = z.infolist()
    assert [i.filename for i in infos] == [f"{k}.npy" for k in KEYS]
    for i in infos:
        assert i.date_time == (1980, 1, 1, 0, 0, 0)
        assert i.compress_type == zipfile.ZIP_DEFLATED


@pytest.mark.parametrize("level", [0, 1, 6, 9])
def test_compress_levels_all_load(tmp_path, tmp, level):
    arrays = make_arrays()
    path = tmp_path / f"shard-{level}.npz"
    shards.write_shard(path, arrays, level, tmp)
    assert_same(shards.read_shard(path), arrays)


def test_level_zero_is_stored():
    import io

    with zipfile.ZipFile(io.BytesIO(shards.encode_shard(make_arrays(), 0))) as z:
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_STORED}


def test_level_one_is_smaller_than_stored_for_white_frames():
    arrays = make_arrays(n=8, t=8, size=32, white=True)
    assert len(shards.encode_shard(arrays, 1)) < len(shards.encode_shard(arrays, 0)) / 4


@pytest.mark.parametrize("level", [-1, 10, 1.5])
def test_bad_compress_level(level):
    with pytest.raises(ValueError, match="compress"):
        shards.encode_shard(make_arrays(), level)


def test_empty_strings_and_single_sample(tmp_path, tmp):
    arrays = make_arrays(n=1)
    arrays["equations"] = np.array([""])
    path = tmp_path / "one.npz"
    shards.write_shard(path, arrays, 1, tmp)
    assert_same(shards.read_shard(path), arrays)


@pytest.mark.parametrize(
    "mutate, fragment",
    [
        (lambda a: a.pop("camera"), "camera"),
        (lambda a: a.__setitem__("extra", np.zeros(6)), "extra"),
        (lambda a: a.__setitem__("videos", a["videos"].astype(np.float32)), "videos"),
        (lambda a: a.__setitem__("labels", a["labels"][:5]), "labels"),
        (lambda a: a.__setitem__("index", a["index"].astype(np.int32)), "index"),
        (lambda a: a.__setitem__("trajectory_3d", a["trajectory_3d"][:, :3]), "trajectory_3d"),
        (lambda a: a.__setitem__("points_2d", a["points_2d"][..., :1]), "points_2d"),
        (lambda a: a.__setitem__("camera", a["camera"][:, 0]), "camera"),
        (lambda a: a.__setitem__("camera", a["camera"].astype(np.float64)), "camera"),
        (lambda a: a.__setitem__("equations", a["equations"].astype(object)), "equations"),
        (lambda a: a.__setitem__("descriptions", a["descriptions"].astype(bytes)), "descriptions"),
        (lambda a: a.__setitem__("videos", a["videos"][:, :, :, :, :1]), "videos"),
        (lambda a: a.__setitem__("labels", [0, 1, 2, 3, 0, 1]), "labels"),
    ],
)
def test_validate_rejects_bad_arrays(mutate, fragment):
    arrays = make_arrays()
    mutate(arrays)
    with pytest.raises(TrajgenError, match=fragment):
        shards.validate_shard_arrays(arrays)
    with pytest.raises(TrajgenError, match=fragment):
        shards.encode_shard(arrays, 1)


def test_validate_accepts_good_arrays():
    assert shards.validate_shard_arrays(make_arrays()) == 6


def _damaged(tmp_path, tmp, how):
    path = tmp_path / "shard-00007.npz"
    shards.write_shard(path, make_arrays(), 1, tmp)
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "tail-cut":
        path.write_bytes(data[:-10])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "garbage":
        path.write_bytes(b"this is not a zip file at all\n" * 10)
    elif how == "flipped":
        mid = len(data) // 3
        path.write_bytes(data[:mid] + bytes([data[mid] ^ 0xFF]) + data[mid + 1 :])
    elif how == "missing-key":
        arrays = make_arrays()
        arrays.pop("labels")
        np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("how", ["truncated", "tail-cut", "empty", "garbage", "flipped", "missing-key"])
def test_damaged_shard_raises_one_line_error_naming_the_file(tmp_path, tmp, how):
    path = _damaged(tmp_path, tmp, how)
    with pytest.raises(CorruptShardError) as caught:
        shards.read_shard(path)
    message = str(caught.value)
    assert str(path) in message
    assert "\n" not in message


def test_missing_shard_file_names_the_file(tmp_path):
    path = tmp_path / "shard-00009.npz"
    with pytest.raises(CorruptShardError, match="shard-00009.npz"):
        shards.read_shard(path)


def test_write_failure_keeps_old_shard(tmp_path, tmp, monkeypatch):
    from trajgen.store import _fs

    path = tmp_path / "shard-00000.npz"
    shards.write_shard(path, make_arrays(seed=1), 1, tmp)
    before = path.read_bytes()
    monkeypatch.setenv("TRAJGEN_FAULT", "ENOSPC@write:1")
    _fs._reset_faults()
    try:
        with pytest.raises(OSError):
            shards.write_shard(path, make_arrays(seed=2), 1, tmp)
    finally:
        monkeypatch.delenv("TRAJGEN_FAULT")
        _fs._reset_faults()
    assert path.read_bytes() == before
    assert list(tmp.iterdir()) == []


# ---------------------------------------------------------------- ISA-L deflate, a zip written by hand


def _members(data):
    """(ZipInfo, raw member payload as stored in the file) for every member."""
    import io
    import struct

    out = []
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for info in z.infolist():
            name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26 : info.header_offset + 30])
            start = info.header_offset + 30 + name_len + extra_len
            out.append((info, data[start : start + info.compress_size]))
    return out


def _real_arrays(n=24, seed=7):
    from trajgen import GenerationConfig
    from trajgen.making.shardmaker import build_shard_arrays

    return build_shard_arrays(GenerationConfig(n=n, checkpoint_every=n, seed=seed), 0)[0]


@pytest.mark.parametrize("level", range(10))
def test_compress_level_is_the_zlib_ng_level_and_the_codec_says_so(level):
    from zlib_ng import zlib_ng

    codec = shards.shard_codec(level)
    if level == 0:
        assert codec == {"name": "stored", "level": 0}
    else:
        assert codec == {"name": "zlib-ng-deflate", "version": zlib_ng.ZLIBNG_VERSION, "level": level}


@pytest.mark.parametrize("level", [1, 4, 9])
def test_members_of_a_zlib_run_are_raw_deflate_made_by_zlib_at_its_level(level):
    arrays = make_arrays(n=8, t=8, size=32, white=True)
    data = shards.encode_shard(arrays, {"name": "zlib-deflate", "version": zlib.ZLIB_RUNTIME_VERSION, "level": level})
    for info, payload in _members(data):
        assert info.compress_type == zipfile.ZIP_DEFLATED
        key = info.filename[: -len(".npy")]
        arr = shards._canonical(arrays[key])
        member = shards._npy_header(arr) + arr.tobytes()
        assert zlib.decompress(payload, -15) == member, key
        # zlib at --compress-level, fed the .npy header and then the array's bytes
        expected = zlib.compressobj(level, zlib.DEFLATED, -15)
        assert (
            payload == expected.compress(shards._npy_header(arr)) + expected.compress(arr.tobytes()) + expected.flush()
        )
        assert info.CRC == zlib.crc32(member)
        assert info.file_size == len(member)


def test_a_runs_recorded_codec_is_what_encodes_it():
    # a run keeps the codec its manifest records, whatever the --compress-level default is now
    arrays = make_arrays(n=8, t=8, size=32, white=True)
    zlib_6 = {"name": "zlib-deflate", "version": zlib.ZLIB_RUNTIME_VERSION, "level": 6}
    data = shards.encode_shard(arrays, zlib_6)
    assert data != shards.encode_shard(arrays, 6)  # today's --compress-level 6 is zlib-ng's
    assert data == shards.encode_shard(arrays, dict(zlib_6)) != shards.encode_shard(arrays, {**zlib_6, "level": 1})
    assert shards.encode_shard(arrays, shards.shard_codec(1)) == shards.encode_shard(arrays, 1)


@pytest.mark.parametrize(
    "codec, fragment",
    [
        ({"name": "brotli", "level": 1}, "brotli"),
        ({"name": "isal-deflate", "version": "2.32.1", "level": 1}, "isal-deflate"),
        ({"name": "zlib-deflate", "level": 11}, "level 11"),
    ],
)
def test_a_codec_this_trajgen_cannot_make_is_refused(codec, fragment):
    with pytest.raises(shards.UnknownCodecError, match=fragment):
        shards.encode_shard(make_arrays(), codec)


_ENCODE_IN_A_NEW_PROCESS = """
import hashlib, sys
sys.path[:0] = sys.argv[1:2]
import numpy as np
from test_shards import _real_arrays, make_arrays
from trajgen.store import shards
rng = np.random.default_rng(int(sys.argv[2]))
big = np.ones(64 << 20, np.uint8); del big  # freeing a large block raises glibc's mmap threshold: later blocks reuse the heap
arrays = _real_arrays()
for level in (1, 6):
    for _ in range(3):
        # leave random bytes where the encoder's next allocations are likely to land
        junk = [bytearray(rng.bytes(size)) for size in (70_000, 82_000, 90_000, 140_000, 282_624, 300_000, 1 << 20)]
        del junk
        print(hashlib.sha256(shards.encode_shard(arrays, level)).hexdigest())
"""


def test_the_same_arrays_encode_to_the_same_bytes_in_other_processes_whatever_their_heap():
    # the promise behind resume, --workers, Dask and repair: a shard's bytes never depend on the process
    here = str(__import__("pathlib").Path(__file__).parent)
    others = [  # four processes at once, while this one encodes
        subprocess.Popen(
            [sys.executable, "-c", _ENCODE_IN_A_NEW_PROCESS, here, str(seed)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in range(4)
    ]
    arrays = _real_arrays()
    mine = "".join(
        hashlib.sha256(shards.encode_shard(arrays, level)).hexdigest() + "\n" for level in (1, 1, 1, 6, 6, 6)
    )
    runs = []
    for other in others:
        out, err = other.communicate(timeout=120)
        assert other.returncode == 0, err
        runs.append(out)
    assert runs == [mine] * 4


def test_zip_is_valid_for_zip_tools(tmp_path, tmp):
    path = tmp_path / "shard-00000.npz"
    shards.write_shard(path, make_arrays(), 1, tmp)
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None  # every CRC checks out
        for info in z.infolist():
            assert info.create_system == 3 and info.external_attr == 0o644 << 16
            assert info.flag_bits == 0 and info.extract_version == 20
    tested = subprocess.run(["unzip", "-t", str(path)], capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_zip64_records_when_a_member_or_offset_passes_4_gib(tmp_path, tmp, monkeypatch):
    # a 4 GiB shard is too big for a test: lower the limit at which zip64 records are written
    monkeypatch.setattr(shards, "_ZIP64_LIMIT", 100)
    arrays = make_arrays()
    path = tmp_path / "shard-00000.npz"
    shards.write_shard(path, arrays, 1, tmp)
    data = path.read_bytes()
    assert b"PK\x06\x06" in data and b"PK\x06\x07" in data  # zip64 end of central directory and its locator
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None
        assert all(i.extract_version == 45 for i in z.infolist())
    assert_same(shards.read_shard(path), arrays)
    tested = subprocess.run(["unzip", "-t", str(path)], capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_zip64_member_sizes_round_trip(monkeypatch):
    monkeypatch.setattr(shards, "_ZIP64_LIMIT", 100)
    arrays = make_arrays()
    for info, payload in _members(shards.encode_shard(arrays, 0)):
        key = info.filename[: -len(".npy")]
        arr = shards._canonical(arrays[key])
        assert payload == shards._npy_header(arr) + arr.tobytes()
        assert info.file_size == info.compress_size == len(payload)


@pytest.mark.parametrize("level", [0, 1])
def test_manifest_records_the_codec(tmp_path, level):
    import json

    from trajgen import GenerationConfig
    from trajgen.making import generate

    generate(GenerationConfig(n=4, checkpoint_every=4, compress_level=level), tmp_path / "run", workers=1)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["codec"] == shards.shard_codec(level)


def test_a_run_resumes_and_repairs_with_the_codec_its_manifest_records(tmp_path, monkeypatch):
    # the manifest's codec (here zlib level 6 for a --compress-level 1 run), not today's default, makes its shards
    import os

    from runtools import assert_same_run, run_cli
    from trajgen import GenerationConfig
    from trajgen.making import generate
    from trajgen.store import _fs, manifest

    zlib_6 = {"name": "zlib-deflate", "version": zlib.ZLIB_RUNTIME_VERSION, "level": 6}
    monkeypatch.setattr(manifest, "shard_codec", lambda level: zlib_6)
    config = GenerationConfig(n=12, checkpoint_every=4, seed=11, size=16, frames=4)
    generate(config, tmp_path / "whole", workers=1)
    pid = os.fork()
    if pid == 0:  # a real process that dies in the middle of the run
        os.environ["TRAJGEN_FAULT"] = "exit@60"
        _fs._reset_faults()
        try:
            generate(config, tmp_path / "cut", workers=1)
        finally:
            os._exit(3)
    os.waitpid(pid, 0)
    import json

    cut = json.loads((tmp_path / "cut" / "manifest.json").read_text())
    assert cut["codec"] == zlib_6 and 0 < len(cut["shards"]) < 3
    resumed = run_cli("resume", tmp_path / "cut")  # a new process, with today's default codec
    assert resumed.returncode == 0, resumed.stderr
    assert_same_run(tmp_path / "whole", tmp_path / "cut")
    (tmp_path / "cut" / "shards" / "shard-00002.npz").unlink()
    repaired = run_cli("repair", tmp_path / "cut")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert_same_run(tmp_path / "whole", tmp_path / "cut")


def test_resume_refuses_a_codec_this_trajgen_cannot_make(tmp_path):
    import json

    from runtools import run_cli
    from trajgen import GenerationConfig
    from trajgen.making import generate

    generate(GenerationConfig(n=8, checkpoint_every=4, size=16, frames=4), tmp_path / "run", workers=1)
    manifest_path = tmp_path / "run" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["status"] = "running"
    manifest["shards"] = manifest["shards"][:1]
    manifest["codec"] = {"name": "zstd", "level": 3}
    manifest_path.write_text(json.dumps(manifest))
    before = manifest_path.read_bytes()
    result = run_cli("resume", tmp_path / "run")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "zstd" in lines[0], result.stderr
    assert manifest_path.read_bytes() == before
