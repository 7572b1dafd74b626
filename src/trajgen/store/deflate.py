"""Which deflate makes a run's shard members: the same bytes in every process.

Members are deflated with Python's zlib at --compress-level (0 stores them). zlib gives the
same bytes for the same input, level and chunking in every process, which resume, --workers,
Dask and repair rely on. ISA-L's deflate (``isal``), ~8× faster, does not: on this kind of
machine, under load, about 2 runs in 100 (of 20 shards each) made a shard with other,
equally valid match choices, both through python-isal's compressor and through ISA-L's C
API driven in zeroed memory (artifacts/isal_nondeterminism.md). Shards are still read with
ISA-L's inflate.

A run records its codec in the manifest and keeps it: resume and repair make its shards
with it, and refuse one this trajgen cannot make.
"""

import zlib

from trajgen.errors import TrajgenError

ZLIB_NAME = "zlib-deflate"


class UnknownCodecError(TrajgenError):
    """A codec (from a run's manifest) that this trajgen cannot make."""


def codec_for_level(compress_level: int) -> dict:
    """The codec a new run records for --compress-level 0-9."""
    if compress_level == 0:
        return {"name": "stored", "level": 0}
    return {"name": ZLIB_NAME, "version": zlib.ZLIB_RUNTIME_VERSION, "level": compress_level}


def check_codec(codec: object) -> dict:
    """``codec`` if this trajgen can make it, else UnknownCodecError naming it."""
    if not isinstance(codec, dict):
        raise UnknownCodecError(f"the shard codec {codec!r} is not one trajgen knows")
    name, level = codec.get("name"), codec.get("level")
    known = {"stored": (0,), ZLIB_NAME: range(1, 10)}
    if name not in known:
        raise UnknownCodecError(
            f"shards deflated with {name!r} cannot be made byte for byte by this trajgen "
            f"(it makes stored and {ZLIB_NAME})"
        )
    if isinstance(level, bool) or level not in known[name]:
        raise UnknownCodecError(
            f"{name} at level {level!r} cannot be made by this trajgen (levels {', '.join(map(str, known[name]))})"
        )
    return codec
