"""Which deflate makes a run's shard members: the same bytes in every process.

New runs deflate their members with zlib-ng at --compress-level (default 3; 0 stores them):
about 2.7× faster than zlib at level 1 and 19% smaller (scripts/bench_codecs.py), and the same
bytes for the same input, level and chunking in every process, which resume, --workers, Dask and
repair rely on (scripts/check_repeatability.py, artifacts/repeatability_zlib_ng.json). Where
zlib-ng is not installed a new run uses Python's zlib and says so. ISA-L's deflate, faster still,
is not reproducible on this kind of machine under load (artifacts/isal_nondeterminism.md); shards
are read with ISA-L's inflate, which reads any of them.

A run records its codec in the manifest and keeps it: resume and repair make its shards with it
(a 0.2.0 run keeps zlib), and refuse one this trajgen cannot make.
"""

from __future__ import annotations

import zlib
from types import ModuleType

from trajgen.errors import TrajgenError

ZLIB_NAME = "zlib-deflate"
ZLIB_NG_NAME = "zlib-ng-deflate"
DEFAULT_LEVEL = 3  # zlib-ng: 2.7× zlib 1's speed at 81% of its size; 1 is 4× but 31% larger


class UnknownCodecError(TrajgenError):
    """A codec (from a run's manifest) that this trajgen cannot make."""


class CodecNotInstalledError(UnknownCodecError):
    """A codec this trajgen makes with a package that is not installed here (its message says which)."""


def zlib_ng() -> ModuleType | None:
    """zlib-ng's zlib-compatible module, or None where its package is not installed."""
    try:
        from zlib_ng import zlib_ng as module
    except ImportError:
        return None
    return module


def zlib_ng_version() -> str:
    """The zlib-ng library version ("none" where it is not installed): it decides the bytes."""
    module = zlib_ng()
    return "none" if module is None else module.ZLIBNG_VERSION


def codec_for_level(compress_level: int) -> dict:
    """The codec a new run records for --compress-level 0-9."""
    if compress_level == 0:
        return {"name": "stored", "level": 0}
    module = zlib_ng()
    if module is None:
        return {"name": ZLIB_NAME, "version": zlib.ZLIB_RUNTIME_VERSION, "level": compress_level}
    return {"name": ZLIB_NG_NAME, "version": module.ZLIBNG_VERSION, "level": compress_level}


def fallback_note(codec: dict) -> str | None:
    """The one line a new run says when zlib-ng is missing and it records zlib instead."""
    if codec["name"] != ZLIB_NAME or zlib_ng() is not None:
        return None
    return (
        "zlib-ng is not installed (no wheel for this platform?), so this run deflates its shards with zlib: "
        "about 2.7× slower and 20% larger; pip install zlib-ng for new runs"
    )


def check_codec(codec: object) -> dict:
    """``codec`` if this trajgen can make it, else UnknownCodecError naming it."""
    if not isinstance(codec, dict):
        raise UnknownCodecError(f"the shard codec {codec!r} is not one trajgen knows")
    name, level = codec.get("name"), codec.get("level")
    known = {"stored": (0,), ZLIB_NAME: range(1, 10), ZLIB_NG_NAME: range(1, 10)}
    if name not in known:
        raise UnknownCodecError(
            f"shards deflated with {name!r} cannot be made byte for byte by this trajgen "
            f"(it makes stored, {ZLIB_NAME} and {ZLIB_NG_NAME})"
        )
    if isinstance(level, bool) or level not in known[name]:
        raise UnknownCodecError(
            f"{name} at level {level!r} cannot be made by this trajgen (levels {', '.join(map(str, known[name]))})"
        )
    if name == ZLIB_NG_NAME and zlib_ng() is None:
        raise CodecNotInstalledError(
            f"its shards are deflated with zlib-ng (library {codec.get('version', '?')}), which is not installed "
            f"here; pip install zlib-ng (the version config.json records), then run the same command again"
        )
    return codec


def _module(codec: dict) -> ModuleType | None:
    """The module that deflates ``codec`` (zlib's or zlib-ng's; None: zlib-ng is not installed)."""
    return zlib_ng() if codec["name"] == ZLIB_NG_NAME else zlib


def crc32_for(codec: dict):
    """The crc32 function to go with ``codec``'s deflate (all give the same number): zlib-ng's
    beside zlib-ng's deflate (~8× zlib's crc32, scripts/bench_encode.py); zlib's beside zlib's,
    whose deflate ran ~3.7× slower right after ISA-L's vector crc32."""
    module = _module(codec)
    return zlib.crc32 if module is None else module.crc32


def compressor(codec: dict):
    """A raw-deflate compressor object for ``codec`` (zlib's or zlib-ng's, never stored)."""
    module = _module(codec)
    if module is None:
        raise CodecNotInstalledError(f"{ZLIB_NG_NAME} needs zlib-ng: pip install zlib-ng")
    return module.compressobj(codec["level"], module.DEFLATED, -15)
