"""Raw deflate of shard members, the same bytes in every process.

ISA-L (``isal``) at its level 1 deflates a shard's videos ~8× faster than zlib level 1 and
smaller. Its output is ordinary raw deflate, but it is a function of the memory ISA-L is
handed as well as of the input: python-isal's compressor gives it uninitialized memory, and
the same input was seen to deflate to other (valid) bytes in another process. So ISA-L's
stream is driven here through its C API (``isal_deflate_init`` / ``isal_deflate``, exported
by python-isal's extension module) with a stream and level buffer this module allocates
zeroed, input fed in fixed chunks and output taken in a fixed window: every call ISA-L sees
is then a function of the input alone. ISA-L's level 1 makes the same bytes with its AVX-512
and AVX2 kernels; its level 3 does not, so it is not used.

zlib (``zlib-deflate``) encodes runs that recorded it, and --compress-level 4-9.
"""

import ctypes
import zlib

import numpy as np

from trajgen.errors import TrajgenError

ISAL_NAME = "isal-deflate"
ZLIB_NAME = "zlib-deflate"

_OUT_WINDOW = 1 << 20  # output is taken this many bytes at a time (fixed: ISA-L's bytes depend on it)
_ISAL_LEVEL_BUF = 4 * 1024 + 2 * 8 * 1024 + 4 * 64 * 1024  # ISAL_DEF_LVL1_DEFAULT of ISA-L 2.x
_ISAL_STATE_BYTES = 1 << 17  # room for struct isal_zstate (~82 KB in ISA-L 2.x)
_ZSTATE_END = 11  # enum isal_zstate_state: the stream is finished


class UnknownCodecError(TrajgenError):
    """A codec (from a run's manifest) that this trajgen cannot make."""


class _ZStream(ctypes.Structure):
    """struct isal_zstream of ISA-L 2.x (igzip_lib.h), its internal state kept opaque."""

    _fields_ = [
        ("next_in", ctypes.c_void_p), ("avail_in", ctypes.c_uint32), ("total_in", ctypes.c_uint32),
        ("next_out", ctypes.c_void_p), ("avail_out", ctypes.c_uint32), ("total_out", ctypes.c_uint32),
        ("hufftables", ctypes.c_void_p), ("level", ctypes.c_uint32), ("level_buf_size", ctypes.c_uint32),
        ("level_buf", ctypes.c_void_p), ("end_of_stream", ctypes.c_uint16), ("flush", ctypes.c_uint16),
        ("gzip_flag", ctypes.c_uint16), ("hist_bits", ctypes.c_uint16),
        # struct isal_zstate: five uint32 fields, then the enum isal_zstate_state
        ("state_head", ctypes.c_uint32 * 5), ("state", ctypes.c_uint32),
        ("state_rest", ctypes.c_uint8 * _ISAL_STATE_BYTES),
    ]


_isal = None


def isal_version() -> str:
    from isal import _isal as isal_info

    return isal_info.ISAL_VERSION


def _isal_lib():
    global _isal
    if _isal is None:
        from isal import _isal as isal_info
        from isal import isal_zlib

        if isal_info.ISAL_MAJOR_VERSION != 2:
            raise UnknownCodecError(f"ISA-L {isal_info.ISAL_VERSION} is not supported for writing shards (2.x is); "
                                    f"install isal 1.x with ISA-L 2.x, e.g. pip install 'isal>=1.6,<2'")
        lib = ctypes.CDLL(isal_zlib.__file__)  # already loaded: python-isal links ISA-L into it
        lib.isal_deflate_init.argtypes, lib.isal_deflate_init.restype = [ctypes.c_void_p], None
        lib.isal_deflate.argtypes, lib.isal_deflate.restype = [ctypes.c_void_p], ctypes.c_int
        _isal = lib
    return _isal


def codec_for_level(compress_level: int) -> dict:
    """The codec a new run records for --compress-level 0-9."""
    if compress_level == 0:
        return {"name": "stored", "level": 0}
    if compress_level <= 3:
        return {"name": ISAL_NAME, "version": isal_version(), "level": 1}
    return {"name": ZLIB_NAME, "version": zlib.ZLIB_RUNTIME_VERSION, "level": compress_level}


def check_codec(codec: object) -> dict:
    """``codec`` if this trajgen can make it, else UnknownCodecError naming it."""
    if not isinstance(codec, dict):
        raise UnknownCodecError(f"the shard codec {codec!r} is not one trajgen knows")
    name, level = codec.get("name"), codec.get("level")
    known = {"stored": (0,), ISAL_NAME: (1,), ZLIB_NAME: range(1, 10)}
    if name not in known:
        raise UnknownCodecError(f"shards deflated with {name!r} cannot be made by this trajgen "
                                f"(it makes stored, {ISAL_NAME} and {ZLIB_NAME})")
    if isinstance(level, bool) or level not in known[name]:
        raise UnknownCodecError(f"{name} at level {level!r} cannot be made by this trajgen "
                                f"(levels {', '.join(map(str, known[name]))})")
    return codec


def deflate(pieces: list, codec: dict) -> list:
    """Raw deflate of the concatenated ``pieces`` (bytes-like, contiguous) with ``codec``: output pieces."""
    if codec["name"] == ZLIB_NAME:
        deflater = zlib.compressobj(codec["level"], zlib.DEFLATED, -15)
        return [deflater.compress(piece) for piece in pieces] + [deflater.flush()]
    return _isal_deflate(pieces)


def _isal_deflate(pieces: list) -> list:
    lib = _isal_lib()
    stream = _ZStream()  # ctypes zero-fills it
    level_buf = ctypes.create_string_buffer(_ISAL_LEVEL_BUF)  # zero-filled too
    lib.isal_deflate_init(ctypes.byref(stream))
    stream.level, stream.level_buf, stream.level_buf_size = 1, ctypes.addressof(level_buf), _ISAL_LEVEL_BUF
    window = np.zeros(_OUT_WINDOW, np.uint8)
    out = []
    last = len(pieces) - 1
    for i, piece in enumerate(pieces):
        data = np.frombuffer(piece, np.uint8)
        stream.next_in, stream.avail_in = data.ctypes.data, data.size
        stream.end_of_stream = i == last
        while True:
            stream.next_out, stream.avail_out = window.ctypes.data, _OUT_WINDOW
            status = lib.isal_deflate(ctypes.byref(stream))
            if status != 0:
                raise RuntimeError(f"ISA-L deflate failed with status {status}")
            made = _OUT_WINDOW - stream.avail_out
            if made:
                out.append(window[:made].tobytes())
            if stream.avail_out and not stream.avail_in:
                break
    if stream.state != _ZSTATE_END:
        raise RuntimeError(f"ISA-L deflate did not finish the stream (state {stream.state})")
    return out
