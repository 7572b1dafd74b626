"""ISA-L's C functions that python-isal exports but does not wrap, called through ctypes.

python-isal links ISA-L into its extension modules and exports its C symbols. trajgen uses
two that python-isal leaves out: ``isal_inflate``, which writes into the caller's memory
(trajgen.inflate), and ``crc64_ecma_refl``, a 64-bit checksum at memory speed (the video
hashes of verify and report). Each user checks its function once on data it knows and
falls back to python-isal or hashlib where the function is missing (another build or
platform).
"""

from __future__ import annotations

import ctypes
import functools

from isal import isal_zlib


@functools.cache
def _library():
    try:
        return ctypes.CDLL(isal_zlib.__file__)
    except OSError:
        return None


def function(name: str, argtypes: list, restype):
    """ISA-L's C function ``name`` typed with ``argtypes`` and ``restype``, or None where it is not exported."""
    library = _library()
    try:
        found = getattr(library, name) if library is not None else None
    except AttributeError:
        return None
    if found is not None:
        found.argtypes, found.restype = argtypes, restype
    return found
