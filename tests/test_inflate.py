"""Reading shard members: raw deflate inflated with ISA-L straight into the array's own memory."""

import tracemalloc
import zlib

import numpy as np
import pytest

from trajgen import shards
from trajgen.errors import CorruptShardError


def big_arrays(n=64):
    """A shard's arrays whose videos (12 MiB) compress about as real ones do."""
    rng = np.random.default_rng(5)
    videos = np.zeros((n, 16, 64, 64, 3), np.uint8)
    videos[:, :, 20:30, 20:30] = rng.integers(0, 255, (n, 16, 1, 1, 3), dtype=np.uint8)  # a dot per frame
    return {"videos": videos, "labels": np.arange(n, dtype=np.int64) % 4, "index": np.arange(n, dtype=np.int64),
            "trajectory_3d": np.zeros((n, 16, 3), np.float32), "points_2d": np.zeros((n, 16, 2), np.float32),
            "camera": np.zeros((n, 12), np.float32), "equations": np.array(["x"] * n), "descriptions": np.array(["d"] * n)}


@pytest.fixture(params=["isal-c-api", "python-isal-pieces"])
def inflater(request, monkeypatch):
    """Both ways of inflating: ISA-L's C API where python-isal exports it (here it does), else pieces copied."""
    from trajgen import inflate

    if request.param == "isal-c-api":
        assert inflate.isal_c_api() is not None  # this machine has it: test it
    else:
        monkeypatch.setattr(inflate, "isal_c_api", lambda: None)
    return request.param


def test_a_member_is_inflated_straight_into_the_buffer_it_is_given(tmp_path, tmp_path_factory):
    arrays = big_arrays()
    path = tmp_path / "shard-00000.npz"
    shards.write_shard(path, arrays, 1, tmp_path_factory.mktemp("tmp"))
    buffer = np.ones(arrays["videos"].nbytes, np.uint8)
    shards.read_members(path, ["videos"], alloc=lambda nbytes: buffer[:nbytes])  # warm: imports, caches
    tracemalloc.start()
    try:
        got = shards.read_members(path, ["videos"], alloc=lambda nbytes: buffer[:nbytes])["videos"]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert np.shares_memory(got, buffer)
    np.testing.assert_array_equal(got, arrays["videos"])
    # the compressed member (~0.3 MiB) and small change: no inflated piece of the 12 MiB on its way
    assert peak < 1 << 20, f"{peak:,} bytes allocated while inflating"


@pytest.mark.parametrize("window", [1, 4096, 1 << 16, 1 << 22])
@pytest.mark.parametrize("feed", ["1 GiB", "4099 bytes"])
def test_inflating_in_any_windows_gives_the_data(inflater, window, feed, monkeypatch):
    from trajgen import inflate

    if feed == "4099 bytes":  # input fed, and output asked for, in steps this small (1 GiB in use)
        monkeypatch.setattr(inflate, "_FEED", 4099)
    rng = np.random.default_rng(1)
    data = np.concatenate([np.zeros(100_000, np.uint8), rng.integers(0, 4, 60_000, dtype=np.uint8)]).tobytes()
    packer = zlib.compressobj(1, zlib.DEFLATED, -15)
    stream = packer.compress(data) + packer.flush()
    source = inflate.inflater(stream)
    out = bytearray(len(data) + 10)
    pos = 0
    while True:
        got = source.readinto(memoryview(out)[pos : pos + window])
        if not got:
            break
        pos += got
    assert pos == len(data) and out[:pos] == data


def test_stored_members_read_as_they_are():
    from trajgen import inflate

    source = inflate.stored(b"abcdef")
    out = bytearray(4)
    assert source.readinto(memoryview(out)) == 4 and out == b"abcd"
    assert source.readinto(memoryview(out)) == 2 and out[:2] == b"ef"
    assert source.readinto(memoryview(out)) == 0


@pytest.mark.parametrize("how", ["flipped", "cut", "longer"])
def test_a_damaged_member_is_one_error_naming_the_file(tmp_path, tmp_path_factory, inflater, how):
    """A deflate stream with a bit flipped, cut short or holding more than its header says, inside
    a zip whose directory is intact."""
    arrays = big_arrays(8)
    path = tmp_path / "shard-00003.npz"
    shards.write_shard(path, arrays, 1, tmp_path_factory.mktemp("tmp"))
    data = bytearray(path.read_bytes())
    import zipfile

    info = zipfile.ZipFile(path).getinfo("videos.npy")
    start = info.header_offset + 30 + len(info.filename)
    payload = bytes(data[start : start + info.compress_size])
    if how == "flipped":
        payload = payload[:100] + bytes([payload[100] ^ 0x5A]) + payload[101:]
    else:  # the stream of another size in the same number of bytes: cut, or followed by more
        other = arrays["videos"][:4] if how == "cut" else np.concatenate([arrays["videos"]] * 2)
        packer = zlib.compressobj(1, zlib.DEFLATED, -15)
        payload = packer.compress(shards.npy_header(np.uint8, arrays["videos"].shape) + other.tobytes())
        payload = (payload + packer.flush())[: info.compress_size].ljust(info.compress_size, b"\0")
    data[start : start + info.compress_size] = payload
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptShardError, match="shard-00003.npz") as caught:
        shards.read_members(path, ["videos"])
    assert "\n" not in str(caught.value)
