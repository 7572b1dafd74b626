"""Reading shard members: raw deflate inflated with ISA-L straight into the array's own memory."""

import tracemalloc
import zlib

import numpy as np
import pytest

from trajgen.errors import CorruptShardError
from trajgen.store import shards


def big_arrays(n=64):
    """A shard's arrays whose videos (12 MiB) compress about as real ones do."""
    rng = np.random.default_rng(5)
    videos = np.zeros((n, 16, 64, 64, 3), np.uint8)
    videos[:, :, 20:30, 20:30] = rng.integers(0, 255, (n, 16, 1, 1, 3), dtype=np.uint8)  # a dot per frame
    return {
        "videos": videos,
        "labels": np.arange(n, dtype=np.int64) % 4,
        "index": np.arange(n, dtype=np.int64),
        "trajectory_3d": np.zeros((n, 16, 3), np.float32),
        "points_2d": np.zeros((n, 16, 2), np.float32),
        "camera": np.zeros((n, 12), np.float32),
        "equations": np.array(["x"] * n),
        "descriptions": np.array(["d"] * n),
    }


@pytest.fixture(params=["isal-c-api", "python-isal-pieces"])
def inflater(request, monkeypatch):
    """Both ways of inflating: ISA-L's C API where python-isal exports it (here it does), else pieces copied."""
    from trajgen.store import inflate

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
    # the compressed member (85 kB), the inflater's state (512 KiB) and small change: no inflated piece of the
    # 12 MiB on its way (python-isal's pieces took 4.5 MB)
    assert peak < 1 << 20, f"{peak:,} bytes allocated while inflating"


@pytest.mark.parametrize("window", [1, 4096, 1 << 16, 1 << 22])
@pytest.mark.parametrize("feed", ["1 GiB", "4099 bytes"])
def test_inflating_in_any_windows_gives_the_data(inflater, window, feed, monkeypatch):
    from trajgen.store import inflate

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
    from trajgen.store import inflate

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


def one_member_npz(path, payload: bytes, stream: bytes, stored=False):
    """An .npz of one member, videos.npy, whose data is ``stream`` (its headers say ``payload``)."""
    name, crc = b"videos.npy", zlib.crc32(payload)
    local = shards._local_header(name, stored, crc, len(stream), len(payload))
    central = shards._central_header(name, stored, crc, len(stream), len(payload), 0)
    body = local + stream
    path.write_bytes(body + central + shards._end_of_directory(1, len(central), len(body)))
    return path


def videos_payload():
    videos = big_arrays(4)["videos"]
    return shards.npy_header(videos.dtype, videos.shape) + videos.tobytes()


def deflated(payload, level, sync=False):
    packer = zlib.compressobj(level, zlib.DEFLATED, -15)
    stream = packer.compress(payload)
    return stream + (packer.flush(zlib.Z_SYNC_FLUSH) if sync else b"") + packer.flush()


@pytest.mark.parametrize("level, sync, cut", [(6, False, 1), (1, True, 2), (1, True, 6), (0, False, 1), (0, False, 3)])
def test_a_deflate_stream_without_its_end_is_damage_even_when_every_byte_came_out(tmp_path, inflater, level, sync, cut):
    # cut inside the final block's end code, or the closing empty block after a flush: all data is there
    payload = videos_payload()
    path = one_member_npz(tmp_path / "shard-00005.npz", payload, deflated(payload, level, sync)[:-cut])
    with pytest.raises(CorruptShardError, match="shard-00005.npz.*(ends early|truncated)"):
        shards.read_members(path, ["videos"])


@pytest.mark.parametrize("extra", [b"\0", b"garbage!"])
def test_bytes_after_the_end_of_a_deflate_stream_are_damage(tmp_path, inflater, extra):
    payload = videos_payload()
    path = one_member_npz(tmp_path / "shard-00006.npz", payload, deflated(payload, 1) + extra)
    with pytest.raises(CorruptShardError, match="shard-00006.npz.*after the end of its deflate stream"):
        shards.read_members(path, ["videos"])


def test_a_damaged_npy_header_length_is_one_error_and_allocates_nothing_big(tmp_path):
    payload = bytearray(videos_payload())
    payload[6] = 3  # version 3: the next 4 bytes, "v\0{'", read as a length of about 660 MB
    path = one_member_npz(tmp_path / "shard-00007.npz", bytes(payload), bytes(payload), stored=True)
    tracemalloc.start()
    try:
        with pytest.raises(CorruptShardError, match="shard-00007.npz"):
            shards.read_members(path, ["videos"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20


def test_a_garbled_npy_header_is_one_error(tmp_path):
    header = b"{'descr': '|u1', 'fortran_order': False, 'shape': (3,\n"  # numpy's tokenizer gives up on it
    payload = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + b"abc"
    path = one_member_npz(tmp_path / "shard-00008.npz", payload, payload, stored=True)
    with pytest.raises(CorruptShardError, match="shard-00008.npz"):
        shards.read_members(path, ["videos"])
