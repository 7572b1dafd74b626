"""Batches that DataLoader workers hand to the main process in shared memory (a pool of slots
reused across batches), and the reusable buffers a worker decodes shards into."""

from __future__ import annotations

import os
import sys
import threading
import weakref

import numpy as np
import torch


class _Buffers:
    """Reusable decode buffers for the big arrays: a buffer is handed out again only once nothing
    refers to it any more (no sample, batch or array view), so reuse never changes data in use.
    Reused memory is already mapped: decoding into it costs no page faults."""

    SMALL = 1 << 20  # below this, a fresh array is as cheap

    def __init__(self, keep: int):
        self.keep, self.lock = keep, threading.Lock()
        self.pool: list[np.ndarray] = []

    def get(self, nbytes: int) -> np.ndarray:
        if nbytes < self.SMALL:
            return np.empty(nbytes, np.uint8)
        with self.lock:  # two passes over one stream at once share the pool
            return self._get(nbytes)

    def _get(self, nbytes: int) -> np.ndarray:
        for i in range(len(self.pool)):
            if self.pool[i].size >= nbytes and sys.getrefcount(self.pool[i]) == 2:  # the pool's reference only
                return self.pool[i][:nbytes]
        buf = np.empty(nbytes, np.uint8)
        self.pool.append(buf)
        if len(self.pool) > self.keep:  # forget the oldest one; whoever still holds it frees it
            self.pool.pop(0)
        return buf


class _SharedSlots:
    """Batch memory of a DataLoader worker process: shared memory the DataLoader passes to the main
    process without copying, reused once the main process no longer refers to a batch in it.

    A fresh piece of shared memory per batch costs more than reading the batch (every page is
    faulted in by the worker, again by the main process, then freed): so each slot starts with a
    flag byte, set here while a batch in the slot is in flight or in use, cleared by the main
    process when the last tensor or view of that batch is gone (see ``_received_batch``). A
    slot is written only while its flag is clear. A slot travels (torch passes its file
    descriptor) with its first batch only; the main process keeps it mapped for the rest of the
    pass, and a DataLoader delivers a worker's batches in the order sent. Past ``MAX`` slots held
    at once, batches travel the plain way (torch copies them into new shared memory)."""

    MAX = 16
    HEADER = 64  # the flag byte, padded so the batch stays aligned

    def __init__(self):
        self.token = os.urandom(8).hex()  # this pass's slots, as the main process keeps them mapped
        self.slots: list[tuple[torch.Tensor, np.ndarray]] = []
        self.sent: set[int] = set()  # the slots whose first batch has gone out

    def get(self, shape: tuple, dtype: np.dtype):
        """(slot number or None, a new array of ``shape`` to fill)."""
        nbytes = int(np.prod(shape)) * dtype.itemsize
        for number, (slot, flat) in enumerate(self.slots):  # noqa: B007 (the slot found is used after the loop)
            if flat[0] == 0 and flat.size - self.HEADER >= nbytes:
                break
        else:
            if len(self.slots) >= self.MAX:
                return None, np.empty(shape, dtype)
            slot = torch.empty(self.HEADER + nbytes, dtype=torch.uint8).share_memory_()
            flat = slot.numpy()
            number = len(self.slots)
            self.slots.append((slot, flat))
        flat[0] = 1
        return number, flat[self.HEADER : self.HEADER + nbytes].view(dtype).reshape(shape)

    def batch(self, number, video: np.ndarray, rest: tuple, last: bool) -> _SharedBatch:
        if number is None:
            slot = torch.from_numpy(video)
        elif number in self.sent:
            slot = None  # the main process has it mapped
        else:
            slot = self.slots[number][0]
            self.sent.add(number)
        return _SharedBatch((os.getpid(), self.token, number, slot, video.shape, video.dtype.str, rest, last))


class _SharedBatch:
    """A batch on its way from a DataLoader worker: the main process unpickles it as the tuple
    (video (B, C, T, H, W), label[, index]) of ``_received_batch``."""

    def __init__(self, args):
        self.args = args

    def __reduce__(self):
        return _received_batch, self.args


_MAPPED: dict[int, tuple[str, dict]] = {}  # worker pid → (token of its pass, {slot number: slot}) kept mapped here


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        pass
    return True


def _received_batch(pid, token, number, slot, shape, dtype, rest, last):
    """In the main process: the batch as tensors; when the last of them (or of their views) is gone,
    the worker may write its slot again."""
    if number is None:  # sent the plain way: a tensor of its own
        video = slot
    else:
        held = _MAPPED.get(pid)
        if held is None or held[0] != token:  # a new pass: forget the slots of workers gone meanwhile
            for gone in [p for p in _MAPPED if p != pid and not _alive(p)]:
                del _MAPPED[gone]
            held = _MAPPED[pid] = (token, {})
        if slot is None:
            slot = held[1][number]  # came with an earlier batch of this pass
        held[1][number] = slot
        if last:
            del _MAPPED[pid]
        flat = slot.numpy()
        data = flat[_SharedSlots.HEADER : _SharedSlots.HEADER + int(np.prod(shape)) * np.dtype(dtype).itemsize]
        data = data.view(dtype).reshape(shape)
        weakref.finalize(data, flat.__setitem__, 0, 0).atexit = False  # torch.from_numpy holds data till the end
        video = torch.from_numpy(data)
    return (video.permute(0, 4, 1, 2, 3), *(torch.from_numpy(a) for a in rest))
