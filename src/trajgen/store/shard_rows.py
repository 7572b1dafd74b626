"""The first rows of a shard's member, read without inflating the rest (the progress page's pictures)."""

from __future__ import annotations

import numpy as np


def _npy_member(zf, name):
    """An open .npy member of a shard, positioned after its header, and the header."""
    f = zf.open(name)
    version = np.lib.format.read_magic(f)
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read_header(f)
    if fortran:
        raise ValueError(f"{name} is stored in Fortran order")
    return f, shape, dtype


def first_rows(zf, name, count):
    """The first ``count`` rows of a shard member (an open zipfile.ZipFile), inflating only those."""
    f, shape, dtype = _npy_member(zf, name)
    with f:
        count = min(count, shape[0])
        row = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        data = f.read(count * row)  # inflates only this much of the member
    if len(data) != count * row:
        raise ValueError(f"{name} is truncated")
    return np.frombuffer(data, dtype).reshape(count, *shape[1:])
