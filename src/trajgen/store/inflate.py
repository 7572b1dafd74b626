"""Raw deflate (a zip member's data) inflated with ISA-L straight into the caller's memory.

python-isal's decompressobj hands out each inflated piece as a new bytes object, which then
has to be copied into the array it belongs to: one more pass over every byte, about a
quarter of the time it takes to read a shard. ISA-L's own ``isal_inflate`` writes where it
is told. trajgen calls it through ctypes (trajgen.isal_c), touching only the fields at the
head of ``struct inflate_state`` (igzip_lib.h), the same in every ISA-L 2.x, and checks it
once on a stream it knows. Where any of that is missing (another build or platform), the
pieces are copied as before.

A source's ``readinto(view)`` writes the next bytes into ``view`` and returns how many: all
of ``view`` unless the data ends first (0 at the end); once it gave 0, ``end()`` raises
ValueError unless the deflate stream ended, and ended exactly where its data does. Its
end is one more field, ``block_state``, read at its offset in ISA-L 2.x, which the check
on the known stream confirms.
"""

from __future__ import annotations

import ctypes
import functools
import zlib
from typing import cast

import isal
from isal import isal_zlib

from trajgen.store import isal_c

_FEED = 1 << 30  # input per refill and output per call at most (avail_in and avail_out are 32 bits)
_STATE_BYTES = 1 << 19  # sizeof(struct inflate_state) is 87,368 in ISA-L 2.32: ample room
_BLOCK_STATE = 21160  # offsetof(struct inflate_state, block_state) in ISA-L 2.x
_BLOCK_FINISH = 5  # ISAL_BLOCK_FINISH: the stream's last block decoded and all of it handed out
_PIECE = 1 << 20  # python-isal: output per call, small enough for malloc to reuse and to stay in cache
_PIECE_FEED = 64 << 10  # python-isal: input per call (what one call leaves unconsumed is copied)


class _Head(ctypes.Structure):
    """The head of ISA-L's struct inflate_state."""

    _fields_ = [
        ("next_out", ctypes.c_void_p),
        ("avail_out", ctypes.c_uint32),
        ("total_out", ctypes.c_uint32),
        ("next_in", ctypes.c_void_p),
        ("read_in", ctypes.c_uint64),
        ("avail_in", ctypes.c_uint32),
        ("read_in_length", ctypes.c_int32),
    ]


class _CApiInflater:
    """ISA-L's isal_inflate, writing into the caller's buffers; its own state, so one per thread at a time."""

    def __init__(self, data, api):
        self.init, self.inflate = api
        self.data, self.fed = bytes(data), 0
        # data's own bytes, no copy (a bytes object's buffer is never at NULL, so the address is an int)
        self.address = cast(int, ctypes.cast(ctypes.c_char_p(self.data), ctypes.c_void_p).value)
        self.state = bytearray(_STATE_BYTES)
        self.head = _Head.from_buffer(self.state)
        self.state_address = ctypes.addressof(self.head)
        self.init(self.state_address)

    def readinto(self, view) -> int:
        done = 0
        for start in range(0, len(view), _FEED):  # avail_out is 32 bits too
            part = view[start : start + _FEED]
            got = self._fill(part)
            done += got
            if got < len(part):
                break
        return done

    def _fill(self, view) -> int:
        out = (ctypes.c_char * len(view)).from_buffer(view)
        head = self.head
        head.next_out, head.avail_out = ctypes.addressof(out), len(view)
        while head.avail_out:
            if not head.avail_in and self.fed < len(self.data):
                size = min(_FEED, len(self.data) - self.fed)
                head.next_in, head.avail_in = self.address + self.fed, size
                self.fed += size
            before = (head.avail_out, head.avail_in)
            code = self.inflate(self.state_address)
            if code < 0:
                raise ValueError(f"damaged deflate data (ISA-L inflate error {code})")
            if (head.avail_out, head.avail_in) == before:  # nothing more: the stream or its data ended
                break
        written = len(view) - head.avail_out
        head.next_out, head.avail_out = None, 0  # out is released now
        del out
        return written

    def finished(self) -> bool:
        return int.from_bytes(self.state[_BLOCK_STATE : _BLOCK_STATE + 4], "little") == _BLOCK_FINISH

    def end(self) -> None:
        if not self.finished():
            raise ValueError("deflate stream ends early (truncated)")
        if self.head.avail_in or self.fed < len(self.data):  # ISA-L hands back what it read beyond the end
            raise ValueError("bytes after the end of its deflate stream")


class _Pieces:
    """readinto over bytes pieces (their iterator raises ValueError at its end if the stream is damaged)."""

    def __init__(self, pieces):
        self.pieces, self.left = pieces, memoryview(b"")

    def end(self) -> None:
        """Nothing to do: the pieces' iterator checked its stream's end when it ran out (readinto gave 0)."""

    def readinto(self, view) -> int:
        n = 0
        while n < len(view):
            if not self.left:
                self.left = memoryview(next(self.pieces, b""))
                if not self.left:
                    break
            k = min(len(self.left), len(view) - n)
            view[n : n + k] = self.left[:k]
            self.left, n = self.left[k:], n + k
        return n


def _python_isal_pieces(data):
    inflater = isal_zlib.decompressobj(wbits=-15)
    view = memoryview(data)
    for start in range(0, len(view), _PIECE_FEED):
        chunk: memoryview | bytes = view[start : start + _PIECE_FEED]
        while chunk:
            piece = inflater.decompress(chunk, _PIECE)
            chunk = inflater.unconsumed_tail
            if piece:
                yield piece
    rest = inflater.flush()
    if rest:
        yield rest
    if not inflater.eof:
        raise ValueError("deflate stream ends early (truncated)")
    if inflater.unused_data:
        raise ValueError("bytes after the end of its deflate stream")


@functools.cache
def isal_c_api():
    """(isal_inflate_init, isal_inflate) from python-isal's module, checked on a known stream; None if not usable."""
    if getattr(isal, "ISAL_MAJOR_VERSION", None) != 2:  # the head of struct inflate_state is known for 2.x
        return None
    api = (
        isal_c.function("isal_inflate_init", [ctypes.c_void_p], None),
        isal_c.function("isal_inflate", [ctypes.c_void_p], ctypes.c_int),
    )
    if None in api:
        return None
    known = bytes(range(256)) * 2000 + bytes(300_000) + b"end"
    packer = zlib.compressobj(1, zlib.DEFLATED, -15)
    stream = packer.compress(known) + packer.flush()
    out = bytearray(len(known) + 1)
    source, pos = _CApiInflater(stream, api), 0
    for window in (10, 1 << 16, len(out)):  # small windows too: ISA-L keeps the history between calls
        pos += source.readinto(memoryview(out)[pos : pos + window])
        if pos < len(known) and source.finished():
            return None
    return api if pos == len(known) and out[:pos] == known and source.finished() else None


def inflater(data):
    """A source of the inflated bytes of ``data`` (raw deflate, wbits -15)."""
    api = isal_c_api()
    return _CApiInflater(data, api) if api is not None else _Pieces(_python_isal_pieces(data))


def stored(data):
    """A source of ``data`` as it is (a stored zip member)."""
    return _Pieces(iter((data,)))
