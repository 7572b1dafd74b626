"""Write and read one shard: a plain .npz, byte-identical for identical arrays.

Members are raw deflate made by trajgen.deflate (zlib at --compress-level, stored at 0; a
run keeps the codec its manifest records). Reading inflates with ISA-L straight into each
array's buffer (trajgen.inflate; inflating gives the one right answer). The zip around the
members is written here: fixed metadata, sizes and CRC known before each local header (no
data descriptors), zip64 records only where a size or offset needs them.
"""

import hashlib
import io
import struct
import tokenize
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np
from isal import isal_zlib

from trajgen.errors import CorruptShardError
from trajgen.store import _fs, inflate
from trajgen.store.deflate import (  # noqa: F401 (UnknownCodecError: encode_shard raises it)
    UnknownCodecError,
    check_codec,
    codec_for_level,
    compressor,
    crc32_for,
)
from trajgen.store.shard_arrays import (  # noqa: F401 (the shard's keys are read from here too)
    SCENE_KEYS,
    SHARD_KEYS,
    shard_keys,
    validate_shard_arrays,
)

_CHUNK = 16 << 20  # members are deflated this many bytes at a time (fixed: the bytes depend on it)
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class ShardInfo:
    sha256: str
    bytes: int


def _npy_header(arr):
    # Written by hand (npy format 1.0) so the bytes do not depend on the numpy version.
    shape = tuple(int(d) for d in arr.shape)
    header = f"{{'descr': {arr.dtype.str!r}, 'fortran_order': False, 'shape': {shape!r}, }}"
    pad = 64 - (10 + len(header) + 1) % 64
    text = (header + " " * (pad % 64) + "\n").encode("latin1")
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text


def _canonical(arr):
    """C-contiguous little-endian, copying only when the input is not already so."""
    arr = np.ascontiguousarray(arr)
    if arr.dtype.byteorder == ">" or (arr.dtype.byteorder == "=" and not np.little_endian and arr.dtype.itemsize > 1):
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return arr


def zip_member(name, compress_level):
    """A zip entry whose bytes depend on nothing but its name and content (fixed date and mode)."""
    info = zipfile.ZipInfo(name, date_time=_FIXED_DATE)
    info.compress_type = zipfile.ZIP_STORED if compress_level == 0 else zipfile.ZIP_DEFLATED
    info._compresslevel = compress_level or None  # type: ignore[attr-defined]  # private before 3.13, not in the stubs
    info.create_system = 3
    info.external_attr = 0o644 << 16
    return info


def npy_header(dtype, shape):
    """The .npy header of an array of this dtype and shape, without the array."""
    return _npy_header(np.broadcast_to(np.zeros((), dtype), shape))


def shard_codec(compress_level):
    """What encodes a new run's shards at this --compress-level (recorded in the manifest)."""
    return codec_for_level(compress_level)


def encode_shard(arrays, encoding, progress=None):
    """The .npz bytes for one shard; identical input gives identical bytes.

    ``encoding`` is a --compress-level 0-9 or a codec a run recorded (shard_codec's dicts).
    ``progress(done, total)``, if given, hears how many of the arrays' bytes are encoded."""
    if isinstance(encoding, dict):
        codec = check_codec(encoding)
    elif isinstance(encoding, int) and not isinstance(encoding, bool) and 0 <= encoding <= 9:
        codec = shard_codec(encoding)
    else:
        raise ValueError(f"compress_level must be an integer 0-9 (got {encoding!r})")
    validate_shard_arrays(arrays)
    stored = codec["name"] == "stored"
    parts, central, offset = [], [], 0
    keys = SHARD_KEYS + tuple(key for key in SCENE_KEYS if key in arrays)  # the scene's after, in a fixed order
    done, total = 0, sum(arrays[key].nbytes for key in keys)

    def step(nbytes):
        nonlocal done
        done += nbytes
        progress(done, total)

    for key in keys:
        arr = _canonical(arrays[key])
        name = f"{key}.npy".encode("ascii")
        crc, size, payload = _deflate_member(
            _npy_header(arr),
            arr.reshape(-1).view(np.uint8),
            None if stored else codec,
            step if progress is not None else None,
        )
        compressed = sum(len(p) for p in payload)
        local = _local_header(name, stored, crc, compressed, size)
        central.append(_central_header(name, stored, crc, compressed, size, offset))
        parts += [local, *payload]
        offset += len(local) + compressed
    directory = b"".join(central)
    parts += [directory, _end_of_directory(len(central), len(directory), offset)]
    return b"".join(parts)


_ZIP64_LIMIT = 0xFFFFFFFF  # sizes and offsets from here on are written in zip64 records
_DOS_DATE = (_FIXED_DATE[0] - 1980) << 9 | _FIXED_DATE[1] << 5 | _FIXED_DATE[2]
_DOS_TIME = 0
_MADE_BY_UNIX = 3 << 8
_FILE_MODE = 0o644 << 16


def _deflate_member(header, raw, codec, step=None):
    """(crc32, uncompressed size, list of payload pieces) of one member: header then raw bytes.
    ``step(nbytes)``, if given, is told of each piece of ``raw`` deflated."""
    crc32 = isal_zlib.crc32 if codec is None else crc32_for(codec)  # the same number, whichever computes it
    crc = crc32(raw, crc32(header))
    if codec is None:
        if step is not None:
            step(raw.size)
        return crc, len(header) + raw.size, [header, raw.data]
    deflater = compressor(codec)
    payload = [deflater.compress(header)]
    for start in range(0, raw.size, _CHUNK):
        piece = raw[start : start + _CHUNK]
        payload.append(deflater.compress(piece.data))
        if step is not None:
            step(piece.size)
    payload.append(deflater.flush())
    return crc, len(header) + raw.size, payload


def _zip64_extra(*values):
    return struct.pack("<HH", 1, 8 * len(values)) + struct.pack(f"<{len(values)}Q", *values) if values else b""


def _local_header(name, stored, crc, compressed, size):
    zip64 = size >= _ZIP64_LIMIT or compressed >= _ZIP64_LIMIT
    extra = _zip64_extra(size, compressed) if zip64 else b""
    small = 0xFFFFFFFF if zip64 else None
    return (
        struct.pack(
            "<IHHHHHIIIHH",
            0x04034B50,
            45 if zip64 else 20,
            0,
            0 if stored else 8,
            _DOS_TIME,
            _DOS_DATE,
            crc,
            small or compressed,
            small or size,
            len(name),
            len(extra),
        )
        + name
        + extra
    )


def _central_header(name, stored, crc, compressed, size, offset):
    big = [v for v in (size, compressed, offset) if v >= _ZIP64_LIMIT]
    zip64 = size >= _ZIP64_LIMIT or compressed >= _ZIP64_LIMIT or offset >= _ZIP64_LIMIT
    # the zip64 extra holds, in this order, exactly the fields that are 0xFFFFFFFF below
    extra = _zip64_extra(*big)
    version = 45 if zip64 else 20
    clip = lambda v: 0xFFFFFFFF if v >= _ZIP64_LIMIT else v  # noqa: E731
    return (
        struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            _MADE_BY_UNIX | version,
            version,
            0,
            0 if stored else 8,
            _DOS_TIME,
            _DOS_DATE,
            crc,
            clip(compressed),
            clip(size),
            len(name),
            len(extra),
            0,
            0,
            0,
            _FILE_MODE,
            clip(offset),
        )
        + name
        + extra
    )


def _end_of_directory(entries, size, offset):
    end = b""
    if offset >= _ZIP64_LIMIT or size >= _ZIP64_LIMIT:
        record = struct.pack(
            "<IQHHIIQQQQ", 0x06064B50, 44, _MADE_BY_UNIX | 45, 45, 0, 0, entries, entries, size, offset
        )
        end = record + struct.pack("<IIQI", 0x07064B50, 0, offset + size, 1)
        size, offset = (0xFFFFFFFF if v >= _ZIP64_LIMIT else v for v in (size, offset))
    return end + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, entries, entries, size, offset, 0)


def write_shard(path, arrays, encoding, tmp_dir, progress=None):
    """Encode (see encode_shard) and atomically write one shard; return its checksum and size."""
    data = encode_shard(arrays, encoding, progress)
    info = ShardInfo(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    _fs.atomic_write_bytes(path, data, tmp_dir)
    return info


def read_shard(path, keys=SHARD_KEYS):
    """The arrays ``keys`` of one shard (``shard_keys(config)``: all a run's shards hold), validated;
    CorruptShardError names the file if not."""
    arrays = read_members(path, keys)
    try:
        validate_shard_arrays(arrays)
    except CorruptShardError as exc:
        raise CorruptShardError(f"shard file {path} is malformed: {exc}") from None
    return arrays


def read_members(path, keys, alloc=None):
    """Only the arrays ``keys`` of one .npz, each inflated with ISA-L straight into its own buffer.

    Checks each member's CRC-32 as zipfile does; CorruptShardError names the file when it is
    missing, truncated or damaged. ``alloc(nbytes)`` may supply the writable uint8 buffer an
    array is decoded into (for reusing memory); by default a new one is allocated."""
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
            if magic != b"PK\x03\x04":
                raise ValueError("empty file" if not magic else "not an .npz (zip) file")
            f.seek(0)
            with zipfile.ZipFile(f) as zf:
                infos = {info.filename: info for info in zf.infolist()}
            missing = [k for k in keys if f"{k}.npy" not in infos]
            if missing:
                raise ValueError(f"missing arrays {', '.join(missing)}")
            size = f.seek(0, 2)
            return {key: _read_member(f, infos[f"{key}.npy"], size, alloc) for key in keys}
    except FileNotFoundError:
        raise CorruptShardError(f"shard file {path} is missing") from None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error, isal_zlib.error) as exc:  # type: ignore[misc]  # isal's stub types error as an instance
        reason = " ".join(str(exc).split()) or type(exc).__name__
        if reason == "File is not a zip file":  # starts like a zip but its end is gone
            reason = "truncated (zip directory missing)"
        raise CorruptShardError(f"shard file {path} is unreadable: {reason}") from exc


_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, (fixed fields), name length, extra length
_HEAD = 4096  # inflated first, to find the .npy header (longer ones are read on)
_MAX_HEADER = 1 << 20  # a longer .npy header is damage (numpy itself reads 10,000 bytes at most)
_WINDOW = 4 << 20  # inflated per call: its CRC-32 is taken while it is still in cache


def _read_member(f, info, file_size, alloc):
    """One .npy member as an array over its own buffer, inflated straight into it."""
    f.seek(info.header_offset)
    signature, name_len, extra_len = _LOCAL_HEADER.unpack(f.read(_LOCAL_HEADER.size).ljust(_LOCAL_HEADER.size, b"\0"))
    if signature != b"PK\x03\x04":
        raise ValueError(f"{info.filename}: bad local header")
    start = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len
    if start + info.compress_size > file_size:
        raise ValueError(f"{info.filename}: truncated")
    f.seek(start)
    data = f.read(info.compress_size)
    if info.compress_type == zipfile.ZIP_STORED:
        source = inflate.stored(data)
    elif info.compress_type == zipfile.ZIP_DEFLATED:
        source = inflate.inflater(data)
    else:
        raise ValueError(f"{info.filename}: unsupported compression {info.compress_type}")

    def read(size):
        got = bytearray(size)
        return got[: source.readinto(memoryview(got))]

    head = read(min(info.file_size, _HEAD))
    header_len = _npy_header_len(head, info.filename)
    if header_len > min(info.file_size, _MAX_HEADER):
        raise ValueError(f"{info.filename}: .npy header of {header_len} bytes in a member of {info.file_size}")
    if header_len > len(head):
        head += read(header_len - len(head))
    if len(head) < header_len:
        raise ValueError(f"{info.filename}: truncated .npy header")
    dtype, shape, fortran = _parse_npy_header(bytes(head[:header_len]), info.filename)
    nbytes = dtype.itemsize * int(np.prod(shape, dtype=np.int64))
    if header_len + nbytes != info.file_size:
        raise ValueError(
            f"{info.filename}: holds {info.file_size - header_len} bytes of data, its header says {nbytes}"
        )
    buf = alloc(nbytes) if alloc is not None else np.empty(nbytes, np.uint8)
    out = memoryview(buf)[:nbytes]  # type: ignore[arg-type]  # numpy's stubs give ndarray __buffer__ for 3.12+ only
    crc = isal_zlib.crc32(head)
    pos = len(head) - header_len
    out[:pos] = head[header_len:]
    while pos < nbytes:
        got = source.readinto(out[pos : pos + _WINDOW])
        if not got:
            raise ValueError(f"{info.filename}: truncated ({pos} of {nbytes} bytes)")
        crc = isal_zlib.crc32(out[pos : pos + got], crc)
        pos += got
    if read(1):
        raise ValueError(f"{info.filename}: more data than its size")
    source.end()
    if crc != info.CRC:
        raise ValueError(f"{info.filename}: bad CRC-32")
    arr = buf[:nbytes].view(dtype)
    return arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)


def _npy_header_len(head, name):
    if head[:6] != b"\x93NUMPY":
        raise ValueError(f"{name}: not an .npy array")
    if len(head) < 10:
        return 10
    if head[6] not in (1, 2, 3):
        raise ValueError(f"{name}: .npy version {head[6]} is not one numpy writes")
    if head[6] == 1:
        return 10 + int.from_bytes(head[8:10], "little")
    if len(head) < 12:
        return 12
    return 12 + int.from_bytes(head[8:12], "little")


def _parse_npy_header(header, name):
    version = (header[6], header[7])
    read = np.lib.format.read_array_header_1_0 if version[0] == 1 else np.lib.format.read_array_header_2_0
    stream = io.BytesIO(header)
    stream.seek(8)
    try:
        shape, fortran, dtype = read(stream)  # rejects anything but a plain dict of descr, fortran_order, shape
    except (SyntaxError, tokenize.TokenError) as exc:  # a header numpy's tokenizer gives up on
        raise ValueError(f"{name}: unreadable .npy header ({exc})") from None
    if dtype.hasobject:
        raise ValueError(f"{name}: holds Python objects (not allowed)")
    return dtype, shape, fortran
